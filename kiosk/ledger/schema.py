"""The ledger's SQLite schema (``PRAGMA user_version`` tracks it)."""

from __future__ import annotations

import sqlite3

from kiosk.ledger import visits

# seq is the device sequence number: AUTOINCREMENT so a number is never reused,
# even after old rows are pruned or the table is emptied.
DDL = """
CREATE TABLE IF NOT EXISTS checkins (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    at TEXT NOT NULL,
    day TEXT NOT NULL,
    verdict TEXT NOT NULL,
    reason TEXT NOT NULL,
    format TEXT NOT NULL,
    valid INTEGER NOT NULL,
    signed INTEGER NOT NULL,
    source TEXT NOT NULL,
    duplicate INTEGER NOT NULL,
    override INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS checkins_day ON checkins(day);
-- Daily counters: name is accepted, rejected, duplicates, overrides, unique_visitors,
-- dropped_events, reason:<code>, format:<name>, hour:<00..23>.
CREATE TABLE IF NOT EXISTS counters (
    day TEXT NOT NULL,
    name TEXT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (day, name)
) WITHOUT ROWID;
-- Who was counted today, by pseudonym only (never the raw identity); pruned after a day.
CREATE TABLE IF NOT EXISTS day_visitors (
    day TEXT NOT NULL,
    pseudonym TEXT NOT NULL,
    PRIMARY KEY (day, pseudonym)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS visits (
    seq INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    pseudonym TEXT,
    verdict TEXT NOT NULL,
    reason TEXT NOT NULL,
    format TEXT NOT NULL,
    name TEXT,
    birth_date TEXT,
    id_number TEXT
);
CREATE INDEX IF NOT EXISTS visits_at ON visits(at);
"""


# Numbered steps, applied once each in order; a file at version N has had steps 1..N.
STEPS: list[tuple[int, str]] = [
    (1, DDL),
    (3, visits.SCHEMA_STEP),
]
VERSION = max(n for n, _ in STEPS)


def migrate(db: sqlite3.Connection) -> None:
    """Create or upgrade the schema in place, one transaction per step."""
    (version,) = db.execute("PRAGMA user_version").fetchone()
    if version > VERSION:
        raise sqlite3.DatabaseError(f"ledger schema {version} is newer than this software ({VERSION})")
    for number, ddl in STEPS:
        if number > version:
            db.executescript(f"BEGIN IMMEDIATE;\n{ddl}\nPRAGMA user_version = {number};\nCOMMIT;")
