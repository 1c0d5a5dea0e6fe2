"""The fleet picture on disk (SQLite), written in batches, mergeable by several monitors.

Each flush is one transaction over the kiosks changed since the last one.
The upsert keeps the newest figures whoever writes them: counts by
``(day, seq)``, status and health by arrival time, events by the highest
sequence number, so monitors sharing a subscription (``$share/...``) can
share one database file. Health lives in its own table, written only for
kiosks whose health message arrived since the last flush (about one a minute
per kiosk), so the busy counts/events upsert stays as narrow as it was.
``synchronous=NORMAL``: unlike the kiosk's ledger, everything here is
rebuilt from the brokers' retained messages after a crash.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Iterable, NamedTuple

from kiosk.monitor.fleet import KioskState

_COLUMNS = ("site", "device", "venue_id", "venue_name", "online", "since", "status_at", "day", "accepted", "rejected",
            "duplicates", "overrides", "unique_visitors", "dropped_events", "counts_seq", "last_seq", "events_seen",
            "last_scan")

_HEALTH_COLUMNS = ("site", "device", "camera_ok", "camera_since", "camera_error", "clock_synced", "health_json",
                   "health_at")
_HEALTH_VALUES = ("camera_ok", "camera_error", "clock_synced", "health_json")

_NEWER_COUNTS = "(excluded.day > kiosks.day OR (excluded.day = kiosks.day AND excluded.counts_seq >= kiosks.counts_seq))"
_COUNT_COLS = ("day", "accepted", "rejected", "duplicates", "overrides", "unique_visitors", "dropped_events", "counts_seq")

UPSERT = (
    f"INSERT INTO kiosks ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))}) "
    "ON CONFLICT (site, device) DO UPDATE SET "
    "venue_id = CASE WHEN excluded.venue_id != '' THEN excluded.venue_id ELSE kiosks.venue_id END, "
    "venue_name = CASE WHEN excluded.venue_id != '' THEN excluded.venue_name ELSE kiosks.venue_name END, "
    "online = CASE WHEN excluded.status_at >= kiosks.status_at THEN excluded.online ELSE kiosks.online END, "
    "since = CASE WHEN excluded.status_at < kiosks.status_at THEN kiosks.since "
    "             WHEN excluded.online IS kiosks.online AND kiosks.since IS NOT NULL THEN MIN(kiosks.since, excluded.since) "
    "             ELSE excluded.since END, "
    "status_at = MAX(kiosks.status_at, excluded.status_at), "
    + ", ".join(f"{c} = CASE WHEN {_NEWER_COUNTS} THEN excluded.{c} ELSE kiosks.{c} END" for c in _COUNT_COLS) + ", "
    "last_seq = MAX(kiosks.last_seq, excluded.last_seq), "
    "events_seen = kiosks.events_seen + excluded.events_seen, "  # the batch's new events only (see save)
    "last_scan = MAX(COALESCE(kiosks.last_scan, 0), COALESCE(excluded.last_scan, 0))"
)

HEALTH_UPSERT = (
    f"INSERT INTO health ({', '.join(_HEALTH_COLUMNS)}) VALUES ({', '.join('?' * len(_HEALTH_COLUMNS))}) "
    "ON CONFLICT (site, device) DO UPDATE SET "
    + ", ".join(f"{c} = CASE WHEN excluded.health_at >= health.health_at THEN excluded.{c} ELSE health.{c} END"
                for c in _HEALTH_VALUES) + ", "
    "camera_since = CASE WHEN excluded.health_at < health.health_at THEN health.camera_since "
    "                    WHEN excluded.camera_ok IS health.camera_ok AND health.camera_since IS NOT NULL "
    "                         THEN MIN(health.camera_since, excluded.camera_since) "
    "                    ELSE excluded.camera_since END, "
    "health_at = MAX(health.health_at, excluded.health_at)"
)

DDL = f"""
CREATE TABLE IF NOT EXISTS kiosks (
    site TEXT NOT NULL, device TEXT NOT NULL, venue_id TEXT NOT NULL DEFAULT '', venue_name TEXT NOT NULL DEFAULT '',
    online INTEGER, since REAL, status_at REAL NOT NULL DEFAULT 0, day TEXT NOT NULL DEFAULT '',
    accepted INTEGER NOT NULL DEFAULT 0, rejected INTEGER NOT NULL DEFAULT 0, duplicates INTEGER NOT NULL DEFAULT 0,
    overrides INTEGER NOT NULL DEFAULT 0, unique_visitors INTEGER NOT NULL DEFAULT 0,
    dropped_events INTEGER NOT NULL DEFAULT 0, counts_seq INTEGER NOT NULL DEFAULT -1,
    last_seq INTEGER NOT NULL DEFAULT 0, events_seen INTEGER NOT NULL DEFAULT 0, last_scan REAL,
    PRIMARY KEY (site, device)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS health (
    site TEXT NOT NULL, device TEXT NOT NULL, camera_ok INTEGER, camera_since REAL,
    camera_error TEXT NOT NULL DEFAULT '', clock_synced INTEGER, health_json TEXT NOT NULL DEFAULT '',
    health_at REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (site, device)
) WITHOUT ROWID;
"""


class Rows(NamedTuple):
    """A flush's worth of rows: every changed kiosk, and the health of those with a new health message."""

    kiosks: list[tuple]
    health: list[tuple]


class FleetStore:
    """SQLite file of :class:`KioskState` rows."""

    def __init__(self, path: str | Path = ":memory:"):
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=10)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(DDL)
        self._lock = threading.Lock()

    def save(self, kiosks: Iterable[KioskState]) -> int:
        """Write changed kiosks in one transaction; returns how many rows."""
        return self.write(self.rows(kiosks))

    @staticmethod
    def rows(kiosks: Iterable[KioskState]) -> Rows:
        """Snapshot kiosks as rows (cheap: call it under the fleet's lock, write outside it)."""
        rows, health = [], []
        for k in kiosks:
            new, k.events_new = k.events_new, 0
            rows.append((k.site, k.device, k.venue_id, k.venue_name, None if k.online is None else int(k.online),
                         k.since, k.status_at, k.day, k.accepted, k.rejected, k.duplicates, k.overrides,
                         k.unique_visitors, k.dropped_events, k.counts_seq, k.last_seq, new, k.last_scan))
            if k.health_new:
                k.health_new = False
                health.append((k.site, k.device, int(k.camera_ok), k.camera_since, k.camera_error,
                               None if k.clock_synced is None else int(k.clock_synced), k.health_json, k.health_at))
        return Rows(rows, health)

    def write(self, rows: Rows) -> int:
        """Upsert rows from :meth:`rows` in one transaction; returns how many kiosks."""
        if not rows.kiosks and not rows.health:
            return 0
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(UPSERT, rows.kiosks)
                if rows.health:
                    self._db.executemany(HEALTH_UPSERT, rows.health)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return len(rows.kiosks)

    def kiosks(self) -> list[KioskState]:
        """Every kiosk known to this database (whichever monitor saw it)."""
        columns = _COLUMNS + _HEALTH_COLUMNS[2:]
        select = ", ".join([f"k.{c}" for c in _COLUMNS] + [f"h.{c}" for c in _HEALTH_COLUMNS[2:]])
        with self._lock:
            rows = self._db.execute(f"SELECT {select} FROM kiosks k LEFT JOIN health h USING (site, device) "
                                    "ORDER BY site, device").fetchall()
        out = []
        for r in rows:
            d = dict(zip(columns, r))
            for flag in ("online", "camera_ok", "clock_synced"):
                d[flag] = None if d[flag] is None else bool(d[flag])
            d["camera_error"] = d["camera_error"] or ""
            d["health_json"] = d["health_json"] or ""
            d["health_at"] = d["health_at"] or 0.0
            out.append(KioskState(**d))
        return out

    def close(self) -> None:
        with self._lock:
            self._db.close()
