"""Dashboard accounts: who may log in, with which role, for which districts.

A JSON file written by ``kiosk centre user ...`` (mode 0600)::

    {"version": 2, "accounts": [{"name", "role", "districts": [...], "password_hash", "disabled"}]}

Roles (:mod:`kiosk.centre.access` decides what each may see): ``city`` (everything),
``district`` (one district's official), ``inspector`` (one or more districts' inspection lists
and venues). A version 1 file (rows ``{"name", "district", "password_hash"}``, no role) still
loads: district null is the city account, any other a district official.

Names are compared in one form: Unicode NFC, case-folded (``HoanKiem`` and ``hoankiem`` are one
account), and stored in that form. Passwords are argon2id hashes (argon2-cffi), never stored or
logged in the clear. A running centre re-reads the file when it changes (:meth:`Accounts.refresh`),
so an account added, disabled or removed takes effect at the next request, with no restart.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import unicodedata
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from kiosk.errors import KioskValueError

_hasher = PasswordHasher()
_DUMMY = _hasher.hash("not a password")  # same work for unknown names: no timing oracle
log = logging.getLogger(__name__)

NAME_MAX = 64
PASSWORD_MIN = 10
PASSWORD_MAX = 1024


# The roles an account may have; what each may see is kiosk.centre.access's to decide.
ROLES = ("city", "district", "inspector")


class AccountError(KioskValueError):
    """An accounts file or request the centre cannot use; names the file or the field."""


def account_key(name: str) -> str:
    """The one form an account name is stored and compared in: NFC, case-folded."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", name).casefold())


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


@dataclass(frozen=True)
class Account:
    """One dashboard account. ``districts``: empty for the city, one for a district official, one or
    more for an inspector."""

    name: str
    role: str
    districts: tuple[str, ...]
    password_hash: str
    disabled: bool = False

    @property
    def is_city(self) -> bool:
        return self.role == "city"

    @property
    def district(self) -> str | None:
        """The district of a district official (None for the city and inspectors)."""
        return self.districts[0] if self.role == "district" else None

    @property
    def stamp(self) -> str:
        """What a session was opened under: a new password, role, districts or a disabling changes it,
        and every session opened under the old stamp ends."""
        text = "\0".join((self.password_hash, self.role, *self.districts, str(self.disabled)))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]

    def row(self) -> dict:
        r = asdict(self)
        r["districts"] = list(self.districts)
        return r


def make_account(name: str, role: str | None, districts, password_hash: str, disabled: bool = False) -> Account:
    """An :class:`Account` from what a file or a command gives, checked; raises :class:`AccountError`."""
    key = account_key(str(name))
    if not key or len(key) > NAME_MAX or any(c.isspace() or unicodedata.category(c)[0] == "C" for c in key):
        raise AccountError(f"account name {name!r}: 1-{NAME_MAX} characters, no spaces or control characters")
    districts = tuple(dict.fromkeys(nfc(str(d)).strip() for d in (districts or ()) if str(d).strip()))
    if any("\0" in d or len(d) > 200 for d in districts):
        raise AccountError(f"account {key}: a district name of at most 200 characters, without NUL")
    if role is None:  # a version 1 row: the district decides
        role = "district" if districts else "city"
    if role not in ROLES:
        raise AccountError(f"account {key}: role {role!r} is not one of {', '.join(ROLES)}")
    if role == "city" and districts:
        raise AccountError(f"account {key}: a city account sees every district (give no --district)")
    if role == "district" and len(districts) != 1:
        raise AccountError(f"account {key}: a district official has exactly one --district")
    if role == "inspector" and not districts:
        raise AccountError(f"account {key}: an inspector is assigned to at least one --district")
    return Account(key, role, districts, str(password_hash), bool(disabled))


def hash_password(password: str) -> str:
    if len(password) < PASSWORD_MIN:
        raise AccountError(f"password: at least {PASSWORD_MIN} characters")
    if len(password) > PASSWORD_MAX:
        raise AccountError(f"password: at most {PASSWORD_MAX} characters")
    return _hasher.hash(password)


class Accounts:
    """The accounts of one file (or of memory, in tests), re-read when the file changes."""

    def __init__(self, accounts: dict[str, Account] | None = None, path: str | None = None):
        self.by_name: dict[str, Account] = dict(accounts or {})
        self.path = path
        self._signature = None
        self._lock = threading.Lock()

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Accounts":
        p = Path(path)
        a = cls({}, str(p))
        a.by_name, a._signature = _read(p)
        return a

    # -- a running centre ---------------------------------------------------------------
    def refresh(self) -> None:
        """Re-read the file if it changed since it was read (one ``stat`` when it did not).

        A file that no longer parses (an editor's half-written save) keeps the accounts read last and
        is logged; ``kiosk centre user`` itself always replaces the file in one rename.
        """
        if not self.path:
            return
        sig = _signature(Path(self.path))
        if sig == self._signature:
            return
        with self._lock:
            if sig == self._signature:
                return
            try:
                self.by_name, self._signature = _read(Path(self.path))
            except AccountError as exc:
                log.error("accounts not reloaded: %s", exc)
                self._signature = sig  # said once, not at every request

    def get(self, name: str) -> Account | None:
        """The account of ``name`` (any case or Unicode form), as the file says now."""
        self.refresh()
        return self.by_name.get(account_key(name))

    def check(self, name: str, password: str) -> Account | None:
        """The account if ``password`` is its password and it is not disabled; None otherwise
        (the same argon2 work whether or not the name exists)."""
        a = self.get(name)
        try:
            _hasher.verify(a.password_hash if a else _DUMMY, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
        return None if a is None or a.disabled else a

    # -- kiosk centre user ---------------------------------------------------------------
    def add(self, name: str, password: str, district: str | None = None, *, role: str | None = None,
            districts=(), replace_existing: bool = False) -> Account:
        """A new account (``district``: the version 1 way to name a district official's district).

        Refuses a name that exists unless ``replace_existing``.
        """
        if district:
            districts = (district, *districts)
        a = make_account(name, role, districts, "")
        if a.name in self.by_name and not replace_existing:
            raise AccountError(f"account {a.name} exists (use passwd to change its password, or --replace)")
        a = replace(a, password_hash=hash_password(password))
        self.by_name[a.name] = a
        return a

    def set_password(self, name: str, password: str) -> Account:
        a = self.existing(name)
        a = replace(a, password_hash=hash_password(password))
        self.by_name[a.name] = a
        return a

    def set_disabled(self, name: str, disabled: bool) -> Account:
        a = replace(self.existing(name), disabled=disabled)
        self.by_name[a.name] = a
        return a

    def remove(self, name: str) -> Account:
        a = self.existing(name)
        del self.by_name[a.name]
        return a

    def existing(self, name: str) -> Account:
        """The account of ``name``; :class:`AccountError` when there is none."""
        a = self.by_name.get(account_key(name))
        if a is None:
            raise AccountError(f"no account {account_key(name)!r}" + (f" in {self.path}" if self.path else ""))
        return a

    def save(self, path: str | os.PathLike | None = None) -> Path:
        """Write the file in one rename (mode 0600): a running centre never reads half of it."""
        p = Path(path or self.path)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(p.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"version": 2, "accounts": [a.row() for a in sorted(self.by_name.values(), key=lambda a: a.name)]},
                      f, ensure_ascii=False, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
        return p


def _signature(p: Path):
    try:
        st = p.stat()
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def _read(p: Path) -> tuple[dict[str, Account], object]:
    sig = _signature(p)
    if sig is None:
        return {}, None
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
        rows = data["accounts"]
        if data.get("version", 1) not in (1, 2) or not isinstance(rows, list):
            raise ValueError
        out: dict[str, Account] = {}
        for r in rows:
            districts = r.get("districts")
            if districts is None:
                districts = [r["district"]] if r.get("district") else []
            a = make_account(r["name"], r.get("role"), districts, r["password_hash"], r.get("disabled", False))
            if a.name in out:
                raise AccountError(f"{p}: account {a.name} appears twice (names are compared case-folded, NFC)")
            out[a.name] = a
    except OSError as exc:
        raise AccountError(f"{p}: cannot read ({exc.strerror})") from None
    except AccountError as exc:
        raise AccountError(f"{p}: {exc}" if not str(exc).startswith(str(p)) else str(exc)) from None
    except (ValueError, KeyError, TypeError, AttributeError):
        raise AccountError(f"{p}: not an accounts file ({{\"version\": 2, \"accounts\": [...]}})") from None
    return out, sig
