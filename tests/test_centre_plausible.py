"""Plausible claims only (issue 19.1): a kiosk's own signature on a claim no kiosk could make changes nothing.

Every message here is signed by the kiosk's real device key (the stolen Pi of the threat model) and
goes through the real ingest; the clock is fixed, so the limits are checked at their edges.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from kiosk.centre.ingest import Ingest
from kiosk.centre.plausible import Limits
from kiosk.centre.queries import Centre, Scope, Settings
from kiosk.centre.store import open_store
from kiosk.testing.clock import FakeClock
from kiosk.wire.signing import iso
from centre_helpers import registry_of, small_city
from centre_pg import pg_url, postgres_server  # noqa: F401

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
# 14:00 in Hanoi: 14 hours of the local day have passed (plus the 10 minutes of allowed clock skew).
NOW = datetime(2026, 3, 10, 14, 0, tzinfo=ZONE).timestamp()
TODAY = "2026-03-10"
ELAPSED = 14 * 3600 + 600
MOST = 2 * ELAPSED  # 120 check-ins a minute (the default) over the elapsed seconds


@pytest.fixture(params=["sqlite", "postgres"])
def store(request, tmp_path):
    s = open_store(tmp_path / "centre.sqlite3") if request.param == "sqlite" else open_store(
        request.getfixturevalue("pg_url"))
    yield s
    s.close()


def city_at(store=None, venues=4):
    city = small_city(venues=venues, share=1.0)
    registry = registry_of(city)
    centre = None
    clock = FakeClock(NOW)
    if store is not None:
        store.load_fleet(registry)
        store.import_venues(city.venues)
        centre = Centre(store, Settings(clock=clock, grace_hour=23))
    return city, Ingest(registry, coalesce=True), centre, clock


def counts(k, **over) -> dict:
    """A genuine day for ``k`` (1,000 check-ins by 14:00), with ``over`` changed."""
    body = {"day": TODAY, "accepted": 800, "rejected": 150, "duplicates": 40, "overrides": 10, "by_reason": {},
            "by_format": {}, "unique_visitors": 700, "hourly": [0] * 8 + [100] * 6 + [200] + [0] * 9,
            "dropped_events": 0, "last_scan": iso(NOW - 60), "seq": 5000, "ts": iso(NOW)}
    return {**body, **over}


def hourly(**hours) -> list:
    h = [0] * 24
    for k, v in hours.items():
        h[int(k[1:])] = v
    return h


# Each one of a stolen kiosk's claims that no kiosk could make: (what the centre names, the claim).
IMPLAUSIBLE_COUNTS = [
    ("scans", {"accepted": 10 ** 12, "unique_visitors": 0}),
    ("scans", {"accepted": MOST - 199, "unique_visitors": 0, "seq": 10 ** 6, "hourly": None}),  # one over
    ("unique_visitors", {"unique_visitors": 2 ** 53 - 1}),
    ("unique_visitors", {"unique_visitors": 841}),  # accepted + duplicates + 1
    ("hourly", {"hourly": hourly(h8=2000)}),  # more in the curve than the day's decisions
    ("hourly", {"hourly": hourly(h8=100, h16=900)}),  # 16:00 has not begun at 14:00
    ("hourly", {"accepted": 9000, "seq": 10 ** 6, "hourly": hourly(h8=7300, h9=1700)}),  # 7,300 in an hour
    ("day", {"day": "2026-03-11"}),  # tomorrow
    ("day", {"day": "9999-12-31"}),
    ("day", {"day": "2026-03-08", "ts": iso(NOW)}),  # two days before its own ts
    ("ts", {"ts": iso(NOW + 11 * 60)}),  # beyond the clock skew
    ("ts", {"ts": "9999-12-31T23:59:59Z"}),
    ("ts", {"ts": "1970-01-01T00:00:00Z", "day": "1970-01-01"}),
    ("accepted", {"accepted": -5}),
    ("rejected", {"rejected": 1.5}),
    ("duplicates", {"duplicates": 2 ** 60}),
    ("overrides", {"overrides": 1e308}),
    ("seq", {"seq": 999}),  # fewer check-ins ever than today's decisions
    ("seq", {"seq": 2 ** 53 - 1}),
    ("dropped_events", {"dropped_events": 5001}),
    ("last_scan", {"last_scan": iso(NOW + 3600)}),
    ("last_scan", {"last_scan": iso(NOW - 2 * 86400)}),  # a scan two days ago in today's counts
    ("hourly", {"hourly": [0] * 23 + [-1]}),
]


@pytest.mark.parametrize("what,claim", IMPLAUSIBLE_COUNTS,
                         ids=[f"{w}-{i}" for i, (w, _) in enumerate(IMPLAUSIBLE_COUNTS)])
def test_each_implausible_counts_claim_is_refused_and_changes_nothing(what, claim):
    city, ingest, _, _ = city_at()
    k = city.kiosks[0]
    body = {key: value for key, value in counts(k, **claim).items() if value is not None}
    assert ingest.handle(k.topic("counts"), k.signed("counts", counts(k)), NOW)
    assert not ingest.handle(k.topic("counts"), k.signed("counts", body), NOW)
    batch = ingest.take()
    assert batch.refused == {(k.topic("counts"), "implausible"): [1, NOW]}
    assert batch.implausible == {(k.site, k.device): [NOW, NOW, 1, f"counts.{what}"]}
    (row,) = batch.daily.values()
    assert row[4] == 800 and row[10] == 5000  # the genuine message, not the claim


def test_a_kiosk_at_the_limits_is_believed():
    """The edges a real kiosk may reach: 120 check-ins a minute since midnight, every unique visitor a
    duplicate of yesterday's, a clock 10 minutes ahead, yesterday's last counts after midnight."""
    city, ingest, _, _ = city_at()
    k0, k1, k2, k3 = city.kiosks
    edge = counts(k0, accepted=MOST - 200, unique_visitors=MOST - 200 + 40, seq=MOST,  # 7,200 an hour at most
                  hourly=[7200] * 14 + [MOST - 200 - 14 * 7200] + [0] * 9, ts=iso(NOW + 600))
    after_midnight = NOW + 10 * 3600 + 30 * 60  # 00:30 the next day
    yesterday = counts(k1, ts=iso(after_midnight), hourly=hourly(h23=800), last_scan=iso(after_midnight - 1800))
    old = counts(k2, day="2026-03-07", ts=iso(NOW - 3 * 86400), last_scan=iso(NOW - 3 * 86400 - 60))  # retained
    for k, body, now in ((k0, edge, NOW), (k1, yesterday, after_midnight), (k2, old, NOW)):
        assert ingest.handle(k.topic("counts"), k.signed("counts", body), now), body
    assert ingest.handle(k3.topic("events"), k3.signed("events", {"id": "e", "seq": 1, "time": iso(NOW + 599),
                                                                  "verdict": "accept", "reason": "ok",
                                                                  "format": "eu-dcc"}), NOW)
    batch = ingest.take()
    assert not batch.refused and len(batch.daily) == 3 and ingest.stats.implausible == 0


def test_implausible_events_health_and_info(tmp_path):
    city, ingest, _, _ = city_at()
    k = city.kiosks[0]
    event = {"id": "e1", "seq": 10, "time": iso(NOW - 5), "verdict": "accept", "reason": "ok", "format": "eu-dcc"}
    health = {**k.health(NOW), "trust_age_hours": 30.0}
    cases = [
        ("events", {**event, "time": "9999-12-31T23:59:59Z"}, "events.time"),
        ("events", {**event, "seq": 2 ** 52}, "events.seq"),
        ("events", {**event, "seq": -1}, "events.seq"),
        ("health", {**health, "trust_age_hours": 1e308}, "health.trust_age_hours"),
        ("health", {**health, "trust_age_hours": -1.0}, "health.trust_age_hours"),
        ("health", {**health, "uptime_s": 1.5}, "health.uptime_s"),
        ("health", {**health, "outbox": 10 ** 400}, "health.outbox"),
        ("health", {**health, "capture_fps": 1e308}, "health.capture_fps"),
        ("health", {**health, "trust_version": 2 ** 60}, "health.trust_version"),
        ("health", {**health, "ts": "9999-12-31T23:59:59Z"}, "health.ts"),
        ("info", {**k.info(NOW), "ts": "9999-12-31T23:59:59Z"}, "info.ts"),
        ("info", {**k.info(NOW), "ts": iso(NOW + 3600)}, "info.ts"),
    ]
    for leaf, body, _ in cases:
        assert not ingest.handle(k.topic(leaf), k.signed(leaf, body), NOW), body
    batch = ingest.take()
    assert {key: n for key, (n, _) in batch.refused.items()} == {
        (k.topic("events"), "implausible"): 3, (k.topic("health"), "implausible"): 7,
        (k.topic("info"), "implausible"): 2}
    assert batch.implausible[(k.site, k.device)][2:] == [len(cases), "info.ts"]
    assert not batch.health and not batch.info and not batch.seen
    # Text where a number belongs is the contract broken (malformed), not a claim
    assert not ingest.handle(k.topic("health"), k.signed("health", {**health, "outbox": "many"}), NOW)
    assert list(ingest.take().refused) == [(k.topic("health"), "malformed")]


def test_what_a_kiosk_says_is_kept_without_control_characters(store):
    city, ingest, centre, _ = city_at(store)
    k = city.kiosks[0]
    health = {**k.health(NOW), "camera_ok": False, "camera_error": "lens\x00 \x1b[2Jgone\u202e", "extra": 10 ** 300}
    assert ingest.handle(k.topic("health"), k.signed("health", health), NOW)
    store.write(ingest.take())
    (row,) = [r for r in centre.kiosks() if r["device"] == k.device]
    assert row["camera_error"] == "lens [2Jgone"
    (stored,) = store.query("SELECT health_json FROM kiosk_health WHERE device = ?", [k.device])
    assert "extra" not in json.loads(stored["health_json"])  # unknown fields are not kept


def test_without_a_valid_signature_the_reason_is_the_signatures():
    """An unsigned or forged implausible message keeps its signature's reason and marks nobody."""
    from kiosk.wire.signing import generate_key, sign_bytes

    city, ingest, _, _ = city_at()
    k = city.kiosks[0]
    bad = counts(k, accepted=10 ** 12)
    genuine = json.loads(k.signed("counts", counts(k)))
    nan = json.dumps({**genuine, "accepted": float("nan")}).encode()  # JSON's NaN: no kiosk can sign it
    for payload in (json.dumps(bad).encode(), sign_bytes(bad, k.topic("counts"), generate_key()),
                    sign_bytes(bad, k.topic("counts"), city.kiosks[1].key), nan):
        assert not ingest.handle(k.topic("counts"), payload, NOW)
    batch = ingest.take()
    assert {reason: n for (_, reason), (n, _) in batch.refused.items()} == {
        "unsigned": 1, "unknown-key": 1, "wrong-kiosk": 1, "bad-signature": 1}
    assert not batch.implausible and not batch.daily


def test_an_implausible_newest_claim_neither_hides_nor_poisons_the_genuine_one(store):
    city, ingest, centre, clock = city_at(store)
    k = city.kiosks[0]
    health = k.health(NOW)
    # one batch: genuine messages, then the stolen key's newer (and newest) implausible ones
    ingest.handle(k.topic("counts"), k.signed("counts", counts(k)), NOW)
    ingest.handle(k.topic("health"), k.signed("health", {**health, "camera_ok": False, "degraded": ["camera-down"]}),
                  NOW)
    ingest.handle(k.topic("counts"), k.signed("counts", counts(k, accepted=10 ** 12, seq=2 ** 53 - 1)), NOW)
    ingest.handle(k.topic("health"), k.signed("health", {**health, "ts": "9999-12-31T23:59:59Z",
                                                         "trust_age_hours": 1e308}), NOW)
    store.write(ingest.take())
    (row,) = [r for r in centre.kiosks() if r["device"] == k.device]
    assert row["accepted"] == 800 and row["camera_ok"] is False
    assert centre.refused()["by_reason"] == {"implausible": 2}
    # The genuine kiosk's next messages overwrite its record as ever
    clock.t = NOW + 60
    ingest.handle(k.topic("counts"), k.signed("counts", counts(k, accepted=801, seq=5001, ts=iso(NOW + 60))), NOW + 60)
    ingest.handle(k.topic("health"), k.signed("health", k.health(NOW + 60)), NOW + 60)
    store.write(ingest.take())
    (row,) = [r for r in centre.kiosks() if r["device"] == k.device]
    assert row["accepted"] == 801 and row["camera_ok"] is True


def test_a_planted_ts_within_the_skew_holds_only_as_long_as_the_skew(store):
    """The most a stolen key can plant: a health 10 minutes ahead. The genuine kiosk's record is its own again
    once the centre's clock passes that time."""
    city, ingest, centre, clock = city_at(store)
    k = city.kiosks[0]
    planted = {**k.health(NOW + 599), "camera_ok": True}
    ingest.handle(k.topic("health"), k.signed("health", planted), NOW)
    store.write(ingest.take())
    t = NOW + 300
    genuine = {**k.health(t), "camera_ok": False, "camera_error": "unplugged"}
    ingest.handle(k.topic("health"), k.signed("health", genuine), t)
    store.write(ingest.take())
    assert [r["camera_ok"] for r in centre.kiosks() if r["device"] == k.device] == [True]
    t = NOW + 660
    ingest.handle(k.topic("health"), k.signed("health", {**genuine, "ts": iso(t)}), t)
    store.write(ingest.take())
    assert [r["camera_ok"] for r in centre.kiosks() if r["device"] == k.device] == [False]


def test_an_implausible_kiosk_is_listed_for_inspection(store):
    city, ingest, centre, clock = city_at(store)
    k = city.kiosks[0]
    for kk in city.kiosks:
        ingest.handle(kk.topic("info"), kk.signed("info", kk.info(NOW)), NOW)
        ingest.handle(kk.topic("health"), kk.signed("health", kk.health(NOW)), NOW)
        ingest.handle(kk.topic("counts"), kk.signed("counts", counts(kk)), NOW)
    store.write(ingest.take())
    assert "implausible" not in centre.inspection()["by_kind"]
    ingest.handle(k.topic("counts"), k.signed("counts", counts(k, accepted=10 ** 9)), NOW + 5)
    store.write(ingest.take())
    clock.t = NOW + 3600
    ingest.handle(k.topic("health"), k.signed("health", {**k.health(NOW + 3600), "trust_age_hours": 1e308}),
                  NOW + 3600)
    ingest.handle(k.topic("counts"), k.signed("counts", counts(k, ts=iso(NOW + 3600))), NOW + 3600)
    store.write(ingest.take())
    insp = centre.inspection()
    rows = [r for r in insp["rows"] if r["why"] == "implausible"]
    assert insp["by_kind"]["implausible"] == 1 and [r["device"] for r in rows] == [k.device]
    (row,) = rows
    assert row["since"] == iso(NOW + 5) and row["for_seconds"] == 3595  # since its first implausible message
    assert row["venue_id"] == k.venue.venue_id and row["district"] == k.venue.district
    assert "health.trust_age_hours" in row["detail"] and "health.trust_age_hours" in row["detail_vi"]
    assert "stolen" in row["detail"] and "lấy cắp" in row["detail_vi"]
    assert centre.inspection(kinds=("implausible",))["rows"] == rows
    assert centre.inspection(Scope(district=k.venue.district), kinds=("implausible",))["rows"] == rows
    for elsewhere in {v.district for v in city.venues} - {k.venue.district}:
        assert not centre.inspection(Scope(district=elsewhere), kinds=("implausible",))["rows"]
    assert centre.refused()["by_reason"] == {"implausible": 2}
    # the genuine counts after it still count
    assert [r["accepted"] for r in centre.kiosks() if r["device"] == k.device] == [800]
    # listed for a day after its last implausible message, then no more
    clock.t = NOW + 3600 + 86400 - 1
    assert centre.inspection(kinds=("implausible",))["total"] == 1
    clock.t = NOW + 3600 + 86400 + 1
    assert centre.inspection(kinds=("implausible",))["total"] == 0


def test_a_refusal_is_logged_once_per_kiosk_and_reason_a_minute(caplog):
    city, ingest, _, _ = city_at()
    k, other = city.kiosks[0], city.kiosks[1]
    huge = json.dumps({**k.health(NOW), "trust_age_hours": 10 ** 400}).encode()  # unsigned, an int of 401 digits
    own = k.signed("counts", counts(k, accepted=10 ** 12))
    with caplog.at_level(logging.WARNING, logger="kiosk.centre.ingest"):
        for i in range(200):
            assert not ingest.handle(k.topic("health"), huge, NOW + i / 10)
            assert not ingest.handle(k.topic("counts"), own, NOW + i / 10)
            assert not ingest.handle(other.topic("health"), huge, NOW + i / 10)
        lines = [r.getMessage() for r in caplog.records]
        assert len(lines) == 3 and not any(r.exc_info for r in caplog.records)
        assert any("unsigned" in m and k.device in m for m in lines)
        assert any("implausible (counts.scans)" in m for m in lines)
        ingest.handle(k.topic("health"), huge, NOW + 61)
        assert "(199 more from it in the last 61 s)" in caplog.records[-1].getMessage()
    assert ingest.stats.refused == 601
    assert ingest.take().refused[(k.topic("health"), "unsigned")][0] == 201


def test_a_flood_of_invented_kiosks_is_a_bounded_log(caplog):
    city, ingest, _, _ = city_at()
    ingest.log.max_kiosks = 50
    with caplog.at_level(logging.WARNING, logger="kiosk.centre.ingest"):
        for i in range(500):
            ingest.handle(f"checkin/v1/x/ghost-{i}/counts", b"{}", NOW)
    assert len(caplog.records) == 51  # 50 kiosks, then one line for the others
    assert len(ingest.log._last) == 51


def test_the_limits_are_the_centres_to_set():
    city = small_city(venues=2, share=1.0)
    k = city.kiosks[0]
    slow = Ingest(registry_of(city), limits=Limits(max_scans_per_minute=1, clock_skew_minutes=0))
    assert not slow.handle(k.topic("counts"), k.signed("counts", counts(k)), NOW)  # 1,000 by 14:00 > 840
    assert not slow.handle(k.topic("counts"), k.signed("counts", counts(k, accepted=0, rejected=0, duplicates=0,
                                                                         overrides=0, unique_visitors=0, hourly=None,
                                                                         ts=iso(NOW + 1))), NOW)
    assert slow.handle(k.topic("counts"), k.signed("counts", counts(k, accepted=500, rejected=0, duplicates=0,
                                                                     overrides=0, unique_visitors=400, hourly=None)),
                       NOW)
    with pytest.raises(ValueError):
        Limits(max_scans_per_minute=0)


@pytest.mark.parametrize("option,value,message", [
    ("--max-scans-per-minute", "0", "--max-scans-per-minute must be 1-100000"),
    ("--clock-skew-minutes", "-1", "--clock-skew-minutes must be 0-1440"),
])
def test_bad_limits_on_the_command_line(tmp_path, option, value, message):
    import subprocess
    import sys

    reg = tmp_path / "fleet.json"
    reg.write_text('{"version": 1, "kiosks": []}')
    r = subprocess.run([sys.executable, "-m", "kiosk", "monitor", "--once", "--broker", "mqtt://127.0.0.1:9",
                        "--registry", str(reg), option, value], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr


def test_the_day_and_its_hours_follow_the_city_zone():
    """Midnight is the city's: at 00:05 in Hanoi (17:05 UTC) the day has 5 minutes, whatever UTC says."""
    city, ingest, _, _ = city_at()
    k = city.kiosks[0]
    t = datetime(2026, 3, 11, 0, 5, tzinfo=ZONE).timestamp()
    early = counts(k, day="2026-03-11", accepted=1800, rejected=0, duplicates=0, overrides=0, unique_visitors=1000,
                   hourly=hourly(h0=1800), seq=1800, ts=iso(t), last_scan=iso(t - 1))
    assert ingest.handle(k.topic("counts"), k.signed("counts", early), t)  # 15 minutes at 120 a minute
    too_many = {**early, "accepted": 1801, "seq": 1801, "hourly": hourly(h0=1801)}
    assert not ingest.handle(k.topic("counts"), k.signed("counts", too_many), t)
    assert ingest.take().implausible[(k.site, k.device)][3] == "counts.scans"


def test_an_implausible_flood_costs_one_check_each_and_hides_nothing(monkeypatch):
    """Implausible claims are verified at once (never candidates): the genuine counts still win."""
    import kiosk.centre.ingest as ingest_module

    city, ingest, _, _ = city_at()
    k = city.kiosks[0]
    calls = []
    real = ingest_module.verify_parsed

    def spy(body, sig, topic, keys):
        calls.append(topic)
        return real(body, sig, topic, keys)

    monkeypatch.setattr(ingest_module, "verify_parsed", spy)
    flood = [k.signed("counts", counts(k, seq=5001 + i, accepted=10 ** 9)) for i in range(20)]
    for p in flood[:10]:
        ingest.handle(k.topic("counts"), p, NOW)
    ingest.handle(k.topic("counts"), k.signed("counts", counts(k)), NOW)
    for p in flood[10:]:
        ingest.handle(k.topic("counts"), p, NOW)
    batch = ingest.take()
    assert len(calls) == 21
    assert [r[4] for r in batch.daily.values()] == [800]
    assert batch.implausible[(k.site, k.device)][2] == 20


def test_timestamps_in_the_past_are_old_news_not_lies(store):
    """A kiosk offline for days leaves its last signed messages retained on the broker: they are believed."""
    city, ingest, centre, _ = city_at(store)
    k = city.kiosks[0]
    then = NOW - 5 * 86400
    day = datetime.fromtimestamp(then, ZONE).date().isoformat()
    ingest.handle(k.topic("health"), k.signed("health", k.health(then)), NOW)
    ingest.handle(k.topic("info"), k.signed("info", k.info(then)), NOW)
    ingest.handle(k.topic("counts"), k.signed("counts", counts(k, day=day, ts=iso(then), last_scan=iso(then - 60))),
                  NOW)
    ingest.handle(k.topic("status"), b"offline", NOW)
    store.write(ingest.take())
    assert ingest.stats.refused == 0
    rows = {r["why"]: r for r in centre.inspection()["rows"] if r["device"] == k.device}
    assert set(rows) == {"offline"} and rows["offline"]["since"] == iso(then)
    assert [h["scans"] for h in centre.history(Scope(venue_id=k.venue.venue_id), days=7)][1] == 990


def test_real_time_messages_of_a_simulated_city_are_all_plausible():
    """The simulator signs like a real kiosk: a whole city's day through the checks, nothing refused."""
    from centre_helpers import announce_city

    city = small_city(venues=20, share=1.0, offline=2, silent=1, camera_down=1)
    ingest = Ingest(registry_of(city), coalesce=True)
    announce_city(ingest, city, time.time())
    import random

    rng = random.Random(2)
    local = city.local_now()
    day = local.date().isoformat()
    for _ in range(400):
        kk = rng.choice([x for x in city.kiosks if not x.condition])
        ingest.handle(kk.topic("events"), kk.signed("events", kk.check_in(rng, local, day, local.hour)))
        ingest.handle(kk.topic("counts"), kk.signed("counts", kk.counts(day, time.time())))
    ingest.take()
    assert ingest.stats.refused == 0


def test_the_refusal_log_forgets_quiet_kiosks():
    from kiosk.centre.ingest import RefusalLog

    log = RefusalLog(interval=60, max_kiosks=3)
    for i in range(3):
        log.note(f"checkin/v1/s/k{i}/counts", "unsigned", NOW)
    log.note("checkin/v1/s/k9/counts", "unsigned", NOW + 1)  # full: shares the others' line
    assert ("(other kiosks)", "unsigned") in log._last
    log.note("checkin/v1/s/k10/counts", "unsigned", NOW + 61)  # a minute on, the quiet ones are forgotten
    assert set(log._last) == {("s/k10", "unsigned")}
