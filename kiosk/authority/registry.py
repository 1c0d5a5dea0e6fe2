"""The fleet registry (BRIEF contract 2), as the authority reads it: which kiosk holds which key.

``{"version": 1, "kiosks": [{"site", "device", "venue_id", "kid", "public_key": PEM, "revoked"}]}``,
written by ``kiosk fleet``. The authority believes an answer on
``checkin/v1/trace/{id}/{site}/{device}`` only when it verifies with that row's
key, and seals a case's identity only to kiosks that are not revoked.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from kiosk.wire import signing
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
    """Every row of the registry (revoked ones included, marked).

    The file is parsed by :mod:`kiosk.wire.registry`, the module ``kiosk fleet`` writes it
    with, so the two can never read it differently; here each row's key is also loaded and
    its kid checked against it, since the authority seals and verifies with those keys.
    """
    from kiosk.wire import registry as fleet_registry

    p = Path(path)
    if not p.is_file():
        raise RegistryError(f"{p}: no such fleet registry")
    try:
        entries = fleet_registry.load(p)
    except fleet_registry.RegistryError as exc:
        raise RegistryError(str(exc)) from None
    rows = []
    for i, entry in enumerate(entries):
        where = f"{p}: kiosks[{i}]"
        key = signing.public_key_from_pem(str(entry.public_key).encode(), where)
        kid = signing.kid_of(key)
        if entry.kid != kid:
            raise RegistryError(f"{where}: kid {entry.kid!r} does not match its public key ({kid})")
        rows.append(RegisteredKiosk(entry.site, entry.device, str(entry.venue_id or ""), kid, key, entry.revoked))
    return rows


def active(rows: list[RegisteredKiosk], site: str | None = None) -> list[RegisteredKiosk]:
    """The kiosks that are not revoked (of one site when ``site``); the newest row per kiosk wins."""
    by_name: dict[tuple[str, str], RegisteredKiosk] = {}
    for r in rows:
        by_name[(r.site, r.device)] = r  # a rotated key is a later row for the same kiosk
    return [r for r in by_name.values() if not r.revoked and (site is None or r.site == site)]
