"""Pseudonyms: a keyed hash of a visitor's identity, so the ledger never holds the raw id.

HMAC-SHA256 with a device secret: the same person gives the same pseudonym on
this kiosk (duplicates, unique visitors per day), but nobody without the key
can test a guessed ID number against the ledger, which a plain hash of a
12-digit citizen ID would allow in minutes.
"""

from __future__ import annotations

import hmac
import logging
import os
import secrets as _random
import unicodedata
from hashlib import sha256
from pathlib import Path
from typing import Callable

from kiosk.secrets import SecretError, read_secret_bytes

log = logging.getLogger(__name__)

KEY_FILE_NAME = "pseudonym.key"
MIN_KEY_BYTES = 16


class Pseudonyms:
    """Turns identities into pseudonyms with one device key."""

    def __init__(self, key: bytes):
        if len(key) < MIN_KEY_BYTES:
            raise ValueError(f"pseudonym key must be at least {MIN_KEY_BYTES} bytes")
        self._key = key

    def __repr__(self) -> str:  # never show the key
        return "Pseudonyms(<key>)"

    def of(self, identity: str) -> str:
        """The pseudonym (64 hex characters) of an identity, taken in Unicode NFKC form (the
        format plug-ins already normalise; this makes sure no two spellings of one person remain)."""
        return hmac.new(self._key, unicodedata.normalize("NFKC", identity).encode("utf-8"), sha256).hexdigest()

    @classmethod
    def load(cls, key_file: str, *, state_dir: Path, resolve: Callable[[str], Path],
             base: Path | None) -> "Pseudonyms":
        """The key from ``key_file`` (``[ledger] pseudonym_key_file``: a file or ``credential:NAME``), or
        ``state_dir/pseudonym.key`` (created on first start). ``resolve`` turns a path of the config into
        a real one; ``base`` is where a secret named relatively is read from (the config's folder)."""
        if key_file and (key_file.startswith("credential:") or resolve(key_file).exists()):
            return cls(_decode_key(read_secret_bytes(key_file, base), key_file))
        return cls(load_or_create_key(resolve(key_file) if key_file else state_dir / KEY_FILE_NAME))


def _decode_key(data: bytes, where: str) -> bytes:
    """Key files hold hex text (as we write them); any other content is used as raw bytes."""
    text = data.strip()
    try:
        key = bytes.fromhex(text.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        key = data
    if len(key) < MIN_KEY_BYTES:
        raise SecretError(f"{where!r}: pseudonym key is shorter than {MIN_KEY_BYTES} bytes")
    return key


def load_or_create_key(path: Path) -> bytes:
    """Read the key at ``path``, or create it (32 random bytes, hex, mode 0600) if absent."""
    path = Path(path)
    if path.exists():
        return _decode_key(read_secret_bytes(str(path)), str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    key = _random.token_bytes(32)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    # O_EXCL + 0600 from the start: the key is never readable by others, not even briefly.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, key.hex().encode("ascii") + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # fails if another process created the key meanwhile: theirs wins
    except FileExistsError:
        pass
    finally:
        os.unlink(tmp)
    log.info("created pseudonym key %s", path)
    return _decode_key(read_secret_bytes(str(path)), str(path))
