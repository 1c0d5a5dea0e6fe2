"""The centre's MQTT side: subscribe to every kiosk, verify, batch, write (an ingest worker).

paho's network thread calls :meth:`Ingest.handle` (verification included); a flusher
thread swaps the batch out every ``flush_seconds`` (or sooner when it is big) and
writes it in one transaction. With ``share_group`` the subscription is an MQTT 5
shared one (``$share/{group}/checkin/v1/+/+/#``): the broker splits the messages
among the group's workers, which write one PostgreSQL.

No missed events (issue 12.7): the worker connects with a stable client id,
``clean_start=False`` and an MQTT 5 session expiry, so the broker keeps its
subscription and queues the QoS 1 messages published while it is away, and delivers
them when it returns. A random client id (no ``--client-id``) would lose them, so
the command line derives a stable one from the store unless told otherwise.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from kiosk.centre.ingest import Ingest
from kiosk.centre.registry import FleetRegistry
from kiosk.centre.store import Store
from kiosk.publish.connection import make_client
from kiosk.publish.topics import ALL_KIOSKS

log = logging.getLogger(__name__)

DEFAULT_SESSION_EXPIRY = 7 * 24 * 3600  # a week away and nothing is lost (the broker's queue limit permitting)


class IngestWorker:
    """Watches ``checkin/v1/+/+/#`` on one broker and writes verified figures to a :class:`Store`."""

    def __init__(self, url: str, store: Store, registry: FleetRegistry, share_group: str = "", client_id: str = "",
                 flush_seconds: float = 0.5, mqtt_config=None, session_expiry: int = DEFAULT_SESSION_EXPIRY,
                 batch_max: int = 20_000, verify_signatures: bool = True):
        self.store = store
        self.ingest = Ingest(registry, verify_signatures=verify_signatures)
        self.topic = f"$share/{share_group}/{ALL_KIOSKS}" if share_group else ALL_KIOSKS
        self.flush_seconds = flush_seconds
        self.session_expiry = session_expiry
        self.batch_max = batch_max
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self.connected = threading.Event()
        self.last_message_at = 0.0
        self.written = 0
        self.client_id = client_id or f"kiosk-centre-{uuid.uuid4().hex[:12]}"
        self.client, self.address = make_client(self.client_id, url, mqtt_config, protocol=mqtt.MQTTv5)
        if mqtt_config is None:  # paho's default backoff grows to 2 minutes: too long for the centre
            self.client.reconnect_delay_set(0.5, 10)
        self.client.max_queued_messages_set(0)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self._flusher = threading.Thread(target=self._flush_loop, name="centre-flush", daemon=True)

    def start(self) -> None:
        """Connect in the background (resuming the broker-side session) and start flushing."""
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.session_expiry
        self.client.connect_async(self.address.host, self.address.port, keepalive=30, clean_start=False,
                                  properties=props)
        self.client.loop_start()
        self._flusher.start()

    def stop(self) -> None:
        """Disconnect (the session stays on the broker) and write what is left."""
        self._stop.set()
        self._wake.set()
        self.client.disconnect()
        self.client.loop_stop()
        if self._flusher.is_alive():
            self._flusher.join(10)
        self.flush()

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.warning("broker %s refused the centre: %s", self.address, reason_code)
            return
        # A resumed session keeps its subscription and queue; subscribing again is harmless and
        # covers a broker that lost the session.
        client.subscribe(self.topic, qos=1)
        log.info("watching %s on %s (session %s)", self.topic, self.address,
                 "resumed" if getattr(flags, "session_present", False) else "new")
        self.connected.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self.connected.clear()
        if not self._stop.is_set():
            log.warning("lost the broker %s (%s); reconnecting", self.address, reason_code)

    def _on_message(self, client, userdata, message) -> None:
        with self._lock:
            self.ingest.handle(message.topic, message.payload)
            big = self.ingest.batch.messages >= self.batch_max
        self.last_message_at = time.monotonic()
        if big:
            self._wake.set()

    def flush(self) -> int:
        """Write the batch now; returns how many rows."""
        with self._lock:
            batch = self.ingest.take()
        n = self.store.write(batch)  # outside the lock: messages keep flowing while the store writes
        self.written += batch.messages
        return n

    def _flush_loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            try:
                self.flush()
            except Exception:  # a locked or full disk, a database restart: keep watching, log once per try
                log.exception("centre: writing the batch failed")

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
