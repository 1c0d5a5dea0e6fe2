"""Dashboard accounts: the city account sees everything, a district account only its district.

A JSON file ``{"version": 1, "accounts": [{"name", "district" (null = city), "password_hash"}]}``
written by ``kiosk centre user add``; passwords are argon2id hashes (argon2-cffi), never stored
or logged in the clear. :class:`LoginLimiter` slows guessing: a few failures per name and per
address within a window, then 429 until the window passes.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from kiosk.errors import KioskValueError

_hasher = PasswordHasher()
_DUMMY = _hasher.hash("not a password")  # same work for unknown names: no timing oracle


class AccountError(KioskValueError):
    """An accounts file or request the centre cannot use; names the file."""


@dataclass(frozen=True)
class Account:
    name: str
    district: str | None  # None: the city account
    password_hash: str

    @property
    def is_city(self) -> bool:
        return self.district is None


class Accounts:
    def __init__(self, accounts: dict[str, Account] | None = None, path: str | None = None):
        self.by_name = accounts or {}
        self.path = path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Accounts":
        p = Path(path)
        if not p.exists():
            return cls({}, str(p))
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
            rows = data["accounts"]
            accounts = {r["name"]: Account(str(r["name"]), r.get("district"), str(r["password_hash"])) for r in rows}
        except OSError as exc:
            raise AccountError(f"{p}: cannot read ({exc.strerror})") from None
        except (ValueError, KeyError, TypeError):
            raise AccountError(f"{p}: not an accounts file ({{\"version\": 1, \"accounts\": [...]}})") from None
        return cls(accounts, str(p))

    def add(self, name: str, password: str, district: str | None) -> Account:
        if not name or len(name) > 64 or any(c.isspace() for c in name):
            raise AccountError("account name: 1-64 characters, no spaces")
        if len(password) < 10:
            raise AccountError("password: at least 10 characters")
        a = Account(name, district or None, _hasher.hash(password))
        self.by_name[name] = a
        return a

    def save(self, path: str | os.PathLike | None = None) -> Path:
        p = Path(path or self.path)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(p.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"version": 1, "accounts": [a.__dict__ for a in self.by_name.values()]}, f, ensure_ascii=False,
                      indent=1)
        os.replace(tmp, p)
        return p

    def check(self, name: str, password: str) -> Account | None:
        a = self.by_name.get(name)
        try:
            _hasher.verify(a.password_hash if a else _DUMMY, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
        return a


class LoginLimiter:
    """At most ``failures`` failed logins per account name and per client address in ``window`` seconds."""

    def __init__(self, failures: int = 5, window: float = 300.0, clock=time.monotonic):
        self.failures, self.window, self.clock = failures, window, clock
        self._fails: dict[str, deque] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str) -> deque:
        q = self._fails.setdefault(key, deque())
        now = self.clock()
        while q and now - q[0] > self.window:
            q.popleft()
        return q

    def blocked(self, name: str, address: str) -> bool:
        with self._lock:
            return any(len(self._recent(k)) >= self.failures for k in (f"n:{name}", f"a:{address}"))

    def failed(self, name: str, address: str) -> None:
        with self._lock:
            if len(self._fails) > 100_000:
                self._fails.clear()  # bounded memory under a flood of invented names
            for k in (f"n:{name}", f"a:{address}"):
                self._recent(k).append(self.clock())
