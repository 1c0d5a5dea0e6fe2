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
thread sends it retained on every connect, at once when the camera or the
clock flips (at most every ``counts_min_interval_seconds``, so a flapping
camera cannot flood the broker), and otherwise every ``health_interval_seconds``.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from pathlib import Path
from typing import Any

from kiosk.publish import discovery, payloads
from kiosk.publish.base import Telemetry
from kiosk.publish.connection import make_client
from kiosk.publish.topics import Topics

log = logging.getLogger(__name__)

MAX_COMMAND_BYTES = 4096


class MqttPublisher(Telemetry):
    """Publisher(mqtt_config, device_config, venue, ledger, info)."""

    def __init__(self, mqtt_config, device_config, venue, ledger, info: dict | None = None,
                 base_dir: str | Path | None = None, window: int = 200):
        self.config = mqtt_config
        self.topics = Topics(device_config.site, device_config.id)
        self.ledger = ledger
        self.venue = venue
        self.info = payloads.info_payload(venue, info)
        self.window = window
        self.on_command = None
        self._client, self.address = make_client(f"kiosk-{device_config.site}-{device_config.id}", mqtt_config.url,
                                                 mqtt_config, base_dir)
        self._client.max_inflight_messages_set(min(window, 100))
        self._client.will_set(self.topics.status, payloads.OFFLINE, qos=1, retain=True)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_publish = self._on_publish
        self._client.on_message = self._on_message
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
        if (health.get("camera_ok"), health.get("clock_synced")) != self._health_flags:
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
                    self._client.publish(self.topics.counts, payloads.encode(self.ledger.counts()), qos=1, retain=True)
                info = self._client.publish(self.topics.status, payloads.OFFLINE, qos=1, retain=True)
                info.wait_for_publish(timeout)
                self._settle_acks()  # events acknowledged while we said goodbye leave the outbox now
            except (RuntimeError, ValueError):
                pass
        self._client.disconnect()
        self._client.loop_stop()
        self._connected = False

    # -- paho callbacks (network thread): note and wake, nothing more ----------

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.warning("broker %s refused the connection: %s", self.address, reason_code)
            return
        self._connected = True
        self._need_state = True
        for name in self.config.commands:
            client.subscribe(self.topics.cmd(name), qos=1)
        log.info("connected to %s", self.address)
        self._wake.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        if self._connected and not self._stopping.is_set():
            log.warning("lost the broker %s (%s); check-ins are kept in the outbox", self.address, reason_code)
        self._connected = False

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        self._acked_mids.append(mid)
        self._wake.set()

    def _on_message(self, client, userdata, message) -> None:
        prefix = self.topics.cmd("")
        name = message.topic[len(prefix):] if message.topic.startswith(prefix) else ""
        if name not in self.config.commands:
            return
        if len(message.payload) > MAX_COMMAND_BYTES:
            log.warning("command %s ignored: payload larger than %d bytes", name, MAX_COMMAND_BYTES)
            return
        log.info("command %s received", name)
        handler = self.on_command
        if handler is not None:
            try:
                handler(name, message.payload.decode("utf-8", "replace"))
            except Exception:  # a faulty handler must not kill the network thread
                log.exception("command %s failed", name)

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
        now = time.monotonic()
        due = self._counts_at + self.config.counts_interval_seconds
        if self._counts_dirty:
            due = min(due, self._counts_at + self.config.counts_min_interval_seconds)
        if self._health is not None:
            due = min(due, self._health_due())
        return max(0.05, min(due - now, 5.0))

    def _health_due(self) -> float:
        """Monotonic time the stored health should go out: soon after a flip, else at the interval."""
        h = self._health
        if h is not None and (h.get("camera_ok"), h.get("clock_synced")) != self._health_flags:
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
        now = time.monotonic()
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
        self._publish(self.topics.info, payloads.encode(self.info), retain=True)
        if self.config.ha_discovery:
            for topic, payload in discovery.messages(self.topics, self.venue, self.info):
                self._publish(topic, payloads.encode(payload), retain=True)
        self._publish_counts()
        if self._health is not None:  # else it goes out as soon as the pipeline first reports
            self._publish_health()

    def _publish_counts(self) -> None:
        self._counts_dirty = False
        self._counts_at = time.monotonic()
        self._publish(self.topics.counts, payloads.encode(self.ledger.counts()), retain=True)

    def _publish_health(self) -> None:
        h = self._health
        self._health_flags = (h.get("camera_ok"), h.get("clock_synced"))
        self._health_at = time.monotonic()
        payload = payloads.health_payload(h, self.ledger.outbox_size())
        self._publish(self.topics.health, payloads.encode(payload), retain=True)

    def _drain(self) -> None:
        """Hand the next outbox rows to paho, oldest first, keeping at most ``window`` unacknowledged."""
        room = self.window - sum(1 for v in self._sent.values() if v is not None)
        if room <= 0:
            return
        for msg in self.ledger.pending(room, after_seq=self._sent_upto):
            if not self._connected:
                break
            self._publish(self.topics.events, msg.payload.encode("utf-8"), retain=False, outbox_id=msg.id)
            self._sent_upto = msg.seq
            self.published_events += 1
        self._settle_acks()

    def _discard_events(self) -> None:
        while batch := self.ledger.pending(1000):
            self.ledger.ack_many(m.id for m in batch)

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

    def stats(self) -> dict[str, Any]:
        """For `kiosk doctor` and tests: connection and outbox state."""
        return {"connected": self._connected, "in_flight": len(self._sent), "outbox": self.ledger.outbox_size(),
                "published_events": self.published_events}
