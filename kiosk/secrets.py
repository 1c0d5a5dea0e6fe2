"""Secrets (broker password, client key, pseudonym key) read from files or systemd credentials.

A secret reference in the config is either a file path (relative to the config
file's folder) or ``credential:NAME``, meaning ``$CREDENTIALS_DIRECTORY/NAME``
as set up by systemd's ``LoadCredential=``/``LoadCredentialEncrypted=``. Error
messages name the reference, never the value; nothing here logs a secret.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

CREDENTIAL_PREFIX = "credential:"
_NAME = re.compile(r"^[A-Za-z0-9_.@-]+$")


class SecretError(ValueError):
    """A secret cannot be read; ``str()`` names the reference, not the secret."""


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
            raise SecretError(f"{ref!r}: $CREDENTIALS_DIRECTORY is not set (run under systemd with LoadCredential=)")
        return Path(directory) / name
    p = Path(os.path.expanduser(ref))
    if not p.is_absolute() and base is not None:
        p = Path(base) / p
    return p


def read_secret_bytes(ref: str, base: str | os.PathLike | None = None) -> bytes:
    """The raw bytes of a secret file."""
    p = secret_path(ref, base)
    try:
        return p.read_bytes()
    except FileNotFoundError:
        raise SecretError(f"{ref!r}: no such file") from None
    except OSError as exc:
        raise SecretError(f"{ref!r}: cannot read ({exc.strerror})") from None


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
