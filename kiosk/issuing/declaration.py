"""Issuing signed health declarations (``HD1:``): the issuer's tool, outside the firmware.

The format is :mod:`kiosk.door.verify.declaration`'s (read by kiosks); this module
writes it with an issuer key (:mod:`kiosk.issuing.keys`).
"""

from __future__ import annotations

from datetime import datetime

import cbor2

from kiosk.door.verify import base45
from kiosk.issuing import cose
from kiosk.door.verify.declaration import (ALGS, ID_PATTERN, K_DECLARED_AT, K_ID, K_STATUS, K_SUBJECT, K_VALID_UNTIL, K_VERSION, PREFIX, STATUSES, VERSION)
from kiosk.errors import KioskValueError
from kiosk.issuing.keys import IssuerKey, KeyFileError

__all__ = ["DeclarationError", "IssuerKey", "KeyFileError", "issue"]

_ID = ID_PATTERN


class DeclarationError(KioskValueError):
    """Bad arguments to :func:`issue`."""


def _epoch(t: datetime) -> int:
    if t.tzinfo is None:
        raise DeclarationError("times must be timezone-aware")
    return int(t.timestamp())


def issue(key: IssuerKey, *, status: str, declared_at: datetime, valid_until: datetime,
          declaration_id: str, subject_id: str) -> str:
    """A signed ``HD1:`` health-declaration payload (the text to put in a QR code).

    ``subject_id`` is pseudonymous (e.g. a keyed hash the issuer keeps): the code
    carries no name. Raises DeclarationError for arguments the kiosk would reject.
    """
    if status not in STATUSES:
        raise DeclarationError(f"status must be one of {', '.join(STATUSES)}")
    for label, value in (("declaration id", declaration_id), ("subject id", subject_id)):
        if not isinstance(value, str) or not _ID.match(value):
            raise DeclarationError(f"{label} must be 1-32 printable ASCII characters without spaces")
    if valid_until <= declared_at:
        raise DeclarationError("valid_until must be after declared_at")
    if cose.ALG_IDS.get(key.alg) not in ALGS:
        raise DeclarationError(f"declarations are signed with Ed25519 or ES256, not {key.alg}")
    claims = {K_VERSION: VERSION, K_STATUS: status, K_SUBJECT: subject_id, K_ID: declaration_id,
              K_VALID_UNTIL: _epoch(valid_until), K_DECLARED_AT: _epoch(declared_at)}
    signed = cose.sign1(cbor2.dumps(claims), key.private_key, key.alg, key.kid)
    return PREFIX + base45.encode(signed)
