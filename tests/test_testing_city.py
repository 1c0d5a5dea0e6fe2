"""A living city (issue 21.7): ``kiosk simulate`` seeds history through the centre's own ingest, signs its
health periodically, follows the day's curve; and a silent kiosk's camera-down row stays on the list.

One real mosquitto and one centre ingest (IngestWorker into SQLite) per test; the kiosks' clocks are set
back ten minutes for their announcement, so "silent" is decided without waiting five minutes.
"""

from __future__ import annotations

import time
from datetime import date, timedelta

from kiosk.centre.queries import Centre, Settings
from kiosk.centre.store import open_store
from kiosk.centre.watch import IngestWorker
from kiosk.testing.city import DAY_CURVE, CitySimulator
from centre_helpers import registry_of, small_city, wait_for


def ingest_into(broker, city, tmp_path):
    store = open_store(tmp_path / "centre.sqlite3")
    registry = registry_of(city)
    store.load_fleet(registry)
    store.import_venues(city.venues)
    worker = IngestWorker(broker.url, store, registry, flush_seconds=0.1)
    worker.start()
    assert worker.connected.wait(5)
    return store, worker


def test_history_days_come_through_the_ingest_and_the_rollup_is_right(broker, tmp_path):
    city = small_city(venues=12, share=0.75, offline=1)
    store, worker = ingest_into(broker, city, tmp_path)
    try:
        sim = CitySimulator(broker.url, city, connections=1)
        sim.connect()
        sent = sim.seed_history(5, scans_per_day=30)
        sim.announce()
        sim.close()
        assert sent >= 5 * (len(city.kiosks) - 1)
        centre = Centre(store, Settings(grace_hour=0, history_cache_seconds=0))
        today = date.fromisoformat(centre.settings.today())
        assert wait_for(lambda: all(r["scans"] > 0 for r in centre.history(days=6)[:5]), 10)
        assert worker.ingest.stats.refused == 0  # the centre believed every one of them
        kept = [centre.overview(day=(today - timedelta(days=d)).isoformat())["totals"] for d in range(1, 6)]
        store.refresh_rollup()  # what a registry load recomputes: the same figures
        assert [centre.overview(day=(today - timedelta(days=d)).isoformat())["totals"] for d in range(1, 6)] == kept
        # the coverage chart's series: venues with a code each day (the registry's), venues with scans below it
        hist = centre.history(days=6)
        assert all(r["venues_with_code"] == len(city.venues) for r in hist)
        assert all(0 < r["venues_with_scans"] <= len({k.venue.venue_id for k in city.kiosks}) for r in hist[:5])
    finally:
        worker.stop()
        store.close()


def test_periodic_health_keeps_kiosks_from_turning_silent(broker, tmp_path):
    city = small_city(venues=10, share=1.0, camera_down=1, silent=1)
    store, worker = ingest_into(broker, city, tmp_path)
    try:
        sim = CitySimulator(broker.url, city, connections=1)
        sim.clock = lambda: time.time() - 600  # the city announced itself ten minutes ago
        sim.connect()
        sim.announce()
        centre = Centre(store, Settings(grace_hour=0))
        n = len(city.kiosks)
        # Without health since: every kiosk is silent, and the camera-down kiosk is still listed as such.
        assert wait_for(lambda: centre.inspection()["by_kind"].get("silent") == n, 10)
        assert centre.inspection()["by_kind"].get("camera-down") == 1
        sim.clock = time.time
        # A run signs health when it starts and every --health-seconds; no counts are sent.
        sim.run(0, 0, checkins=3, counts_every=10 ** 6, health_every=60)
        sim.close()
        assert wait_for(lambda: centre.inspection()["by_kind"].get("silent") == 1, 10)  # the one that is silent
        assert centre.inspection()["by_kind"].get("camera-down") == 1
    finally:
        worker.stop()
        store.close()


def test_live_mode_runs_until_stopped_and_its_city_is_believed(broker, tmp_path):
    """``kiosk simulate --live``: the registry it writes is the one a centre believes (keys from --seed), its
    kiosks check in and sign health while it runs, and SIGTERM ends it cleanly."""
    import json
    import signal
    import subprocess
    import sys
    from pathlib import Path

    from kiosk.centre.registry import FleetRegistry

    reg = tmp_path / "fleet.json"
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.Popen([sys.executable, "-m", "kiosk", "simulate", "--broker", broker.url, "--kiosks", "4",
                             "--seed", "9", "--write-registry", str(reg), "--live", "--rate", "20",
                             "--health-seconds", "1", "--json"], cwd=root, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for(lambda: reg.exists() and reg.stat().st_size > 0, 20)
        registry = FleetRegistry.from_json(json.loads(reg.read_text()))
        store = open_store(tmp_path / "centre.sqlite3")
        store.load_fleet(registry)
        worker = IngestWorker(broker.url, store, registry, flush_seconds=0.1)
        worker.start()
        try:
            centre = Centre(store, Settings(grace_hour=0))
            assert wait_for(lambda: centre.overview()["totals"]["scans"] > 0, 20)
            assert wait_for(lambda: centre.overview()["totals"]["kiosks_online"] == 4, 20)
            assert worker.ingest.stats.refused == 0
        finally:
            worker.stop()
            store.close()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
        assert proc.returncode == 0, err
        assert json.loads(out)["checkins"] > 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_the_rate_follows_the_day_s_curve(broker, monkeypatch):
    city = small_city(venues=4, share=1.0)
    sim = CitySimulator(broker.url, city, connections=1)
    sim.connect()
    try:
        real = city.local_now

        def at(hour: int):
            monkeypatch.setattr(city, "local_now", lambda: real().replace(hour=hour))

        at(3)  # 03:00 in the city: nobody checks in
        assert sim.run(50.0, 0.3, health_every=0, curve=True) == 0
        at(18)  # the busiest hour: --rate itself
        assert DAY_CURVE[18] == max(DAY_CURVE)
        assert sim.run(50.0, 0.3, health_every=0, curve=True) >= 5
    finally:
        sim.close()
