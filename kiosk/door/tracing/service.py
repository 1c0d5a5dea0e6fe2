"""The responder behind the kiosk's publisher (BRIEF contract 6: ``subscribe`` / ``send``).

The publisher calls the subscription handler on the MQTT network thread, which
must never block: the handler only puts the message on a small queue, and one
worker thread answers it (a three-week query takes a moment) and sends the
replies. Tracing changes nothing the kiosk does (it reads the visit log and
writes the audit), so it needs neither the control thread nor the flow's.
A full queue drops the message (counted): the authority sees the kiosk as not
answered and asks again.
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import Protocol

from kiosk.door.tracing.responder import TraceResponder

log = logging.getLogger(__name__)


class Telemetry(Protocol):
    """What the kiosk's publisher offers for inbound messages and replies."""

    def subscribe(self, topic_filter: str, handler) -> None: ...

    def send(self, topic: str, payload: bytes, retain: bool = False) -> None: ...


class TraceService:
    """Subscribes the responder's request topics and answers on a worker thread."""

    def __init__(self, responder: TraceResponder, telemetry: Telemetry, queue_max: int = 8):
        self.responder = responder
        self.telemetry = telemetry
        self._queue: queue.Queue = queue.Queue(maxsize=queue_max)
        self._dropped = 0
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Subscribe (the publisher re-subscribes on every connect) and start the worker."""
        self._thread = threading.Thread(target=self._work, name="trace-responder", daemon=True)
        self._thread.start()
        for topic in self.responder.topics:
            self.telemetry.subscribe(topic, self._enqueue)

    def _enqueue(self, topic: str, payload: bytes) -> None:
        try:
            self._queue.put_nowait((topic, bytes(payload)))
        except queue.Full:
            self._dropped += 1

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            try:
                for topic, data in self.responder.handle(*item):
                    self.telemetry.send(topic, data, retain=False)
            except Exception:  # noqa: BLE001 - one bad request must not end tracing for the day
                log.exception("trace responder failed on %s", item[0])

    def stats(self) -> dict:
        """The responder's counters plus requests dropped because the queue was full."""
        return {**self.responder.stats(), "queue_dropped": self._dropped}

    def stop(self) -> None:
        """Stop the worker after the queued requests (idempotent)."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(10)
            self._thread = None
        self.responder.close()
