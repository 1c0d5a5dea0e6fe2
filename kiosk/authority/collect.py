"""Collecting the kiosks' answers: verify, open, keep, and (for a case) ask the other entrances.

:class:`Collector` is pure (``accept(topic, payload)`` per message), so the
benchmark and the tests drive it without a broker. :class:`Investigation` is one
request and, for a case, the contacts rounds it led to, backed by the
:class:`~kiosk.authority.store.AnswerStore`: every believed answer is committed
before the broker's copy is acknowledged, and the F1 list is always built from
everything the store holds. :func:`collect` runs it on the persistent broker
session ``kiosk trace request`` opened before publishing, so no answer is lost
between sending the request and collecting, nor when a collect is stopped.

An answer counts only when it verifies with the registry's key for the kiosk
its topic names (BRIEF contract 2) and names the same request, site and
device inside its signature and inside its sealed body.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import nacl.public

from kiosk import signing
from kiosk.errors import KioskOSError, SignatureRefused
from kiosk.tracing import protocol as P
from kiosk.authority import rounds
from kiosk.authority.registry import RegisteredKiosk, active
from kiosk.authority.store import AnswerStore, NewAnswer, StoredAnswer, StoredRequest

log = logging.getLogger(__name__)

SESSION_TAKEN_OVER = 142  # MQTT 5 DISCONNECT reason: another client connected with this session's id
CONNECT_TIMEOUT_S = 30.0  # a broker not reached by then is reported, rather than waiting all of --wait


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
            raise SignatureRefused(signing.MALFORMED, "not an answer topic of this request")
        _, site, device = where
        ring = self._keys.get((site, device))
        if ring is None:
            raise SignatureRefused(signing.UNKNOWN_KEY, f"{site}/{device} is not an active kiosk in the registry")
        verified = signing.verify(payload, topic, ring, max_bytes=P.ANSWER_MAX_BYTES)
        answer = self._answer(site, device, verified.payload)
        answer.signer, answer.topic, answer.message = verified.signer.kid, topic, bytes(payload)
        return answer

    def _answer(self, site: str, device: str, body: dict) -> KioskAnswer:
        if (body.get("request"), body.get("site"), body.get("device")) != (self.request_id, site, device):
            raise SignatureRefused(signing.MALFORMED, "the answer names another request or kiosk")
        outcome, reason = body.get("outcome"), body.get("reason")
        if outcome not in (P.ANSWERED, P.REFUSED) or not isinstance(reason, str):
            raise SignatureRefused(signing.MALFORMED, "no outcome")
        answer = KioskAnswer(site, device, outcome, reason[:40], str(body.get("ts", "")), request_id=self.request_id)
        if outcome == P.ANSWERED:
            inner = P.unseal(body.get("sealed"), self.box_key)
            if (not isinstance(inner, dict) or (inner.get("request"), inner.get("site"), inner.get("device"))
                    != (self.request_id, site, device) or not isinstance(inner.get("records"), list)):
                raise SignatureRefused(signing.MALFORMED, "the sealed answer names another request or kiosk")
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


class Investigation:
    """One request and, for a case, its contacts rounds: what the desk received, kept in the store."""

    def __init__(self, store: AnswerStore, request: StoredRequest, rows: Iterable[RegisteredKiosk], keys):
        self.store = store
        self.main = request
        self.rows = list(rows)
        self.keys = keys
        self.venue_of = rounds.venues_of(self.rows)
        self._lock = threading.RLock()
        self.collectors: dict[str, Collector] = {}
        self.rounds: list[StoredRequest] = []
        self.unreadable = 0  # stored answers that no longer open (e.g. the box key was replaced)
        self.collectors[request.id] = Collector(request.body, request.topic, self.rows, keys.box)
        self._load(request)
        if request.kind == P.CASE:
            store.forget_unpublished(request.id)  # their check-ins are asked again
            for r in store.rounds(request.id):
                self._add_round(r)

    def _load(self, request: StoredRequest) -> None:
        col = self.collectors[request.id]
        for stored in self.store.answers(request.id):
            try:
                col.restore(stored)
            except SignatureRefused:
                self.unreadable += 1

    def _add_round(self, r: StoredRequest) -> Collector:
        asked = self._asked(r)
        required = {(k.site, k.device) for k in self.rows if k.kid in asked}
        col = Collector(r.body, r.topic, self.rows, self.keys.box, required=required)
        with self._lock:
            self.collectors[r.id] = col
            self.rounds.append(r)
        self._load(r)
        return col

    def _asked(self, r: StoredRequest) -> dict[str, list[str]]:
        try:
            asked = P.unseal(r.asked, self.keys.box) if r.asked else {}
        except SignatureRefused:
            return {}
        return asked if isinstance(asked, dict) else {}

    # -- messages ----------------------------------------------------------------

    def filters(self) -> list[str]:
        """The answer topics to subscribe: the request's and every round's."""
        with self._lock:
            return [P.answer_filter(rid) for rid in self.collectors]

    def accept_batch(self, messages: list[tuple[str, bytes]]) -> list[tuple[KioskAnswer | None, str]]:
        """Verify, open and keep a batch of messages, the believed ones in one store transaction.

        Returns, per message, the answer (None when not believed) and "new", "upgraded", "known",
        "not-believed" or "unknown-request" (a round this store does not know: another machine made it,
        so the message is left to that machine). Raises when the store cannot be written: nothing of
        the batch is acknowledged then.
        """
        checked: list[KioskAnswer | None | str] = []
        for topic, payload in messages:
            where = P.parse_answer_topic(topic)
            col = self.collectors.get(where[0]) if where else None
            if where and col is None:
                checked.append("unknown-request")
            else:
                checked.append(col.check(topic, payload) if col else None)
        believed = [a for a in checked if isinstance(a, KioskAnswer)]
        states = iter(self.store.add_answers([
            NewAnswer(a.request_id, a.site, a.device, a.outcome, a.reason, a.ts, a.signer, a.topic, a.message)
            for a in believed]))
        out = []
        for a in checked:
            if not isinstance(a, KioskAnswer):
                out.append((None, a or "not-believed"))
                continue
            state = next(states)
            self.collectors[a.request_id].add(a)
            out.append((a, state))
        return out

    # -- rounds ------------------------------------------------------------------

    def case_visits(self) -> list[rounds.CaseVisit]:
        main = self.collectors[self.main.id]
        with main._lock:
            answers = list(main.answers.values())
        return rounds.case_visits(answers, self.venue_of)

    def addressed(self) -> list[RegisteredKiosk]:
        """The kiosks the case request addressed, as the registry has them now."""
        return expected_kiosks(self.main.body, self.main.topic, self.rows)

    def unasked(self) -> dict[str, list[str]]:
        """Case check-ins some other entrance of their venue has not been asked about yet."""
        if self.main.kind != P.CASE:
            return {}
        wanted = rounds.windows(self.case_visits(), self.addressed(), self.venue_of)
        with self._lock:
            asked = [self._asked(r) for r in self.rounds]
        return rounds.unasked(wanted, asked)

    def make_round(self, visits: dict[str, list[str]], ttl_s: float) -> StoredRequest:
        """Sign the next contacts round and keep it (not yet published)."""
        from kiosk.authority.requests import contacts_request

        body = contacts_request(self.keys, self.main.topic, self.main.body, self.addressed(), visits, ttl_s)
        with self._lock:
            number = 2 + len(self.rounds)
        asked = P.seal(visits, self.keys.box.public_key)  # the case's movements: sealed even in the desk's store
        self.store.add_request(body, self.main.topic, self.main.broker, self.main.client_id,
                               case_request=self.main.id, round=number, asked=asked)
        stored = self.store.request(body["id"])
        assert stored is not None
        return stored

    def add_round(self, r: StoredRequest) -> Collector:
        return self._add_round(r)

    # -- state -------------------------------------------------------------------

    def all_collectors(self) -> list[Collector]:
        with self._lock:
            return list(self.collectors.values())

    def complete(self) -> bool:
        """Every kiosk that matters answered, and no case check-in is left unasked."""
        return all(c.complete() for c in self.all_collectors()) and not self.unasked()

    def answers(self) -> list[KioskAnswer]:
        out = []
        for c in self.all_collectors():
            with c._lock:
                out += list(c.answers.values())
        return out

    def rows_raw(self) -> list[dict]:
        """The merged F1 rows from everything kept (see :func:`kiosk.authority.f1.merge`)."""
        from kiosk.authority.f1 import merge

        main = self.collectors[self.main.id]
        with main._lock:
            first = list(main.answers.values())
        case_pseudonyms = {(a.kiosk, r.get("pseudonym")) for a in first for r in a.records
                           if r.get("role") == "case" and r.get("pseudonym")}
        # A later round's kiosk may have seen the case itself come in: it is the case, not a contact.
        return merge(self.answers(), exclude=case_pseudonyms)


# -- the broker session ----------------------------------------------------------

@dataclass
class SessionResult:
    connected: bool = False
    taken_over: bool = False
    error: str = ""
    rounds_sent: list[StoredRequest] = field(default_factory=list)
    interrupted: bool = False


def collect(inv: Investigation, client_factory, wait_s: float, settle_s: float = 30.0, round_ttl_s: float = 86400.0,
            on_answer: Callable[[KioskAnswer, str], None] | None = None,
            on_round: Callable[[StoredRequest, dict], None] | None = None,
            clock: Callable[[], float] = time.monotonic) -> SessionResult:
    """Receive answers on the request's session until every kiosk that matters answered or ``wait_s`` passed.

    ``client_factory()`` gives an MQTT 5 paho client for the session ``kiosk trace request`` made
    (not yet connected; :func:`connect_session` connects it). Messages are stored in batches by one
    writer thread, each batch in one transaction, and acknowledged to the broker only after the
    commit. For a case, a contacts round goes out as soon as every kiosk answered the case request,
    or ``settle_s`` after a case check-in at a venue with another entrance was first seen unasked.
    """
    result = SessionResult()
    inbox: queue.Queue = queue.Queue()
    changed = threading.Event()
    connected = threading.Event()
    suback: dict[int, threading.Event] = {}
    sub_lock = threading.Lock()

    def subscribe(client, topic_filter: str) -> threading.Event:
        ev = threading.Event()
        with sub_lock:
            rc, mid = client.subscribe(topic_filter, qos=1)
            if mid is not None:
                suback[mid] = ev
        return ev

    def on_connect(client, userdata, flags, reason_code, properties=None):
        if getattr(reason_code, "is_failure", False):
            result.error = f"the broker refused the connection: {reason_code}"
            changed.set()
            return
        for f in inv.filters():
            subscribe(client, f)
        result.connected = True
        connected.set()
        changed.set()

    def on_subscribe(client, userdata, mid, reason_codes=None, properties=None):
        with sub_lock:
            ev = suback.pop(mid, None)
        if ev is not None:
            ev.set()

    def on_disconnect(client, userdata, flags, reason_code, properties=None):
        connected.clear()
        if getattr(reason_code, "value", None) == SESSION_TAKEN_OVER:
            result.taken_over = True
            changed.set()

    def on_message(client, userdata, msg):
        inbox.put((msg.topic, bytes(msg.payload), msg.mid, msg.qos))

    def writer(client):
        while True:
            item = inbox.get()
            if item is None:
                return
            batch = [item]
            while True:
                try:
                    nxt = inbox.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    inbox.put(None)
                    break
                batch.append(nxt)
            try:
                outcomes = inv.accept_batch([(t, p) for t, p, _, _ in batch])
            except Exception as exc:  # noqa: BLE001 - a store that cannot be written: stop, acknowledge nothing
                log.debug("answer store", exc_info=True)
                result.error = f"cannot keep answers in {inv.store.path}: {exc}"
                changed.set()
                return
            for (_, _, mid, qos), (_, state) in zip(batch, outcomes):
                if qos and state != "unknown-request":
                    client.ack(mid, qos)  # only now: the broker may forget its copy
            changed.set()
            for answer, state in outcomes:
                if answer is not None and on_answer:
                    try:
                        on_answer(answer, state)
                    except Exception:  # noqa: BLE001 - progress output (a closed terminal pipe) never stops collecting
                        log.debug("progress callback", exc_info=True)

    client, address = client_factory()
    client.manual_ack_set(True)
    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_disconnect = on_disconnect
    client.on_message = on_message
    thread = threading.Thread(target=writer, args=(client,), name="trace-collect-writer", daemon=True)
    thread.start()
    connect_session(client, address)
    client.loop_start()
    started = clock()
    deadline = started + wait_s
    first_unasked: float | None = None
    try:
        while not (result.error or result.taken_over):
            if inv.complete():
                break
            now = clock()
            if now >= deadline or (not result.connected and now - started >= CONNECT_TIMEOUT_S):
                break
            pending = inv.unasked()
            if pending and connected.is_set():
                first_unasked = now if first_unasked is None else first_unasked
                main_done = inv.collectors[inv.main.id].complete()
                if main_done or now - first_unasked >= settle_s:
                    r = _send_round(inv, client, subscribe, pending, round_ttl_s, min(20.0, deadline - now))
                    if r is None:  # the broker did not take it: asked again in a moment (or by the next collect)
                        inv.store.forget_unpublished(inv.main.id)
                        first_unasked = clock()
                        changed.wait(1.0)
                        continue
                    result.rounds_sent.append(r)
                    if on_round:
                        on_round(r, pending)
                    first_unasked = None
                    continue
            changed.wait(max(0.01, min(deadline - now, settle_s if pending else deadline - now, 1.0)))
            changed.clear()
    except KeyboardInterrupt:
        result.interrupted = True
    finally:
        inbox.put(None)
        thread.join(30)
        if connected.is_set():
            done = [c.request_id for c in inv.all_collectors() if c.all_answered()]
            if done:  # everyone answered: the broker may forget these requests' queues
                unsubscribed = threading.Event()
                client.on_unsubscribe = lambda *a, **k: unsubscribed.set()
                client.unsubscribe([P.answer_filter(rid) for rid in done])
                unsubscribed.wait(5)
        client.disconnect()
        client.loop_stop()
    return result


def _send_round(inv: Investigation, client, subscribe, pending: dict[str, list[str]], ttl_s: float,
                timeout_s: float) -> StoredRequest | None:
    """Keep, subscribe and publish the next contacts round; None when the broker did not take it (asked again later)."""
    r = inv.make_round(pending, ttl_s)
    if not subscribe(client, P.answer_filter(r.id)).wait(timeout_s):  # the answers are queued from now on
        return None
    data = _request_bytes(r.body)
    info = client.publish(r.topic, data, qos=1, retain=False)
    try:
        info.wait_for_publish(timeout_s)
    except (RuntimeError, ValueError):
        return None
    if not info.is_published():
        return None
    inv.store.mark_published(r.id)
    inv.add_round(inv.store.request(r.id) or r)
    return r


def _request_bytes(body: dict) -> bytes:
    import json

    data = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    if len(data) > P.REQUEST_MAX_BYTES:
        raise KioskOSError(f"the request is {len(data)} bytes, over the kiosks' {P.REQUEST_MAX_BYTES}: ask per --site")
    return data


SESSION_EXPIRY_S = 14 * 86400  # how long the broker queues a request's answers while nobody collects


class SessionLock:
    """One collect per request on this machine: two would take the broker session from each other.

    (Across machines the broker decides: MQTT 5 brokers that say "session taken over" stop the
    first collect; older ones let the two alternate, each keeping what it receives.)
    """

    def __init__(self, folder, request_id: str):
        self.path = Path(folder) / f".collect-{request_id}.lock"
        self._fd: int | None = None

    def __enter__(self) -> "SessionLock":
        import fcntl

        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise KioskOSError("another kiosk trace collect of this request is running on this machine: wait for "
                               "it, or stop it (Ctrl-C) first") from None
        self._fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            os.close(self._fd)  # releases the lock
            self._fd = None


def connect_session(client, address) -> None:
    """Connect (asynchronously) to the request's persistent session: MQTT 5, clean start off, a 14-day expiry."""
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = SESSION_EXPIRY_S
    client.connect_async(address.host, address.port, clean_start=False, properties=props)


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
