"""The centre store's schema, as numbered migrations (``schema_version`` holds the ones applied).

Opening a store (:func:`kiosk.centre.store.open_store`) brings it to :data:`LATEST`: the
migrations it has not had are applied in order, in one transaction, by whichever process gets
there first. The others wait and then find nothing to do: PostgreSQL's advisory lock
(``pg_advisory_xact_lock``) or SQLite's write lock (``BEGIN IMMEDIATE``) is taken before the
version is read again. A migration that fails leaves the store as it was (PostgreSQL and SQLite
both roll DDL back) and the process refuses to start, naming the migration. A store newer than
this code (a centre rolled back after an upgrade) is refused rather than written with old rules.

Migration 1 is the schema of the first release (commit 4e069f9): a store that release made has
every table already (they are created ``IF NOT EXISTS``) and simply gains ``schema_version``.
Later numbers are what each release added.

Adding a migration (a new table, column or index; a data fix):

1. write ``def m0007_what_it_adds(x):`` below, calling ``x.execute(sql)`` (``?`` placeholders;
   ``x.dialect`` is ``"sqlite"`` or ``"postgres"`` where they differ) and ``x.query(sql)``;
2. append it to :data:`MIGRATIONS` (its number is its place in the list; the test checks the name);
3. change :data:`kiosk.centre.store.TABLES` to match when the write path uses the new columns.

Never edit a migration that was released: stores in the field have applied it. The SQL here is
written out in full, not built from ``store.TABLES``, so that a later change to the store's
description cannot change what an old migration did. tests/test_centre_migrations.py checks that
a store made by the migrations has exactly the columns ``store.TABLES`` describes, on SQLite and
PostgreSQL, and that a store of the first release upgrades to the same schema as a fresh one.
"""

from __future__ import annotations

import time
from typing import Callable

from kiosk.errors import KioskValueError


class SchemaError(KioskValueError):
    """A store this centre cannot bring to its schema (newer than it, or a migration failed)."""


VERSION_TABLE = ("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                 "applied_at DOUBLE PRECISION NOT NULL)")


def m0001_release_schema(x) -> None:
    """The schema of the first release (4e069f9): registries, kiosk state, history, refusals."""
    hours = ", ".join(f"h{h:02d} BIGINT NOT NULL" for h in range(24))
    for sql in (
        "CREATE TABLE IF NOT EXISTS fleet (site TEXT NOT NULL, device TEXT NOT NULL, venue_id TEXT NOT NULL, "
        "kid TEXT NOT NULL, revoked INTEGER NOT NULL, PRIMARY KEY (site, device))",
        "CREATE TABLE IF NOT EXISTS venues (venue_id TEXT PRIMARY KEY, name TEXT NOT NULL DEFAULT '', "
        "address TEXT NOT NULL DEFAULT '', province TEXT NOT NULL DEFAULT '', district TEXT NOT NULL DEFAULT '', "
        "ward TEXT NOT NULL DEFAULT '', province_code TEXT NOT NULL DEFAULT '', "
        "district_code TEXT NOT NULL DEFAULT '', ward_code TEXT NOT NULL DEFAULT '', "
        "venue_qr_sha256 TEXT NOT NULL DEFAULT '', registered INTEGER NOT NULL DEFAULT 0, last_scan_day TEXT)",
        "CREATE TABLE IF NOT EXISTS kiosk_info (site TEXT NOT NULL, device TEXT NOT NULL, venue_id TEXT NOT NULL, "
        "info_venue_id TEXT NOT NULL, venue_name TEXT NOT NULL, address TEXT NOT NULL, province TEXT NOT NULL, "
        "district TEXT NOT NULL, ward TEXT NOT NULL, province_code TEXT NOT NULL, district_code TEXT NOT NULL, "
        "ward_code TEXT NOT NULL, venue_qr_sha256 TEXT NOT NULL, kid TEXT NOT NULL, version TEXT NOT NULL, "
        "info_ts DOUBLE PRECISION NOT NULL, PRIMARY KEY (site, device))",
        "CREATE TABLE IF NOT EXISTS kiosk_status (site TEXT NOT NULL, device TEXT NOT NULL, status TEXT NOT NULL, "
        "status_at DOUBLE PRECISION NOT NULL, offline_first_seen DOUBLE PRECISION, PRIMARY KEY (site, device))",
        "CREATE TABLE IF NOT EXISTS kiosk_health (site TEXT NOT NULL, device TEXT NOT NULL, camera_ok INTEGER, "
        "camera_error TEXT, display_ok INTEGER, clock_synced INTEGER, trust_stale INTEGER, "
        "trust_age_hours DOUBLE PRECISION, degraded TEXT, health_json TEXT, health_ts DOUBLE PRECISION NOT NULL, "
        "camera_since DOUBLE PRECISION, display_since DOUBLE PRECISION, PRIMARY KEY (site, device))",
        "CREATE TABLE IF NOT EXISTS kiosk_seen (site TEXT NOT NULL, device TEXT NOT NULL, "
        "last_ts DOUBLE PRECISION NOT NULL, last_seq BIGINT NOT NULL, last_scan DOUBLE PRECISION, "
        "PRIMARY KEY (site, device))",
        "CREATE TABLE IF NOT EXISTS daily (site TEXT NOT NULL, device TEXT NOT NULL, day TEXT NOT NULL, "
        "venue_id TEXT NOT NULL, accepted BIGINT NOT NULL, rejected BIGINT NOT NULL, duplicates BIGINT NOT NULL, "
        "overrides BIGINT NOT NULL, unique_visitors BIGINT NOT NULL, dropped_events BIGINT NOT NULL, "
        "seq BIGINT NOT NULL, last_scan DOUBLE PRECISION, ts DOUBLE PRECISION NOT NULL, "
        "PRIMARY KEY (site, device, day))",
        f"CREATE TABLE IF NOT EXISTS hourly (site TEXT NOT NULL, device TEXT NOT NULL, day TEXT NOT NULL, "
        f"seq BIGINT NOT NULL, {hours}, PRIMARY KEY (site, device, day))",
        "CREATE TABLE IF NOT EXISTS refused (topic TEXT NOT NULL, reason TEXT NOT NULL, n BIGINT NOT NULL, "
        "last_at DOUBLE PRECISION NOT NULL, PRIMARY KEY (topic, reason))",
        "CREATE INDEX IF NOT EXISTS daily_day_venue ON daily (day, venue_id)",
        "CREATE INDEX IF NOT EXISTS venues_district_ward ON venues (district, ward)",
        "CREATE INDEX IF NOT EXISTS fleet_venue ON fleet (venue_id)",
        "CREATE INDEX IF NOT EXISTS venues_inspection ON venues (district, ward, name, venue_id) "
        "WHERE registered = 1",
        "CREATE INDEX IF NOT EXISTS venues_unregistered ON venues (venue_id) WHERE registered = 0",
        "CREATE INDEX IF NOT EXISTS status_offline ON kiosk_status (site, device) WHERE status = 'offline'",
        "CREATE INDEX IF NOT EXISTS seen_last_ts ON kiosk_seen (last_ts)",
        "CREATE INDEX IF NOT EXISTS health_problem ON kiosk_health (site, device) "
        "WHERE camera_ok = 0 OR display_ok = 0 OR clock_synced = 0 OR trust_stale = 1",
    ):
        x.execute(sql)


def m0002_implausible_kiosks(x) -> None:
    """Kiosks that signed a claim no kiosk could make (issue 19.1): the inspection list's ``implausible`` rows."""
    # IF NOT EXISTS here and below: a store made by a development build between the releases has them already.
    x.execute("CREATE TABLE IF NOT EXISTS kiosk_implausible (site TEXT NOT NULL, device TEXT NOT NULL, "
              "first_at DOUBLE PRECISION NOT NULL, last_at DOUBLE PRECISION NOT NULL, n BIGINT NOT NULL, "
              "what TEXT NOT NULL, PRIMARY KEY (site, device))")


def m0003_web_sessions(x) -> None:
    """The dashboard's server-side sessions (kiosk.centre.sessions): the SHA-256 of each id, never the id."""
    x.execute("CREATE TABLE IF NOT EXISTS web_sessions (id_hash TEXT PRIMARY KEY, account TEXT NOT NULL, "
              "stamp TEXT NOT NULL, csrf TEXT NOT NULL, created DOUBLE PRECISION NOT NULL, "
              "seen DOUBLE PRECISION NOT NULL)")
    x.execute("CREATE INDEX IF NOT EXISTS web_sessions_account ON web_sessions (account)")
    x.execute("CREATE INDEX IF NOT EXISTS web_sessions_seen ON web_sessions (seen)")


def m0004_readiness_probe(x) -> None:
    """A table the readiness probe writes a row into and rolls it back (kiosk.centre.health): never holds a row."""
    x.execute("CREATE TABLE IF NOT EXISTS readiness_probe (at DOUBLE PRECISION NOT NULL)")


def m0005_city_rollup(x) -> None:
    """The figures per day x district x ward the ingest keeps (``rollup_daily``), the fleet per ward
    (``rollup_fleet``) and the venue registry's history (``registry_history``), all filled from what the
    store holds (kiosk.centre.rollup)."""
    from kiosk.centre import rollup

    x.execute("CREATE TABLE IF NOT EXISTS rollup_daily (day TEXT NOT NULL, district TEXT NOT NULL, "
              "ward TEXT NOT NULL, scans DOUBLE PRECISION NOT NULL, accepted DOUBLE PRECISION NOT NULL, "
              "rejected DOUBLE PRECISION NOT NULL, duplicates DOUBLE PRECISION NOT NULL, "
              "overrides DOUBLE PRECISION NOT NULL, unique_visitors DOUBLE PRECISION NOT NULL, "
              "venues_with_scans DOUBLE PRECISION NOT NULL, PRIMARY KEY (day, district, ward))")
    x.execute("CREATE TABLE IF NOT EXISTS registry_history (day TEXT NOT NULL, district TEXT NOT NULL, "
              "ward TEXT NOT NULL, venues_with_code BIGINT NOT NULL, PRIMARY KEY (day, district, ward))")
    x.execute("CREATE TABLE IF NOT EXISTS rollup_fleet (district TEXT NOT NULL, ward TEXT NOT NULL, "
              "kiosks BIGINT NOT NULL, venues_with_kiosk BIGINT NOT NULL, PRIMARY KEY (district, ward))")
    rollup.recompute(x)
    # The registry as it is now stands for every day before: the earliest history a store can have.
    first = x.query("SELECT MIN(day) AS day FROM daily")[0]["day"]
    if x.query("SELECT COUNT(*) AS n FROM venues WHERE registered = 1")[0]["n"]:
        rollup.snapshot(x, first if isinstance(first, str) and first else "0001-01-01")
def m0006_campaigns(x) -> None:
    """Inspection campaigns (kiosk.centre.campaigns): the campaign, its team, its visit list, the visits
    recorded at the door (kiosk.centre.visits) and what the venue registry says of a venue's kind and place."""
    x.execute("CREATE TABLE IF NOT EXISTS venue_places (venue_id TEXT PRIMARY KEY, kind TEXT NOT NULL DEFAULT '', "
              "lat DOUBLE PRECISION, lon DOUBLE PRECISION)")
    x.execute("CREATE INDEX IF NOT EXISTS venue_places_kind ON venue_places (kind)")
    x.execute("CREATE TABLE IF NOT EXISTS campaigns (campaign_id TEXT PRIMARY KEY, name TEXT NOT NULL, "
              "first_day TEXT NOT NULL, last_day TEXT NOT NULL, districts TEXT NOT NULL, kinds TEXT NOT NULL, "
              "sample_share DOUBLE PRECISION NOT NULL, created_by TEXT NOT NULL, "
              "created_at DOUBLE PRECISION NOT NULL)")
    x.execute("CREATE TABLE IF NOT EXISTS campaign_members (campaign_id TEXT NOT NULL, account TEXT NOT NULL, "
              "PRIMARY KEY (campaign_id, account))")
    x.execute("CREATE TABLE IF NOT EXISTS campaign_plan (campaign_id TEXT NOT NULL, venue_id TEXT NOT NULL, "
              "district TEXT NOT NULL, inspector TEXT NOT NULL, day TEXT NOT NULL, reasons TEXT NOT NULL, "
              "PRIMARY KEY (campaign_id, venue_id))")
    x.execute("CREATE INDEX IF NOT EXISTS campaign_plan_inspector_day ON campaign_plan (inspector, day)")
    x.execute("CREATE TABLE IF NOT EXISTS visits (visit_id TEXT PRIMARY KEY, campaign_id TEXT NOT NULL, "
              "venue_id TEXT NOT NULL, inspector TEXT NOT NULL, at DOUBLE PRECISION NOT NULL, day TEXT NOT NULL, "
              "code_created INTEGER, posted_entrance INTEGER, posting_ok INTEGER, visitors_guided INTEGER, "
              "scanning INTEGER, kiosk_working INTEGER, code_check TEXT NOT NULL DEFAULT '', "
              "photo_sha256 TEXT NOT NULL DEFAULT '', outcome TEXT NOT NULL, note TEXT NOT NULL DEFAULT '', "
              "lat DOUBLE PRECISION, lon DOUBLE PRECISION, accuracy DOUBLE PRECISION, "
              "received_at DOUBLE PRECISION NOT NULL)")
    x.execute("CREATE INDEX IF NOT EXISTS visits_campaign_venue ON visits (campaign_id, venue_id, at)")
    x.execute("CREATE INDEX IF NOT EXISTS visits_venue_at ON visits (venue_id, at)")


MIGRATIONS: tuple[Callable, ...] = (
    m0001_release_schema,
    m0002_implausible_kiosks,
    m0003_web_sessions,
    m0004_readiness_probe,
    m0005_city_rollup,
    m0006_campaigns,
)
LATEST = len(MIGRATIONS)


def name_of(step: Callable) -> str:
    """``m0003_web_sessions`` -> ``web_sessions``."""
    return step.__name__.split("_", 1)[1]


def version_of(store) -> int:
    """The highest migration applied to ``store`` (0: none, a store of the first release or an empty one)."""
    if store.dialect == "sqlite":
        found = store.query("SELECT 1 AS one FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'")
    else:
        found = store.query("SELECT 1 AS one WHERE to_regclass('schema_version') IS NOT NULL")
    if not found:
        return 0
    return int(store.query("SELECT COALESCE(MAX(version), 0) AS v FROM schema_version")[0]["v"])


def history(store) -> list[dict]:
    """The migrations applied to ``store``: version, name, applied_at (epoch seconds), oldest first."""
    if version_of(store) == 0:
        return []
    return store.query("SELECT version, name, applied_at FROM schema_version ORDER BY version")


def upgrade(store, clock=time.time) -> list[int]:
    """Apply the migrations ``store`` lacks, in one transaction under the store's lock; their numbers.

    ``store`` provides ``dialect``, ``query`` and ``exclusive()`` (a context manager: one transaction
    holding the lock that keeps other processes from migrating at the same time; it yields an executor).
    """
    have = version_of(store)  # without the lock: a store already up to date costs one query or two
    if have == LATEST:
        return []
    if have > LATEST:
        raise SchemaError(_newer(have))
    with store.exclusive() as x:
        x.execute(VERSION_TABLE)
        have = int(x.query("SELECT COALESCE(MAX(version), 0) AS v FROM schema_version")[0]["v"])
        if have > LATEST:
            raise SchemaError(_newer(have))
        applied = []
        for number, step in enumerate(MIGRATIONS[have:], start=have + 1):
            try:
                step(x)
            except Exception as exc:
                raise SchemaError(f"store schema: migration {number} ({name_of(step)}) failed, nothing was "
                                  f"changed: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from exc
            x.execute("INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)",
                      (number, name_of(step), clock()))
            applied.append(number)
    return applied


def _newer(have: int) -> str:
    return (f"store schema version {have} is newer than this centre's ({LATEST}): a newer centre upgraded it; "
            "run that version (or restore a backup made before the upgrade)")
