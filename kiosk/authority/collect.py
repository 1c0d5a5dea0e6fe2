"""Collecting the kiosks' answers to one request: verify, open, merge, de-duplicate.

:class:`Collector` is pure (``accept(topic, payload)`` per message), so the
benchmark and the tests drive it without a broker. :mod:`kiosk.authority.investigation`
keeps what it believes in the answer store; :mod:`kiosk.authority.session` runs
it on the request's persistent broker session.

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

from kiosk.wire import reasons, signing
from kiosk.errors import SignatureRefused
from kiosk.wire import trace as P
from kiosk.authority.registry import RegisteredKiosk, active
from kiosk.authority.store import StoredAnswer

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
    fields: list[str] | None = None  # the personal fields the kiosk keeps; None: it did not say
    request_id: str = ""
    signer: str = ""
    topic: str = ""
    message: bytes = b""

    @property
    def kiosk(self) -> str:
        return f"{self.site}/{self.device}"


def expected_kiosks(request: dict, topic: str, rows: Iterable[RegisteredKiosk]) -> list[RegisteredKiosk]:
    """The kiosks that should answer: every active one the topic reaches, and for a case, those addressed."""
    site = None if topic == P.FLEET_TOPIC else topic.split("/")[2]
    kiosks = active(list(rows), site)
    if request.get("kind") in (P.CASE, P.CONTACTS):
        kiosks = [k for k in kiosks if k.kid in request.get("case", {})]
    return kiosks


class Collector:
    """The answers to one request, as they arrive."""

    def __init__(self, request: dict, topic: str, rows: Iterable[RegisteredKiosk], box_key: nacl.public.PrivateKey,
                 required: Iterable[tuple[str, str]] | None = None):
        rows = list(rows)
        self.request = request
        self.request_id = request["id"]
        self.topic = topic
        self.expected = {(k.site, k.device) for k in expected_kiosks(request, topic, rows)}
        # The kiosks whose silence matters: all expected ones, or (a contacts round) those asked about something.
        self.required = set(self.expected if required is None else required)
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
        answer = self.check(topic, payload)
        if answer is not None:
            self.add(answer)
        return answer

    def check(self, topic: str, payload: bytes) -> KioskAnswer | None:
        """Verify and open one message without keeping it; None when not believed (counted)."""
        try:
            return self._open(topic, payload)
        except SignatureRefused as exc:
            with self._lock:
                self.rejected[exc.reason] = self.rejected.get(exc.reason, 0) + 1
            log.warning("answer on %s not believed: %s", topic, exc)
            return None

    def add(self, answer: KioskAnswer) -> bool:
        """Keep an answer in memory (a refusal gives way to a real answer, never the reverse); True if it changed."""
        with self._lock:
            old = self.answers.get((answer.site, answer.device))
            if old is None or (old.outcome == P.REFUSED and answer.outcome == P.ANSWERED):
                self.answers[(answer.site, answer.device)] = answer
                return True
        return False

    def restore(self, stored: StoredAnswer) -> KioskAnswer:
        """An answer from the store: its signature was checked on arrival; its sealed body is opened again."""
        body = signing.parse(stored.message, P.ANSWER_MAX_BYTES)
        answer = self._answer(stored.site, stored.device, body)
        answer.signer, answer.topic, answer.message = stored.signer, stored.topic, stored.message
        self.add(answer)
        return answer

    def _open(self, topic: str, payload: bytes) -> KioskAnswer:
        where = P.parse_answer_topic(topic)
        if where is None or where[0] != self.request_id:
            raise SignatureRefused(reasons.MALFORMED, "not an answer topic of this request")
        _, site, device = where
        ring = self._keys.get((site, device))
        if ring is None:
            raise SignatureRefused(reasons.UNKNOWN_KEY, f"{site}/{device} is not an active kiosk in the registry")
        verified = signing.verify(payload, topic, ring, max_bytes=P.ANSWER_MAX_BYTES)
        answer = self._answer(site, device, verified.payload)
        answer.signer, answer.topic, answer.message = verified.signer.kid, topic, bytes(payload)
        return answer

    def _answer(self, site: str, device: str, body: dict) -> KioskAnswer:
        if (body.get("request"), body.get("site"), body.get("device")) != (self.request_id, site, device):
            raise SignatureRefused(reasons.MALFORMED, "the answer names another request or kiosk")
        outcome, reason = body.get("outcome"), body.get("reason")
        if outcome not in (P.ANSWERED, P.REFUSED) or not isinstance(reason, str):
            raise SignatureRefused(reasons.MALFORMED, "no outcome")
        answer = KioskAnswer(site, device, outcome, reason[:40], str(body.get("ts", "")), request_id=self.request_id)
        if outcome == P.ANSWERED:
            inner = P.unseal(body.get("sealed"), self.box_key)
            if (not isinstance(inner, dict) or (inner.get("request"), inner.get("site"), inner.get("device"))
                    != (self.request_id, site, device) or not isinstance(inner.get("records"), list)):
                raise SignatureRefused(reasons.MALFORMED, "the sealed answer names another request or kiosk")
            answer.venue = inner.get("venue") if isinstance(inner.get("venue"), dict) else {}
            answer.in_scope = bool(inner.get("in_scope"))
            answer.records = [r for r in inner["records"] if isinstance(r, dict)]
            fields = inner.get("fields")
            if isinstance(fields, list):
                answer.fields = [f for f in fields if isinstance(f, str)]
        return answer

    def missing(self) -> list[tuple[str, str]]:
        """Required kiosks that have not answered (a refusal is an answer)."""
        with self._lock:
            return sorted(self.required - set(self.answers))

    def complete(self) -> bool:
        return not self.missing()

    def all_answered(self) -> bool:
        """Every addressed kiosk answered (also those a contacts round only pads): the session may forget it."""
        with self._lock:
            return self.expected <= set(self.answers)

    def f1(self) -> list[dict]:
        """The merged, de-duplicated list (see :mod:`kiosk.authority.f1`)."""
        from kiosk.authority.f1 import merge

        with self._lock:
            answers = list(self.answers.values())
        return merge(answers)


def summary(collector: Collector) -> dict[str, Any]:
    """Counts for the tracer: answered, refused by reason, missing, messages not believed."""
    answers = list(collector.answers.values())
    refused: dict[str, int] = {}
    for a in answers:
        if a.outcome == P.REFUSED:
            refused[a.reason] = refused.get(a.reason, 0) + 1
    return {"expected": len(collector.required), "answered": sum(a.outcome == P.ANSWERED for a in answers),
            "refused": refused, "missing": [f"{s}/{d}" for s, d in collector.missing()],
            "not_believed": dict(collector.rejected)}
