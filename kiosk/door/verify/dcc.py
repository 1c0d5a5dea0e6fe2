"""EU Digital COVID Certificate (``HC1:``): Vietnam's vaccine passport uses this format.

The chain, each step one of the ``steps`` a :class:`DccReport` records::

    "HC1:" prefix -> Base45 -> zlib (bounded) -> COSE_Sign1 / CWT (bounded CBOR)
      -> signature by a trusted document signer (kid lookup, ES256 / PS256; the signer's
         certificate valid at the code's issue time)
      -> issued-at / expiry against the clock -> key-usage OIDs vs. certificate type
      -> the DCC JSON schema

``inspect`` runs every step it can and reports each; ``EuDcc.check`` turns the
first failure into a stable reason. Value sets are facts, not schema: a code
outside the trust bundle's value sets (the shipped snapshot when the bundle
has none) stays valid and is listed in ``facts["valueset_unknown"]``, as the
official verifiers do; a venue restricts products explicitly in ``[policy]``.
Issuing DCCs (tests, the demo) is a tool's job: :mod:`kiosk.issuing.dcc`.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from importlib import resources
from typing import Any

import cbor2

from kiosk.wire import reasons
from kiosk.door.verify import base45, cose
from kiosk.door.verify.base import CodeCheck, Holder, VerifyContext
from kiosk.trust.store import signer_validity_problem

PREFIX = "HC1:"
# A real DCC inflates to well under 2 KB; 64 KB is generous and caps a zlib bomb.
MAX_INFLATED = 64 * 1024
# No DCC text field is longer than 80 characters by the schema; longer ones are cut off before it.
MAX_TEXT = 256
# CWT claim keys and the hcert claim.
CLAIM_ISS, CLAIM_EXP, CLAIM_IAT, CLAIM_HCERT = 1, 4, 6, -260
TYPES = {"v": "vaccination", "t": "test", "r": "recovery"}
# The coded fields of each certificate type and the value set (schema ``valueset-uri``) they
# draw from; tests/test_door_verify_dcc.py checks this table against the shipped schema.
VALUESET_FIELDS: dict[str, dict[str, str]] = {
    "v": {"tg": "valuesets/disease-agent-targeted.json", "vp": "valuesets/vaccine-prophylaxis.json",
          "mp": "valuesets/vaccine-medicinal-product.json", "ma": "valuesets/vaccine-mah-manf.json",
          "co": "valuesets/country-2-codes.json"},
    "t": {"tg": "valuesets/disease-agent-targeted.json", "tt": "valuesets/test-type.json",
          "ma": "valuesets/test-manf.json", "tr": "valuesets/test-result.json",
          "co": "valuesets/country-2-codes.json"},
    "r": {"tg": "valuesets/disease-agent-targeted.json", "co": "valuesets/country-2-codes.json"},
}
# ISO 8601 date of birth, possibly partial (YYYY, YYYY-MM), in ASCII digits only: the schema's
# ``\d`` would also take Arabic-Indic digits, and one person must not have two identities.
_DOB = re.compile(r"(\d{4})(-\d{2}(-\d{2})?)?(T[0-9:.]+Z?)?", re.ASCII)
STEPS = ("unprefix", "b45decode", "compression", "decode", "verify", "expiration", "key_usage", "schema")


@dataclass
class DccReport:
    """What each step of the DCC chain found. A step not reached stays ``None``."""

    steps: dict[str, bool | None] = field(default_factory=lambda: dict.fromkeys(STEPS))
    reason: str = reasons.OK
    detail: str = ""
    claims: Mapping | None = None
    dcc: dict | None = None  # the hcert payload as JSON-compatible data
    signer: Any = None  # kiosk.trust.store.Signer that verified the signature
    cert_type: str | None = None  # vaccination | test | recovery
    signature: bytes = b""  # the COSE signature (its hash is one revocation key)
    alg: Any = None

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


_shipped_valuesets: dict[str, frozenset[str]] | None = None


def shipped_valuesets() -> dict[str, frozenset[str]]:
    """The EU value sets shipped in kiosk/data/dcc/valuesets, by the schema's ``valueset-uri``:
    the fallback when the trust bundle carries none."""
    global _shipped_valuesets
    if _shipped_valuesets is None:
        out = {}
        folder = resources.files("kiosk").joinpath("data/dcc/valuesets")
        for entry in folder.iterdir():
            if entry.name.endswith(".json"):
                doc = json.loads(entry.read_text(encoding="utf-8"))
                out["valuesets/" + entry.name] = frozenset(doc.get("valueSetValues", {}))
        _shipped_valuesets = out
    return _shipped_valuesets


_valuesets = shipped_valuesets  # the name older tests use


def valueset_misses(dcc: Mapping, sets: Mapping[str, frozenset[str]]) -> list[str]:
    """Paths (``v/0/ma``) of coded fields whose value is outside ``sets``. A value set absent
    from ``sets`` is not judged (the medicinal product ``mp`` is not shipped: issuers outside
    the Union register use national product names), nor an empty code (no device for a PCR)."""
    out = []
    for key, fields in VALUESET_FIELDS.items():
        entries = dcc.get(key)
        if not isinstance(entries, list):
            continue
        for i, entry in enumerate(entries[:8]):
            if not isinstance(entry, Mapping):
                continue
            for name, uri in fields.items():
                value, known = entry.get(name), sets.get(uri)
                if known is not None and isinstance(value, str) and value and value not in known:
                    out.append(f"{key}/{i}/{name}")
    return out


def schema_validator():
    """The DCC JSON schema (combined, v1.3.x, shipped in kiosk/data/dcc) as a jsonschema validator.

    The schema's ``valueset-uri`` keyword is dropped, never a failure: value sets change
    over time and come with the trust data, and official verifiers do not fail a
    certificate's schema on them (see :func:`valueset_misses` for the facts).
    """
    global _validator
    if _validator is None:
        import jsonschema  # imported on first DCC: keeps `kiosk --version` fast

        text = resources.files("kiosk").joinpath("data/dcc/DCC.combined-schema.json").read_text(encoding="utf-8")
        schema = json.loads(text)

        # Once its references are inlined, the 2020-12 schema uses only keywords that mean the
        # same in draft 7 (type, properties, required, oneOf, anyOf, allOf, items, pattern, ...),
        # and jsonschema's draft-7 validator walks it about 20% faster.
        inlined = _inline_refs(schema)
        inlined.pop("$schema", None)
        _validator = jsonschema.Draft7Validator(inlined)
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
            if k in _NOTES or k in ("$ref", "valueset-uri"):  # value sets are facts (valueset_misses)
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


def jsonable(obj: object, depth: int = 0) -> object:
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
                raise ValueError(f"a map key is {type(k).__name__}, not text")
            out[k] = jsonable(v, depth + 1)
        return out
    if isinstance(obj, (list, tuple)):
        return [jsonable(v, depth + 1) for v in obj]
    if isinstance(obj, cbor2.CBORTag):
        return jsonable(obj.value, depth + 1)
    if isinstance(obj, datetime):
        return obj.isoformat().replace("+00:00", "Z")
    if isinstance(obj, date):
        return obj.isoformat()
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    raise ValueError(f"{type(obj).__name__} has no JSON form")


def _longest_text(obj: object) -> int:
    """Length of the longest string in JSON data (already depth-bounded by jsonable)."""
    if type(obj) is str:
        return len(obj)
    if type(obj) is dict:
        return max((_longest_text(v) for v in obj.values()), default=0)
    if type(obj) is list:
        return max((_longest_text(v) for v in obj), default=0)
    return 0


def _epoch(value: object) -> datetime | None:
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
        dcc = jsonable(hcert[1])
    except (cose.CoseError, ValueError) as exc:
        r.fail("decode", reasons.MALFORMED, str(exc))
        return r
    r.steps["decode"] = True
    r.claims, r.dcc = claims, dcc
    present = [k for k in TYPES if k in dcc]
    r.cert_type = TYPES[present[0]] if len(present) == 1 else None

    r.signature = msg.signature if isinstance(msg.signature, bytes) else b""
    r.alg = msg.alg
    _verify_signature(r, msg, claims, ctx)
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
    elif isinstance(dcc.get("dob"), str) and dcc["dob"] and not _DOB.fullmatch(dcc["dob"]):
        r.fail("schema", reasons.SCHEMA, "dob: not an ISO 8601 date in ASCII digits")
    else:
        r.steps["schema"] = True
    return r


def _verify_signature(r: DccReport, msg: cose.Sign1, claims: Mapping, ctx: VerifyContext) -> None:
    kid = msg.kid
    signers = [s for s in ctx.trust.find(kid) if s.role != "declaration"] if kid is not None else []
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
        # A document signer vouches only for codes issued while its certificate was valid
        # (an expired or not-yet-valid signer's key may be in anyone's hands).
        issued = _epoch(claims.get(CLAIM_IAT)) or ctx.now
        problem = signer_validity_problem(s, issued, ctx.now + timedelta(seconds=ctx.clock_skew_seconds))
        if problem:
            last = cose.CoseError(reasons.SIGNATURE_INVALID, problem)
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

def name_key(text: str) -> str:
    """ICAO-9303-like name key: ASCII capitals, anything else becomes '<'.

    Case- and accent-insensitive (``Trần Thị Bình``, ``TRAN THI BINH`` and ``tran thi binh``
    give ``TRAN<THI<BINH``), after Unicode NFKC (full-width letters are letters)."""
    s = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text))
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
    fam, giv = name_key(str(fam)), name_key(str(giv))
    if not fam and not giv:
        return None
    return f"person:{fam}|{giv}|{dcc.get('dob', '')}"


_COUNTRY = re.compile(r"[A-Z]{2}", re.ASCII)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def revocation_hashes(report: DccReport) -> dict[str, str]:
    """The EU DCC revocation hashes of a certificate (SHA-256 hex; lists may hold the first
    128 bits): ``uvci`` of the UVCI, ``country_uvci`` of the issuing country (CWT ``iss``)
    followed by the UVCI, ``signature`` of the COSE signature (its ``r`` half for ECDSA, which
    is not malleable), and ``signer`` of the document signer's DER certificate."""
    out: dict[str, str] = {}
    entry = _entry(report.dcc or {})
    uvci = entry.get("ci")
    if isinstance(uvci, str) and uvci:
        out["uvci"] = _sha256(uvci)
        iss = (report.claims or {}).get(CLAIM_ISS)
        if isinstance(iss, str) and iss:
            out["country_uvci"] = _sha256(iss + uvci)
    if report.signature:
        sig = report.signature[:32] if report.alg == cose.ES256 and len(report.signature) == 64 else report.signature
        out["signature"] = hashlib.sha256(sig).hexdigest()
    if report.signer is not None and report.signer.sha256:
        out["signer"] = report.signer.sha256
    return out


def _entry(dcc: Mapping) -> Mapping:
    entries = [dcc.get(k) for k in TYPES if isinstance(dcc.get(k), list) and dcc.get(k)]
    return entries[0][0] if entries and isinstance(entries[0][0], Mapping) else {}


def _issuer_country(report: DccReport) -> str | None:
    """The issuing country: the trusted signer's (trust list entry, else its certificate's C,
    read once when the signer was added), else the CWT ``iss`` claim when it is a country code.
    Never the ``is`` text (the issuer's name)."""
    signer = report.signer
    if signer is not None and signer.country:
        return signer.country
    iss = (report.claims or {}).get(CLAIM_ISS)
    return iss if isinstance(iss, str) and _COUNTRY.fullmatch(iss) else None


def facts(report: DccReport, valuesets: Mapping[str, frozenset[str]] | None = None) -> dict[str, object]:
    """What the venue policy needs from a DCC (see docs/codes.md)."""
    dcc = report.dcc or {}
    f: dict[str, Any] = {"type": report.cert_type}
    claims = report.claims or {}
    for key, claim in (("issued_at", CLAIM_IAT), ("expires_at", CLAIM_EXP)):
        t = _epoch(claims.get(claim))
        f[key] = t.isoformat() if t else None
    f["issuer_country"] = _issuer_country(report)
    entry = _entry(dcc)
    if isinstance(entry.get("is"), str):
        f["issuer"] = entry["is"][:MAX_TEXT]
    for k in ("dn", "sd", "dt", "mp", "ma", "tg", "sc", "tr", "tt", "fr", "df", "du", "co"):
        if k in entry:
            f[k] = entry[k]
    f["valueset_unknown"] = valueset_misses(dcc, valuesets if valuesets is not None else shipped_valuesets())
    hashes = revocation_hashes(report)
    f["revocation"] = hashes
    # The venue's own revocation file ([policy] revoked_file) matches the UVCI or the signer.
    f["revocation_keys"] = [hashes[k] for k in ("uvci", "signer") if k in hashes]
    return f


def holder(dcc: Mapping) -> Holder:
    """The holder's names in their proper order: ``name`` family name first, as Vietnamese
    write it ("Trần Thị Bình"); the parts from ``fn``/``gn``, else their ICAO forms ``fnt``/``gnt``."""
    nam = dcc.get("nam") if isinstance(dcc.get("nam"), Mapping) else {}

    def part(plain: str, icao: str) -> str | None:
        for k in (plain, icao):
            v = nam.get(k)
            if isinstance(v, str) and v.strip():
                return v.strip() if k == plain else v.replace("<", " ").strip()
        return None

    family, given = part("fn", "fnt"), part("gn", "gnt")
    name = " ".join(x for x in (family, given) if x) or None
    dob = dcc.get("dob") if isinstance(dcc.get("dob"), str) and dcc.get("dob") else None
    return Holder(name=name, birth_date=dob, family_name=family, given_name=given)


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
                         signed=True, identity=identity(r.dcc), holder=holder(r.dcc),
                         facts=facts(r, ctx.trust.valuesets),
                         detail=r.detail if not r.valid else f"{r.cert_type} certificate, signer kid {r.signer.kid.hex()}")


__all__ = ["EuDcc", "DccReport", "inspect", "inflate", "name_key", "facts", "holder", "identity"]
