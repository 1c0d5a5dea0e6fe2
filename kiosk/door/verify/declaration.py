"""The kiosk's own signed health declaration (``HD1:``), for a building or authority that issues them.

Format (full spec in docs/codes.md)::

    "HD1:" + Base45( COSE_Sign1 )        no compression: the body is small and mostly signature
    protected header  {1: alg (-8 EdDSA | -7 ES256), 4: kid (8 bytes)}
    payload (CBOR map) {0: 1 (version), 1: status "green"|"yellow"|"red",
                        2: subject id (text, pseudonymous), 3: declaration id (text),
                        4: valid-until (epoch s), 6: declared-at (epoch s)}

The kid is the issuer certificate's (first 8 bytes of SHA-256 of the DER
certificate), so kiosks trust an issuer by adding its certificate to
``[trust] paths`` or lists it under ``declaration_issuers`` in the trust bundle. Issuing
is the issuer's tool (:mod:`kiosk.issuing.declaration`). A typical code is about 200 characters (QR version 8 at level M); with both ids at
their 32-character maximum it still fits version 10 at level M.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping


from kiosk.wire import reasons
from kiosk.door.verify import base45, cose
from kiosk.door.verify.base import CodeCheck, Holder, VerifyContext
from kiosk.trust.store import signer_validity_problem

PREFIX = "HD1:"
VERSION = 1
STATUSES = ("green", "yellow", "red")
K_VERSION, K_STATUS, K_SUBJECT, K_ID, K_VALID_UNTIL, K_DECLARED_AT = 0, 1, 2, 3, 4, 6
ALGS = (cose.EDDSA, cose.ES256)  # PS256 signatures (256 bytes) would not fit a small QR code
ID_PATTERN = _ID = re.compile(r"^[\x21-\x7e]{1,32}$")  # printable ASCII, no spaces: keeps the code within QR version 10
# A valid HD1 code is ~230 characters; anything far longer is not ours.
MAX_CHARS = 600

__all__ = ["HealthDeclaration", "PREFIX", "STATUSES", "ALGS", "VERSION", "ID_PATTERN"]


def _time(value: object) -> datetime | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    try:
        return datetime.fromtimestamp(value, timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None


def _claims(claims: object) -> dict[str, object]:
    """The declaration's fields, or ValueError naming the first bad one (reason: schema)."""
    if not isinstance(claims, Mapping):
        raise ValueError("payload is not a map")
    if claims.get(K_VERSION) != VERSION:
        raise ValueError(f"unknown declaration version {claims.get(K_VERSION)!r}")
    status = claims.get(K_STATUS)
    if status not in STATUSES:
        raise ValueError(f"unknown status {status!r}")
    out: dict[str, Any] = {"status": status}
    for name, k in (("subject_id", K_SUBJECT), ("declaration_id", K_ID)):
        v = claims.get(k)
        if not isinstance(v, str) or not _ID.match(v):
            raise ValueError(f"{name} missing or not 1-32 printable characters")
        out[name] = v
    declared, until = _time(claims.get(K_DECLARED_AT)), _time(claims.get(K_VALID_UNTIL))
    if declared is None or until is None:
        raise ValueError("declared-at and valid-until must be integer times")
    if until <= declared:
        raise ValueError("valid-until is not after declared-at")
    out["declared_at"], out["valid_until"] = declared, until
    return out


class HealthDeclaration:
    """The ``health-declaration`` plug-in."""

    name = "health-declaration"

    def detects(self, payload: str) -> bool:
        return payload.startswith(PREFIX)

    def check(self, payload: str, ctx: VerifyContext) -> CodeCheck:
        if len(payload) > MAX_CHARS:
            return CodeCheck.reject(self.name, reasons.MALFORMED, "longer than any health declaration", signed=True)
        try:
            msg = cose.parse_sign1(base45.decode(payload[len(PREFIX):]))
            raw_claims = cose.loads(msg.payload)
        except (base45.Base45Error, cose.CoseError) as exc:
            return CodeCheck.reject(self.name, reasons.MALFORMED, str(exc), signed=True)
        kid = msg.kid
        signers = [s for s in ctx.trust.find(kid) if s.role != "dcc"]
        if not signers:
            return CodeCheck.reject(self.name, reasons.UNKNOWN_KEY,
                                    f"no trusted issuer with kid {kid.hex() if kid else '(none)'}", signed=True)
        if msg.alg not in ALGS:
            return CodeCheck.reject(self.name, reasons.SIGNATURE_INVALID,
                                    f"algorithm {msg.alg!r} is not allowed for declarations", signed=True)
        signer, error = None, None
        for s in signers:
            try:
                cose.verify(msg, s.public_key)
                signer = s
                break
            except cose.CoseError as exc:
                error = exc
        if signer is None:
            return CodeCheck.reject(self.name, reasons.SIGNATURE_INVALID, str(error), signed=True)
        if signer.dcc_types is not None:
            # A DCC document signer (it carries DCC key-usage OIDs) must not vouch for declarations.
            return CodeCheck.reject(self.name, reasons.KEY_USAGE, "signer is a DCC document signer", signed=True)
        try:
            fields = _claims(raw_claims)
        except ValueError as exc:
            return CodeCheck.reject(self.name, reasons.SCHEMA, str(exc), signed=True)
        problem = signer_validity_problem(signer, fields["declared_at"],
                                          ctx.now + timedelta(seconds=ctx.clock_skew_seconds))
        if problem:
            return CodeCheck.reject(self.name, reasons.SIGNATURE_INVALID, problem, signed=True)
        declaration_hash = hashlib.sha256(fields["declaration_id"].encode()).hexdigest()
        facts = {
            "status": fields["status"],
            "declared_at": fields["declared_at"].isoformat(),
            "valid_until": fields["valid_until"].isoformat(),
            "declaration_id": fields["declaration_id"],
            "issuer_kid": signer.kid.hex(),
            # Revocation lists hold SHA-256 of the declaration id (or of the issuer's certificate).
            "revocation_keys": [declaration_hash] + ([signer.sha256] if signer.sha256 else []),
            "revocation": {"declaration": declaration_hash, **({"signer": signer.sha256} if signer.sha256 else {})},
        }
        identity = f"hd:{signer.kid.hex()}:{fields['subject_id']}"
        # No name, phone or ID: only the issuer's subject id, which the visit log keeps when the venue
        # allows ``subject_id`` (the issuer, asked by the authority, can reach the person).
        holder = Holder(subject_id=fields["subject_id"], subject_issuer=signer.kid.hex())
        common = dict(signed=True, identity=identity, holder=holder, facts=facts)
        skew = ctx.clock_skew_seconds
        if (fields["declared_at"] - ctx.now).total_seconds() > skew:
            return CodeCheck.reject(self.name, reasons.NOT_YET_VALID,
                                    f"declared at {facts['declared_at']}, after the clock", **common)
        if ctx.now > fields["valid_until"]:
            return CodeCheck.reject(self.name, reasons.EXPIRED, f"valid until {facts['valid_until']}", **common)
        return CodeCheck(format=self.name, valid=True, reason=reasons.OK,
                         detail=f"status {fields['status']}, issuer kid {signer.kid.hex()}", **common)
