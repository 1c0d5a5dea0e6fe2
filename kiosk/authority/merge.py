"""Taking the requests and answers another machine with the same keys collected (``kiosk trace import``).

A copied store is believed no more than the broker is:

* every copied **request** is checked as a kiosk checks it (:mod:`kiosk.door.tracing.responder`): its
  signature with the authority's signing key, bound to the topic it was published on, then its shape
  (:func:`kiosk.wire.trace.parse_request`). Its freshness is not checked: a request kept in a store has
  usually expired, and its answers are no less true for that. A **round** (a contacts request) must
  also belong to the case it is filed under: a case request believed here or in the copy, the same
  topic, window, verdicts and margin (a round copies them from its case), addressed only to kiosks the
  case addressed, signed no earlier than its case, numbered 2 or more; a place or case request is
  round 1 of nothing. A request not believed is not taken, nor any answer filed under it.
* every copied **answer** is checked as the broker's message would be (its kiosk's registered key,
  the request it answers, its body opening with our box key). An answer filed under a request the
  copy does not hold is not taken either (``unknown-request``).

Nothing not believed is taken; each is counted by its stable reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from kiosk.authority.collect import Collector, expected_kiosks
from kiosk.authority.registry import RegisteredKiosk
from kiosk.authority.store import AnswerStore, NewAnswer, StoredRequest
from kiosk.errors import SignatureRefused
from kiosk.wire import reasons, signing
from kiosk.wire import trace as P

# Stable reasons an import gives besides the envelope's refusals (kiosk.wire.reasons.REFUSALS).
UNKNOWN_REQUEST = "unknown-request"  # an answer filed under a request the copy does not hold
REQUEST_NOT_BELIEVED = "request-not-believed"  # an answer filed under a request that was not believed
UNKNOWN_CASE = "unknown-case"  # a round whose case request is neither here nor believed in the copy
WRONG_CASE = "wrong-case"  # a round that does not match the case it is filed under
WRONG_ROUND = "wrong-round"  # a request whose round number or case link does not fit its kind


@dataclass
class Taken:
    """What an import brought: new requests, new answers of those seen, and what was not believed by reason
    (``not_believed``: answers; ``requests_not_believed``: requests)."""

    requests_new: int = 0
    answers_new: int = 0
    answers_seen: int = 0
    not_believed: dict[str, int] = field(default_factory=dict)
    requests_not_believed: dict[str, int] = field(default_factory=dict)


def _count(d: dict[str, int], reason: str, n: int = 1) -> None:
    if n:
        d[reason] = d.get(reason, 0) + n


def check_request(r: StoredRequest, authority: signing.KeyRing) -> P.TraceRequest:
    """A copied request checked as a kiosk checks one (signature on its topic, then shape), freshness apart;
    raises SignatureRefused with the stable reason."""
    if not isinstance(r.topic, str) or not isinstance(r.body, dict):  # a copy edited with SQL may hold anything
        raise SignatureRefused(reasons.MALFORMED, "no request topic or body")
    parts = r.topic.split("/")
    site = parts[2] if len(parts) == 5 else ""
    if r.topic != P.FLEET_TOPIC and not (site and P.NAME_RE.match(site) and r.topic == P.site_topic(site)):
        raise SignatureRefused(reasons.MALFORMED, "not a trace request topic")
    verified = signing.verify(r.body, r.topic, authority, max_bytes=P.REQUEST_MAX_BYTES)
    req = P.parse_request(verified.payload)
    if req.id != r.id or req.kind != r.kind:
        raise SignatureRefused(reasons.MALFORMED, "the stored id or kind is not the signed one")
    return req


def check_round(r: StoredRequest, req: P.TraceRequest, case: StoredRequest | None, box) -> None:
    """That a verified request sits where it claims: a round in its case, anything else on its own."""
    if r.case_request is not None and not isinstance(r.case_request, str):
        raise SignatureRefused(WRONG_ROUND, "its case link is not a request id")
    if req.kind != P.CONTACTS:
        if r.case_request is not None or r.round != 1:
            raise SignatureRefused(WRONG_ROUND, f"a {req.kind} request filed as round {r.round} of a case")
        return
    if not r.case_request or type(r.round) is not int or r.round < 2:
        raise SignatureRefused(WRONG_ROUND, "a contacts round not numbered 2 or more of a case")
    if case is None:
        raise SignatureRefused(UNKNOWN_CASE, f"case request {r.case_request} is not known")
    if case.kind != P.CASE:
        raise SignatureRefused(WRONG_CASE, f"{r.case_request} is a {case.kind} request, not a case")
    b, c = r.body, case.body
    same = (r.topic == case.topic and b.get("from") == c.get("from") and b.get("to") == c.get("to")
            and sorted(b.get("verdicts", ["accept"])) == sorted(c.get("verdicts", ["accept"]))
            and float(b.get("margin_minutes", -1)) == float(c.get("margin_minutes", P.DEFAULT_MARGIN_MINUTES))
            and set(b.get("case", {})) <= set(c.get("case", {})))
    if not same:
        raise SignatureRefused(WRONG_CASE, "its topic, window, verdicts, margin or kiosks are not its case's")
    try:
        early = signing.parse_iso(b.get("iat")) < signing.parse_iso(c.get("iat"))
    except SignatureRefused:
        early = True
    if early:
        raise SignatureRefused(WRONG_CASE, "not signed after its case")
    if r.asked:  # what the round asked, as the desk that made it noted (sealed to our own box key)
        try:
            asked = P.unseal(r.asked, box)
        except SignatureRefused:
            return  # does not open here (another box key): this machine treats it as asking nothing
        if (not isinstance(asked, dict) or any(not isinstance(v, list) or not all(isinstance(t, str) for t in v)
                                               for v in asked.values())
                or not set(asked) <= set(b.get("case", {}))):
            raise SignatureRefused(WRONG_ROUND, "what it asked names kiosks the round did not address")


def take_answers(ours: AnswerStore, theirs: AnswerStore, rows: Iterable[RegisteredKiosk], box,
                 authority: Ed25519PublicKey | signing.KeyRing) -> Taken:
    """Copy ``theirs``' believed requests and believed answers into ``ours``.

    ``box`` opens the answers; ``authority`` (the authority's signing public key, or a ring of them) verifies
    each request as a kiosk would.
    """
    rows = list(rows)
    ring = authority if isinstance(authority, signing.KeyRing) else signing.KeyRing.of(
        {"health-authority": authority})
    taken = Taken()
    copied = theirs.all_requests()
    held = {r.id for r in copied}
    believed: dict[str, StoredRequest] = {}
    # Case requests before their rounds, so a round always finds its case.
    for r in sorted(copied, key=lambda r: (r.kind == P.CONTACTS, r.round if isinstance(r.round, int) else 0)):
        answers = theirs.answers(r.id)
        taken.answers_seen += len(answers)
        try:
            req = check_request(r, ring)
            case = None
            if req.kind == P.CONTACTS and r.case_request:
                case = believed.get(r.case_request) or ours.request(r.case_request)
                if case is not None and case.id != r.case_request:
                    case = None  # ours.request matches a prefix too: only the exact id is the case
            check_round(r, req, case, box)
        except SignatureRefused as exc:
            _count(taken.requests_not_believed, exc.reason)
            _count(taken.not_believed, REQUEST_NOT_BELIEVED, len(answers))
            continue
        believed[r.id] = r
        taken.requests_new += ours.add_request(r.body, r.topic, r.broker, r.client_id, r.case_request, r.round,
                                               r.asked, r.published)
        col = Collector(r.body, r.topic, rows, box)
        batch = []
        for a in answers:
            got = col.check(a.topic, a.message)  # a copy is believed only as the broker's message would be
            if got is not None:
                batch.append(NewAnswer(got.request_id, got.site, got.device, got.outcome, got.reason, got.ts,
                                       got.signer, got.topic, got.message))
        taken.answers_new += sum(s != "known" for s in ours.add_answers(batch))
        for reason, n in col.rejected.items():
            _count(taken.not_believed, reason, n)
    # Answers filed under a request the copy does not hold: nothing to check them against.
    for rid, n in theirs.answer_counts().items():
        if rid not in held:
            taken.answers_seen += n
            _count(taken.not_believed, UNKNOWN_REQUEST, n)
    return taken

