"""The kiosk's device key: signs every counts, info, health and events message (contract v1.1).

``[device] key_file`` names it (a file, or ``credential:NAME`` for a systemd
credential); empty means ``<state_dir>/device-key.pem``. Provisioning makes
it; a kiosk that finds no key file makes one at first start (mode 0600),
writes the public half beside it (``device-key.pub.pem``) and logs the key id
and that path, so the operator can add the kiosk to the fleet registry. A
credential that is missing is an error: the kiosk never invents a key the
operator meant to supply.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk.config import DeviceConfig
from kiosk.secrets import CREDENTIAL_PREFIX
from kiosk.wire import signing

log = logging.getLogger(__name__)

DEFAULT_NAME = "device-key.pem"


@dataclass(frozen=True)
class DeviceKey:
    """The private key and its id (``kid``, 16 hex digits)."""

    key: Ed25519PrivateKey
    kid: str

    def sign(self, payload: dict, topic: str) -> bytes:
        """The signed message for ``topic``, as bytes to publish."""
        return signing.sign_bytes(payload, topic, self.key)


def key_path(device: DeviceConfig, resolve: Callable[[str], Path]) -> str:
    """Where ``[device] key_file`` says the key is (a path or ``credential:NAME``); ``resolve`` turns
    a path of the config into a real one."""
    ref = device.key_file
    if not ref:
        return str(resolve(device.state_dir) / DEFAULT_NAME)
    if ref.startswith(CREDENTIAL_PREFIX):
        return ref
    return str(resolve(ref))


def public_path(private_path: str | Path) -> Path:
    p = Path(private_path)
    stem = p.name[:-4] if p.name.endswith(".pem") else p.name
    return p.with_name(stem + ".pub.pem")


def load_or_create(device: DeviceConfig, resolve: Callable[[str], Path]) -> DeviceKey:
    """The device key ``[device]`` names; made on first start when the key file does not exist yet.

    Raises :class:`kiosk.wire.signing.SigningKeyError` (one line naming the file) for a key that cannot be used.
    """
    ref = key_path(device, resolve)
    if not ref.startswith(CREDENTIAL_PREFIX) and not Path(ref).exists():
        key = signing.generate_key()
        try:
            signing.write_private_key(ref, key)
            pub = signing.write_public_key(public_path(ref), key)
        except OSError as exc:
            raise signing.SigningKeyError(f"{ref}: cannot create the device key ({exc.strerror or exc})") from None
        kid = signing.kid_of(key.public_key())
        log.warning("no device key found: made a new one, kid %s; public key in %s (add it to the fleet registry)",
                    kid, pub)
        return DeviceKey(key, kid)
    key = signing.load_private_key(ref)
    return DeviceKey(key, signing.kid_of(key.public_key()))
