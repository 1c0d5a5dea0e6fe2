"""The centre's store: SQLite for one process, PostgreSQL for several workers and dashboards.

One schema and one set of upserts for both (SQL that SQLite >= 3.24 and PostgreSQL both
speak; only the placeholders differ). Every write is an idempotent upsert keyed by kiosk
(and day), guarded by the kiosk's own signed order: counts by ``seq`` within a day,
info and health by the kiosk's ``ts``, events by the highest ``seq``. So workers of one
MQTT 5 shared subscription may write one PostgreSQL in any order, twice, or late, and
the figures are the same.

Tables: ``fleet`` (the fleet registry), ``venues`` (the venue registry, plus venues of
kiosks that are not in it, flagged ``registered = 0``), ``kiosk_info`` / ``kiosk_status``
/ ``kiosk_health`` / ``kiosk_seen`` (one row per kiosk), ``daily`` (kiosk x day: the
history), ``hourly`` (kiosk x day x hour, kept a week), ``refused`` (topic x reason),
``kiosk_implausible`` (kiosks that signed a claim no kiosk could make: the inspection list's
``implausible`` rows). Times are epoch seconds here; the query layer turns them into ISO 8601.

A kiosk's place is the venue registry's: a venue the registry does not know gets its name and
address from its kiosk's signed ``info`` (something to show an inspector), never a province,
district or ward, so it counts only under "not registered" (issue 19.2).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Iterable, Sequence

from kiosk.centre import migrations, rollup
from kiosk.centre.ingest import Batch
from kiosk.centre.registry import VENUE_COLUMNS, FleetRegistry, Venue
from kiosk.errors import KioskValueError

HOURS = [f"h{h:02d}" for h in range(24)]
log = logging.getLogger(__name__)

TABLES = {
    "fleet": ("site TEXT NOT NULL", "device TEXT NOT NULL", "venue_id TEXT NOT NULL", "kid TEXT NOT NULL",
              "revoked INTEGER NOT NULL", "PRIMARY KEY (site, device)"),
    "venues": tuple(f"{c} TEXT NOT NULL DEFAULT ''" if c != "venue_id" else "venue_id TEXT PRIMARY KEY"
                    for c in VENUE_COLUMNS) + ("registered INTEGER NOT NULL DEFAULT 0",),
    "kiosk_info": ("site TEXT NOT NULL", "device TEXT NOT NULL", "venue_id TEXT NOT NULL",
                   "info_venue_id TEXT NOT NULL", "venue_name TEXT NOT NULL", "address TEXT NOT NULL",
                   "province TEXT NOT NULL", "district TEXT NOT NULL", "ward TEXT NOT NULL",
                   "province_code TEXT NOT NULL", "district_code TEXT NOT NULL", "ward_code TEXT NOT NULL",
                   "venue_qr_sha256 TEXT NOT NULL", "kid TEXT NOT NULL", "version TEXT NOT NULL",
                   "info_ts DOUBLE PRECISION NOT NULL", "PRIMARY KEY (site, device)"),
    "kiosk_status": ("site TEXT NOT NULL", "device TEXT NOT NULL", "status TEXT NOT NULL",
                     "status_at DOUBLE PRECISION NOT NULL", "offline_first_seen DOUBLE PRECISION",
                     "PRIMARY KEY (site, device)"),
    "kiosk_health": ("site TEXT NOT NULL", "device TEXT NOT NULL", "camera_ok INTEGER", "camera_error TEXT",
                     "display_ok INTEGER", "clock_synced INTEGER", "trust_stale INTEGER",
                     "trust_age_hours DOUBLE PRECISION", "degraded TEXT", "health_json TEXT",
                     "health_ts DOUBLE PRECISION NOT NULL", "camera_since DOUBLE PRECISION",
                     "display_since DOUBLE PRECISION", "PRIMARY KEY (site, device)"),
    "kiosk_seen": ("site TEXT NOT NULL", "device TEXT NOT NULL", "last_ts DOUBLE PRECISION NOT NULL",
                   "last_seq BIGINT NOT NULL", "last_scan DOUBLE PRECISION", "PRIMARY KEY (site, device)"),
    "daily": ("site TEXT NOT NULL", "device TEXT NOT NULL", "day TEXT NOT NULL", "venue_id TEXT NOT NULL",
              "accepted BIGINT NOT NULL", "rejected BIGINT NOT NULL", "duplicates BIGINT NOT NULL",
              "overrides BIGINT NOT NULL", "unique_visitors BIGINT NOT NULL", "dropped_events BIGINT NOT NULL",
              "seq BIGINT NOT NULL", "last_scan DOUBLE PRECISION", "ts DOUBLE PRECISION NOT NULL",
              "PRIMARY KEY (site, device, day)"),
    "hourly": ("site TEXT NOT NULL", "device TEXT NOT NULL", "day TEXT NOT NULL", "seq BIGINT NOT NULL",
               *(f"{h} BIGINT NOT NULL" for h in HOURS), "PRIMARY KEY (site, device, day)"),
    "refused": ("topic TEXT NOT NULL", "reason TEXT NOT NULL", "n BIGINT NOT NULL",
                "last_at DOUBLE PRECISION NOT NULL", "PRIMARY KEY (topic, reason)"),
    # first_at: the first implausible message since the kiosk last went a listing window without one
    "kiosk_implausible": ("site TEXT NOT NULL", "device TEXT NOT NULL", "first_at DOUBLE PRECISION NOT NULL",
                          "last_at DOUBLE PRECISION NOT NULL", "n BIGINT NOT NULL", "what TEXT NOT NULL",
                          "PRIMARY KEY (site, device)"),
    # kiosk.centre.rollup: the figures per day x district x ward, and the venue registry's history.
    "rollup_daily": ("day TEXT NOT NULL", "district TEXT NOT NULL", "ward TEXT NOT NULL",
                     *(f"{f} DOUBLE PRECISION NOT NULL" for f in rollup.ROLLUP_FIGURES),
                     "PRIMARY KEY (day, district, ward)"),
    "registry_history": ("day TEXT NOT NULL", "district TEXT NOT NULL", "ward TEXT NOT NULL",
                         "venues_with_code BIGINT NOT NULL", "PRIMARY KEY (day, district, ward)"),
    "rollup_fleet": ("district TEXT NOT NULL", "ward TEXT NOT NULL", "kiosks BIGINT NOT NULL",
                     "venues_with_kiosk BIGINT NOT NULL", "PRIMARY KEY (district, ward)"),
}
# How long a kiosk stays on the inspection list after its last implausible message (centre's clock).
IMPLAUSIBLE_LISTED_SECONDS = 24 * 3600.0
PLACE = ("province", "district", "ward", "province_code", "district_code", "ward_code")
CLEAR_UNREGISTERED_PLACES = ("UPDATE venues SET " + ", ".join(f"{c} = ''" for c in PLACE)
                             + " WHERE registered = 0 AND (" + " OR ".join(f"{c} <> ''" for c in PLACE) + ")")
# Columns the store keeps itself, never written from a batch's or the registry's rows (so not in
# ``columns()``): ``venues.last_scan_day`` is the latest local day on which any of the venue's kiosks
# counted a scan (NULL: never), so "no scans today" is one indexed comparison, not an anti-join of the
# whole city's venues against today's history.
DERIVED = {"venues": ("last_scan_day TEXT",)}
# A batch's scans move venues.last_scan_day forward (never back: a late message of an older day).
ADVANCE_SCAN_DAY = ("UPDATE venues SET last_scan_day = ? WHERE venue_id = ? "
                    "AND (last_scan_day IS NULL OR last_scan_day < ?)")


def columns(table: str) -> list[str]:
    return [c.split()[0] for c in TABLES[table] if not c.startswith("PRIMARY")]


def _set(table: str, keys: Sequence[str], special: dict | None = None) -> str:
    special = special or {}
    return ", ".join(special.get(c, f"{c} = excluded.{c}") for c in columns(table) if c not in keys)


def _insert(table: str, keys: Sequence[str], tail: str) -> str:
    cols = columns(table)
    return (f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))}) "
            f"ON CONFLICT ({', '.join(keys)}) {tail}")


_SAME = "COALESCE(kiosk_health.{c}, -1) = COALESCE(excluded.{c}, -1)"
UPSERT_TAILS = {
    "daily": (("site", "device", "day"), "DO UPDATE SET " + _set("daily", ("site", "device", "day"))
              + " WHERE excluded.seq > daily.seq"),
    "hourly": (("site", "device", "day"), "DO UPDATE SET " + _set("hourly", ("site", "device", "day"))
               + " WHERE excluded.seq > hourly.seq"),
    "kiosk_info": (("site", "device"), "DO UPDATE SET " + _set("kiosk_info", ("site", "device"))
                   + " WHERE excluded.info_ts >= kiosk_info.info_ts"),
    "kiosk_health": (("site", "device"), "DO UPDATE SET " + _set("kiosk_health", ("site", "device"), {
        # How long the camera (display) has been down: the kiosk's own time of the change.
        "camera_since": "camera_since = CASE WHEN " + _SAME.format(c="camera_ok")
                        + " THEN kiosk_health.camera_since ELSE excluded.camera_since END",
        "display_since": "display_since = CASE WHEN " + _SAME.format(c="display_ok")
                         + " THEN kiosk_health.display_since ELSE excluded.display_since END",
    }) + " WHERE excluded.health_ts > kiosk_health.health_ts"),
    "kiosk_status": (("site", "device"), "DO UPDATE SET status = excluded.status, status_at = excluded.status_at, "
                     # The persisted first-offline record: kept across centre restarts, cleared when online.
                     "offline_first_seen = CASE WHEN excluded.status = 'offline' "
                     "THEN COALESCE(kiosk_status.offline_first_seen, excluded.offline_first_seen) ELSE NULL END "
                     "WHERE excluded.status_at >= kiosk_status.status_at"),
    "kiosk_seen": (("site", "device"), "DO UPDATE SET "
                   "last_ts = CASE WHEN excluded.last_ts > kiosk_seen.last_ts THEN excluded.last_ts "
                   "ELSE kiosk_seen.last_ts END, "
                   "last_seq = CASE WHEN excluded.last_seq > kiosk_seen.last_seq THEN excluded.last_seq "
                   "ELSE kiosk_seen.last_seq END, "
                   "last_scan = CASE WHEN kiosk_seen.last_scan IS NULL OR excluded.last_scan > kiosk_seen.last_scan "
                   "THEN excluded.last_scan ELSE kiosk_seen.last_scan END"),
    "refused": (("topic", "reason"), "DO UPDATE SET n = refused.n + excluded.n, last_at = excluded.last_at"),
    # A new streak (a listing window after the last one) starts its own "since".
    "kiosk_implausible": (("site", "device"), "DO UPDATE SET first_at = CASE WHEN kiosk_implausible.last_at < "
                          f"excluded.first_at - {IMPLAUSIBLE_LISTED_SECONDS} THEN excluded.first_at "
                          "ELSE kiosk_implausible.first_at END, last_at = CASE WHEN excluded.last_at > "
                          "kiosk_implausible.last_at THEN excluded.last_at ELSE kiosk_implausible.last_at END, "
                          "n = kiosk_implausible.n + excluded.n, what = excluded.what"),
    # A kiosk's own info places a venue the registry does not know; the registry's own rows win.
    "venues": (("venue_id",), "DO UPDATE SET " + _set("venues", ("venue_id",), {"registered": "registered = 0"})
               + " WHERE venues.registered = 0"),
}
WRITE_ORDER = ("kiosk_info", "venues", "kiosk_status", "kiosk_health", "kiosk_seen", "daily", "hourly", "refused",
               "kiosk_implausible")


# The PostgreSQL advisory lock the schema's migrations (and a restore) hold.
MIGRATION_LOCK = 727001


class StoreError(KioskValueError):
    """A store URL or file the centre cannot open."""


def batch_rows(batch: Batch) -> dict[str, list[tuple]]:
    """The batch as rows per table, in each table's column order."""
    health = [(*h, h[-1], h[-1]) for h in batch.health.values()]  # camera_since, display_since = this ts
    status = [(*s, s[3] if s[2] == "offline" else None) for s in batch.status.values()]
    # One row per venue (two kiosks of one venue in a batch would hit one row twice in PostgreSQL): the name
    # and address the kiosk shows, for a venue the registry does not know; never a place (see the module).
    venues = list({i[2]: (i[2], i[4], i[5], *("" for _ in PLACE), "", 0)
                   for i in batch.info.values() if i[2]}.values())
    return {
        "kiosk_info": list(batch.info.values()),
        "venues": venues,
        "kiosk_status": status,
        "kiosk_health": health,
        "kiosk_seen": [(site, device, *v) for (site, device), v in batch.seen.items()],
        "daily": list(batch.daily.values()),
        "hourly": list(batch.hourly.values()),
        "refused": [(topic, reason, n, at) for (topic, reason), (n, at) in batch.refused.items()],
        "kiosk_implausible": [(site, device, *r) for (site, device), r in batch.implausible.items()],
        "venue_scans": scan_days(batch.daily.values()),
    }


def scan_days(daily: Iterable[tuple]) -> list[tuple[str, str]]:
    """(venue_id, latest day with a scan) of daily rows (``venues.last_scan_day`` moves forward only)."""
    latest: dict[str, str] = {}
    for r in daily:
        venue, day = r[3], r[2]
        if r[4] + r[5] + r[6] > 0 and day > latest.get(venue, ""):
            latest[venue] = day
    return sorted(latest.items())


class Store:
    """The common part: statements, registries, retention. Subclasses run SQL."""

    dialect = ""
    url = ""

    # -- the backend's primitives ---------------------------------------------------
    def execute(self, sql: str, params: Sequence = ()) -> None:
        raise NotImplementedError

    def query(self, sql: str, params: Sequence = ()) -> list[dict]:
        raise NotImplementedError

    def stream(self, sql: str, params: Sequence = (), size: int = 2000):
        """The rows of ``sql`` as dicts, a few thousand at a time (exports of the whole city)."""
        yield from self.query(sql, params)

    def write_rows(self, rows: dict[str, list[tuple]]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def exclusive(self):
        """A context manager: one transaction holding the lock that keeps other processes from migrating
        the schema at the same time; it yields an executor (``execute``, ``query``, ``dialect``)."""
        raise NotImplementedError

    def probe(self, timeout: float = 2.0) -> None:
        """Write a row and roll it back, on a connection of its own, within ``timeout`` seconds (the
        readiness probe); raises when the store cannot be reached or written."""
        raise NotImplementedError

    # -- common ------------------------------------------------------------------------
    def migrate(self) -> list[int]:
        """Bring the schema to :data:`kiosk.centre.migrations.LATEST`; the migrations applied (see there)."""
        try:
            applied = migrations.upgrade(self)
        except migrations.SchemaError as exc:
            self.close()
            raise StoreError(str(exc)) from exc.__cause__
        if applied:
            log.info("centre store: schema migrations %s applied (now version %d)",
                     ", ".join(map(str, applied)), migrations.LATEST)
        return applied

    def refresh_scan_days(self) -> None:
        """Recompute every venue's last day with a scan from the history of its (not revoked) kiosks."""
        self.execute("""
        UPDATE venues SET last_scan_day = x.day FROM (
          SELECT v2.venue_id AS venue_id, latest.day AS day FROM venues v2 LEFT JOIN (
            SELECT f.venue_id AS venue_id, MAX(d.day) AS day
            FROM daily d JOIN fleet f ON f.site = d.site AND f.device = d.device
            WHERE f.revoked = 0 AND (d.accepted > 0 OR d.rejected > 0 OR d.duplicates > 0)
            GROUP BY f.venue_id) latest ON latest.venue_id = v2.venue_id
        ) x WHERE x.venue_id = venues.venue_id AND venues.last_scan_day IS DISTINCT FROM x.day""")

    def write(self, batch: Batch) -> int:
        """Upsert one batch in one transaction; returns how many rows."""
        rows = batch_rows(batch)
        n = sum(len(r) for r in rows.values())
        if n:
            self.write_rows(rows)
        return n

    def load_fleet(self, registry: FleetRegistry) -> None:
        """Replace the ``fleet`` table with the registry; venues of its kiosks get a row if they have none."""
        rows = [(k.site, k.device, k.venue_id, k.kid, int(k.revoked)) for k in registry.kiosks.values()]
        venues = sorted({k.venue_id for k in registry.kiosks.values() if k.venue_id})
        self.replace("fleet", rows)
        self.insert_missing_venues(venues)
        # A store an earlier centre wrote may hold places its kiosks' info gave unregistered venues.
        self.execute(CLEAR_UNREGISTERED_PLACES)
        self.refresh_scan_days()  # a revoked kiosk's scans no longer count for its venue
        self.refresh_rollup()  # nor in the district's figures

    def refresh_rollup(self, snapshot_day: str | None = None) -> None:
        """Recompute the rollup (kiosk.centre.rollup) and, given a day, snapshot the venue registry for it."""
        with self.exclusive_rollup() as x:
            rollup.recompute(x)
            if snapshot_day is not None:
                rollup.snapshot(x, snapshot_day)

    def exclusive_rollup(self):
        """A context manager: one transaction holding the rollup's lock (no ingest writes meanwhile)."""
        raise NotImplementedError

    def replace(self, table: str, rows: list[tuple]) -> None:
        raise NotImplementedError

    def insert_missing_venues(self, venue_ids: Iterable[str]) -> None:
        raise NotImplementedError

    def import_venues(self, venues: Iterable[Venue], day: str | None = None) -> dict:
        """Upsert the venue registry (``registered = 1``); returns what matched (kiosks by venue id).

        ``day``: the city's local day the registry is loaded on (its snapshot in ``registry_history``;
        default: this machine's local date). The rollup is recomputed: a venue may have moved ward.
        """
        rows = [(*v.row(), 1) for v in venues]
        self.upsert_venues(rows)
        self.refresh_rollup(day or date.today().isoformat())
        return self.registry_summary()

    def upsert_venues(self, rows: list[tuple]) -> None:
        raise NotImplementedError

    def registry_summary(self) -> dict:
        r = self.query("SELECT (SELECT COUNT(*) FROM venues WHERE registered = 1) AS venues, "
                       "(SELECT COUNT(*) FROM fleet f JOIN venues v ON v.venue_id = f.venue_id "
                       " WHERE v.registered = 1 AND f.revoked = 0) AS kiosks_matched, "
                       "(SELECT COUNT(*) FROM fleet f LEFT JOIN venues v ON v.venue_id = f.venue_id "
                       " WHERE (v.registered IS NULL OR v.registered = 0) AND f.revoked = 0) AS kiosks_unknown_venue")
        return r[0]

    def prune(self, today: str, keep_days: int = 120, keep_hourly_days: int = 8) -> None:
        """Forget history older than ``keep_days`` (at least 90) and hourly curves older than a week."""
        keep_days = max(90, keep_days)
        d = date.fromisoformat(today)
        self.execute("DELETE FROM daily WHERE day < ?", ((d - timedelta(days=keep_days)).isoformat(),))
        self.execute("DELETE FROM hourly WHERE day < ?", ((d - timedelta(days=keep_hourly_days)).isoformat(),))
        cut = (d - timedelta(days=keep_days)).isoformat()
        self.execute("DELETE FROM rollup_daily WHERE day < ?", (cut,))
        # The registry's snapshots before the cut, except the one that still holds on the first day kept.
        self.execute("DELETE FROM registry_history WHERE day < (SELECT MAX(day) FROM registry_history "
                     "WHERE day <= ?)", (cut,))


class SQLiteStore(Store):
    """One file (or memory) and one process: the embedded default."""

    dialect = "sqlite"

    def __init__(self, path: str | Path = ":memory:", migrate: bool = True):
        self.url = self.path = str(path)
        try:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=10)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # rebuilt from retained messages after a crash
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"cannot open {self.path}: {exc}") from None
        self._lock = threading.RLock()
        if migrate:
            self.migrate()
        self._inode = _inode(self.path)

    def execute(self, sql, params=()):
        with self._lock:
            self._db.execute(sql, params)

    @contextlib.contextmanager
    def exclusive(self):
        # BEGIN IMMEDIATE takes SQLite's write lock at once: another process opening the store waits
        # here (up to the busy timeout), then finds the schema migrated.
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def probe(self, timeout=2.0):
        if self.path == ":memory:":
            with self._lock:
                self._probe(self._db)
            return
        # The file this process opened must still be the file at its path: one deleted or replaced under
        # a running centre takes writes nobody will read.
        if _inode(self.path) != self._inode:
            raise StoreError(f"{self.path} is no longer the file this centre opened")
        db = sqlite3.connect(f"file:{_uri_path(self.path)}?mode=rw", uri=True, isolation_level=None,
                             timeout=timeout)
        try:
            self._probe(db)
        finally:
            db.close()

    @staticmethod
    def _probe(db) -> None:
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute("INSERT INTO readiness_probe (at) VALUES (?)", (time.time(),))
        finally:
            db.execute("ROLLBACK")

    def query(self, sql, params=()):
        with self._lock:
            cur = self._db.execute(sql, params)
            names = [d[0] for d in cur.description]
            return [dict(zip(names, r)) for r in cur.fetchall()]

    def _tx(self, fn) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                fn(self._db)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def write_rows(self, rows):
        def go(db):
            # Read before the counts are written: the rollup adds what changes (kiosk.centre.rollup).
            add = rollup.deltas(lambda sql, p: db.execute(sql, p).fetchall(), rows["daily"])
            for table in WRITE_ORDER:
                if rows[table]:
                    db.executemany(_insert(table, *UPSERT_TAILS[table]), rows[table])
            db.executemany(ADVANCE_SCAN_DAY, [(day, venue, day) for venue, day in rows["venue_scans"]])
            db.executemany(rollup.UPSERT, add)
        self._tx(go)

    def exclusive_rollup(self):
        return self.exclusive()  # BEGIN IMMEDIATE: SQLite's one writer

    def replace(self, table, rows):
        cols = columns(table)

        def go(db):
            db.execute(f"DELETE FROM {table}")
            db.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' * len(cols))})", rows)
        self._tx(go)

    def insert_missing_venues(self, venue_ids):
        self._tx(lambda db: db.executemany("INSERT INTO venues (venue_id) VALUES (?) ON CONFLICT DO NOTHING",
                                           [(v,) for v in venue_ids]))

    def upsert_venues(self, rows):
        sql = _insert("venues", ("venue_id",), "DO UPDATE SET " + _set("venues", ("venue_id",)))
        self._tx(lambda db: db.executemany(sql, rows))

    def close(self):
        with self._lock:
            self._db.close()


class PostgresStore(Store):
    """PostgreSQL (psycopg 3): several ingest workers and dashboard processes share it.

    Writes go through COPY into per-connection temporary tables and one
    ``INSERT ... SELECT ... ON CONFLICT`` per table: a batch of thousands of rows
    is a handful of round trips. Each thread has its own connection.
    """

    dialect = "postgres"

    def __init__(self, url: str, migrate: bool = True):
        import psycopg

        self.url = url
        self._psycopg = psycopg
        self._local = threading.local()
        self._all: list = []
        self._lock = threading.Lock()
        try:
            self._conn()
        except psycopg.Error as exc:
            raise StoreError(f"cannot connect to PostgreSQL: {str(exc).splitlines()[0]}") from None
        if migrate:
            self.migrate()

    def _conn(self):
        c = getattr(self._local, "conn", None)
        if c is None or c.closed:
            c = self._psycopg.connect(self.url, autocommit=True)
            # JIT compiles the inspection and overview queries for seconds to save milliseconds (measured:
            # 2.7 s of a 4 s query at 200,000 venues): these are interactive queries, never worth it.
            c.execute("SET jit = off")
            self._local.conn = c
            self._local.staged = False
            with self._lock:
                self._all.append(c)
        return c

    @contextlib.contextmanager
    def exclusive(self):
        conn = self._conn()
        with conn.transaction():
            # Workers starting together: one migrates, the others wait here and then find nothing to do.
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            yield self

    def probe(self, timeout=2.0):
        conn = self._psycopg.connect(self.url, connect_timeout=max(1, round(timeout)))
        try:
            with conn.transaction(force_rollback=True):
                conn.execute(f"SET LOCAL statement_timeout = {int(timeout * 1000)}")
                conn.execute("INSERT INTO readiness_probe (at) VALUES (%s)", (time.time(),))
        finally:
            conn.close()

    @staticmethod
    def _sql(sql: str) -> str:
        return sql.replace("?", "%s")

    def _once_more(self, sql, params):
        """Run one autocommit statement; again on a new connection if this thread's one died while idle.

        A connection found closed when the statement failed was dead before it was sent (the server
        restarted since its last use), so nothing ran and asking again is safe: a dashboard answers at
        once when the database is back, reads and its session writes alike.
        """
        try:
            return self._conn().execute(self._sql(sql), params)
        except self._psycopg.OperationalError:
            conn = getattr(self._local, "conn", None)
            if conn is None or not conn.closed:  # no connection could be made, or the statement itself failed
                raise
            return self._conn().execute(self._sql(sql), params)

    def execute(self, sql, params=()):
        self._once_more(sql, params)

    def query(self, sql, params=()):
        cur = self._once_more(sql, params)
        names = [d.name for d in cur.description]
        return [dict(zip(names, (_plain(v) if isinstance(v, Decimal) else v for v in r))) for r in cur.fetchall()]

    def stream(self, sql, params=(), size=2000):
        # A server-side cursor on a connection of its own: the export never holds the city in memory, and
        # the response may pull each chunk from another thread.
        conn = self._psycopg.connect(self.url)
        try:
            conn.execute("SET jit = off")
            with conn.transaction(), conn.cursor(name="kiosk_centre_stream") as cur:
                cur.execute(self._sql(sql), params)
                names = None
                while rows := cur.fetchmany(size):
                    names = names or [d.name for d in cur.description]
                    for r in rows:
                        yield dict(zip(names, (_plain(v) if isinstance(v, Decimal) else v for v in r)))
        finally:
            conn.close()

    def _stage(self, conn) -> None:
        if not self._local.staged:
            for table in WRITE_ORDER:
                conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS s_{table} (LIKE {table}) ON COMMIT DELETE ROWS")
            conn.execute("CREATE TEMP TABLE IF NOT EXISTS s_venue_scans (venue_id TEXT, day TEXT) ON COMMIT DELETE ROWS")
            self._local.staged = True

    def write_rows(self, rows):
        conn = self._conn()
        self._stage(conn)
        with conn.transaction():
            cur = conn.cursor()
            add = []
            if rows["daily"]:
                # One writer of the counts at a time from here to the commit: each worker reads the rows it
                # replaces and adds the difference to the rollup (two at once would both add it).
                cur.execute("SELECT pg_advisory_xact_lock(%s)", (rollup.ROLLUP_LOCK,))
                add = rollup.deltas(lambda sql, p: cur.execute(self._sql(sql), p).fetchall(), rows["daily"])
            for table in WRITE_ORDER:
                if not rows[table]:
                    continue
                cols = ", ".join(columns(table))
                with cur.copy(f"COPY s_{table} ({cols}) FROM STDIN") as cp:
                    for r in rows[table]:
                        cp.write_row(r)
                keys, tail = UPSERT_TAILS[table]
                cur.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM s_{table} "
                            f"ON CONFLICT ({', '.join(keys)}) {tail}")
            if rows["venue_scans"]:
                with cur.copy("COPY s_venue_scans (venue_id, day) FROM STDIN") as cp:
                    for r in rows["venue_scans"]:
                        cp.write_row(r)
                cur.execute("UPDATE venues v SET last_scan_day = s.day FROM s_venue_scans s "
                            "WHERE v.venue_id = s.venue_id AND (v.last_scan_day IS NULL OR v.last_scan_day < s.day)")
            if add:
                cur.executemany(self._sql(rollup.UPSERT), add)

    @contextlib.contextmanager
    def exclusive_rollup(self):
        conn = self._conn()
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (rollup.ROLLUP_LOCK,))
            yield self

    def replace(self, table, rows):
        conn = self._conn()
        with conn.transaction():
            # Workers starting together load the registry at once: one at a time, or the second's DELETE
            # (its snapshot older than the first's rows) leaves them for its COPY to collide with.
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (rollup.ROLLUP_LOCK,))
            conn.execute(f"DELETE FROM {table}")
            with conn.cursor().copy(f"COPY {table} FROM STDIN") as cp:
                for r in rows:
                    cp.write_row(r)

    def insert_missing_venues(self, venue_ids):
        conn = self._conn()
        with conn.transaction():
            conn.cursor().executemany("INSERT INTO venues (venue_id) VALUES (%s) ON CONFLICT DO NOTHING",
                                      [(v,) for v in venue_ids])

    def upsert_venues(self, rows):
        conn = self._conn()
        cols = ", ".join(columns("venues"))
        with conn.transaction():
            conn.execute("CREATE TEMP TABLE IF NOT EXISTS s_venue_import (LIKE venues) ON COMMIT DROP")
            with conn.cursor().copy(f"COPY s_venue_import ({cols}) FROM STDIN") as cp:
                for r in rows:
                    cp.write_row(r)
            conn.execute(f"INSERT INTO venues ({cols}) SELECT {cols} FROM s_venue_import ON CONFLICT (venue_id) "
                         "DO UPDATE SET " + _set("venues", ("venue_id",)))

    def close(self):
        with self._lock:
            for c in self._all:
                c.close()
            self._all.clear()


def _inode(path: str) -> tuple | None:
    """(device, inode) of a store file; None in memory or when it is gone."""
    if path == ":memory:":
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def _uri_path(path: str) -> str:
    from urllib.parse import quote

    return quote(os.path.abspath(path))


def _plain(v: Decimal) -> int | None:
    """A NUMERIC from PostgreSQL (a SUM of BIGINTs) as an int; None for NaN and infinities."""
    return int(v) if v.is_finite() else None


def open_store(url: str | Path = "", migrate: bool = True) -> Store:
    """``postgresql://...`` -> PostgreSQL; a path, ``sqlite:///path`` or empty (memory) -> SQLite.

    The store is brought to this centre's schema (:mod:`kiosk.centre.migrations`) unless ``migrate``
    is False (``kiosk centre schema``, which only looks).
    """
    url = str(url or ":memory:")
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresStore(url, migrate)
    if url.startswith("sqlite:///"):
        url = url[len("sqlite:///"):] or ":memory:"
    elif "://" in url:
        raise StoreError(f"--db {url!r}: use a file path, sqlite:///path or postgresql://...")
    return SQLiteStore(url, migrate)


def now() -> float:
    return time.time()
