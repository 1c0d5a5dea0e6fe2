"""The ledger's SQLite schema: numbered migration steps (``PRAGMA user_version`` is the last applied).

Each step is DDL text applied once, in its own transaction, in order; a new
step is one more line at the end of :data:`STEPS` (never edit an applied one).
"""

from __future__ import annotations

import sqlite3

from kiosk.door.record import visits

# seq is the device sequence number: AUTOINCREMENT so a number is never reused,
# even after old rows are pruned or the table is emptied.
STEP_1 = """
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


# Step 2: the duplicate window survives restarts. One row per person admitted (not a duplicate)
# inside the window, by pseudonym only; ``at`` is the wall-clock Unix time of that admission.
# ``ledger_probe`` is written and emptied by ``Ledger.probe()`` to find out whether the disk takes writes.
STEP_2 = """
CREATE TABLE IF NOT EXISTS admitted (
    pseudonym TEXT PRIMARY KEY,
    at REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS admitted_at ON admitted(at);
CREATE TABLE IF NOT EXISTS ledger_probe (n INTEGER PRIMARY KEY, pad BLOB);
"""

STEPS: list[str] = [
    STEP_1,
    STEP_2,
    visits.SCHEMA_STEP,  # 3: visit-record columns and the trace audit
    visits.SCHEMA_STEP_SUBJECT,  # 4: a health declaration's subject and issuer (visit_log_fields: subject_id)
]
VERSION = len(STEPS)
DDL = STEP_1  # the first schema, as older tools knew it


def migrate(db: sqlite3.Connection) -> None:
    """Create or upgrade the schema in place, one numbered step per transaction."""
    (version,) = db.execute("PRAGMA user_version").fetchone()
    if version > VERSION:
        raise sqlite3.DatabaseError(f"ledger schema {version} is newer than this software ({VERSION})")
    for number in range(version + 1, VERSION + 1):
        db.executescript(f"BEGIN IMMEDIATE;\n{STEPS[number - 1]}\nPRAGMA user_version = {number};\nCOMMIT;")
