"""Trace requests and answers on the wire (version 1; docs/tracing.md is the reference).

A **request** is a signed JSON object (:mod:`kiosk.wire.signing`, the health
authority's Ed25519 key, bound to its topic ``checkin/v1/trace/request`` or
``checkin/v1/{site}/trace/request``)::

    {"v": 1, "id": "<32 hex>", "kind": "place" | "case" | "contacts",
     "from": "<UTC>", "to": "<UTC>", "verdicts": ["accept"],
     "reply_key": "<base64url X25519 public key of the authority>",
     # place: any of
     "venues": ["HN-HK-000123", ...], "district": "Quận Hoàn Kiếm", "ward": "Phường Tràng Tiền",
     # case and contacts:
     "margin_minutes": 30, "case": {"<kiosk kid>": "<sealed box to that kiosk>", ...},
     "iat": ..., "exp": ..., "nonce": ..., "sig": {...}}

Each ``case`` entry is a libsodium sealed box to one kiosk's X25519 key (the
Curve25519 form of its registered Ed25519 device key). For a case request it holds
``{"request": id, "identities": ["vn-id:...", ...]}``: the case's identity never
crosses the broker in clear and only the addressed kiosk can read it. For a
**contacts** request (the second round of a case: who else was at the venues the
case visited, at the other entrances) it holds ``{"request": id, "visits":
["<UTC>", ...]}``, the case's check-ins at this kiosk's venue; every kiosk the case
request addressed gets an entry (empty for kiosks elsewhere) and all entries are
padded to one length, so the broker learns neither the venues nor the times.

An **answer** goes to ``checkin/v1/trace/{id}/{site}/{device}``, signed with the
kiosk's device key::

    {"v": 1, "request": id, "site": ..., "device": ..., "outcome": "answered" | "refused",
     "reason": "ok" | "<stable word>", "ts": "<UTC>", "sealed": "<base64url>"}

``sealed`` (answers only) is a sealed box to ``reply_key`` of the zlib-compressed
JSON ``{"request", "site", "device", "kind", "venue": {...}, "fields": [...], "in_scope",
"records": [...]}``; ``fields`` are the personal fields this kiosk's visit log keeps
(``[ledger] visit_log_fields``), so the authority can tell "not kept" from "the code
carried none".
"""

from __future__ import annotations

import base64
import json
import re
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Mapping

import nacl.exceptions
import nacl.public
import nacl.signing
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from kiosk.wire import reasons, signing
from kiosk.errors import SignatureRefused
from kiosk.wire.reasons import REFUSALS
# The trace topics, defined with every other topic in kiosk.wire.topics, by the names tracing uses.
from kiosk.wire.topics import FLEET_TRACE_REQUEST as FLEET_TOPIC  # noqa: F401
from kiosk.wire.topics import site_trace_request as site_topic  # noqa: F401
from kiosk.wire.topics import trace_answer as answer_topic  # noqa: F401
from kiosk.wire.topics import trace_answers as answer_filter  # noqa: F401

VERSION = 1
PLACE, CASE, CONTACTS = "place", "case", "contacts"
ANSWERED, REFUSED = "answered", "refused"

# Stable reasons besides the envelope's refusals (kiosk.wire.reasons.REFUSALS).
OK = "ok"
LOG_OFF = "log-off"  # the venue keeps no visit log: nothing to answer with
NOT_ADDRESSED = "not-addressed"  # a case request without an entry sealed to this kiosk
UNDECRYPTABLE = "undecryptable"  # the entry for this kiosk does not open with its key
UNAVAILABLE = "unavailable"  # the ledger cannot be read right now
REASONS = (OK, LOG_OFF, NOT_ADDRESSED, UNDECRYPTABLE, UNAVAILABLE, *REFUSALS)

# A case request carries one sealed entry (about 200 bytes) per addressed kiosk: 2 MiB holds ~10,000.
REQUEST_MAX_BYTES = 2 * 1024 * 1024
ANSWER_MAX_BYTES = 256 * 1024 * 1024  # mosquitto's own ceiling
MAX_IDENTITIES = 16
MAX_CASE_VISITS = 200  # the case's check-ins at one venue in one contacts request
CASE_ENTRY_MAX_CHARS = 4096
CONTACTS_ENTRY_MAX_CHARS = 16384
MAX_VENUES = 1000
DEFAULT_MARGIN_MINUTES = 30.0
MAX_MARGIN_MINUTES = 24 * 60.0
ID_RE = re.compile(r"^[0-9a-f]{32}$")
NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")  # site and device ids, as in the config


def parse_answer_topic(topic: str) -> tuple[str, str, str] | None:
    """``(request_id, site, device)`` of an answer topic, or None."""
    parts = topic.split("/")
    if len(parts) != 6 or parts[:3] != ["checkin", "v1", "trace"]:
        return None
    _, _, _, rid, site, device = parts
    if not (ID_RE.match(rid) and NAME_RE.match(site) and NAME_RE.match(device)):
        return None
    return rid, site, device


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64(text: Any, what: str) -> bytes:
    if not isinstance(text, str):
        raise SignatureRefused(reasons.MALFORMED, f"{what} is not base64 text")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError):
        raise SignatureRefused(reasons.MALFORMED, f"{what} is not base64 text") from None


# -- keys: the X25519 side of Ed25519 device keys ---------------------------------

def box_public_key(device_public: Ed25519PublicKey) -> nacl.public.PublicKey:
    """A kiosk's encryption key, derived from its registered Ed25519 device key (libsodium's conversion)."""
    raw = device_public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return nacl.signing.VerifyKey(raw).to_curve25519_public_key()


def box_private_key(device_key: Ed25519PrivateKey) -> nacl.public.PrivateKey:
    """The kiosk's side of :func:`box_public_key`."""
    seed = device_key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                    serialization.NoEncryption())
    return nacl.signing.SigningKey(seed).to_curve25519_private_key()


def seal(obj: Any, to: nacl.public.PublicKey, pad_to: int = 0) -> str:
    """JSON, compressed, sealed (anonymous sender) to ``to``; base64url text.

    ``pad_to``: zero bytes are added after the compressed stream up to that many bytes, so
    entries of one request all have the same length (:func:`unseal` ignores them).
    """
    data = zlib.compress(json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode(), 6)
    if pad_to > len(data):
        data += bytes(pad_to - len(data))
    return b64(nacl.public.SealedBox(to).encrypt(data))


def sealed_size(obj: Any) -> int:
    """The compressed length :func:`seal` would pad from (to choose one ``pad_to`` for many entries)."""
    return len(zlib.compress(json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode(), 6))


def unseal(text: Any, key: nacl.public.PrivateKey, max_bytes: int = ANSWER_MAX_BYTES) -> Any:
    """The object :func:`seal` sealed; raises SignatureRefused(UNDECRYPTABLE) when it does not open."""
    box = unb64(text, "sealed")
    try:
        data = nacl.public.SealedBox(key).decrypt(box)
        d = zlib.decompressobj()
        plain = d.decompress(data, max_bytes)
        if d.unconsumed_tail or not d.eof or d.unused_data.strip(b"\0"):
            raise ValueError("too large, cut short, or trailing bytes other than padding")
        return json.loads(plain)
    except (nacl.exceptions.CryptoError, zlib.error, ValueError, RecursionError):
        raise SignatureRefused(UNDECRYPTABLE) from None


# -- requests ---------------------------------------------------------------------

@dataclass(frozen=True)
class TraceRequest:
    """A request whose shape checked out (its signature is checked separately)."""

    id: str
    kind: str
    start: datetime
    end: datetime
    verdicts: tuple[str, ...]
    reply_key: nacl.public.PublicKey
    venues: tuple[str, ...] = ()
    district: str = ""
    ward: str = ""
    margin: timedelta = timedelta(minutes=DEFAULT_MARGIN_MINUTES)
    case: Mapping[str, str] | None = None


def _bad(detail: str) -> SignatureRefused:
    return SignatureRefused(reasons.MALFORMED, detail)


def _text(payload: Mapping, key: str, limit: int = 200) -> str:
    v = payload.get(key, "")
    if not isinstance(v, str) or len(v) > limit:
        raise _bad(f"{key} is not text")
    return v.strip()


def parse_request(payload: Mapping[str, Any]) -> TraceRequest:
    """Check a request's shape; raises SignatureRefused(MALFORMED) naming the member."""
    if payload.get("v") != VERSION:
        raise _bad("not a version-1 trace request")
    rid = payload.get("id")
    if not isinstance(rid, str) or not ID_RE.match(rid):
        raise _bad("id is not 32 hex digits")
    kind = payload.get("kind")
    if kind not in (PLACE, CASE, CONTACTS):
        raise _bad("kind is not place, case or contacts")
    if payload.get("exp") is None:
        raise _bad("no expiry")
    start, end = signing.parse_iso(payload.get("from")), signing.parse_iso(payload.get("to"))
    if end <= start:
        raise _bad("to is not after from")
    verdicts = payload.get("verdicts", ["accept"])
    if (not isinstance(verdicts, list) or not verdicts
            or any(v not in ("accept", "reject") for v in verdicts)):
        raise _bad("verdicts must be a list of accept, reject")
    raw = unb64(payload.get("reply_key"), "reply_key")
    if len(raw) != 32:
        raise _bad("reply_key is not an X25519 public key")
    common = dict(id=rid, kind=kind, start=start, end=end, verdicts=tuple(dict.fromkeys(verdicts)),
                  reply_key=nacl.public.PublicKey(raw))
    if kind == PLACE:
        venues = payload.get("venues", [])
        if (not isinstance(venues, list) or len(venues) > MAX_VENUES
                or any(not isinstance(v, str) or not v or len(v) > 100 for v in venues)):
            raise _bad("venues must be a list of venue ids")
        district, ward = _text(payload, "district"), _text(payload, "ward")
        if not venues and not district and not ward:
            raise _bad("a place request names venues, a district or a ward")
        return TraceRequest(**common, venues=tuple(venues), district=district, ward=ward)
    margin = payload.get("margin_minutes", DEFAULT_MARGIN_MINUTES)
    if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not 0 <= margin <= MAX_MARGIN_MINUTES:
        raise _bad(f"margin_minutes must be a number from 0 to {MAX_MARGIN_MINUTES:.0f}")
    case = payload.get("case")
    limit = CASE_ENTRY_MAX_CHARS if kind == CASE else CONTACTS_ENTRY_MAX_CHARS
    if (not isinstance(case, dict) or not case
            or any(not isinstance(k, str) or not isinstance(v, str) or len(v) > limit for k, v in case.items())):
        raise _bad("case must map kiosk key ids to sealed entries")
    return TraceRequest(**common, margin=timedelta(minutes=float(margin)), case=case)


def parse_case_entry(entry: Any, request_id: str) -> list[str]:
    """The identities in an opened case entry; raises SignatureRefused(MALFORMED)."""
    if not isinstance(entry, dict) or entry.get("request") != request_id:
        raise _bad("the case entry belongs to another request")
    ids = entry.get("identities")
    if (not isinstance(ids, list) or not 1 <= len(ids) <= MAX_IDENTITIES
            or any(not isinstance(i, str) or not 3 <= len(i) <= 300 for i in ids)):
        raise _bad("the case entry holds no identities")
    return ids


def parse_contacts_entry(entry: Any, request_id: str) -> list[datetime]:
    """The case's check-in times in an opened contacts entry (none for a kiosk elsewhere); raises MALFORMED."""
    if not isinstance(entry, dict) or entry.get("request") != request_id:
        raise _bad("the contacts entry belongs to another request")
    visits = entry.get("visits")
    if not isinstance(visits, list) or len(visits) > MAX_CASE_VISITS:
        raise _bad(f"the contacts entry holds no list of at most {MAX_CASE_VISITS} check-in times")
    return [signing.parse_iso(v) for v in visits]


def claimed_id(payload: bytes | str) -> str | None:
    """The request id a message claims, before anything is believed: only to address a refusal."""
    try:
        obj = signing.parse(payload, REQUEST_MAX_BYTES)
    except SignatureRefused:
        return None
    rid = obj.get("id")
    return rid if isinstance(rid, str) and ID_RE.match(rid) else None
