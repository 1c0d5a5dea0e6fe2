"""The fleet picture on disk (SQLite), written in batches, mergeable by several monitors.

Each flush is one transaction over the kiosks changed since the last one.
The upsert keeps the newest figures whoever writes them: counts by
``(day, seq)``, status by arrival time, events by the highest sequence
number, so monitors sharing a subscription (``$share/...``) can share one
database file. ``synchronous=NORMAL``: unlike the kiosk's ledger, everything
here is rebuilt from the brokers' retained messages after a crash.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Iterable

from kiosk.monitor.fleet import KioskState

_COLUMNS = ("site", "device", "venue_id", "venue_name", "online", "since", "status_at", "day", "accepted", "rejected",
            "duplicates", "overrides", "unique_visitors", "dropped_events", "counts_seq", "last_seq", "events_seen",
            "last_scan")

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
"""


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
    def rows(kiosks: Iterable[KioskState]) -> list[tuple]:
        """Snapshot kiosks as rows (cheap: call it under the fleet's lock, write outside it)."""
        rows = []
        for k in kiosks:
            new, k.events_new = k.events_new, 0
            rows.append((k.site, k.device, k.venue_id, k.venue_name, None if k.online is None else int(k.online),
                         k.since, k.status_at, k.day, k.accepted, k.rejected, k.duplicates, k.overrides,
                         k.unique_visitors, k.dropped_events, k.counts_seq, k.last_seq, new, k.last_scan))
        return rows

    def write(self, rows: list[tuple]) -> int:
        """Upsert rows from :meth:`rows` in one transaction."""
        if not rows:
            return 0
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(UPSERT, rows)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return len(rows)

    def kiosks(self) -> list[KioskState]:
        """Every kiosk known to this database (whichever monitor saw it)."""
        with self._lock:
            rows = self._db.execute(f"SELECT {', '.join(_COLUMNS)} FROM kiosks ORDER BY site, device").fetchall()
        out = []
        for r in rows:
            d = dict(zip(_COLUMNS, r))
            d["online"] = None if d["online"] is None else bool(d["online"])
            out.append(KioskState(**d))
        return out

    def close(self) -> None:
        with self._lock:
            self._db.close()
