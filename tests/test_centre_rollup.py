"""The rollup the ingest keeps and the registry's history (issue 21.6, 21.8), on SQLite and a real PostgreSQL.

What an official would notice: the city overview, a district page and the report read the rollup and
show the same figures the old query (every venue joined with every kiosk) gave; a message sent twice
or late never counts twice; a revoked kiosk stops counting once the fleet registry is loaded; a past
day's figures and the venues with a code of each day (the coverage chart's real series).
"""

from __future__ import annotations

import json
import random
import time
from datetime import date, timedelta

import pytest

from kiosk.centre import migrations
from kiosk.centre.ingest import Batch
from kiosk.centre.queries import FIGURES, LIVE_FIGURES, Centre, DayOutOfRange, Scope, Settings
from kiosk.centre.registry import FleetRegistry
from kiosk.centre.store import open_store
from centre_helpers import announce_city, centre_over, small_city
from centre_pg import pg_url, postgres_server  # noqa: F401


@pytest.fixture(params=["sqlite", "postgres"])
def store(request, tmp_path):
    s = open_store(tmp_path / "c.sqlite3") if request.param == "sqlite" else open_store(
        request.getfixturevalue("pg_url"))
    yield s
    s.close()


def old_path(centre: Centre, scope: Scope = Scope()) -> dict:
    """The city's totals as the query before the rollup computed them (every venue, every kiosk)."""
    totals = {f: 0 for f in FIGURES}
    for r in centre._ward_rows(scope):
        for f in FIGURES:
            totals[f] += int(r[f] or 0)
    return totals


def feed(store, city, centre, ingest, checkins=150, seed=1):
    now = time.time()
    local = city.local_now()
    day = local.date().isoformat()
    announce_city(ingest, city, now)
    rng = random.Random(seed)
    active = [k for k in city.kiosks if not k.condition]
    sent = []
    for _ in range(checkins):
        k = rng.choice(active)
        ingest.handle(k.topic("events"), k.signed("events", k.check_in(rng, local, day, local.hour)))
        msg = (k.topic("counts"), k.signed("counts", k.counts(day, time.time())))
        ingest.handle(*msg)
        sent.append(msg)
        if rng.random() < 0.2:  # a batch boundary now and then: deltas across batches
            store.write(ingest.take())
    store.write(ingest.take())
    return sent


def overview_figures(centre):
    t = centre.overview()["totals"]
    return {f: t[f] for f in FIGURES}


def test_the_rollup_matches_the_old_query_and_never_counts_twice(store):
    city = small_city(venues=30, share=0.7, offline=1, silent=1)
    # two kiosks in one venue: the venue counts once among the venues with scans
    city.kiosks[1].venue = city.kiosks[0].venue
    centre, ingest = centre_over(store, city, grace_hour=0)
    sent = feed(store, city, centre, ingest)
    assert overview_figures(centre) == old_path(centre)
    assert centre.overview()["totals"]["scans"] > 0
    for d in centre.overview()["districts"]:
        assert {f: d[f] for f in FIGURES} == old_path(centre, Scope(district=d["name"]))
    before = overview_figures(centre)
    # Every counts message again, and late, in reverse order: the kiosks' rows do not change, nor the figures.
    for msg in reversed(sent):
        ingest.handle(*msg)
    store.write(ingest.take())
    assert overview_figures(centre) == before
    # A rollup rebuilt from the history says the same as the one the ingest kept.
    store.refresh_rollup()
    assert overview_figures(centre) == before


def test_a_revoked_kiosk_stops_counting_when_the_fleet_is_loaded(store):
    city = small_city(venues=20, share=0.8)
    centre, ingest = centre_over(store, city, grace_hour=0)
    feed(store, city, centre, ingest, checkins=80)
    busiest = max(city.kiosks, key=lambda k: k.scans)
    before = centre.overview()["totals"]
    reg = json.loads(json.dumps(city.registry()))
    for k in reg["kiosks"]:
        if (k["site"], k["device"]) == (busiest.site, busiest.device):
            k["revoked"] = True
    store.load_fleet(FleetRegistry.from_json(reg))
    after = centre.overview()["totals"]
    assert after["scans"] == before["scans"] - busiest.scans
    assert overview_figures(centre) == old_path(centre)


def test_a_past_day_and_the_registry_history(store):
    city = small_city(venues=24, share=0.6)
    centre, ingest = centre_over(store, city, grace_hour=0)
    today = date.fromisoformat(centre.settings.today())
    past = (today - timedelta(days=3)).isoformat()
    b = Batch()
    k = city.kiosks[0]
    b.daily[(k.site, k.device, past)] = (k.site, k.device, past, k.venue.venue_id, 7, 2, 1, 0, 7, 0, 5, None, 0.0)
    store.write(b)
    # The registry a week ago had 10 venues (in one ward); it was loaded again yesterday with all of them.
    week_ago = (today - timedelta(days=7)).isoformat()
    store.execute("DELETE FROM registry_history")
    store.execute("INSERT INTO registry_history VALUES (?, ?, ?, 10)", (week_ago, k.venue.district, k.venue.ward))
    store.import_venues(city.venues, day=(today - timedelta(days=1)).isoformat())
    o = centre.overview(day=past)
    assert o["day"] == past and o["today"] is False
    assert o["totals"]["scans"] == 10 and o["totals"]["venues_with_scans"] == 1
    assert o["totals"]["venues_with_code"] == 10  # the registry of that day, not today's
    assert o["totals"]["scan_share"] == 0.1
    assert all(o["totals"][f] is None for f in LIVE_FIGURES)  # no "kiosks online" for a past day
    assert centre.overview()["totals"]["venues_with_code"] == len(city.venues)
    series = [r["venues_with_code"] for r in centre.history(days=10)]
    assert series[:2] == [10, 10] and series[-1] == len(city.venues)  # the real series, not a flat line
    report = centre.daily_report(day=past)
    assert report[-1]["level"] == "total" and report[-1]["scans"] == 10
    with pytest.raises(DayOutOfRange, match="has not come yet"):
        centre.overview(day=(today + timedelta(days=1)).isoformat())
    with pytest.raises(DayOutOfRange, match="older than"):
        centre.overview(day=(today - timedelta(days=400)).isoformat())


def test_migration_5_fills_the_rollup_of_an_existing_store(tmp_path, store):
    city = small_city(venues=16, share=0.8)
    centre, ingest = centre_over(store, city, grace_hour=0)
    feed(store, city, centre, ingest, checkins=60)
    want = overview_figures(centre)
    # The store as migration 4 left it (the tables m0005 adds did not exist), opened by this centre again.
    store.execute("DROP TABLE rollup_daily")
    store.execute("DROP TABLE registry_history")
    store.execute("DELETE FROM schema_version WHERE version >= 5")  # and every later one (they re-run: IF NOT EXISTS)
    url = store.url
    store.close()
    again = open_store(url)
    try:
        assert migrations.version_of(again) == migrations.LATEST
        c = Centre(again, Settings(grace_hour=0))
        assert overview_figures(c) == want
    finally:
        again.close()
