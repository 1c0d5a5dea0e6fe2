"""Health probes for a load balancer and systemd: ``/healthz`` (alive) and ``/readyz`` (ready to serve).

* ``/healthz``: the process answers, and its ingest stage and writer threads are running (an ingest
  worker whose thread died is alive only in name: restart it). 200 ``{"status":"alive"}``, else 503.
* ``/readyz``: the broker is connected (a process that ingests) and the store is reachable and
  writable: a row is written into ``readiness_probe`` and rolled back, on a connection of its own,
  within ``timeout`` seconds. 200 ``{"status":"ready","broker":"ok","store":"ok"}``, else 503 with
  ``down`` for the check that failed.

Both answer without a session and say nothing else: no versions, host names or error texts (those
go to the journal, once a minute at most). A check runs at most once every ``cache_seconds``
whatever the number of probes (one at a time; the others get its answer), so probing cannot load
the store.
"""

from __future__ import annotations

import json
import logging
import threading
import time

log = logging.getLogger(__name__)


class Health:
    def __init__(self, store, worker=None, cache_seconds: float = 2.0, timeout: float = 2.0, clock=time.monotonic):
        self.store, self.worker = store, worker
        self.cache_seconds, self.timeout, self.clock = cache_seconds, timeout, clock
        self.store_failures = 0  # probes the store failed (the metrics' store_errors{operation="probe"})
        self._last: tuple[bool, dict] | None = None
        self._at = float("-inf")
        self._logged = float("-inf")
        self._lock = threading.Lock()

    def alive(self) -> bool:
        w = self.worker
        return w is None or w.alive()

    def ready(self) -> tuple[bool, dict[str, str]]:
        """(ready, a word per check): ``ok`` or ``down``."""
        with self._lock:
            if self._last is not None and self.clock() - self._at < self.cache_seconds:
                return self._last
            checks = {}
            if self.worker is not None:
                checks["broker"] = "ok" if self.worker.connected.is_set() else "down"
            try:
                self.store.probe(self.timeout)
                checks["store"] = "ok"
            except Exception as exc:  # any failure is "down"; the text goes to the journal only
                checks["store"] = "down"
                self.store_failures += 1
                if self.clock() - self._logged >= 60:
                    self._logged = self.clock()
                    log.warning("centre: readiness: the store cannot be written: %s",
                                str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            self._last = (all(v == "ok" for v in checks.values()), checks)
            self._at = self.clock()
            return self._last

    def answer(self, path: str) -> tuple[int, bytes]:
        """(HTTP status, JSON body) for ``/healthz`` or ``/readyz``."""
        if path == "/healthz":
            ok = self.alive()
            return (200 if ok else 503), json.dumps({"status": "alive" if ok else "stopped"}).encode()
        ok, checks = self.ready()
        return (200 if ok else 503), json.dumps({"status": "ready" if ok else "not ready", **checks}).encode()
