"""The request's persistent broker session: receive, keep, acknowledge, and send a case's next rounds.

``kiosk trace request`` opens the session (MQTT 5, clean start off, a 14-day
expiry) subscribed to the answers before it publishes; :func:`collect` resumes it.
One writer thread keeps the messages in batches (:meth:`Investigation.accept_batch`,
one transaction each) and acknowledges each message to the broker only after the
commit, so a collect stopped or killed at any moment loses nothing: the broker
delivers again what was not kept.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from kiosk.errors import KioskOSError
from kiosk.wire import trace as P
from kiosk.authority.collect import KioskAnswer
from kiosk.authority.investigation import Investigation
from kiosk.authority.store import StoredRequest

log = logging.getLogger(__name__)

SESSION_TAKEN_OVER = 142  # MQTT 5 DISCONNECT reason: another client connected with this session's id
CONNECT_TIMEOUT_S = 30.0  # a broker not reached by then is reported, rather than waiting all of --wait


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
        if reason_code.is_failure:  # paho's VERSION2 callbacks: always a ReasonCode
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
        if reason_code.value == SESSION_TAKEN_OVER:
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
    data = request_bytes(r.body)
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


def request_bytes(body: dict) -> bytes:
    """The request as published; refused when the kiosks would refuse it for its size."""
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


def publish_request(factory, topic: str, data: bytes, rid: str, timeout_s: float = 20.0) -> None:
    """Subscribe the answers on a persistent session, then publish the request (QoS 1), then leave."""
    client, address = factory()
    subscribed, published = threading.Event(), threading.Event()
    refused: list[str] = []

    def on_connect(c, u, f, rc, p=None):
        if rc.is_failure:
            refused.append(str(rc))
            subscribed.set()
            return
        c.subscribe(P.answer_filter(rid), qos=1)

    client.on_connect = on_connect
    client.on_subscribe = lambda c, u, mid, rcs, p=None: subscribed.set()
    client.on_publish = lambda c, u, mid, rc=None, p=None: published.set()
    connect_session(client, address)
    client.loop_start()
    try:
        if not subscribed.wait(timeout_s):
            raise KioskOSError(f"cannot reach the broker at {address} within {timeout_s:.0f} s; nothing was sent")
        if refused:
            raise KioskOSError(f"the broker at {address} refused the connection ({refused[0]}); nothing was sent")
        client.publish(topic, data, qos=1, retain=False)
        if not published.wait(timeout_s):
            raise KioskOSError(f"the broker at {address} did not acknowledge the request")
    finally:
        client.disconnect()
        client.loop_stop()
