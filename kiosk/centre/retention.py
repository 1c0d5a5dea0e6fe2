"""Retention: the centre forgets history older than it was asked to keep, on its own, every hour.

The history (a row per kiosk and day) is kept ``keep_days`` (at least 90, the issue's floor),
the hourly curves a week; :meth:`kiosk.centre.store.Store.prune` does the deleting. Each ingest
worker runs one: pruning is idempotent, so several workers on one PostgreSQL do no harm, and a
day boundary passes at the same hour for all of them (the city's time zone).
"""

from __future__ import annotations

import logging
import threading

from kiosk.centre.queries import Settings
from kiosk.centre.store import Store

log = logging.getLogger(__name__)

MIN_KEEP_DAYS = 90


class Retention:
    def __init__(self, store: Store, settings: Settings, keep_days: int = 120, every_seconds: float = 3600.0):
        self.store = store
        self.settings = settings
        self.keep_days = max(MIN_KEEP_DAYS, keep_days)
        self.every_seconds = every_seconds
        self.passes = 0
        self.failures = 0  # passes the store refused (the metrics' store_errors{operation="prune"})
        self.done = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="centre-retention", daemon=True)

    def prune_now(self) -> None:
        self.store.prune(self.settings.today(), self.keep_days)
        with self.done:
            self.passes += 1
            self.done.notify_all()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.prune_now()
            except Exception:  # a database restart: try again next time, the history only grows meanwhile
                self.failures += 1
                log.exception("centre: pruning old history failed")
            self._stop.wait(self.every_seconds)
