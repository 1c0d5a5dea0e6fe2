"""The fleet registry (BRIEF contract 2), as the authority reads it: which kiosk holds which key.

``{"version": 1, "kiosks": [{"site", "device", "venue_id", "kid", "public_key": PEM, "revoked"}]}``,
written by ``kiosk fleet``. The authority believes an answer on
``checkin/v1/trace/{id}/{site}/{device}`` only when it verifies with that row's
key, and seals a case's identity only to kiosks that are not revoked.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from kiosk import signing
from kiosk.errors import KioskValueError


class RegistryError(KioskValueError):
    """A registry file that cannot be used; the message names the file and the row."""


@dataclass(frozen=True)
class RegisteredKiosk:
    site: str
    device: str
    venue_id: str
    kid: str
    public_key: Ed25519PublicKey
    revoked: bool = False

    @property
    def name(self) -> str:
        return f"{self.site}/{self.device}"


def load(path: str | os.PathLike) -> list[RegisteredKiosk]:
    """Every row of the registry (revoked ones included, marked)."""
    p = Path(path)
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RegistryError(f"{p}: cannot read ({exc.strerror})") from None
    except ValueError:
        raise RegistryError(f"{p}: not JSON") from None
    if not isinstance(doc, dict) or doc.get("version") != 1 or not isinstance(doc.get("kiosks"), list):
        raise RegistryError(f"{p}: not a version-1 fleet registry")
    rows = []
    for i, row in enumerate(doc["kiosks"]):
        where = f"{p}: kiosks[{i}]"
        if not isinstance(row, dict) or not all(isinstance(row.get(k), str) for k in ("site", "device", "public_key")):
            raise RegistryError(f"{where}: needs site, device and public_key")
        key = signing.public_key_from_pem(row["public_key"].encode(), where)
        kid = signing.kid_of(key)
        if row.get("kid") not in (None, kid):
            raise RegistryError(f"{where}: kid {row.get('kid')!r} does not match its public key ({kid})")
        rows.append(RegisteredKiosk(row["site"], row["device"], str(row.get("venue_id", "")), kid, key,
                                    bool(row.get("revoked", False))))
    return rows


def active(rows: list[RegisteredKiosk], site: str | None = None) -> list[RegisteredKiosk]:
    """The kiosks that are not revoked (of one site when ``site``); the newest row per kiosk wins."""
    by_name: dict[tuple[str, str], RegisteredKiosk] = {}
    for r in rows:
        by_name[(r.site, r.device)] = r  # a rotated key is a later row for the same kiosk
    return [r for r in by_name.values() if not r.revoked and (site is None or r.site == site)]
