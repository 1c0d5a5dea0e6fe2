"""The fleet monitor: the picture it keeps, its SQLite store, its report, and the commands against a broker."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kiosk.cli import main
from kiosk.monitor.fleet import Fleet, KioskState, inspection, totals
from kiosk.monitor.report import report, table
from kiosk.monitor.store import FleetStore

ROOT = Path(__file__).resolve().parent.parent
T = "checkin/v1/hn-hk/kiosk-01"
TODAY = "2021-09-14"


def counts(seq, accepted, day=TODAY, rejected=0, duplicates=0, last_scan=None):
    return json.dumps({"day": day, "accepted": accepted, "rejected": rejected, "duplicates": duplicates, "overrides": 0,
                       "by_reason": {}, "by_format": {}, "unique_visitors": accepted, "hourly": [0] * 24,
                       "dropped_events": 0, "last_scan": last_scan, "seq": seq, "ts": "2021-09-14T05:00:00.000Z"}).encode()


def event(seq, time_="2021-09-14T05:00:00.000Z"):
    return json.dumps({"id": "0" * 32, "seq": seq, "time": time_, "verdict": "accept", "reason": "ok",
                       "format": "eu-dcc"}).encode()


def test_newest_counts_win_and_late_ones_are_ignored():
    f = Fleet()
    assert f.handle(f"{T}/counts", counts(5, 5))
    assert not f.handle(f"{T}/counts", counts(3, 3))  # an older snapshot delivered late
    k = f.kiosks[("hn-hk", "kiosk-01")]
    assert (k.accepted, k.counts_seq) == (5, 5)
    assert f.handle(f"{T}/counts", counts(1, 1, day="2021-09-15"))  # a new day starts from zero
    assert (k.day, k.accepted) == ("2021-09-15", 1)


def test_events_deduplicated_by_sequence_number():
    f = Fleet()
    for seq in (1, 2, 2, 3, 1, 4):  # QoS 1 redeliveries and a restart's resend
        f.handle(f"{T}/events", event(seq))
    k = f.kiosks[("hn-hk", "kiosk-01")]
    assert (k.events_seen, k.last_seq, f.stats.duplicate_events) == (4, 4, 2)
    assert k.last_scan == pytest.approx(1631595600.0)


def test_status_info_and_bad_messages():
    f = Fleet()
    f.handle(f"{T}/status", b"online", now=100.0)
    f.handle(f"{T}/status", b"online", now=200.0)
    f.handle(f"{T}/info", json.dumps({"venue_id": "V-1", "venue_name": "Chợ"}).encode())
    k = f.kiosks[("hn-hk", "kiosk-01")]
    assert (k.online, k.since, k.venue_id) == (True, 100.0, "V-1")
    f.handle(f"{T}/status", b"offline", now=300.0)
    assert (k.online, k.since) == (False, 300.0)
    assert not f.handle(f"{T}/counts", b"{not json")
    assert not f.handle(f"{T}/status", b"maybe")
    assert not f.handle(f"{T}/cmd/notice", b"hello")
    assert not f.handle("other/topic", b"x")
    assert f.stats.bad_payloads == 2 and (k.online, k.accepted) == (False, 0)


def test_totals_and_inspection_list():
    now = 10 * 3600.0
    ks = [
        KioskState("s", "a", venue_id="V1", online=True, since=0.0, day=TODAY, accepted=10, rejected=2, duplicates=1),
        KioskState("s", "b", venue_id="V1", online=True, since=0.0, day=TODAY, accepted=5),  # same venue, 2nd kiosk
        KioskState("s", "c", venue_id="V2", online=True, since=0.0, day=TODAY),  # shows a code, no scans: inspect
        KioskState("s", "d", venue_id="V3", online=False, since=now - 3 * 3600, day="2021-09-13", accepted=99),
        KioskState("s", "e", venue_id="V4", online=False, since=now - 600, day=TODAY, accepted=1),
    ]
    t = totals(ks, TODAY)
    assert (t["kiosks"], t["kiosks_online"], t["venues"], t["venues_with_scans_today"]) == (5, 3, 4, 2)
    assert t["scans_today"] == 13 + 5 + 1  # yesterday's 99 do not count today
    insp = inspection(ks, TODAY, now, offline_hours=2)
    assert [(r["device"], r["why"]) for r in insp] == [("c", "no-scans-today"), ("d", "offline")]


def test_store_merges_writers_by_newest_figures(tmp_path):
    path = tmp_path / "fleet.sqlite3"
    a, b = FleetStore(path), FleetStore(path)  # two monitors of one share group, one file
    fa, fb = Fleet(), Fleet()
    fa.handle(f"{T}/counts", counts(10, 10))
    fa.handle(f"{T}/events", event(9))
    fb.handle(f"{T}/counts", counts(7, 7))  # b got an older snapshot
    fb.handle(f"{T}/events", event(10))
    fb.handle(f"{T}/info", json.dumps({"venue_id": "V-1", "venue_name": "x"}).encode())
    a.save(fa.take_dirty())
    b.save(fb.take_dirty())
    (k,) = FleetStore(path).kiosks()
    assert (k.accepted, k.counts_seq, k.last_seq, k.events_seen, k.venue_id) == (10, 10, 10, 2, "V-1")
    fa.handle(f"{T}/events", event(11))
    a.save(fa.take_dirty())
    (k,) = a.kiosks()
    assert k.events_seen == 3  # only new events are added at each flush


def test_report_and_table():
    ks = [KioskState("s", "a", venue_name="Chợ Đồng Xuân", online=True, since=0.0, day=TODAY, accepted=3,
                     last_scan=50.0)]
    rep = report(ks, TODAY, now=100.0)
    json.dumps(rep)
    text = table(rep, now=100.0)
    assert "1/1 kiosks online" in text and "Chợ Đồng Xuân" in text and "3 scans today" in text


def run_cli(*args, timeout=30):
    return subprocess.run([sys.executable, "-m", "kiosk", *args], capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT)


def test_simulate_then_monitor_once_json(broker):
    sim = run_cli("simulate", "--broker", broker.url, "--kiosks", "20", "--rate", "400", "--duration", "1",
                  "--offline", "2", "--json")
    assert sim.returncode == 0, sim.stderr
    sent = json.loads(sim.stdout)
    mon = run_cli("monitor", "--broker", broker.url, "--once", "--json", "--settle", "0.5")
    assert mon.returncode == 0, mon.stderr
    rep = json.loads(mon.stdout)
    t = rep["totals"]
    assert (t["kiosks"], t["kiosks_online"]) == (20, 18)
    assert t["accepted_today"] == sent["accepted"] and t["rejected_today"] == sent["rejected"]
    assert t["scans_today"] == sent["checkins"]
    assert len(rep["kiosks"]) == 20 and all(k["last_scan"] for k in rep["kiosks"] if k["accepted"])


def test_shared_subscription_splits_messages(broker, tmp_path):
    from kiosk.monitor.simulate import FleetSimulator
    from kiosk.monitor.watch import FleetMonitor

    db = tmp_path / "fleet.sqlite3"
    monitors = [FleetMonitor(broker.url, FleetStore(db), share_group="centre", flush_seconds=0.1) for _ in range(2)]
    for m in monitors:
        m.start()
        assert m.connected.wait(5)
    time.sleep(0.3)
    sim = FleetSimulator(broker.url, kiosks=10, connections=2)
    sim.connect()
    sim.announce()
    sim.run(rate=1000, duration=1.0)
    sim.finish()
    sim.close()
    sent = sim.totals()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        got = sum(m.fleet.stats.messages for m in monitors)
        if got >= sim.messages:
            break
        time.sleep(0.05)
    per_monitor = [m.fleet.stats.messages for m in monitors]
    for m in monitors:
        m.stop()
    assert sum(per_monitor) == sim.messages  # every message to exactly one monitor of the group
    assert all(n > 0.1 * sim.messages for n in per_monitor)  # and the load was split
    rep = report(FleetStore(db).kiosks(), time.strftime("%Y-%m-%d"))
    assert rep["totals"]["accepted_today"] == sent["accepted"]  # the merged file has the whole fleet


def test_monitor_usage_errors(capsys):
    assert main(["monitor", "--broker", "http://nowhere", "--once"]) == 2
    assert "not a broker URL" in capsys.readouterr().err
    assert main(["monitor", "--broker", "mqtt://127.0.0.1:1", "--once", "--share-group", "a/b"]) == 2


def test_monitor_unreachable_broker(capsys):
    r = run_cli("monitor", "--broker", "mqtt://127.0.0.1:1", "--once", "--settle", "0.1", "--timeout", "0.5")
    assert r.returncode == 1 and "cannot reach the broker" in r.stderr and "Traceback" not in r.stderr


def test_monitor_db_survives_a_restart(tmp_path):
    from kiosk.monitor.watch import FleetMonitor

    path = tmp_path / "fleet.sqlite3"
    f = Fleet()
    f.handle(f"{T}/status", b"offline", now=1000.0)
    f.handle(f"{T}/events", event(41))
    FleetStore(path).save(f.take_dirty())
    m = FleetMonitor("mqtt://127.0.0.1:1", FleetStore(path))  # not started: only the picture is loaded
    k = m.fleet.kiosks[("hn-hk", "kiosk-01")]
    assert (k.online, k.since, k.last_seq) == (False, 1000.0, 41)
    assert not m.fleet.handle(f"{T}/events", event(41))  # already seen before the restart
    m.fleet.handle(f"{T}/status", b"offline", now=5000.0)  # the retained offline again: still offline since 1000
    m.store.save(m.fleet.take_dirty())
    (k,) = m.store.kiosks()
    assert k.since == 1000.0


def test_live_table_until_interrupted(broker):
    import signal

    run_cli("simulate", "--broker", broker.url, "--kiosks", "3", "--rate", "30", "--duration", "0.3")
    p = subprocess.Popen([sys.executable, "-m", "kiosk", "monitor", "--broker", broker.url, "--refresh", "0.3"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    time.sleep(2.0)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=10)
    assert p.returncode == 0, err
    assert "3/3 kiosks online" in out and "Inspection list" in out and "Traceback" not in err
