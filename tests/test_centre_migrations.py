"""The store's schema is versioned (issue 23 item 4): numbered migrations, a store of the last release
upgraded in place, several processes migrating one store once, a newer store refused, a failed
migration leaving the store as it was. SQLite and a real PostgreSQL each time.

The store of the last release is made by that release's own code: ``git show 4e069f9:kiosk/centre/store.py``
loaded from a temporary file, writing a small signed city through its own upserts.
"""

from __future__ import annotations

import importlib.util
import multiprocessing as mp
import subprocess
import time
from pathlib import Path

import pytest

from kiosk.centre import migrations
from kiosk.centre.queries import Centre, Settings
from kiosk.centre.store import DERIVED, TABLES, StoreError, columns, open_store
from centre_helpers import announce_city, registry_of, small_city
from centre_pg import postgres_server  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent
RELEASE = "4e069f9"  # the last release: its store.py made the stores a city runs now


@pytest.fixture(params=["sqlite", "postgres"])
def url(request, tmp_path):
    if request.param == "sqlite":
        return str(tmp_path / "centre.sqlite3")
    return request.getfixturevalue("postgres_server").new_database()


def release_store_module(tmp_path: Path):
    """The last release's store module, from git history (its imports are today's: they did not change)."""
    src = subprocess.run(["git", "-C", str(ROOT), "show", f"{RELEASE}:kiosk/centre/store.py"],
                         capture_output=True, text=True)
    if src.returncode != 0:  # a checkout without history (an exported tarball): nothing to build the old store from
        pytest.skip(f"git history of {RELEASE} not available: {src.stderr.strip()[:200]}")
    path = tmp_path / "store_release.py"
    path.write_text(src.stdout)
    spec = importlib.util.spec_from_file_location("store_release", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def schema(store) -> dict:
    """Tables -> columns (name, type, not null, default) and index names: what two stores must share."""
    out = {}
    if store.dialect == "sqlite":
        for t in store.query("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"):
            cols = store.query(f"PRAGMA table_info({t['name']})")
            out[t["name"]] = sorted((c["name"], c["type"], c["notnull"], c["dflt_value"], c["pk"]) for c in cols)
        idx = store.query("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")
    else:
        for c in store.query("SELECT table_name, column_name, data_type, is_nullable, column_default "
                             "FROM information_schema.columns WHERE table_schema = current_schema()"):
            out.setdefault(c["table_name"], []).append(tuple(c[k] for k in ("column_name", "data_type",
                                                                            "is_nullable", "column_default")))
        out = {t: sorted(cols) for t, cols in out.items()}
        idx = store.query("SELECT indexname AS name, indexdef AS sql FROM pg_indexes WHERE schemaname = "
                          "current_schema()")
    out["(indexes)"] = sorted((r["name"], r["sql"]) for r in idx)
    return out


def feed(stores, city) -> None:
    """The same signed messages into each store: every kiosk's state, check-ins, a refusal, history."""
    from kiosk.centre.ingest import Ingest
    from kiosk.testing.city import seed_history
    import random

    reg = registry_of(city)
    for s in stores:
        s.load_fleet(reg)
        s.import_venues(city.venues)
    ingest = Ingest(reg)
    now = time.time()
    announce_city(ingest, city, now)
    rng = random.Random(4)
    local = city.local_now()
    day = local.date().isoformat()
    for k in city.kiosks[:6]:
        for _ in range(3):
            ingest.handle(k.topic("events"), k.signed("events", k.check_in(rng, local, day, local.hour)))
        ingest.handle(k.topic("counts"), k.signed("counts", k.counts(day, now)))
    ingest.handle("checkin/v1/nowhere/kiosk-x/counts", b"{}")  # refused: unknown kiosk
    batch = ingest.take()
    for s in stores:
        s.write(batch)
        seed_history(s, city, 5, scans_per_day=12)


def figures(store, now: float) -> dict:
    c = Centre(store, Settings(clock=lambda: now, grace_hour=0))
    return {"overview": c.overview(), "inspection": c.inspection(), "kiosks": c.kiosks(), "history": c.history(),
            "refused": c.refused(), "report": c.daily_report(), "hourly": c.hourly()}


def test_migrations_are_numbered_in_order():
    for number, step in enumerate(migrations.MIGRATIONS, start=1):
        assert step.__name__.startswith(f"m{number:04d}_"), step.__name__
        assert step.__doc__, f"{step.__name__}: say what it adds"
    assert migrations.LATEST == len(migrations.MIGRATIONS)


def test_a_new_store_has_the_columns_the_store_writes(url):
    store = open_store(url)
    try:
        got = schema(store)
        for table in TABLES:
            have = [c[0] for c in got[table]]
            assert sorted(have) == sorted([*columns(table), *(c.split()[0] for c in DERIVED.get(table, ()))]), table
        assert [r["version"] for r in migrations.history(store)] == list(range(1, migrations.LATEST + 1))
        assert migrations.version_of(store) == migrations.LATEST
        assert store.migrate() == []  # opened again: nothing to do
    finally:
        store.close()


def test_a_store_of_the_last_release_upgrades_in_place(url, tmp_path, postgres_server):
    old_module = release_store_module(tmp_path)
    city = small_city(venues=14, share=0.8, offline=1, silent=1)
    old = old_module.open_store(url)
    fresh_url = str(tmp_path / "fresh.sqlite3") if old.dialect == "sqlite" else postgres_server.new_database()
    fresh = open_store(fresh_url)
    try:
        feed([old, fresh], city)
        assert migrations.version_of(old) == 0  # the release knew no schema_version
        old.close()
        upgraded = open_store(url)
        try:
            assert [r["name"] for r in migrations.history(upgraded)] == [
                migrations.name_of(m) for m in migrations.MIGRATIONS]
            assert schema(upgraded) == schema(fresh)
            upgraded.load_fleet(registry_of(city))  # what the centre does next at start-up
            fresh.load_fleet(registry_of(city))
            now = time.time()
            before = figures(fresh, now)
            assert before["overview"]["totals"]["scans"] > 0 and before["refused"]["total"] == 1
            assert figures(upgraded, now) == before
        finally:
            upgraded.close()
    finally:
        fresh.close()


def _open_at(url: str, go, out) -> None:
    go.wait(30)
    try:
        s = open_store(url)
        out.put(("ok", migrations.version_of(s)))
        s.close()
    except Exception as exc:  # the parent asserts on it
        out.put(("error", repr(exc)))


def test_several_processes_opening_a_store_at_once_migrate_it_once(url, tmp_path):
    old_module = release_store_module(tmp_path)
    old_module.open_store(url).close()  # a store of the last release, not yet migrated
    ctx = mp.get_context("spawn")
    go, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_open_at, args=(url, go, out)) for _ in range(4)]
    for p in procs:
        p.start()
    go.set()
    results = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(30)
    assert results == [("ok", migrations.LATEST)] * 4
    store = open_store(url)
    try:
        rows = store.query("SELECT version, COUNT(*) AS n FROM schema_version GROUP BY version ORDER BY version")
        assert rows == [{"version": v, "n": 1} for v in range(1, migrations.LATEST + 1)]
    finally:
        store.close()


def test_a_store_newer_than_this_centre_is_refused(url):
    store = open_store(url)
    store.execute("INSERT INTO schema_version (version, name, applied_at) VALUES (?, 'from the future', 0)",
                  [migrations.LATEST + 1])
    store.close()
    with pytest.raises(StoreError, match=f"version {migrations.LATEST + 1} is newer than this centre's"):
        open_store(url)


def test_a_migration_that_fails_changes_nothing(url, monkeypatch):
    store = open_store(url)
    store.close()

    def m_new_table(x):
        x.execute("CREATE TABLE campaign_test (id TEXT PRIMARY KEY)")

    def m_broken(x):
        x.execute("ALTER TABLE no_such_table ADD COLUMN y TEXT")

    monkeypatch.setattr(migrations, "MIGRATIONS", (*migrations.MIGRATIONS, m_new_table, m_broken))
    monkeypatch.setattr(migrations, "LATEST", len(migrations.MIGRATIONS))
    with pytest.raises(StoreError, match=rf"migration {migrations.LATEST} \(broken\) failed, nothing was changed"):
        open_store(url)
    monkeypatch.undo()
    store = open_store(url)
    try:
        assert migrations.version_of(store) == migrations.LATEST
        assert "campaign_test" not in schema(store)  # the step before the failing one was rolled back too
    finally:
        store.close()
