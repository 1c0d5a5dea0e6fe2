"""A venue's own revocation file: SHA-256 hex identifiers of codes it refuses, one per line.

``[policy] revoked_file``: ``#`` starts a comment; each other line is the SHA-256 (hex) of a
revoked code's identifier (the EU DCC's UVCI hash, a declaration's id hash). The trust
bundle carries the authority's revocation list (:class:`kiosk.trust.store.Revocations`);
this file is the venue's addition.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from kiosk.errors import KioskValueError
from kiosk.trust.store import TrustError, read_capped

_HEX = re.compile(r"^[0-9a-f]{64}$")


class RevocationFileError(KioskValueError):
    """A revocation file that cannot be read or has a line that is not a SHA-256 hex digest."""


def load_revoked(path: str | os.PathLike) -> frozenset[str]:
    """SHA-256 hex identifiers from a revocation file (one per line, ``#`` comments)."""
    p = Path(path)
    try:
        text = read_capped(p, what="revocation file").decode("utf-8")
    except TrustError as exc:
        raise RevocationFileError(str(exc)) from None
    except UnicodeDecodeError:
        raise RevocationFileError(f"{p}: revocation file is not UTF-8 text") from None
    out = set()
    for n, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip().lower()
        if not line:
            continue
        if not _HEX.match(line):
            raise RevocationFileError(f"{p}:{n}: not a SHA-256 hex identifier")
        out.add(line)
    return frozenset(out)
