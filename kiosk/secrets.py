"""Secrets (broker password, client key, pseudonym key, device key) read from files or systemd credentials.

A secret reference in the config is either a file path (relative to the config
file's folder) or ``credential:NAME``, meaning ``$CREDENTIALS_DIRECTORY/NAME``
as set up by systemd's ``LoadCredential=``/``LoadCredentialEncrypted=``. Error
messages name the reference, never the value; nothing here logs a secret.

Outside the service (an operator's ``sudo kiosk config check``, ``kiosk doctor``,
``kiosk update``) there is no ``$CREDENTIALS_DIRECTORY``; a ``credential:mqtt_F``
reference then falls back to the file ``F`` of the credential store that
kiosk.service loads (``LoadCredential=mqtt:/etc/credstore/kiosk-mqtt``), when
that file is readable, so a check as root sees what the service will see.

Every file the operator names (config, secrets, keys, trust lists) is read with
:func:`read_capped`: regular files only (a FIFO or a device would block or
never end) and never more than a stated size.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from kiosk.errors import KioskValueError

CREDENTIAL_PREFIX = "credential:"
# Where kiosk provision puts the credentials kiosk.service loads (file F is credential mqtt_F).
CREDSTORE = os.environ.get("KIOSK_CREDSTORE", "/etc/credstore/kiosk-mqtt")
CREDSTORE_PREFIX = "mqtt_"
SECRET_MAX_BYTES = 64 * 1024
_NAME = re.compile(r"^[A-Za-z0-9_.@-]+$")


class SecretError(KioskValueError):
    """A secret cannot be read; ``str()`` names the reference, not the secret."""


class FileRefused(KioskValueError):
    """A file the operator named that must not or cannot be read; ``str()`` names the file."""


def read_capped(path: str | os.PathLike, max_bytes: int, what: str = "") -> bytes:
    """The bytes of a regular file of at most ``max_bytes``; :class:`FileRefused` otherwise.

    The file is opened without blocking and checked with ``fstat`` on the open
    descriptor, so a FIFO or a device is refused without being read from.
    """
    name = what or str(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise FileRefused(f"{name}: no such file") from None
    except IsADirectoryError:
        raise FileRefused(f"{name}: is a directory, not a file") from None
    except OSError as exc:
        raise FileRefused(f"{name}: cannot read ({exc.strerror})") from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise FileRefused(f"{name}: is a directory, not a file")
        if not stat.S_ISREG(st.st_mode):
            raise FileRefused(f"{name}: not a regular file (a FIFO, socket or device is never read)")
        if st.st_size > max_bytes:
            raise FileRefused(f"{name}: larger than {max_bytes} bytes")
        chunks, total = [], 0
        while True:
            try:
                chunk = os.read(fd, min(65536, max_bytes + 1 - total))
            except OSError as exc:
                raise FileRefused(f"{name}: cannot read ({exc.strerror})") from None
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > max_bytes:  # grew while we read it
                raise FileRefused(f"{name}: larger than {max_bytes} bytes")
        return b"".join(chunks)
    finally:
        os.close(fd)


def _credstore_fallback(name: str) -> Path | None:
    """Outside systemd: the credential store file kiosk.service would load as ``name``."""
    if not name.startswith(CREDSTORE_PREFIX):
        return None
    candidate = Path(CREDSTORE) / name[len(CREDSTORE_PREFIX):]
    return candidate if os.access(candidate, os.R_OK) else None


def secret_path(ref: str, base: str | os.PathLike | None = None) -> Path:
    """The file a secret reference points to (a path, or ``credential:NAME``)."""
    if not ref:
        raise SecretError("no secret configured")
    if ref.startswith(CREDENTIAL_PREFIX):
        name = ref[len(CREDENTIAL_PREFIX):]
        if not _NAME.match(name) or name in (".", ".."):
            raise SecretError(f"{ref!r}: not a valid credential name")
        directory = os.environ.get("CREDENTIALS_DIRECTORY")
        if not directory:
            fallback = _credstore_fallback(name)
            if fallback is not None:
                return fallback
            raise SecretError(f"{ref!r}: $CREDENTIALS_DIRECTORY is not set (run under systemd with LoadCredential=)")
        return Path(directory) / name
    p = Path(os.path.expanduser(ref))
    if not p.is_absolute() and base is not None:
        p = Path(base) / p
    return p


def read_secret_bytes(ref: str, base: str | os.PathLike | None = None, max_bytes: int = SECRET_MAX_BYTES) -> bytes:
    """The raw bytes of a secret file (size-capped, regular files only)."""
    p = secret_path(ref, base)
    try:
        return read_capped(p, max_bytes)
    except FileRefused as exc:
        # Name the reference as the operator wrote it, then what is wrong with the file.
        detail = str(exc)[len(str(p)) + 2:] if str(exc).startswith(str(p)) else str(exc)
        raise SecretError(f"{ref!r}: {detail}") from None


def read_secret(ref: str, base: str | os.PathLike | None = None) -> str:
    """A text secret (password), without its trailing newline."""
    data = read_secret_bytes(ref, base)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise SecretError(f"{ref!r}: not UTF-8 text") from None
    text = text.rstrip("\r\n")
    if not text:
        raise SecretError(f"{ref!r}: is empty")
    return text
