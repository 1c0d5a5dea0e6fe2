"""The fleet monitor's MQTT side: subscribe to every kiosk, apply messages, flush in batches.

paho's network thread calls :meth:`Fleet.handle` directly (no queue hop: the
cheapest path per message); a flusher thread writes the changed kiosks to
SQLite every ``flush_seconds`` in one transaction. With ``share_group`` the
subscription is an MQTT 5 shared one (``$share/{group}/checkin/v1/+/+/#``):
the broker splits the messages among the group's monitors. Brokers do not
send retained messages to shared subscriptions, so a monitor in a group
learns a kiosk at its next message; a plain monitor gets the retained state
at once.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from kiosk.monitor.fleet import Fleet
from kiosk.monitor.store import FleetStore
from kiosk.publish.connection import make_client
from kiosk.publish.topics import ALL_KIOSKS

log = logging.getLogger(__name__)


class FleetMonitor:
    """Watches ``checkin/v1/+/+/#`` on one broker and keeps the fleet picture in a :class:`FleetStore`."""

    def __init__(self, url: str, store: FleetStore, share_group: str = "", client_id: str = "",
                 flush_seconds: float = 0.5, mqtt_config=None, session_expiry: int = 300):
        self.store = store
        self.fleet = Fleet(store.kiosks())  # resume: keeps since, last seq and venue across restarts
        self.topic = f"$share/{share_group}/{ALL_KIOSKS}" if share_group else ALL_KIOSKS
        self.flush_seconds = flush_seconds
        self.session_expiry = session_expiry
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.connected = threading.Event()
        self.last_message_at = 0.0
        self.client, self.address = make_client(client_id or f"kiosk-monitor-{uuid.uuid4().hex[:12]}", url, mqtt_config,
                                                protocol=mqtt.MQTTv5)
        if mqtt_config is None:  # paho's default backoff grows to 2 minutes: too long for a monitor
            self.client.reconnect_delay_set(0.5, 10)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self._flusher = threading.Thread(target=self._flush_loop, name="monitor-flush", daemon=True)

    def start(self) -> None:
        """Connect in the background and start flushing."""
        # A session that outlives a disconnect: the broker queues the QoS 1 events published
        # while the monitor (or the broker itself, with persistence) was away.
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.session_expiry
        self.client.connect_async(self.address.host, self.address.port, keepalive=30, clean_start=False,
                                  properties=props)
        self.client.loop_start()
        self._flusher.start()

    def stop(self) -> None:
        """Disconnect and write what is left."""
        self._stop.set()
        self.client.disconnect()
        self.client.loop_stop()
        if self._flusher.is_alive():
            self._flusher.join(5)
        self.flush()

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.warning("broker %s refused the monitor: %s", self.address, reason_code)
            return
        client.subscribe(self.topic, qos=1)
        log.info("watching %s on %s", self.topic, self.address)
        self.connected.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self.connected.clear()
        if not self._stop.is_set():
            log.warning("lost the broker %s (%s); reconnecting", self.address, reason_code)

    def _on_message(self, client, userdata, message) -> None:
        with self._lock:
            self.fleet.handle(message.topic, message.payload)
        self.last_message_at = time.monotonic()

    def flush(self) -> int:
        """Write the changed kiosks now; returns how many."""
        with self._lock:
            rows = self.store.rows(self.fleet.take_dirty())
        return self.store.write(rows)  # outside the lock: messages keep flowing while SQLite writes

    def _flush_loop(self) -> None:
        while not self._stop.wait(self.flush_seconds):
            try:
                self.flush()
            except Exception:  # a locked or full disk must not stop the watching
                log.exception("monitor: writing the fleet picture failed")

    def settle(self, quiet_seconds: float = 0.5, connect_timeout: float = 5.0, max_seconds: float = 30.0) -> bool:
        """Wait for the connection, then until no message came for ``quiet_seconds`` (the retained state is in).

        False when the broker could not be reached within ``connect_timeout``.
        """
        if not self.connected.wait(connect_timeout):
            return False
        start = time.monotonic()
        while time.monotonic() - start < max_seconds:
            if time.monotonic() - max(self.last_message_at, start) >= quiet_seconds:
                break
            time.sleep(0.05)
        return True
