"""The authority's two key pairs: Ed25519 to sign trace requests, X25519 to receive answers.

``kiosk trace keygen DIR`` writes::

    DIR/authority-sign.pem      private, 0600   signs requests (every kiosk trusts the public half)
    DIR/authority-sign.pub.pem  public          goes to every kiosk as [tracing] authority_key
    DIR/authority-box.key       private, 0600   opens the kiosks' sealed answers (hex)
    DIR/authority-box.pub       public          (hex; also carried in each request as reply_key)

Two pairs, not one: a signing key and a decryption key have different lives
(the decryption key must be kept as long as answers are archived; the signing
key can be rotated at once if a tracer's laptop is lost).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import nacl.public
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk.wire import signing
from kiosk.errors import KioskValueError

SIGN, SIGN_PUB = "authority-sign.pem", "authority-sign.pub.pem"
BOX, BOX_PUB = "authority-box.key", "authority-box.pub"


class AuthorityKeyError(KioskValueError):
    """A key directory that cannot be used; the message names the file."""


@dataclass(frozen=True)
class AuthorityKeys:
    sign: Ed25519PrivateKey
    box: nacl.public.PrivateKey

    @property
    def kid(self) -> str:
        return signing.kid_of(self.sign.public_key())


def keygen(directory: str | os.PathLike, force: bool = False) -> AuthorityKeys:
    """Make both key pairs in ``directory`` (private files 0600 from the start); refuses to overwrite."""
    d = Path(directory)
    existing = [n for n in (SIGN, BOX) if (d / n).exists()]
    if existing and not force:
        raise AuthorityKeyError(f"{d / existing[0]}: exists already (use --force to replace the authority's keys)")
    d.mkdir(parents=True, exist_ok=True)
    sign = signing.generate_key()
    box = nacl.public.PrivateKey.generate()
    signing.write_private_key(d / SIGN, sign)
    signing.write_public_key(d / SIGN_PUB, sign)
    tmp = d / (BOX + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(bytes(box).hex() + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, d / BOX)
    (d / BOX_PUB).write_text(bytes(box.public_key).hex() + "\n")
    return AuthorityKeys(sign, box)


def load(directory: str | os.PathLike) -> AuthorityKeys:
    """Both private keys from a ``keygen`` directory."""
    d = Path(directory)
    sign = signing.load_private_key(str(d / SIGN))
    try:
        text = (d / BOX).read_text().strip()
    except OSError as exc:
        raise AuthorityKeyError(f"{d / BOX}: cannot read ({exc.strerror})") from None
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise AuthorityKeyError(f"{d / BOX}: not an X25519 private key (64 hex digits)")
    return AuthorityKeys(sign, nacl.public.PrivateKey(raw))
