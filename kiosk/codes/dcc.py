"""EU Digital COVID Certificate (``HC1:``): Vietnam's vaccine passport uses this format.

The chain, each step one of the ``steps`` a :class:`DccReport` records::

    "HC1:" prefix -> Base45 -> zlib (bounded) -> COSE_Sign1 / CWT (bounded CBOR)
      -> signature by a trusted document signer (kid lookup, ES256 / PS256)
      -> issued-at / expiry against the clock -> key-usage OIDs vs. certificate type
      -> the DCC JSON schema

``inspect`` runs every step it can and reports each; ``EuDcc.check`` turns the
first failure into a stable reason. ``issue_dcc`` makes signed certificates
for tests and the demo (with a demo signer, never a real one).
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from importlib import resources
from typing import Any

import cbor2

from kiosk import reasons
from kiosk.codes import base45, cose
from kiosk.codes.base import CodeCheck, Holder, VerifyContext

PREFIX = "HC1:"
# A real DCC inflates to well under 2 KB; 64 KB is generous and caps a zlib bomb.
MAX_INFLATED = 64 * 1024
# No DCC text field is longer than 80 characters by the schema; longer ones are cut off before it.
MAX_TEXT = 256
# CWT claim keys and the hcert claim.
CLAIM_ISS, CLAIM_EXP, CLAIM_IAT, CLAIM_HCERT = 1, 4, 6, -260
TYPES = {"v": "vaccination", "t": "test", "r": "recovery"}
STEPS = ("unprefix", "b45decode", "compression", "decode", "verify", "expiration", "key_usage", "schema")


@dataclass
class DccReport:
    """What each step of the DCC chain found. A step not reached stays ``None``."""

    steps: dict[str, bool | None] = field(default_factory=lambda: dict.fromkeys(STEPS))
    reason: str = reasons.OK
    detail: str = ""
    claims: Mapping | None = None
    dcc: dict | None = None  # the hcert payload as JSON-compatible data
    signer: Any = None  # kiosk.trust.Signer that verified the signature
    cert_type: str | None = None  # vaccination | test | recovery

    @property
    def valid(self) -> bool:
        return all(v is True for v in self.steps.values())

    def fail(self, step: str, reason: str, detail: str) -> None:
        self.steps[step] = False
        if self.reason == reasons.OK:  # the first failure names the reason
            self.reason, self.detail = reason, detail


def inflate(data: bytes, limit: int = MAX_INFLATED) -> bytes:
    """zlib-decompress ``data`` to at most ``limit`` bytes; ValueError for a bomb or a broken stream."""
    d = zlib.decompressobj()
    try:
        out = d.decompress(data, limit)
    except zlib.error as exc:
        raise ValueError(f"zlib: {exc}") from None
    if d.unconsumed_tail:
        raise ValueError(f"decompresses to more than {limit} bytes")
    if not d.eof:
        raise ValueError("zlib stream is truncated")
    return out


_validator = None


def _valuesets() -> dict[str, frozenset[str]]:
    """The EU value sets shipped in kiosk/data/dcc/valuesets, by the schema's ``valueset-uri``."""
    out = {}
    folder = resources.files("kiosk").joinpath("data/dcc/valuesets")
    for entry in folder.iterdir():
        if entry.name.endswith(".json"):
            doc = json.loads(entry.read_text(encoding="utf-8"))
            out["valuesets/" + entry.name] = frozenset(doc.get("valueSetValues", {}))
    return out


def schema_validator():
    """The DCC JSON schema (combined, v1.3.x, shipped in kiosk/data/dcc) as a jsonschema validator.

    The schema marks coded fields with ``valueset-uri``; that keyword is added here so
    an unknown vaccine, manufacturer, test, result or country code fails the schema
    as the EU reference checks expect. A value set the kiosk does not ship is not checked:
    the medicinal product (``mp``) is not, since issuers outside the Union register use
    national product names. An empty code (e.g. no device for a PCR test) is not checked.
    """
    global _validator
    if _validator is None:
        import jsonschema  # imported on first DCC: keeps `kiosk --version` fast

        text = resources.files("kiosk").joinpath("data/dcc/DCC.combined-schema.json").read_text(encoding="utf-8")
        schema = json.loads(text)
        sets = _valuesets()

        def valueset(validator, uri, instance, _schema):
            known = sets.get(uri)
            if known is not None and isinstance(instance, str) and instance and instance not in known:
                yield jsonschema.ValidationError(f"{instance!r} is not in the value set {uri}")

        # Once its references are inlined, the 2020-12 schema uses only keywords that mean the
        # same in draft 7 (type, properties, required, oneOf, anyOf, allOf, items, pattern, ...),
        # and jsonschema's draft-7 validator walks it about 20% faster.
        inlined = _inline_refs(schema)
        inlined.pop("$schema", None)
        cls = jsonschema.validators.extend(jsonschema.Draft7Validator, {"valueset-uri": valueset})
        _validator = cls(inlined)
    return _validator


_NOTES = ("title", "description", "$comment", "examples")


def _inline_refs(schema: dict) -> dict:
    """The schema with its local ``#/$defs/...`` references inlined and annotations dropped.

    Same meaning, half the validation time: jsonschema resolves a ``$ref`` on every
    use, and the DCC schema has no recursive definitions, so inlining is finite.
    """
    defs = schema.get("$defs", {})

    def walk(node, depth=0):
        if depth > 32:
            raise ValueError("DCC schema nests too deep to inline")
        if isinstance(node, list):
            return [walk(x, depth + 1) for x in node]
        if not isinstance(node, dict):
            return node
        out = {}
        for k, v in node.items():
            if k in _NOTES or k == "$ref":
                continue
            if k in ("properties", "patternProperties"):  # keys here are property names, not keywords
                out[k] = {name: walk(sub, depth + 1) for name, sub in v.items()}
            else:
                out[k] = walk(v, depth + 1)
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            target = walk(defs[ref[len("#/$defs/"):]], depth + 1)
            return {**out, "allOf": [target]} if out else target
        if ref is not None:
            out["$ref"] = ref
        return out

    return {k: v for k, v in walk(schema).items() if k not in ("$defs", "$id")}


def _jsonable(obj: Any, depth: int = 0) -> Any:
    """CBOR-decoded data as JSON data (the schema speaks JSON); ValueError when impossible."""
    if depth > cose.MAX_DEPTH:
        raise ValueError("too deep")
    t = type(obj)
    if t is str or t is int:  # the common leaves first: this runs for every value of every DCC
        return obj
    if isinstance(obj, Mapping):
        out = {}
        for k, v in obj.items():
            if not isinstance(k, str):
                raise ValueError(f"map key {k!r} is not text")
            out[k] = _jsonable(v, depth + 1)
        return out
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v, depth + 1) for v in obj]
    if isinstance(obj, cbor2.CBORTag):
        return _jsonable(obj.value, depth + 1)
    if isinstance(obj, datetime):
        return obj.isoformat().replace("+00:00", "Z")
    if isinstance(obj, date):
        return obj.isoformat()
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    raise ValueError(f"{type(obj).__name__} has no JSON form")


def _longest_text(obj: Any) -> int:
    """Length of the longest string in JSON data (already depth-bounded by _jsonable)."""
    if type(obj) is str:
        return len(obj)
    if type(obj) is dict:
        return max((_longest_text(v) for v in obj.values()), default=0)
    if type(obj) is list:
        return max((_longest_text(v) for v in obj), default=0)
    return 0


def _epoch(value: Any) -> datetime | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        return datetime.fromtimestamp(value, timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None


def inspect(payload: str, ctx: VerifyContext) -> DccReport:
    """Run every step of the DCC chain on ``payload``; never raises for bad input."""
    r = DccReport()
    if not payload.startswith(PREFIX):
        r.fail("unprefix", reasons.MALFORMED, "no HC1: prefix")
        return r
    r.steps["unprefix"] = True
    try:
        raw = base45.decode(payload[len(PREFIX):])
    except base45.Base45Error as exc:
        r.fail("b45decode", reasons.MALFORMED, f"Base45: {exc}")
        return r
    r.steps["b45decode"] = True
    try:
        cose_bytes = inflate(raw)
    except ValueError as exc:
        r.fail("compression", reasons.MALFORMED, str(exc))
        return r
    r.steps["compression"] = True
    try:
        msg = cose.parse_sign1(cose_bytes)
        claims = cose.loads(msg.payload)
        if not isinstance(claims, Mapping):
            raise cose.CoseError(reasons.MALFORMED, "CWT claims are not a map")
        hcert = claims.get(CLAIM_HCERT)
        if not isinstance(hcert, Mapping) or not isinstance(hcert.get(1), Mapping):
            raise cose.CoseError(reasons.MALFORMED, "CWT has no hcert (-260 -> 1) map")
        dcc = _jsonable(hcert[1])
    except (cose.CoseError, ValueError) as exc:
        r.fail("decode", reasons.MALFORMED, str(exc))
        return r
    r.steps["decode"] = True
    r.claims, r.dcc = claims, dcc
    present = [k for k in TYPES if k in dcc]
    r.cert_type = TYPES[present[0]] if len(present) == 1 else None

    _verify_signature(r, msg, ctx)
    _check_times(r, claims, ctx)
    if r.signer is not None:
        allowed = r.signer.dcc_types
        if allowed is None or (r.cert_type is not None and r.cert_type in allowed):
            r.steps["key_usage"] = True
        else:
            r.fail("key_usage", reasons.KEY_USAGE,
                   f"signer may sign {', '.join(sorted(allowed))}, not {r.cert_type or 'this certificate'}")
    # Without a verified signer there is no certificate to judge: key_usage stays None (not reached).
    validator = schema_validator()
    if _longest_text(dcc) > MAX_TEXT:
        # Checked before the schema: its version pattern backtracks cubically on long digit runs.
        r.fail("schema", reasons.SCHEMA, f"a text field is longer than {MAX_TEXT} characters")
    elif not validator.is_valid(dcc):  # the common case stops here; the message is built only for a reject
        from jsonschema.exceptions import best_match

        e = best_match(validator.iter_errors(dcc))
        where = "/".join(str(p) for p in e.absolute_path) or "(root)"
        # Name the rule, never the value: the value may be the holder's name or birth date.
        rule = e.validator_value if isinstance(e.validator_value, (str, int)) else ""
        r.fail("schema", reasons.SCHEMA, f"{where}: fails {e.validator} {rule}".rstrip()[:200])
    else:
        r.steps["schema"] = True
    return r


def _verify_signature(r: DccReport, msg: cose.Sign1, ctx: VerifyContext) -> None:
    kid = msg.kid
    signers = ctx.trust.find(kid) if kid is not None else []
    if not signers:
        r.fail("verify", reasons.UNKNOWN_KEY, f"no trusted signer with kid {kid.hex() if kid else '(none)'}")
        return
    last = None
    for s in signers:
        try:
            cose.verify(msg, s.public_key)
        except cose.CoseError as exc:
            last = exc
            continue
        r.signer = s
        r.steps["verify"] = True
        return
    r.fail("verify", last.reason if last else reasons.SIGNATURE_INVALID, str(last))


def _check_times(r: DccReport, claims: Mapping, ctx: VerifyContext) -> None:
    iat, exp = _epoch(claims.get(CLAIM_IAT)), _epoch(claims.get(CLAIM_EXP))
    if exp is None:
        r.fail("expiration", reasons.MALFORMED, "CWT has no valid expiry (exp)")
        return
    skew = timedelta(seconds=ctx.clock_skew_seconds)
    if iat is not None and ctx.now + skew < iat:
        r.fail("expiration", reasons.NOT_YET_VALID, f"issued at {iat.isoformat()}, after the clock")
    elif ctx.now > exp:
        r.fail("expiration", reasons.EXPIRED, f"expired {exp.isoformat()}")
    else:
        r.steps["expiration"] = True


# -- facts and identity -------------------------------------------------------------------------

def _norm_name(text: str) -> str:
    """ICAO-9303-like name key: ASCII capitals, anything else becomes '<'."""
    s = unicodedata.normalize("NFKD", text)
    s = "".join(c for c in s if not unicodedata.combining(c)).upper().replace("Đ", "D")
    out = "".join(c if "A" <= c <= "Z" else "<" for c in s)
    while "<<" in out:
        out = out.replace("<<", "<")
    return out.strip("<")


def identity(dcc: Mapping) -> str | None:
    """``person:<FNT>|<GNT>|<dob>``: the same person across their vaccination, test and recovery DCCs."""
    nam = dcc.get("nam") if isinstance(dcc.get("nam"), Mapping) else {}
    fam = nam.get("fnt") or nam.get("fn") or ""
    giv = nam.get("gnt") or nam.get("gn") or ""
    fam, giv = _norm_name(str(fam)), _norm_name(str(giv))
    if not fam and not giv:
        return None
    return f"person:{fam}|{giv}|{dcc.get('dob', '')}"


def facts(report: DccReport) -> dict[str, Any]:
    """What the venue policy needs from a DCC (see docs/codes.md)."""
    dcc = report.dcc or {}
    f: dict[str, Any] = {"type": report.cert_type}
    claims = report.claims or {}
    for key, claim in (("issued_at", CLAIM_IAT), ("expires_at", CLAIM_EXP)):
        t = _epoch(claims.get(claim))
        f[key] = t.isoformat() if t else None
    f["issuer_country"] = claims.get(CLAIM_ISS) if isinstance(claims.get(CLAIM_ISS), str) else None
    entries = [dcc.get(k) for k in TYPES if isinstance(dcc.get(k), list) and dcc.get(k)]
    entry = entries[0][0] if entries and isinstance(entries[0][0], Mapping) else {}
    for k in ("dn", "sd", "dt", "mp", "tg", "sc", "tr", "tt", "fr", "df", "du", "co"):
        if k in entry:
            f[k] = entry[k]
    revocation = []
    if isinstance(entry.get("ci"), str):
        # The EU revocation lists hash the UVCI the same way: SHA-256 of its UTF-8 text.
        revocation.append(hashlib.sha256(entry["ci"].encode()).hexdigest())
    if report.signer is not None and report.signer.sha256:
        revocation.append(report.signer.sha256)
    f["revocation_keys"] = revocation
    return f


def holder(dcc: Mapping) -> Holder:
    nam = dcc.get("nam") if isinstance(dcc.get("nam"), Mapping) else {}
    name = " ".join(str(x) for x in (nam.get("gn"), nam.get("fn")) if x) or None
    dob = dcc.get("dob") if isinstance(dcc.get("dob"), str) and dcc.get("dob") else None
    return Holder(name=name, birth_date=dob)


class EuDcc:
    """The ``eu-dcc`` plug-in."""

    name = "eu-dcc"

    def detects(self, payload: str) -> bool:
        return payload.startswith(PREFIX)

    def check(self, payload: str, ctx: VerifyContext) -> CodeCheck:
        r = inspect(payload, ctx)
        if r.dcc is None:
            return CodeCheck.reject(self.name, r.reason, r.detail, signed=True)
        return CodeCheck(format=self.name, valid=r.valid, reason=r.reason if not r.valid else reasons.OK,
                         signed=True, identity=identity(r.dcc), holder=holder(r.dcc), facts=facts(r),
                         detail=r.detail if not r.valid else f"{r.cert_type} certificate, signer kid {r.signer.kid.hex()}")


# Issuing lives in its own module (tests and the demo only); re-exported for them.
from kiosk.codes.dcc_issue import issue_dcc, recovery, test_result, vaccination  # noqa: E402

__all__ = ["EuDcc", "DccReport", "inspect", "inflate", "issue_dcc", "vaccination", "test_result", "recovery"]
