"""The fleet registry: which kiosk signs with which key (BRIEF contract 2), written by ``kiosk fleet``.

    {"version": 1, "kiosks": [{"site": "...", "device": "...", "venue_id": "...", "kid": "<16 hex>",
                               "public_key": "<PEM text>", "revoked": false}]}

The centre believes a message on ``checkin/v1/{site}/{device}/...`` only when it
verifies with a non-revoked row's key for that kiosk; the health authority believes
a trace answer the same way. Rows are never deleted: a rotated key stays as a
revoked row beside the new one, a lost kiosk's rows are all revoked, so the registry
is also the history of who could sign what.

This is the one parser of the file: ``kiosk fleet`` (which writes it), the centre and
the authority all read it through :func:`parse`, so they can never read it differently.
A row is named by its JSON index in error messages (``fleet.json: kiosks[0]: ...`` for the first).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from kiosk.errors import KioskValueError
from kiosk.secrets import FileRefused, read_capped
from kiosk.wire.signing import SigningKeyError, kid_of, public_key_from_pem, public_pem

VERSION = 1
MAX_BYTES = 32 * 1024 * 1024
_KID = re.compile(r"^[0-9a-f]{16}$")


class RegistryError(KioskValueError):
    """A registry file that cannot be used; the message names the file and the row."""


@dataclass
class Entry:
    """One kiosk key: whose it is and whether it may still sign."""

    site: str
    device: str
    venue_id: str
    kid: str
    public_key: str  # PEM text, as the file holds it
    revoked: bool = False
    key: Ed25519PublicKey | None = field(default=None, repr=False, compare=False)  # the loaded public_key

    @property
    def kiosk(self) -> tuple[str, str]:
        return self.site, self.device

    @property
    def owner(self) -> str:
        """``site/device``: whose messages this key signs."""
        return f"{self.site}/{self.device}"


def entry_for(site: str, device: str, venue_id: str, public_key: Ed25519PublicKey | Ed25519PrivateKey) -> Entry:
    """A new, active row for an Ed25519 public (or private) key."""
    pub = public_key.public_key() if isinstance(public_key, Ed25519PrivateKey) else public_key
    return Entry(site, device, venue_id, kid_of(pub), public_pem(pub).decode("ascii"), key=pub)


def parse(data: object, source: str = "fleet registry") -> list[Entry]:
    """The rows of a registry document (the JSON already decoded); RegistryError naming ``source`` and the row.

    Each row needs ``site``, ``device`` (neither with ``/`` or ``+``: they are topic levels)
    and a ``public_key`` that loads; ``kid``, when present, must be that key's.
    """
    if not isinstance(data, dict) or data.get("version") != VERSION or not isinstance(data.get("kiosks"), list):
        raise RegistryError(f"{source}: not a version {VERSION} fleet registry ({{\"version\": {VERSION}, "
                            "\"kiosks\": [...]}})")
    out = []
    for n, row in enumerate(data["kiosks"]):
        where = f"{source}: kiosks[{n}]"
        if not isinstance(row, dict):
            raise RegistryError(f"{where}: not an object")
        for name in ("site", "device", "public_key"):
            if not isinstance(row.get(name), str) or not row[name]:
                raise RegistryError(f"{where}: {name} missing")
        if "/" in row["site"] + row["device"] or "+" in row["site"] + row["device"]:
            raise RegistryError(f"{where}: site and device must not contain / or +")
        try:
            key = public_key_from_pem(row["public_key"].encode(), where)
        except SigningKeyError as exc:
            raise RegistryError(str(exc)) from None
        kid = kid_of(key)
        if row.get("kid") and (not _KID.match(str(row["kid"])) or row["kid"] != kid):
            raise RegistryError(f"{where}: kid {row['kid']!r} is not the public key's ({kid})")
        out.append(Entry(row["site"], row["device"], str(row.get("venue_id") or ""), kid, row["public_key"],
                         bool(row.get("revoked", False)), key=key))
    return out


def load(path: str | os.PathLike, *, missing_ok: bool = False) -> list[Entry]:
    """The rows of a registry file (read capped; a FIFO or device is refused).

    ``missing_ok``: an absent file is an empty registry (``kiosk fleet`` starting one).
    """
    p = Path(path)
    if missing_ok and not p.exists():
        return []
    try:
        text = read_capped(p, MAX_BYTES)
    except FileRefused as exc:
        raise RegistryError(f"{p}: cannot read the fleet registry ({str(exc).removeprefix(f'{p}: ')})") from None
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RegistryError(f"{p}: not JSON ({exc})") from None
    return parse(data, str(p))


def dumps(entries: list[Entry]) -> str:
    """The registry file's text for ``entries``."""
    rows = [{"site": e.site, "device": e.device, "venue_id": e.venue_id, "kid": e.kid, "public_key": e.public_key,
             "revoked": e.revoked} for e in entries]
    return json.dumps({"version": VERSION, "kiosks": rows}, ensure_ascii=False, indent=2) + "\n"


def active(entries: list[Entry], site: str, device: str) -> list[Entry]:
    """The rows of one kiosk that may still sign."""
    return [e for e in entries if e.kiosk == (site, device) and not e.revoked]
