"""The centre's metrics in the Prometheus text format (prometheus_client), for Prometheus and Grafana.

Every figure is read when Prometheus scrapes, from numbers the centre keeps anyway: the ingest's
counters (:class:`~kiosk.centre.ingest.IngestStats`), the worker's inbox and writer
(:class:`~kiosk.centre.watch.IngestWorker`), and, in a dashboard process, the fleet's state read from
the store (:class:`FleetGauges`, one grouped query cached for a few seconds). Nothing is counted
per message on the way in that was not counted before, so metrics cost the ingest nothing but a
scrape now and then (docs/performance.md measures it).

Label sets are bounded whatever kiosks send: refusals are counted by topic *kind* (``counts``,
``info``, ``health``, ``events``, ``status``, ``other``) and a known reason (``other`` for anything
else), never by topic; districts come from the venue registry the city imports (at most
:data:`MAX_DISTRICTS`, the rest as ``(other)``), never from what a kiosk says.

Each process has its own registry and its own numbers: an ingest worker (``kiosk centre --no-web``)
exposes its ingest, a dashboard process the fleet's state, ``kiosk centre`` with both, both. They
are served by :class:`MetricsListener` (``--metrics-listen HOST:PORT``: ``/metrics``, ``/healthz``,
``/readyz``, no session, for Prometheus on a private network) and, behind the login, on the
dashboard's ``/metrics`` for a city account. docs/operations.md lists every metric and its meaning.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CollectorRegistry, Histogram, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import choose_encoder

from kiosk import __version__
from kiosk.centre.queries import _figure, _text, _time

log = logging.getLogger(__name__)

PREFIX = "kiosk_centre"
MAX_DISTRICTS = 500  # districts labelled one by one; a registry with more folds the rest into "(other)"
NO_DISTRICT = "(no district)"  # kiosks of venues the registry does not place (unregistered venues)
WRITE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
KIOSK_STATES = ("online", "silent", "offline", "never_heard")


class FleetGauges:
    """Kiosks known / online / silent / offline / never heard per district, and message ages, read from the
    store at most once every ``cache_seconds`` (a scrape every few seconds costs one query)."""

    def __init__(self, centre, cache_seconds: float = 5.0, clock=time.monotonic):
        self.centre = centre
        self.cache_seconds = cache_seconds
        self.clock = clock
        self.read_errors = 0
        self.last_read_seconds = 0.0
        self._rows: list[dict] | None = None
        self._read_at = float("-inf")
        self._lock = threading.Lock()

    SQL = """
    SELECT COALESCE(v.district, '') AS district, COUNT(*) AS known,
      SUM(CASE WHEN n.last_ts IS NULL THEN 1 ELSE 0 END) AS never_heard,
      SUM(CASE WHEN n.last_ts IS NOT NULL AND s.status = 'offline' THEN 1 ELSE 0 END) AS offline,
      SUM(CASE WHEN (s.status IS NULL OR s.status = 'online') AND n.last_ts >= ? THEN 1 ELSE 0 END) AS online,
      MAX(n.last_ts) AS newest,
      MIN(CASE WHEN s.status IS NULL OR s.status <> 'offline' THEN n.last_ts END) AS oldest
    FROM fleet f LEFT JOIN venues v ON v.venue_id = f.venue_id
    LEFT JOIN kiosk_status s ON s.site = f.site AND s.device = f.device
    LEFT JOIN kiosk_seen n ON n.site = f.site AND n.device = f.device
    WHERE f.revoked = 0 GROUP BY COALESCE(v.district, '')"""

    def rows(self) -> list[dict] | None:
        """One row per district label (see :meth:`_fold`); None when the store cannot be read now."""
        with self._lock:
            if self.clock() - self._read_at < self.cache_seconds:
                return self._rows
            s = self.centre.settings
            now = s.now()
            started = time.perf_counter()
            try:
                raw = self.centre.store.query(self.SQL, [now - s.stale_seconds])
            except Exception:  # the store is down: no fleet figures this scrape, and a store error counted
                self.read_errors += 1
                log.warning("centre metrics: reading the fleet's state failed", exc_info=True)
                self._rows, self._read_at = None, self.clock()
                return None
            self.last_read_seconds = time.perf_counter() - started
            self._rows, self._read_at = self._fold(raw, now), self.clock()
            return self._rows

    @staticmethod
    def _fold(raw: list[dict], now: float) -> list[dict]:
        out: dict[str, dict] = {}
        for r in sorted(raw, key=lambda r: _text(r["district"])):
            name = _text(r["district"]) or NO_DISTRICT
            if name not in out and len(out) >= MAX_DISTRICTS:
                name = "(other)"
            d = out.setdefault(name, {"district": name, "known": 0, "online": 0, "offline": 0, "never_heard": 0,
                                      "newest": None, "oldest": None})
            for k in ("known", "online", "offline", "never_heard"):
                d[k] += _figure(r[k])
            newest, oldest = _time(r["newest"]), _time(r["oldest"])
            if newest is not None:
                age = max(0.0, now - newest)
                d["newest"] = age if d["newest"] is None else min(d["newest"], age)
            if oldest is not None:
                age = max(0.0, now - oldest)
                d["oldest"] = age if d["oldest"] is None else max(d["oldest"], age)
        for d in out.values():
            d["silent"] = max(0, d["known"] - d["online"] - d["offline"] - d["never_heard"])
        return list(out.values())


class CentreCollector:
    """Every metric of one centre process (a prometheus_client custom collector), read at scrape time."""

    def __init__(self, worker=None, fleet: FleetGauges | None = None, health=None, role: str = "", retention=None):
        self.worker, self.fleet, self.health, self.role, self.retention = worker, fleet, health, role, retention

    def describe(self):
        return []  # names are checked at scrape time, not by reading the store when the registry is made

    def collect(self):
        info = GaugeMetricFamily(f"{PREFIX}_info", "this centre process: its version and what it does "
                                 "(ingest, dashboard or both)", labels=["version", "role"])
        info.add_metric([__version__, self.role], 1)
        yield info
        errors = CounterMetricFamily(f"{PREFIX}_store_errors", "store operations that failed: a batch write "
                                     "attempt (write; retried), a read of the fleet's state (read), a readiness "
                                     "probe (probe), an hourly pruning of old history (prune)",
                                     labels=["operation"])
        if self.worker is not None:
            yield from self._ingest(self.worker)
            errors.add_metric(["write"], self.worker.store_errors)
        if self.fleet is not None:
            yield from self._fleet(self.fleet)
            errors.add_metric(["read"], self.fleet.read_errors)
        if self.health is not None:
            errors.add_metric(["probe"], self.health.store_failures)
        if self.retention is not None:
            errors.add_metric(["prune"], self.retention.failures)
        yield errors

    @staticmethod
    def _ingest(w):
        st = w.ingest.stats
        for name, value, doc in (
            ("messages_received", w.received, "MQTT messages the broker delivered to this worker"),
            ("messages_verified", st.applied, "messages verified (a kiosk's own signature, plausible) and applied "
                                              "to a batch"),
            ("messages_stored", w.stored, "verified messages in batches committed to the store"),
            ("messages_ignored", st.ignored, "messages on topics the centre does not read (commands, results, trace "
                                             "answers, not a kiosk topic)"),
            ("messages_superseded", st.superseded, "signed messages not verified because a verified newer one of "
                                                   "the same kiosk made them moot in their batch"),
            ("messages_dropped", w.messages_dropped, "verified messages lost with a batch the store refused "
                                                     "three times"),
            ("batches_written", w.batches_written, "batches committed to the store"),
            ("batches_dropped", w.batches_dropped, "batches given up after three failed writes"),
        ):
            yield CounterMetricFamily(f"{PREFIX}_{name}", doc, value=value)
        refused = CounterMetricFamily(f"{PREFIX}_messages_refused", "messages that changed nothing, by topic kind "
                                      "(counts, info, health, events, status, other) and reason",
                                      labels=["kind", "reason"])
        for (kind, reason), n in sorted(list(st.refusals.items())):
            refused.add_metric([kind, reason], n)
        yield refused
        for name, value, doc in (
            ("inbox_messages", w.inbox_depth(), "messages received and not yet taken in by the ingest stage"),
            ("inbox_capacity", w.inbox_max, "the inbox's size: when full, the broker holds the messages"),
            ("oldest_waiting_message_seconds", w.oldest_waiting_seconds(),
             "age of the oldest message received and not yet written to the store (0: none waiting)"),
            ("broker_connected", 1 if w.connected.is_set() else 0, "1 while connected to the broker"),
            ("last_message_seconds", time.monotonic() - w.last_message_at if w.last_message_at else -1,
             "seconds since the broker delivered a message (-1: none yet)"),
        ):
            yield GaugeMetricFamily(f"{PREFIX}_{name}", doc, value=value)

    @staticmethod
    def _fleet(fleet: FleetGauges):
        rows = fleet.rows()
        if rows is None:
            return
        known = GaugeMetricFamily(f"{PREFIX}_kiosks_known", "kiosks in the fleet registry (not revoked), per "
                                  "district of their venue", labels=["district"])
        states = GaugeMetricFamily(f"{PREFIX}_kiosks", "kiosks per district and state: online (a signed message "
                                   "within --stale-minutes, last will online), silent (heard before, nothing "
                                   "lately, last will not offline), offline (last will offline), never_heard",
                                   labels=["district", "state"])
        newest = GaugeMetricFamily(f"{PREFIX}_newest_kiosk_message_age_seconds", "age of the newest signed "
                                   "message of any kiosk in the district (the store's view)", labels=["district"])
        oldest = GaugeMetricFamily(f"{PREFIX}_oldest_kiosk_message_age_seconds", "age of the oldest last signed "
                                   "message among the district's kiosks not offline by their last will (the "
                                   "longest-silent kiosk)", labels=["district"])
        for d in rows:
            known.add_metric([d["district"]], d["known"])
            for state in KIOSK_STATES:
                states.add_metric([d["district"], state], d[state])
            if d["newest"] is not None:
                newest.add_metric([d["district"]], d["newest"])
            if d["oldest"] is not None:
                oldest.add_metric([d["district"]], d["oldest"])
        yield from (known, states, newest, oldest)
        yield GaugeMetricFamily(f"{PREFIX}_fleet_read_seconds", "how long the last read of the fleet's state took",
                                value=fleet.last_read_seconds)


class CentreMetrics:
    """One process's registry: the centre's collector, the batch write time histogram, the process's own."""

    def __init__(self, worker=None, centre=None, health=None, role: str = "", fleet_cache_seconds: float = 5.0,
                 retention=None):
        self.registry = CollectorRegistry(auto_describe=True)
        self.fleet = FleetGauges(centre, fleet_cache_seconds) if centre is not None else None
        self.collector = CentreCollector(worker, self.fleet, health, role, retention)
        self.registry.register(self.collector)
        ProcessCollector(registry=self.registry)
        if worker is not None:
            hist = Histogram(f"{PREFIX}_batch_write_seconds", "time to write one batch to the store (one "
                             "transaction)", buckets=WRITE_BUCKETS, registry=self.registry)
            worker.write_observer = hist.observe

    def render(self, accept: str | None = None) -> tuple[bytes, str]:
        """The exposition (text format, or OpenMetrics when ``accept`` asks for it) and its content type."""
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type


class MetricsListener:
    """``--metrics-listen HOST:PORT``: ``/metrics``, ``/healthz`` and ``/readyz`` on a listener of their own, no
    session (Prometheus and a load balancer on a private network). A thread per request; nothing else served."""

    def __init__(self, metrics: CentreMetrics, health, host: str, port: int):
        outer = self

        class Handler(_Handler):
            owner = outer

        class Server(ThreadingHTTPServer):
            address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
            daemon_threads = True

        self.metrics, self.health = metrics, health
        self.server = Server((host, port), Handler)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, name="centre-metrics", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class _Handler(BaseHTTPRequestHandler):
    owner: MetricsListener
    def version_string(self) -> str:
        return "kiosk-centre"  # no Python or library version in the Server header

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            body, ctype = self.owner.metrics.render(self.headers.get("Accept"))
            return self._send(200, body, ctype)
        if path in ("/healthz", "/readyz"):
            status, body = self.owner.health.answer(path)
            return self._send(status, body, "application/json")
        self._send(404, b'{"error":"not found"}', "application/json")

    def do_HEAD(self) -> None:  # noqa: N802
        self.do_GET()

    def _send(self, status: int, body: bytes, ctype: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format, *args) -> None:  # scrapes every few seconds are not worth a journal line
        pass
