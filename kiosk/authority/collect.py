"""Collecting the kiosks' answers to one request: verify, open, merge, de-duplicate.

:class:`Collector` is pure (``accept(topic, payload)`` per message), so the
benchmark and the tests drive it without a broker; :func:`collect` runs it on
a paho session that ``kiosk trace request`` opened before publishing, so no
answer is lost between sending the request and starting to collect.

An answer counts only when it verifies with the registry's key for the kiosk
its topic names (BRIEF contract 2) and names the same request, site and
device inside its signature and inside its sealed body.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any, Iterable

import nacl.public

from kiosk.wire import signing
from kiosk.errors import SignatureRefused
from kiosk.tracing import protocol as P
from kiosk.authority.registry import RegisteredKiosk

log = logging.getLogger(__name__)


@dataclass
class KioskAnswer:
    """What one kiosk said: answered (with its sealed body opened) or refused (with a reason)."""

    site: str
    device: str
    outcome: str
    reason: str
    ts: str
    venue: dict = field(default_factory=dict)
    in_scope: bool = False
    records: list[dict] = field(default_factory=list)


def expected_kiosks(request: dict, topic: str, rows: Iterable[RegisteredKiosk]) -> list[RegisteredKiosk]:
    """The kiosks that should answer: every active one the topic reaches, and for a case, those addressed."""
    from kiosk.authority.registry import active

    site = None if topic == P.FLEET_TOPIC else topic.split("/")[2]
    kiosks = active(list(rows), site)
    if request.get("kind") == P.CASE:
        kiosks = [k for k in kiosks if k.kid in request.get("case", {})]
    return kiosks


class Collector:
    """The answers to one request, as they arrive."""

    def __init__(self, request: dict, topic: str, rows: Iterable[RegisteredKiosk], box_key: nacl.public.PrivateKey):
        rows = list(rows)
        self.request = request
        self.request_id = request["id"]
        self.expected = {(k.site, k.device) for k in expected_kiosks(request, topic, rows)}
        # Every non-revoked key of a kiosk verifies its answers (a key rotation has two rows for a while).
        self._keys: dict[tuple[str, str], signing.KeyRing] = {}
        for r in rows:
            if not r.revoked:
                ring = self._keys.get((r.site, r.device))
                self._keys[(r.site, r.device)] = signing.KeyRing([*(ring or []),
                                                                 signing.TrustedKey(r.kid, r.name, r.public_key)])
        self.box_key = box_key
        self.answers: dict[tuple[str, str], KioskAnswer] = {}
        self.rejected: dict[str, int] = {}  # messages not believed, by reason
        self._lock = threading.Lock()

    def accept(self, topic: str, payload: bytes) -> KioskAnswer | None:
        """Take one message from the answer topic; None when it is not believed (counted in ``rejected``)."""
        try:
            answer = self._open(topic, payload)
        except SignatureRefused as exc:
            with self._lock:
                self.rejected[exc.reason] = self.rejected.get(exc.reason, 0) + 1
            log.warning("answer on %s not believed: %s", topic, exc)
            return None
        with self._lock:
            old = self.answers.get((answer.site, answer.device))
            if old is None or (old.outcome == P.REFUSED and answer.outcome == P.ANSWERED):
                self.answers[(answer.site, answer.device)] = answer
        return answer

    def _open(self, topic: str, payload: bytes) -> KioskAnswer:
        where = P.parse_answer_topic(topic)
        if where is None or where[0] != self.request_id:
            raise SignatureRefused(signing.MALFORMED, "not an answer topic of this request")
        _, site, device = where
        ring = self._keys.get((site, device))
        if ring is None:
            raise SignatureRefused(signing.UNKNOWN_KEY, f"{site}/{device} is not an active kiosk in the registry")
        body = signing.verify(payload, topic, ring, max_bytes=P.ANSWER_MAX_BYTES).payload
        if (body.get("request"), body.get("site"), body.get("device")) != (self.request_id, site, device):
            raise SignatureRefused(signing.MALFORMED, "the answer names another request or kiosk")
        outcome, reason = body.get("outcome"), body.get("reason")
        if outcome not in (P.ANSWERED, P.REFUSED) or not isinstance(reason, str):
            raise SignatureRefused(signing.MALFORMED, "no outcome")
        answer = KioskAnswer(site, device, outcome, reason[:40], str(body.get("ts", "")))
        if outcome == P.ANSWERED:
            inner = P.unseal(body.get("sealed"), self.box_key)
            if (not isinstance(inner, dict) or (inner.get("request"), inner.get("site"), inner.get("device"))
                    != (self.request_id, site, device) or not isinstance(inner.get("records"), list)):
                raise SignatureRefused(signing.MALFORMED, "the sealed answer names another request or kiosk")
            answer.venue = inner.get("venue") if isinstance(inner.get("venue"), dict) else {}
            answer.in_scope = bool(inner.get("in_scope"))
            answer.records = [r for r in inner["records"] if isinstance(r, dict)]
        return answer

    def missing(self) -> list[tuple[str, str]]:
        """Expected kiosks that have not answered (a refusal is an answer)."""
        with self._lock:
            return sorted(self.expected - set(self.answers))

    def complete(self) -> bool:
        return not self.missing()

    def f1(self) -> list[dict]:
        """The merged, de-duplicated list (see :mod:`kiosk.authority.f1`)."""
        from kiosk.authority.f1 import merge

        with self._lock:
            answers = list(self.answers.values())
        return merge(answers)


def collect(collector: Collector, client_factory, wait_s: float, on_answer=None) -> Collector:
    """Receive answers on the request's session until every expected kiosk answered or ``wait_s`` passed.

    ``client_factory()`` gives a paho client (clean_session False, the client id ``kiosk trace
    request`` used), not yet connected; the broker delivers what it queued meanwhile.
    """
    done = threading.Event()
    connected = threading.Event()
    unsubscribed = threading.Event()
    topic_filter = P.answer_filter(collector.request_id)

    def on_connect(client, userdata, flags, reason_code, properties=None):
        client.subscribe(topic_filter, qos=1)
        connected.set()

    def on_unsubscribe(client, userdata, mid, reason_codes=None, properties=None):
        unsubscribed.set()

    def on_message(client, userdata, msg):
        answer = collector.accept(msg.topic, msg.payload)
        if answer is not None and on_answer:
            on_answer(answer)
        if collector.complete():
            done.set()

    client, address = client_factory()
    client.on_connect = on_connect
    client.on_message = on_message
    client.on_unsubscribe = on_unsubscribe
    client.connect_async(address.host, address.port)
    client.loop_start()
    try:
        done.wait(wait_s)
        if collector.complete() and connected.is_set():
            # Everyone answered: the broker may forget this request's queue.
            client.unsubscribe(topic_filter)
            unsubscribed.wait(5)
    finally:
        client.disconnect()
        client.loop_stop()
    return collector


def summary(collector: Collector) -> dict[str, Any]:
    """Counts for the tracer: answered, refused by reason, missing, messages not believed."""
    answers = list(collector.answers.values())
    refused: dict[str, int] = {}
    for a in answers:
        if a.outcome == P.REFUSED:
            refused[a.reason] = refused.get(a.reason, 0) + 1
    return {"expected": len(collector.expected), "answered": sum(a.outcome == P.ANSWERED for a in answers),
            "refused": refused, "missing": [f"{s}/{d}" for s, d in collector.missing()],
            "not_believed": dict(collector.rejected)}
