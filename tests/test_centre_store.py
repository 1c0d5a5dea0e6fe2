"""Store and statistics (issue 13.1-13.4, 13.7, 13.10) on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import json
import random
import time
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from kiosk.centre.ingest import Batch, Ingest
from kiosk.centre.queries import Scope
from kiosk.centre.registry import FleetRegistry, RegistryError, parse_venues
from kiosk.centre.store import open_store
from kiosk.testing.city import seed_history
from centre_helpers import announce_city, centre_over, registry_of, small_city
from centre_pg import pg_url, postgres_server  # noqa: F401


@pytest.fixture(params=["sqlite", "postgres"])
def store(request, tmp_path):
    if request.param == "sqlite":
        s = open_store(tmp_path / "centre.sqlite3")
    else:
        s = open_store(request.getfixturevalue("pg_url"))
    yield s
    s.close()


def run_city(store, city, rng_seed=1, checkins=200, **settings):
    # One instant for the kiosks' messages and the centre's "now": read twice, the two could fall on either
    # side of the city's midnight and disagree about which day "today" is.
    now = time.time()
    centre, ingest = centre_over(store, city, clock=lambda: now, **settings)
    local = datetime.fromtimestamp(now, ZoneInfo(city.timezone))
    day = local.date().isoformat()
    announce_city(ingest, city, now)
    rng = random.Random(rng_seed)
    active = [k for k in city.kiosks if not k.condition]
    for _ in range(checkins):
        k = rng.choice(active[: max(1, len(active) - 2)])  # the last two active kiosks scan nobody
        ingest.handle(k.topic("events"), k.signed("events", k.check_in(rng, local, day, local.hour)))
        ingest.handle(k.topic("counts"), k.signed("counts", k.counts(day, now)))
    assert ingest.stats.refused == 0
    store.write(ingest.take())
    return centre, ingest


def expected(city, venues):
    out = {"venues_with_code": len(venues), "venues_with_kiosk": len({k.venue.venue_id for k in city.kiosks}),
           "kiosks": len(city.kiosks), "kiosks_online": sum(1 for k in city.kiosks if not k.condition or
                                                           k.condition in ("camera-down", "display-down")),
           "scans": sum(k.scans for k in city.kiosks), "accepted": sum(k.accepted for k in city.kiosks),
           "rejected": sum(k.rejected for k in city.kiosks), "duplicates": sum(k.duplicates for k in city.kiosks),
           "venues_with_scans": len({k.venue.venue_id for k in city.kiosks if k.scans}),
           "unique_visitors": sum(len(k.visitors) for k in city.kiosks)}
    return out


def test_statistics_for_city_district_ward_and_venue(store):
    city = small_city(venues=40, share=0.5, offline=2, silent=1, camera_down=1, display_down=1)
    centre, _ = run_city(store, city)
    o = centre.overview()
    want = expected(city, city.venues)
    assert {k: o["totals"][k] for k in want} == want
    assert o["day"] == city.local_now().date().isoformat()
    districts = sorted({v.district for v in city.venues})
    assert [d["name"] for d in o["districts"]] == districts
    assert centre.districts() == districts  # the district filter's list
    for d in o["districts"]:
        sub_venues = [v for v in city.venues if v.district == d["name"]]
        sub = type(city)(sub_venues, [k for k in city.kiosks if k.venue.district == d["name"]])
        assert {k: d[k] for k in want} == expected(sub, sub_venues)
        page = centre.district(d["name"])
        assert page["totals"] == {k: v for k, v in d.items() if k != "name"}
        assert sum(w["scans"] for w in page["wards"]) == d["scans"]
        assert {w["name"] for w in page["wards"]} == {v.ward for v in sub_venues}
    k = max(city.kiosks, key=lambda k: k.scans)
    v = centre.venue(k.venue.venue_id)
    assert v["venue"]["scans"] == k.scans and v["venue"]["address"] == k.venue.address
    assert v["kiosks"][0]["last_scan"].endswith("Z")
    assert sum(v["hourly"]) == k.scans
    assert sum(centre.hourly()) == want["scans"]
    assert centre.history(days=30)[-1]["scans"] == want["scans"]
    # the last-scan bug: a kiosk with no scans has none, not 1970
    idle = [r for r in centre.kiosks() if r["scans"] == 0]
    assert idle and all(r["last_scan"] is None for r in idle)
    # district scope holds: nothing from another district
    d0 = districts[0]
    assert {r["district"] for r in centre.kiosks(Scope(district=d0))} == {d0}


def test_inspection_list(store):
    city = small_city(venues=30, share=0.6, offline=2, silent=1, camera_down=1, display_down=1)
    wrong = next(k for k in city.kiosks if not k.condition)
    wrong.shows_qr = "0" * 64  # the screen shows another venue's code
    centre, ingest = run_city(store, city, grace_hour=0, offline_hours=1.0)  # its clock stands still
    rows = centre.inspection()["rows"]
    by = {}
    for r in rows:
        by.setdefault(r["why"], []).append(r)
        assert r["venue_name"] and r["address"] and r["ward"] and r["district"]
        assert r["detail"] and r["detail_vi"], r  # the inspector is told something, in both languages
    offline = {r["device"] for r in by["offline"]}
    assert offline == {k.device for k in city.kiosks if k.condition == "offline"}
    assert all(r["for_seconds"] >= 3 * 86400 - 60 and r["since"].endswith("Z") for r in by["offline"])
    assert {r["device"] for r in by["silent"]} == {k.device for k in city.kiosks if k.condition == "silent"}
    assert {r["device"] for r in by["camera-down"]} == {k.device for k in city.kiosks if k.condition == "camera-down"}
    assert {r["device"] for r in by["display-down"]} == {k.device for k in city.kiosks
                                                         if k.condition == "display-down"}
    assert [r["device"] for r in by["venue-code-mismatch"]] == [wrong.device]
    scanned = {k.venue.venue_id for k in city.kiosks if k.scans}
    assert {r["venue_id"] for r in by["no-scans-today"]} == {v.venue_id for v in city.venues} - scanned
    d0 = rows[0]["district"]
    only = centre.inspection(Scope(district=d0))
    assert only["total"] == sum(1 for r in rows if r["district"] == d0) and only["total"] < len(rows)
    page = centre.inspection(limit=5, offset=5)
    assert page["total"] == len(rows) and page["rows"] == rows[5:10]
    assert list(centre.inspection_rows()) == rows  # the CSV export streams the same list, in the same order
    # sorted by how long (longest first, rows without a time last), stable; a ward of a district
    longest = centre.inspection(sort="since")["rows"]
    times = [r["since"] for r in longest if r["since"]]
    assert times == sorted(times) and all(r["since"] is None for r in longest[len(times):])
    assert sorted(map(str, longest)) == sorted(map(str, rows))
    assert list(centre.inspection_rows(sort="since")) == longest
    ward = rows[0]["ward"]
    in_ward = centre.inspection(Scope(district=d0, ward=ward))["rows"]
    assert in_ward == [r for r in rows if r["district"] == d0 and r["ward"] == ward]
    cams = centre.inspection(kinds=("camera-down", "offline"))
    assert cams["by_kind"] == {"camera-down": len(by["camera-down"]), "offline": len(by["offline"])}
    assert cams["rows"] == [r for r in rows if r["why"] in ("camera-down", "offline")]
    mixed = centre.inspection(kinds=("no-scans-today", "offline"), limit=4, offset=1)
    want = [r for r in rows if r["why"] in ("no-scans-today", "offline")]
    assert mixed["total"] == len(want) and mixed["rows"] == want[1:5]
    assert mixed["by_kind"] == {"no-scans-today": len(by["no-scans-today"]), "offline": len(by["offline"])}
    assert not any(r["provisional"] for r in rows)  # after the grace hour: final
    # before the grace hour the rows are there from the morning on, marked provisional (an inspector plans
    # the day at 8); before the morning nobody is listed for not scanning yet
    hour = centre.settings.local().hour
    centre.settings.grace_hour, centre.settings.morning_hour = 24, hour
    early = centre.inspection()
    assert early["by_kind"]["no-scans-today"] == len(by["no-scans-today"])
    assert all(r["provisional"] for r in early["rows"] if r["why"] == "no-scans-today")
    assert not any(r["provisional"] for r in early["rows"] if r["why"] != "no-scans-today")
    centre.settings.morning_hour = hour + 1
    assert "no-scans-today" not in centre.inspection()["by_kind"]


def test_venue_registry_import_flags_unknown_venues(store):
    city = small_city(venues=10, share=0.5)
    centre, _ = centre_over(store, city, venues=False)
    known = city.venues[:-2]
    summary = store.import_venues(known)
    kiosk_venues = {k.venue.venue_id for k in city.kiosks}
    missing = kiosk_venues - {v.venue_id for v in known}
    assert summary == {"venues": 8, "kiosks_matched": len(city.kiosks) - len(missing),
                       "kiosks_unknown_venue": len(missing)}
    totals = centre.overview()["totals"]
    assert totals["venues_with_code"] == 8 and totals["venues_unregistered"] == len(missing)
    flagged = [r["venue_id"] for r in centre.inspection()["rows"] if r["why"] == "unknown-venue"]
    assert sorted(flagged) == sorted(missing)


def test_bad_venue_csv_names_the_line():
    with pytest.raises(RegistryError, match=r"v.csv:3: venue_id 'A' appears twice"):
        parse_venues("venue_id,name,district\nA,x,d\nA,y,d\n", "v.csv")
    with pytest.raises(RegistryError, match="missing column"):
        parse_venues("id,name\n", "v.csv")


def test_history_kept_90_days_and_daily_report(store):
    city = small_city(venues=12, share=0.5)
    centre, _ = run_city(store, city, checkins=30)
    seed_history(store, city, days=100, scans_per_day=10)
    today = date.fromisoformat(centre.settings.today())
    store.prune(today.isoformat(), keep_days=30)  # asked for less than 90: 90 are kept anyway
    days = [r["day"] for r in store.query("SELECT DISTINCT day FROM daily ORDER BY day")]
    assert days[0] == (today - timedelta(days=90)).isoformat() and days[-1] == today.isoformat()
    h = centre.history(days=30)
    assert len(h) == 30 and h[-1]["day"] == today.isoformat()
    past = store.query("SELECT SUM(accepted + rejected + duplicates) AS n FROM daily WHERE day = ?", [h[0]["day"]])
    assert h[0]["scans"] == past[0]["n"]
    rep = centre.daily_report()
    districts = [r for r in rep if r["level"] == "district"]
    wards = [r for r in rep if r["level"] == "ward"]
    assert sum(r["venues_with_code"] for r in districts) == 12 == sum(r["venues_with_code"] for r in wards)
    assert sum(r["scans"] for r in districts) == centre.overview()["totals"]["scans"]


def test_workers_writing_in_any_order_give_the_same_figures(store):
    """Two ingest workers (a shared subscription) see the messages split and out of order, some twice."""
    city = small_city(venues=6, share=1.0)
    centre, _ = centre_over(store, city)
    registry = registry_of(city)
    rng = random.Random(4)
    local = city.local_now()
    day = local.date().isoformat()
    msgs = []
    for _ in range(300):
        k = rng.choice(city.kiosks)
        msgs.append((k.topic("events"), k.signed("events", k.check_in(rng, local, day, local.hour))))
        msgs.append((k.topic("counts"), k.signed("counts", k.counts(day, time.time()))))
    workers = [Ingest(registry), Ingest(registry)]
    shuffled = msgs + rng.sample(msgs, 100)  # redeliveries
    rng.shuffle(shuffled)
    for n, (topic, payload) in enumerate(shuffled):
        workers[n % 2].handle(topic, payload)
        if n % 37 == 0:
            store.write(workers[n % 2].take())
    for w in workers:
        store.write(w.take())
    totals = centre.overview()["totals"]
    assert totals["scans"] == sum(k.scans for k in city.kiosks)
    assert {r["device"]: r["last_seq"] for r in centre.kiosks()} == {k.device: k.seq for k in city.kiosks}


def _listed_without_scans(centre) -> set[str]:
    return {r["venue_id"] for r in centre.inspection(kinds=("no-scans-today",))["rows"]}


def _day_row(k, day: str, scans: int, seq: int) -> Batch:
    b = Batch()
    b.daily[(k.site, k.device, day)] = (k.site, k.device, day, k.venue.venue_id, scans, 0, 0, 0, scans, 0, seq,
                                        None, time.time())
    return b


def test_no_scans_today_follows_each_venues_last_day_with_a_scan(store):
    city = small_city(venues=12, share=1.0)  # every venue has a kiosk
    centre, _ = centre_over(store, city, grace_hour=0)
    seed_history(store, city, 3, scans_per_day=40)  # busy days before today
    today = city.local_now().date()
    every = {v.venue_id for v in city.venues}
    assert _listed_without_scans(centre) == every  # yesterday's scans do not count for today
    k, quiet = city.kiosks[0], city.kiosks[1]
    store.write(_day_row(k, today.isoformat(), 3, 1))
    store.write(_day_row(quiet, today.isoformat(), 0, 1))  # counted today, but nobody scanned
    assert _listed_without_scans(centre) == every - {k.venue.venue_id}
    # a late message of an earlier day leaves the venue's today alone
    store.write(_day_row(k, (today - timedelta(days=1)).isoformat(), 90, 99))
    assert _listed_without_scans(centre) == every - {k.venue.venue_id}
    assert centre.overview()["totals"]["venues_with_scans"] == 1
    # the lost kiosk's scans stop counting for its venue, in the list as in the figures
    reg = json.loads(json.dumps(city.registry()))
    next(r for r in reg["kiosks"] if r["device"] == k.device and r["site"] == k.site)["revoked"] = True
    store.load_fleet(FleetRegistry.from_json(reg))
    assert _listed_without_scans(centre) == every
    assert centre.overview()["totals"]["venues_with_scans"] == 0


def test_retention_prunes_history_older_than_kept_on_its_own(store, tmp_path):
    from kiosk.centre.retention import Retention

    city = small_city(venues=4, share=1.0)
    centre, _ = centre_over(store, city)
    today = date.fromisoformat(centre.settings.today())
    k = city.kiosks[0]
    for back in (200, 100, 0):
        store.write(_day_row(k, (today - timedelta(days=back)).isoformat(), 4, 1))

    def days() -> list[int]:
        return sorted((today - date.fromisoformat(r["day"])).days for r in store.query("SELECT day FROM daily"))

    for keep, left in ((120, [0, 100]), (30, [0])):  # 30 is below the floor: 90 days are kept
        r = Retention(store, centre.settings, keep_days=keep, every_seconds=3600)
        r.start()
        with r.done:
            assert r.done.wait_for(lambda: r.passes >= 1, timeout=30)
        r.stop()
        assert days() == left


def test_centre_refuses_to_keep_less_than_90_days(tmp_path):
    import subprocess
    import sys

    reg = tmp_path / "fleet.json"
    reg.write_text('{"version": 1, "kiosks": []}')
    r = subprocess.run([sys.executable, "-m", "kiosk", "centre", "--no-web", "--broker", "mqtt://127.0.0.1:9",
                        "--registry", str(reg), "--keep-days", "30"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "--keep-days must be at least 90" in r.stderr and "Traceback" not in r.stderr


def test_a_kiosk_whose_venue_is_not_registered_joins_no_district(store):
    """Issue 19.2: a kiosk's place is the venue registry's; its signed info can neither move it into a
    district nor make up a new one, and its scans count only under "not registered"."""
    city = small_city(venues=60, share=0.2)
    missing = city.kiosks[0]
    target = next(v for v in city.venues if v.district != missing.venue.district)
    registered = [v for v in city.venues if v.venue_id != missing.venue.venue_id]
    centre, ingest = centre_over(store, city, venues=False)
    store.import_venues(registered)
    before = centre.overview()
    names = centre.districts()
    day = city.local_now().date().isoformat()
    rng = random.Random(9)
    local = city.local_now()
    for _ in range(25):
        missing.check_in(rng, local, day, local.hour)
    lies = [{**missing.info(time.time()), "district": target.district, "ward": target.ward,
             "province": target.province, "district_code": target.district_code},
            {**missing.info(time.time() + 1), "district": "Quận Giả", "ward": "Phường Giả"}]
    for info in lies:
        ingest.handle(missing.topic("info"), missing.signed("info", info))
        ingest.handle(missing.topic("counts"), missing.signed("counts", missing.counts(day, time.time())))
        store.write(ingest.take())
        after = centre.overview()
        assert centre.districts() == names  # no district made up
        by_name = {d["name"]: d for d in after["districts"]}
        for d in before["districts"]:
            if d["name"]:
                assert by_name[d["name"]] == d  # no district joined (the target's figures unchanged)
        assert by_name[""]["scans"] == missing.scans and by_name[""]["venues_unregistered"] == 1
        assert after["totals"]["venues_unregistered"] == 1
        assert centre.district(target.district)["totals"] == {k: v for k, v in by_name[target.district].items()
                                                              if k != "name"}
    (row,) = [r for r in centre.kiosks() if r["device"] == missing.device]
    assert row["district"] == "" and row["ward"] == "" and row["venue_name"] == missing.venue.name
    assert [r["why"] for r in centre.inspection()["rows"] if r["device"] == missing.device] == ["unknown-venue"]


def test_a_place_an_older_centre_took_from_info_is_forgotten(store):
    city = small_city(venues=6, share=1.0)
    missing = city.kiosks[0]
    centre, _ = centre_over(store, city, venues=False)
    store.import_venues([v for v in city.venues if v.venue_id != missing.venue.venue_id])
    # what an earlier centre wrote from the kiosk's info
    store.execute("UPDATE venues SET district = 'Quận Giả', ward = 'Phường Giả' WHERE venue_id = ?",
                  [missing.venue.venue_id])
    assert "Quận Giả" in centre.districts()
    store.load_fleet(registry_of(city))  # what every centre start does
    assert "Quận Giả" not in centre.districts()
    assert {d["name"] for d in centre.overview()["districts"]} == {"", *(v.district for v in city.venues
                                                                        if v is not missing.venue)}
