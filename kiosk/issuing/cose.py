"""COSE_Sign1 signing (RFC 9052), for issuers: the kiosk only verifies (:mod:`kiosk.door.verify.cose`)."""

from __future__ import annotations

from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from kiosk.door.verify.cose import ALG, ALG_IDS, ES256, KID, PS256, TAG_SIGN1

__all__ = ["ALG_IDS", "sign1"]


def sign1(payload: bytes, private_key: Any, alg: str, kid: bytes) -> bytes:
    """A tagged COSE_Sign1 over ``payload``, kid in the protected header."""
    alg_id = ALG_IDS[alg]
    protected = cbor2.dumps({ALG: alg_id, KID: kid})
    tbs = cbor2.dumps(["Signature1", protected, b"", payload])
    if alg_id == ES256:
        r, s = decode_dss_signature(private_key.sign(tbs, ec.ECDSA(hashes.SHA256())))
        sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    elif alg_id == PS256:
        sig = private_key.sign(tbs, padding.PSS(padding.MGF1(hashes.SHA256()), 32), hashes.SHA256())
    else:
        sig = private_key.sign(tbs)
    return cbor2.dumps(cbor2.CBORTag(TAG_SIGN1, [protected, {}, payload, sig]))
