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

from kiosk.wire import registry as fleet_registry
from kiosk.wire.registry import RegistryError


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
    with, so the two can never read it differently; it loads each row's key and checks its
    kid, since the authority seals and verifies with those keys.
    """
    p = Path(path)
    if not p.is_file():
        raise RegistryError(f"{p}: no such fleet registry")
    return [RegisteredKiosk(e.site, e.device, e.venue_id, e.kid, e.key, e.revoked)
            for e in fleet_registry.load(p) if e.key is not None]


def active(rows: list[RegisteredKiosk], site: str | None = None) -> list[RegisteredKiosk]:
    """The kiosks that are not revoked (of one site when ``site``); the newest row per kiosk wins."""
    by_name: dict[tuple[str, str], RegisteredKiosk] = {}
    for r in rows:
        by_name[(r.site, r.device)] = r  # a rotated key is a later row for the same kiosk
    return [r for r in by_name.values() if not r.revoked and (site is None or r.site == site)]
