"""COSE_Sign1 (RFC 9052) for the EU DCC and the kiosk's own health declarations.

Three things live here: a bounded CBOR reader (a visitor's code decides how
deep and how long the structures are, so we walk the bytes once, without
recursion, before cbor2 builds any objects), the COSE_Sign1 structure with
the kid rule (the protected header wins over the unprotected one), and
verifying with ``cryptography`` for ES256, PS256 and EdDSA (Ed25519). Signing is
an issuer's job: :mod:`kiosk.issuing.cose`.
"""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Mapping


import cbor2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from kiosk.wire import reasons

#: The public keys a COSE signature can be checked with (ES256, PS256, EdDSA).
PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey

# Header labels and algorithm ids (IANA COSE registries).
ALG, KID = 1, 4
ES256, PS256, EDDSA = -7, -37, -8
ALG_NAMES = {ES256: "ES256", PS256: "PS256", EDDSA: "EdDSA"}
ALG_IDS = {"ES256": ES256, "PS256": PS256, "EdDSA": EDDSA, "Ed25519": EDDSA}
TAG_SIGN1, TAG_CWT = 18, 61

# Real DCCs nest 4 levels (CWT map -> hcert -> DCC -> v array -> entry); 16 leaves room.
MAX_DEPTH = 16
MAX_ITEMS = 10_000
# CBOR bignums (tags 2 and 3) hold integers of any size; no COSE, CWT or DCC field needs more
# than the 64 bits a plain CBOR integer carries, so a bignum is refused before cbor2 builds it:
# one reason ("malformed") whatever its size, and no huge int ever reaches str(), json or the schema.
_BIGNUM_TAGS = (2, 3)


class CoseError(ValueError):
    """A COSE/CBOR problem, with the stable reason code it maps to."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def check_cbor(data: bytes, max_depth: int = MAX_DEPTH, max_items: int = MAX_ITEMS) -> None:
    """Walk one CBOR data item without building it; raise :class:`CoseError` (malformed)
    when it is truncated, has trailing bytes, nests deeper than ``max_depth`` or has more
    than ``max_items`` items, or uses value sharing. Lengths are checked against the bytes
    actually present, so a claimed 4-GB array costs nothing."""
    n = len(data)
    pos = 0
    items = 0
    # Each frame: remaining items at that level, or -1 for an indefinite-length container.
    stack = [1]
    while stack:
        if stack[-1] == 0:
            stack.pop()
            continue
        if pos >= n:
            raise CoseError(reasons.MALFORMED, "CBOR truncated")
        ib = data[pos]
        pos += 1
        major, info = ib >> 5, ib & 31
        if ib == 0xFF:  # break
            if stack[-1] != -1:
                raise CoseError(reasons.MALFORMED, "CBOR break outside an indefinite container")
            stack.pop()
            continue
        items += 1
        if items > max_items:
            raise CoseError(reasons.MALFORMED, "CBOR has too many items")
        if stack[-1] > 0:
            stack[-1] -= 1
        if info < 24:
            arg = info
        elif info <= 27:
            size = 1 << (info - 24)
            if pos + size > n:
                raise CoseError(reasons.MALFORMED, "CBOR truncated")
            arg = int.from_bytes(data[pos:pos + size], "big")
            pos += size
        elif info == 31 and major in (2, 3, 4, 5):
            arg = -1
        else:
            raise CoseError(reasons.MALFORMED, f"CBOR reserved additional info {info}")
        if major in (2, 3):
            if arg >= 0:
                if pos + arg > n:
                    raise CoseError(reasons.MALFORMED, "CBOR string runs past the end")
                pos += arg
                continue
            count = -1
        elif major in (4, 5):
            count = arg if arg < 0 else arg * (2 if major == 5 else 1)
            if count > n - pos:  # every item takes at least one byte
                raise CoseError(reasons.MALFORMED, "CBOR container longer than the data")
        elif major == 6:
            if arg in (28, 29):
                # Value sharing lets a few bytes name one structure many times over: a
                # bomb for anything that walks the result, and no COSE/CWT/DCC uses it.
                raise CoseError(reasons.MALFORMED, "CBOR value sharing (tags 28/29) is not allowed")
            if arg in _BIGNUM_TAGS:
                raise CoseError(reasons.MALFORMED, "CBOR integer larger than 64 bits")
            count = 1
        else:
            continue  # integers, simple values, floats: argument already skipped
        if count:
            if len(stack) >= max_depth:
                raise CoseError(reasons.MALFORMED, f"CBOR nested deeper than {max_depth}")
            stack.append(count)
    if pos != n:
        raise CoseError(reasons.MALFORMED, "CBOR has trailing bytes")


def loads(data: bytes, max_depth: int = MAX_DEPTH) -> object:
    """Decode one CBOR item after :func:`check_cbor`; CoseError (malformed) on any problem."""
    check_cbor(data, max_depth=max_depth)
    try:
        return cbor2.loads(data)
    except Exception as exc:  # cbor2 raises several types (CBORDecodeError, ValueError, TypeError, ...)
        raise CoseError(reasons.MALFORMED, f"CBOR: {exc}") from None


@dataclass(frozen=True)
class Sign1:
    """A parsed COSE_Sign1 message."""

    protected_bytes: bytes
    protected: Mapping
    unprotected: Mapping
    payload: bytes
    signature: bytes

    @property
    def alg(self) -> object:
        return self.protected.get(ALG, self.unprotected.get(ALG))

    @property
    def kid(self) -> bytes | None:
        """The key id: the protected header's wins; the unprotected one counts only when the
        protected header has none (it is not covered by the signature)."""
        kid = self.protected.get(KID)
        if kid is None:
            kid = self.unprotected.get(KID)
        return kid if isinstance(kid, bytes) else None

    def to_be_signed(self) -> bytes:
        return cbor2.dumps(["Signature1", self.protected_bytes, b"", self.payload])


def parse_sign1(data: bytes) -> Sign1:
    """Parse COSE_Sign1 bytes (tag 18, optionally inside the CWT tag 61, or untagged)."""
    obj = loads(data)
    if isinstance(obj, cbor2.CBORTag) and obj.tag == TAG_CWT:
        obj = obj.value
    if isinstance(obj, cbor2.CBORTag):
        if obj.tag != TAG_SIGN1:
            raise CoseError(reasons.MALFORMED, f"not a COSE_Sign1 message (tag {obj.tag})")
        obj = obj.value
    if not isinstance(obj, (list, tuple)) or len(obj) != 4:
        raise CoseError(reasons.MALFORMED, "COSE_Sign1 must be an array of 4")
    prot_b, unprot, payload, sig = obj
    if not isinstance(prot_b, bytes) or not isinstance(unprot, Mapping) or not isinstance(sig, bytes):
        raise CoseError(reasons.MALFORMED, "COSE_Sign1 fields have the wrong types")
    if not isinstance(payload, bytes):
        raise CoseError(reasons.MALFORMED, "COSE_Sign1 payload is not a byte string")
    prot = loads(prot_b) if prot_b else {}
    if not isinstance(prot, Mapping):
        raise CoseError(reasons.MALFORMED, "COSE protected header is not a map")
    return Sign1(prot_b, prot, unprot, payload, sig)


def _key_fits(alg: object, key: PublicKey) -> bool:
    if alg == ES256:
        return isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1"
    if alg == PS256:
        return isinstance(key, rsa.RSAPublicKey)
    if alg == EDDSA:
        return isinstance(key, ed25519.Ed25519PublicKey)
    return False


def verify(msg: Sign1, public_key: PublicKey) -> None:
    """Check ``msg``'s signature with ``public_key``; CoseError (signature-invalid) when it
    fails, the algorithm is unsupported, or the algorithm does not fit the key type."""
    alg = msg.alg
    if alg not in ALG_NAMES:
        raise CoseError(reasons.SIGNATURE_INVALID, f"unsupported algorithm {alg!r}")
    if not _key_fits(alg, public_key):
        raise CoseError(reasons.SIGNATURE_INVALID, f"{ALG_NAMES[alg]} does not fit the signer's {type(public_key).__name__}")
    tbs = msg.to_be_signed()
    sig = msg.signature
    try:
        if alg == ES256:
            if len(sig) != 64:
                raise CoseError(reasons.SIGNATURE_INVALID, f"ES256 signature must be 64 bytes, got {len(sig)}")
            der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
            public_key.verify(der, tbs, ec.ECDSA(hashes.SHA256()))
        elif alg == PS256:
            if len(sig) != public_key.key_size // 8:
                raise CoseError(reasons.SIGNATURE_INVALID, "PS256 signature length does not match the key")
            public_key.verify(sig, tbs, padding.PSS(padding.MGF1(hashes.SHA256()), 32), hashes.SHA256())
        else:
            if len(sig) != 64:
                raise CoseError(reasons.SIGNATURE_INVALID, f"EdDSA signature must be 64 bytes, got {len(sig)}")
            public_key.verify(sig, tbs)
    except InvalidSignature:
        raise CoseError(reasons.SIGNATURE_INVALID, "signature does not verify") from None
