"""The kiosk's control thread: work that changes what the kiosk does, off the check-in flow's path.

Inbound messages (centre commands, trust bundles, trace requests) arrive on
the MQTT network thread, which must never block; their handlers ``post`` a
callable here. The control thread runs them one at a time, each failure
contained and logged, so a slow trust reload never delays a visitor's verdict.
The queue is bounded: a flood of messages is dropped (and logged), never
buffered without end.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Callable

log = logging.getLogger(__name__)

CONTROL_MAX = 256


class Control:
    """``post(fn)`` from any thread; ``fn()`` runs on the control thread."""

    def __init__(self, maxsize: int = CONTROL_MAX):
        self._queue: queue.Queue = queue.Queue(maxsize=maxsize)
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.dropped = 0
        self.done = 0

    def post(self, fn: Callable[[], object], name: str = "") -> bool:
        """Queue ``fn``; False (and logged) when the queue is full. Never blocks."""
        try:
            self._queue.put_nowait((fn, name or getattr(fn, "__name__", "task")))
        except queue.Full:
            self.dropped += 1
            log.warning("control queue full: dropped %s", name or "a task")
            return False
        return True

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="control", daemon=True)
            self._thread.start()

    def stop(self, drain_s: float = 2.0) -> None:
        """Run what is still queued (for up to ``drain_s``), then stop."""
        if self._thread is None:
            return
        deadline = time.monotonic() + drain_s
        while not self._queue.empty() and time.monotonic() < deadline and self._thread.is_alive():
            time.sleep(0.01)  # the control thread empties the queue meanwhile
        self._stop.set()
        self._thread.join(max(0.1, deadline - time.monotonic()))
        self._thread = None

    def run_pending(self) -> int:
        """Run every queued task on the caller's thread (tests, and kiosks run without the thread)."""
        n = 0
        while True:
            try:
                fn, name = self._queue.get_nowait()
            except queue.Empty:
                return n
            self._run_one(fn, name)
            n += 1

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                fn, name = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            self._run_one(fn, name)

    def _run_one(self, fn: Callable[[], object], name: str) -> None:
        try:
            fn()
        except Exception as exc:  # one bad message must not stop the others
            log.error("control task %s failed (%s: %s)", name, type(exc).__name__, exc,
                      exc_info=log.isEnabledFor(logging.DEBUG))
        finally:
            self.done += 1
