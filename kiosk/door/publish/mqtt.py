"""MQTT telemetry (paho-mqtt 2.x): drains the ledger's outbox with QoS 1 and keeps retained state fresh.

Threads: paho's network thread (``loop_start``) only notes events (connected,
PUBACK, command) and wakes the publisher thread, which does every publish and
every ledger call. Outbox rows are handed to paho at most ``window`` at a time
and only while connected; paho resends the ones in flight after a reconnect,
and a row is deleted from the ledger only when its PUBACK arrives. After a
restart every row still in the outbox is sent again, so a consumer may see an
event twice (QoS 1 is at-least-once) and must keep the highest ``seq`` per
device (the fleet monitor does).

Health (``set_health``) is only stored by the caller's thread; the publisher
thread sends it retained on every connect, at once when the camera, the
clock, the ledger, the display or the degraded list flips (at most every
``counts_min_interval_seconds``, so a flapping camera cannot flood the
broker), and otherwise every ``health_interval_seconds``.

Every counts, info, health and events message is signed with the device key
(:mod:`kiosk.wire.signing`, bound to the topic; docs/mqtt.md contract v1.1). Inbound
messages reach the handlers registered with ``subscribe`` (re-subscribed on
every connect); ``send`` publishes a reply at once.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from pathlib import Path
from typing import Callable


import paho.mqtt.client as paho

from kiosk.door.publish import discovery, payloads
from kiosk.door.publish.base import Handler, Telemetry
from kiosk.wire.broker import make_client
from kiosk.wire.topics import Topics

log = logging.getLogger(__name__)

MAX_INBOUND_BYTES = 1024 * 1024  # a trust bundle is the largest inbound message; handlers cap further


def _health_flags(h: dict) -> tuple:
    """The health facts whose change goes out at once (the rest waits for the interval)."""
    return (h.get("camera_ok"), h.get("clock_synced"), h.get("ledger_ok"), h.get("display_ok"),
            tuple(h.get("degraded") or ()))


class MqttPublisher(Telemetry):
    """Publisher(mqtt_config, device_config, venue, ledger, info)."""

    def __init__(self, mqtt_config, device_config, venue, ledger, info: dict | None = None,
                 base_dir: str | Path | None = None, window: int = 200, device_key=None,
                 clock: Callable[[], float] = time.monotonic):
        """``device_key`` (:class:`kiosk.door.publish.device_key.DeviceKey`) signs every message;
        without one (tools only) messages go out unsigned. ``clock`` (monotonic seconds) times the
        counts' and the health's intervals (a test passes one it moves)."""
        self._clock = clock
        self.config = mqtt_config
        self.topics = Topics(device_config.site, device_config.id)
        self.ledger = ledger
        self.venue = venue
        self.device_key = device_key
        self.info = payloads.info_payload(venue, {**(info or {}), "kid": device_key.kid if device_key else ""})
        self.window = window
        self._handlers: list[tuple[str, Handler]] = []
        self._handlers_lock = threading.Lock()
        self._suback_mids: dict[int, str] = {}  # paho mid of a SUBSCRIBE -> its filter
        self._suback_lock = threading.RLock()
        self._subscribed: set[str] = set()  # filters the broker acknowledged on this connection
        self._client, self.address = make_client(f"kiosk-{device_config.site}-{device_config.id}", mqtt_config.url,
                                                 mqtt_config, base_dir)
        self._client.max_inflight_messages_set(min(window, 100))
        self._client.will_set(self.topics.status, payloads.OFFLINE, qos=1, retain=True)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_publish = self._on_publish
        self._client.on_message = self._on_message
        self._client.on_subscribe = self._on_subscribe
        self._connected = False
        self._need_state = False
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._acked_mids: collections.deque[int] = collections.deque()
        self._sent: dict[int, str | None] = {}  # paho mid -> outbox id (None: retained state)
        self._sent_upto = 0  # highest outbox seq handed to paho by this process
        self._counts_dirty = True
        self._counts_at = -1e9
        self._health: dict | None = None  # the pipeline's latest, replaced whole (never mutated)
        self._health_flags: tuple | None = None  # (camera_ok, clock_synced) last published
        self._health_at = -1e9
        self._thread: threading.Thread | None = None
        self.published_events = 0

    # -- Telemetry -----------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._connected

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stopping.clear()
        # connect_async + loop_start: a broker that is down at start is retried with backoff,
        # and the kiosk keeps checking people in meanwhile (the outbox buffers).
        self._client.connect_async(self.address.host, self.address.port, keepalive=self.config.keepalive)
        self._client.loop_start()
        self._thread = threading.Thread(target=self._run, name="publisher", daemon=True)
        self._thread.start()
        log.info("publishing to %s as %s", self.address, self.topics.base)

    def wake(self) -> None:
        self._counts_dirty = True
        self._wake.set()

    def set_health(self, health: dict) -> None:
        """Store the pipeline's health; wake the publisher only when the camera or clock state flipped."""
        self._health = health
        if _health_flags(health) != self._health_flags:
            self._wake.set()

    def stop(self, timeout: float = 3.0) -> None:
        if self._thread is None:
            return
        self._stopping.set()
        self._wake.set()
        self._thread.join(timeout)
        self._thread = None
        if self._connected:
            try:
                if self._counts_dirty:  # the last check-ins' figures, before saying goodbye
                    self._client.publish(self.topics.counts, self._counts_message(), qos=1, retain=True)
                info = self._client.publish(self.topics.status, payloads.OFFLINE, qos=1, retain=True)
                info.wait_for_publish(timeout)
                self._settle_acks()  # events acknowledged while we said goodbye leave the outbox now
            except (RuntimeError, ValueError):
                pass
        self._client.disconnect()
        self._client.loop_stop()
        self._connected = False

    def subscribe(self, topic_filter: str, handler: Handler) -> None:
        """``handler(topic, payload)`` on the network thread for each matching message; kept across reconnects."""
        with self._handlers_lock:
            self._handlers.append((topic_filter, handler))
        if self._connected:
            self._subscribe(self._client, topic_filter)

    def subscribed(self, topic_filter: str) -> bool:
        """True once the broker acknowledged ``topic_filter`` on the current connection."""
        return topic_filter in self._subscribed

    def send(self, topic: str, payload: bytes, retain: bool = False) -> bool:
        """A reply now: QoS 1, best effort (paho resends it while connected), not through the outbox."""
        if not self._connected:
            return False
        try:
            return self._client.publish(topic, payload, qos=1, retain=retain).rc == paho.MQTT_ERR_SUCCESS
        except (RuntimeError, ValueError) as exc:
            log.warning("could not send on %s: %s", topic, exc)
            return False

    def _subscribe(self, client, topic_filter: str) -> None:
        # The SUBACK can be handled on the network thread before subscribe() returns here:
        # the lock makes it wait until its mid is known (paho's subscribe never waits for
        # the network thread's callbacks, so this cannot deadlock).
        with self._suback_lock:
            rc, mid = client.subscribe(topic_filter, qos=1)
            if rc == paho.MQTT_ERR_SUCCESS and mid is not None:
                self._suback_mids[mid] = topic_filter

    def _sign(self, topic: str, payload: dict) -> bytes:
        if self.device_key is None:
            return payloads.encode(payload)
        return self.device_key.sign(payload, topic)

    def _counts_message(self) -> bytes:
        return self._sign(self.topics.counts, payloads.counts_payload(self.ledger.counts()))

    # -- paho callbacks (network thread): note and wake, nothing more ----------

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.warning("broker %s refused the connection: %s", self.address, reason_code)
            return
        self._connected = True
        self._need_state = True
        self._subscribed = set()
        with self._handlers_lock:
            filters = list(dict.fromkeys(f for f, _ in self._handlers))
        for topic_filter in filters:
            self._subscribe(client, topic_filter)
        log.info("connected to %s", self.address)
        self._wake.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        if self._connected and not self._stopping.is_set():
            log.warning("lost the broker %s (%s); check-ins are kept in the outbox", self.address, reason_code)
        self._connected = False

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        with self._suback_lock:
            topic_filter = self._suback_mids.pop(mid, None)
        if topic_filter is not None and not any(rc.is_failure for rc in reason_codes):
            self._subscribed.add(topic_filter)

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        self._acked_mids.append(mid)
        self._wake.set()

    def _on_message(self, client, userdata, message) -> None:
        topic, payload = message.topic, bytes(message.payload)
        if len(payload) > MAX_INBOUND_BYTES:
            log.warning("message on %s ignored: larger than %d bytes", topic, MAX_INBOUND_BYTES)
            return
        with self._handlers_lock:
            handlers = [h for f, h in self._handlers if paho.topic_matches_sub(f, topic)]
        for handler in handlers:
            try:
                handler(topic, payload)
            except Exception:  # a faulty handler must not kill the network thread
                log.exception("handler for %s failed", topic)

    # -- publisher thread ---------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(self._next_timeout())
            self._wake.clear()
            try:
                self._step()
            except Exception:  # e.g. a ledger error: log, keep trying, never take the kiosk down
                log.exception("publisher step failed")
                self._stopping.wait(1.0)
        try:
            self._settle_acks()
        except Exception:
            log.exception("publisher: could not record the last acknowledgements")

    def _next_timeout(self) -> float:
        if not self._connected:
            return 5.0  # nothing is due offline: a connect, new rows and acks all wake the thread
        now = self._clock()
        due = self._counts_at + self.config.counts_interval_seconds
        if self._counts_dirty:
            due = min(due, self._counts_at + self.config.counts_min_interval_seconds)
        if self._health is not None:
            due = min(due, self._health_due())
        return max(0.05, min(due - now, 5.0))

    def _health_due(self) -> float:
        """Monotonic time the stored health should go out: soon after a flip, else at the interval."""
        h = self._health
        if h is not None and _health_flags(h) != self._health_flags:
            return self._health_at + self.config.counts_min_interval_seconds
        return self._health_at + self.config.health_interval_seconds

    def _step(self) -> None:
        self._settle_acks()
        if not self._connected:
            if not self.config.events:
                self._discard_events()
            return
        if self._need_state:
            self._need_state = False
            self._publish_state()
        if self.config.events:
            self._drain()
        else:
            self._discard_events()
        now = self._clock()
        if (self._counts_dirty and now - self._counts_at >= self.config.counts_min_interval_seconds) or \
                now - self._counts_at >= self.config.counts_interval_seconds:
            self._publish_counts()
        if self._health is not None and now >= self._health_due():
            self._publish_health()

    def _publish(self, topic: str, payload: bytes, retain: bool, outbox_id: str | None = None) -> None:
        info = self._client.publish(topic, payload, qos=1, retain=retain)
        self._sent[info.mid] = outbox_id

    def _publish_state(self) -> None:
        """On every connect: retained status, info, counts (and discovery), as the broker may have lost them."""
        self._publish(self.topics.status, payloads.ONLINE, retain=True)
        self._publish(self.topics.info, self._sign(self.topics.info, {**self.info, "ts": payloads.utc_iso_now()}),
                      retain=True)
        if self.config.ha_discovery:
            for topic, payload in discovery.messages(self.topics, self.venue, self.info):
                self._publish(topic, payloads.encode(payload), retain=True)
        self._publish_counts()
        if self._health is not None:  # else it goes out as soon as the pipeline first reports
            self._publish_health()

    def _publish_counts(self) -> None:
        self._counts_dirty = False
        self._counts_at = self._clock()
        self._publish(self.topics.counts, self._counts_message(), retain=True)

    def _publish_health(self) -> None:
        h = self._health
        self._health_flags = _health_flags(h)
        self._health_at = self._clock()
        payload = payloads.health_payload(h, self.ledger.outbox_size())
        self._publish(self.topics.health, self._sign(self.topics.health, payload), retain=True)

    def _drain(self) -> None:
        """Hand the next outbox rows to paho, oldest first, keeping at most ``window`` unacknowledged."""
        room = self.window - sum(1 for v in self._sent.values() if v is not None)
        if room <= 0:
            return
        for msg in self.ledger.pending(room, after_seq=self._sent_upto):
            if not self._connected:
                break
            try:
                message = self._sign(self.topics.events, payloads.event_payload(msg))
            except (ValueError, KeyError, TypeError) as exc:  # a row no renderer understands: do not block the rest
                log.error("outbox row %s cannot be rendered (%s); dropping it", msg.seq, exc)
                self.ledger.ack_many([msg.id])
                self._sent_upto = msg.seq
                continue
            self._publish(self.topics.events, message, retain=False, outbox_id=msg.id)
            self._sent_upto = msg.seq
            self.published_events += 1
        self._settle_acks()

    def _discard_events(self) -> None:
        while batch := self.ledger.pending(1000):
            if not self.ledger.ack_many(m.id for m in batch):
                break

    def _settle_acks(self) -> None:
        """Delete the acknowledged outbox rows in one transaction."""
        # Every publish() returns (and records its mid) on this thread before this runs,
        # so a PUBACK that raced ahead of publish() returning is matched here too.
        done = []
        while self._acked_mids:
            outbox_id = self._sent.pop(self._acked_mids.popleft(), None)
            if outbox_id is not None:
                done.append(outbox_id)
        if done:
            self.ledger.ack_many(done)
        if done and len(self._sent) < self.window:
            self._wake.set()  # room in the window: keep draining

    def stats(self) -> dict[str, object]:
        """For `kiosk doctor` and tests: connection and outbox state."""
        return {"connected": self._connected, "in_flight": len(self._sent), "outbox": self.ledger.outbox_size(),
                "published_events": self.published_events}
