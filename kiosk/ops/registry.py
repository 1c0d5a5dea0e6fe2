"""The fleet registry: which kiosk signs with which key (BRIEF contract 2), written by ``kiosk fleet``.

    {"version": 1, "kiosks": [{"site": "...", "device": "...", "venue_id": "...", "kid": "<16 hex>",
                               "public_key": "<PEM text>", "revoked": false}]}

The centre believes a message on ``checkin/v1/{site}/{device}/...`` only when it
verifies with a non-revoked row's key for that kiosk. Rows are never deleted:
a rotated key stays as a revoked row beside the new one, a lost kiosk's rows
are all revoked, so the registry is also the history of who could sign what.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from kiosk.errors import KioskValueError

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
    public_key: str
    revoked: bool = False

    @property
    def kiosk(self) -> tuple[str, str]:
        return self.site, self.device


def entry_for(site: str, device: str, venue_id: str, public_key) -> Entry:
    """A new, active row for an Ed25519 public (or private) key."""
    from kiosk import signing

    pub = public_key.public_key() if hasattr(public_key, "private_bytes") else public_key
    return Entry(site, device, venue_id, signing.kid_of(pub), signing.public_pem(pub).decode("ascii"))


def load(path: str | os.PathLike) -> list[Entry]:
    """The rows of a registry file; an absent file is an empty registry."""
    from kiosk.secrets import FileRefused, read_capped

    p = Path(path)
    if not p.exists():
        return []
    try:
        data = json.loads(read_capped(p, MAX_BYTES))
    except FileRefused as exc:
        raise RegistryError(str(exc)) from None
    except (ValueError, UnicodeDecodeError):
        raise RegistryError(f"{p}: not JSON") from None
    if not isinstance(data, dict) or data.get("version") != VERSION or not isinstance(data.get("kiosks"), list):
        raise RegistryError(f"{p}: not a version-{VERSION} fleet registry")
    out = []
    for n, row in enumerate(data["kiosks"], 1):
        try:
            entry = Entry(**{k: row[k] for k in ("site", "device", "venue_id", "kid", "public_key")},
                          revoked=bool(row.get("revoked", False)))
        except (KeyError, TypeError):
            raise RegistryError(f"{p}: kiosks[{n - 1}]: needs site, device, venue_id, kid and public_key") from None
        if not _KID.match(str(entry.kid)):
            raise RegistryError(f"{p}: kiosks[{n - 1}]: kid {entry.kid!r} is not 16 hex digits")
        out.append(entry)
    return out


def dumps(entries: list[Entry]) -> str:
    return json.dumps({"version": VERSION, "kiosks": [asdict(e) for e in entries]}, ensure_ascii=False, indent=2) + "\n"


def active(entries: list[Entry], site: str, device: str) -> list[Entry]:
    return [e for e in entries if e.kiosk == (site, device) and not e.revoked]
