"""The centre's MQTT side: subscribe to every kiosk, verify, batch, write (an ingest worker).

A pipeline of three threads, so parsing and verifying overlap the network and the database:
paho's network thread only puts ``(topic, payload)`` in an inbox; the ingest stage
(``centre-ingest``) hands them to :meth:`Ingest.handle` (parse once, coalesce per kiosk)
and every ``flush_seconds``, or sooner when ``batch_max`` messages are in, takes the batch
(verifying what can change a figure) for the writer (``centre-write``), which writes it in
one transaction. libsodium's verify and psycopg's waits release the GIL, so the stages use
both cores. Every stage is bounded: a full inbox holds paho's thread (the broker keeps the
unacknowledged messages), one batch waits while another is written. With ``verify_processes``
a pool of verifier processes checks each batch's likely winners, outside this process's GIL
(which, not the cores, bounds a worker: see docs/performance.md, third round).

With ``share_group`` the subscription is an MQTT 5 shared one
(``$share/{group}/checkin/v1/+/+/#``): the broker splits the messages among the group's
workers, which write one PostgreSQL.

No missed events (issue 12.7): the worker connects with a stable client id,
``clean_start=False`` and an MQTT 5 session expiry, so the broker keeps its
subscription and queues the QoS 1 messages published while it is away, and delivers
them when it returns. A random client id (no ``--client-id``) would lose them, so
the command line derives a stable one from the store unless told otherwise.
:meth:`IngestWorker.stop` first stops paho (a message it acknowledged is in the inbox),
then lets each stage finish: nothing acknowledged is left unwritten.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections import deque

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from kiosk.centre.ingest import Ingest
from kiosk.centre.plausible import Limits
from kiosk.centre.registry import FleetRegistry
from kiosk.centre.store import Store
from kiosk.wire.broker import make_client
from kiosk.wire.topics import ALL_KIOSKS

log = logging.getLogger(__name__)

DEFAULT_SESSION_EXPIRY = 7 * 24 * 3600  # a week away and nothing is lost (the broker's queue limit permitting)


WAKE_CHUNK = 200  # the ingest stage wakes for this many messages (or at its deadline), not for each one
WRITE_ATTEMPTS = 3  # a deadlock between two workers' transactions, a database restart: tried again


class IngestWorker:
    """Watches ``checkin/v1/+/+/#`` on one broker and writes verified figures to a :class:`Store`."""

    def __init__(self, url: str, store: Store, registry: FleetRegistry, share_group: str = "", client_id: str = "",
                 flush_seconds: float = 0.5, mqtt_config=None, session_expiry: int = DEFAULT_SESSION_EXPIRY,
                 batch_max: int = 20_000, verify_signatures: bool = True, coalesce: bool = True,
                 verify_processes: int = 0, limits: Limits | None = Limits()):
        self.store = store
        self.verify_processes = verify_processes if coalesce and verify_signatures else 0
        self.ingest = Ingest(registry, verify_signatures=verify_signatures, coalesce=coalesce, limits=limits)
        self.topic = f"$share/{share_group}/{ALL_KIOSKS}" if share_group else ALL_KIOSKS
        self.flush_seconds = flush_seconds
        self.session_expiry = session_expiry
        self.batch_max = batch_max
        self.inbox_max = 2 * batch_max
        self._inbox: deque = deque()  # (topic, payload) from paho's thread; deque's append/popleft are atomic
        self._arrived = threading.Event()  # set when WAKE_CHUNK messages are waiting
        self._room = threading.Condition()  # paho's thread waits here while the inbox is full
        self._stage_lock = threading.Lock()  # Ingest is one thread's at a time: the stage's or flush()'s
        self._write_lock = threading.Lock()  # one transaction at a time from this worker
        self._batches: queue.Queue = queue.Queue(maxsize=1)
        self._written = threading.Condition()
        self._handed = self._done = 0  # batches handed to the writer / written (or given up)
        self._stop = threading.Event()
        self._leaving = threading.Event()  # stop() was called: a disconnection is no loss
        self.connected = threading.Event()
        self.last_message_at = 0.0
        self.written = 0
        # What the metrics read (kiosk.centre.metrics); plain numbers, each written by one thread.
        self.received = 0  # messages paho handed over (paho's thread)
        self.stored = 0  # verified messages in batches committed to the store
        self.batches_written = 0
        self.store_errors = 0  # failed write attempts (each retried, up to WRITE_ATTEMPTS)
        self.batches_dropped = 0  # given up after WRITE_ATTEMPTS
        self.messages_dropped = 0  # verified messages in those batches
        self.write_observer = None  # called with each committed batch's write time in seconds (a histogram)
        # Arrival times (monotonic) of the oldest message of the batch being filled and of each batch handed
        # to the writer and not yet written: the age of the oldest message not yet in the store.
        self._batch_since: float | None = None
        self._unwritten: deque = deque()
        self.client_id = client_id or f"kiosk-centre-{uuid.uuid4().hex[:12]}"
        self.client, self.address = make_client(self.client_id, url, mqtt_config, protocol=mqtt.MQTTv5)
        if mqtt_config is None:  # paho's default backoff grows to 2 minutes: too long for the centre
            self.client.reconnect_delay_set(0.5, 10)
        self.client.max_queued_messages_set(0)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self._stage = threading.Thread(target=self._stage_loop, name="centre-ingest", daemon=True)
        self._writer = threading.Thread(target=self._write_loop, name="centre-write", daemon=True)

    def start(self) -> None:
        """Connect in the background (resuming the broker-side session) and start the pipeline."""
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.session_expiry
        if self.verify_processes:
            from kiosk.centre.verifiers import VerifierPool

            self.ingest.verifier = VerifierPool(self.ingest.registry.keys, self.verify_processes)
        self._writer.start()
        self._stage.start()
        self.client.connect_async(self.address.host, self.address.port, keepalive=30, clean_start=False,
                                  properties=props)
        self.client.loop_start()

    def stop(self) -> None:
        """Disconnect (the session stays on the broker) and write what is left."""
        self._leaving.set()
        self.client.disconnect()
        self.client.loop_stop()  # paho's thread is done: whatever it acknowledged is in the inbox
        self._stop.set()
        self._arrived.set()
        if self._stage.is_alive():
            self._stage.join()
        if self._writer.is_alive():
            self._batches.put(None)
            self._writer.join()
        self.flush()
        if self.ingest.verifier is not None:
            self.ingest.verifier.close()
            self.ingest.verifier = None

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
        if not self._leaving.is_set():
            log.warning("lost the broker %s (%s); reconnecting", self.address, reason_code)

    def _on_message(self, client, userdata, message) -> None:
        inbox = self._inbox
        self.last_message_at = now = time.monotonic()
        inbox.append((message.topic, message.payload, now))
        self.received += 1
        n = len(inbox)
        if n == WAKE_CHUNK:  # fewer wait for the deadline: each wake-up is a GIL hand-off paho pays for
            self._arrived.set()
        elif n >= self.inbox_max and self._stage.is_alive():
            with self._room:  # the stage notifies under this lock after each chunk it takes
                while len(inbox) >= self.inbox_max and self._stage.is_alive():
                    self._room.wait(1.0)

    # -- the ingest stage ---------------------------------------------------------------------
    def _take_in(self) -> None:
        """Hand what is in the inbox to the ingest, a chunk at a time (caller holds the stage lock)."""
        inbox, handle = self._inbox, self.ingest.handle
        while inbox and self.ingest.batch.messages < self.batch_max:
            now = time.time()
            if self._batch_since is None:
                self._batch_since = inbox[0][2]
            for _ in range(min(len(inbox), 1000)):
                topic, payload, _ = inbox.popleft()
                handle(topic, payload, now)
            with self._room:
                self._room.notify()

    def _stage_loop(self) -> None:
        deadline = time.monotonic() + self.flush_seconds
        while True:
            stopping = self._stop.is_set()
            if not stopping and len(self._inbox) < WAKE_CHUNK:
                self._arrived.wait(max(0.0, deadline - time.monotonic()))
                self._arrived.clear()
            try:
                with self._stage_lock:
                    self._take_in()
                    full = self.ingest.batch.messages >= self.batch_max
                    batch = self.ingest.take() if stopping or full or time.monotonic() >= deadline else None
            except Exception:  # a defect, never a message's fault (handle refuses bad ones): keep the stage
                log.exception("centre: the ingest stage failed")
                batch = None
            if batch is not None:
                deadline = time.monotonic() + self.flush_seconds
                since, self._batch_since = self._batch_since, None
                if batch.messages or len(batch):
                    with self._written:
                        self._handed += 1
                    self._unwritten.append(time.monotonic() if since is None else since)
                    self._batches.put(batch)
            if stopping and not self._inbox:
                return

    # -- the writer ---------------------------------------------------------------------------
    def _write_loop(self) -> None:
        while (batch := self._batches.get()) is not None:
            for attempt in range(1, WRITE_ATTEMPTS + 1):
                try:
                    self._write(batch)
                    break
                except Exception:  # a locked or full disk, a database restart: keep watching
                    self.store_errors += 1
                    if attempt == WRITE_ATTEMPTS:
                        self.batches_dropped += 1
                        self.messages_dropped += batch.applied
                        log.exception("centre: writing a batch of %d messages failed; dropped", batch.messages)
                    else:
                        log.warning("centre: writing the batch failed (attempt %d); trying again", attempt,
                                    exc_info=True)
                        time.sleep(0.2 * attempt)
            if self._unwritten:
                self._unwritten.popleft()
            with self._written:
                self._done += 1
                self._written.notify_all()

    def _write(self, batch) -> int:
        with self._write_lock:
            started = time.perf_counter()
            n = self.store.write(batch)
            seconds = time.perf_counter() - started
        self.written += batch.messages
        self.stored += batch.applied
        self.batches_written += 1
        if self.write_observer is not None:
            self.write_observer(seconds)
        return n

    def alive(self) -> bool:
        """False once the ingest stage or the writer thread of a started worker has ended (or it was stopped)."""
        started = self._stage.ident is not None
        return not started or (self._stage.is_alive() and self._writer.is_alive() and not self._stop.is_set())

    def inbox_depth(self) -> int:
        """Messages received and not yet taken in by the ingest stage."""
        return len(self._inbox)

    def oldest_waiting_seconds(self) -> float:
        """How long the oldest message received and not yet written to the store has waited (0: none)."""
        times = []
        try:
            times.append(self._inbox[0][2])
        except IndexError:  # empty, or emptied by the stage meanwhile
            pass
        since = self._batch_since
        if since is not None:
            times.append(since)
        try:
            times.append(self._unwritten[0])
        except IndexError:
            pass
        return max(0.0, time.monotonic() - min(times)) if times else 0.0

    def flush(self) -> int:
        """Write everything received so far, now; returns how many rows this call wrote."""
        with self._stage_lock:
            while self._inbox:
                self._take_in()
                if self._inbox:  # more than a batch is waiting
                    self._write(self.ingest.take())
                    self._batch_since = None
            batch = self.ingest.take()
            self._batch_since = None
        with self._written:
            handed = self._handed
        n = self._write(batch)
        if self._writer.is_alive():  # and what the stage handed over before
            with self._written:
                self._written.wait_for(lambda: self._done >= handed or not self._writer.is_alive())
        return n

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
