"""The fleet monitor and kiosk health: camera and clock state per kiosk, and the inspection list."""

from __future__ import annotations

import json

from kiosk.ledger import Ledger
from kiosk.monitor.fleet import Fleet, KioskState, inspection, totals
from kiosk.monitor.report import report, table
from kiosk.monitor.store import FleetStore
from kiosk.monitor.watch import FleetMonitor
from kiosk.publish import open_publisher
from test_monitor import TODAY, counts, run_cli
from test_publish import checkin, make_config, wait_for
from test_publish_health import health

T = "checkin/v1/hn-hk/kiosk-01"
KEY = ("hn-hk", "kiosk-01")


def health_msg(camera_ok=True, clock_synced=True, error="camera disappeared: /dev/video0") -> bytes:
    return json.dumps({"camera_ok": camera_ok, "camera_error": "" if camera_ok else error, "capture_fps": 30.0,
                       "decode_fps": 29.5, "verdict_latency_p95_ms": 55.0, "clock_synced": clock_synced,
                       "trust_age_days": 1.0, "uptime_s": 60, "outbox": 0, "ts": "2021-09-14T05:00:00.000Z"}).encode()


def test_camera_and_clock_from_health_messages():
    f = Fleet()
    f.handle(f"{T}/status", b"online", now=100.0)
    assert f.handle(f"{T}/health", health_msg(), now=110.0)
    k = f.kiosks[KEY]
    assert (k.camera_ok, k.camera_since, k.clock_synced) == (True, 110.0, True)
    f.handle(f"{T}/health", health_msg(camera_ok=False), now=200.0)
    f.handle(f"{T}/health", health_msg(camera_ok=False), now=260.0)  # still down: since stays
    assert (k.camera_ok, k.camera_since, k.camera_error) == (False, 200.0, "camera disappeared: /dev/video0")
    assert k.as_dict()["health"]["capture_fps"] == 30.0
    assert not f.handle(f"{T}/health", b'{"camera_ok": "yes"}')  # malformed: ignored, state kept
    assert not f.handle(f"{T}/health", b"not json")
    assert f.stats.bad_payloads == 2 and k.camera_ok is False
    f2 = Fleet()
    assert f2.handle(f"{T}/health", health_msg(), now=1.0)  # a kiosk first seen by its health
    assert f2.kiosks[KEY].online is None


def test_inspection_lists_camera_down_and_unsynchronised_clocks():
    now = 10 * 3600.0
    up = dict(online=True, since=0.0, day=TODAY, accepted=5)
    ks = [
        KioskState("s", "a", venue_id="V1", camera_ok=True, clock_synced=True, **up),  # fine
        KioskState("s", "b", venue_id="V2", camera_ok=False, camera_since=now - 600, camera_error="no frames", **up),
        KioskState("s", "c", venue_id="V3", camera_ok=True, clock_synced=False, **up),
        KioskState("s", "d", venue_id="V4", online=False, since=now - 600, camera_ok=False, clock_synced=False),
        KioskState("s", "e", venue_id="V5", online=True, since=0.0, camera_ok=False, camera_since=now - 60),
        KioskState("s", "f", venue_id="V6", camera_ok=None, clock_synced=None, **up),  # no health yet: unknown
    ]
    insp = inspection(ks, TODAY, now, offline_hours=2)
    assert [(r["device"], r["why"]) for r in insp] == [
        ("b", "camera-down"), ("e", "camera-down"), ("c", "clock-unsynced"), ("e", "no-scans-today")]
    assert (insp[0]["since"], insp[0]["detail"]) == (now - 600, "no frames")
    # d is offline for 10 minutes only: its last health is not current, so it is not listed for its camera
    assert totals(ks, TODAY)["kiosks_camera_down"] == 2
    text = table(report(ks, TODAY, now=now), now=now)
    assert "camera down for 10m00s: no frames" in text and "clock not synchronised" in text
    assert "2 cameras down" in text
    rows = {line.split()[0]: line for line in text.splitlines() if line.startswith("s/")}
    assert " DOWN " in rows["s/b"] and " ok " in rows["s/a"] and " - " in rows["s/f"]
    assert max(len(line) for line in text.splitlines() if not line.startswith("Fleet")) <= 100


def test_store_keeps_health_and_merges_the_newest(tmp_path):
    path = tmp_path / "fleet.sqlite3"
    a, b = FleetStore(path), FleetStore(path)  # two monitors of one share group
    fa, fb = Fleet(), Fleet()
    fa.handle(f"{T}/health", health_msg(camera_ok=False), now=100.0)
    fb.handle(f"{T}/health", health_msg(camera_ok=True, clock_synced=False), now=50.0)  # older
    fb.handle(f"{T}/counts", counts(3, 3), now=60.0)
    a.save(fa.take_dirty())
    b.save(fb.take_dirty())
    (k,) = FleetStore(path).kiosks()
    assert (k.camera_ok, k.camera_since, k.clock_synced, k.accepted) == (False, 100.0, True, 3)
    assert k.as_dict()["health"]["camera_error"] == "camera disappeared: /dev/video0"
    fb.handle(f"{T}/counts", counts(4, 4), now=70.0)  # no new health: the counts write leaves health alone
    b.save(fb.take_dirty())
    (k,) = a.kiosks()
    assert (k.camera_ok, k.accepted) == (False, 4)
    m = FleetMonitor("mqtt://127.0.0.1:1", FleetStore(path))  # a restarted monitor resumes the camera state
    assert m.fleet.kiosks[KEY].camera_ok is False and m.fleet.kiosks[KEY].camera_since == 100.0


def test_monitor_lists_a_kiosk_whose_camera_is_down(tmp_path, broker):
    """Real kiosk publisher -> mosquitto -> live monitor and `kiosk monitor --once --json`."""
    cfg = make_config(tmp_path, broker.url)
    monitor = FleetMonitor(broker.url, FleetStore(tmp_path / "fleet.sqlite3"), flush_seconds=0.1)
    monitor.start()
    assert monitor.connected.wait(5)
    with Ledger.from_config(cfg) as ledger:
        pub = open_publisher(cfg, ledger)
        pub.set_health(health())
        pub.start()
        try:
            ledger.record(checkin())
            pub.wake()

            def camera(state):
                with monitor._lock:
                    k = monitor.fleet.kiosks.get(KEY)
                    return k is not None and k.online is True and k.camera_ok is state and k.accepted == 1

            assert wait_for(lambda: camera(True))
            pub.set_health(health(camera_ok=False, capture_fps=0.0, decode_fps=0.0))  # camera unplugged
            assert wait_for(lambda: camera(False), timeout=3)
            with monitor._lock:
                kiosks = list(monitor.fleet.kiosks.values())
            rep = report(kiosks, ledger.counts()["day"])
            assert [(r["device"], r["why"]) for r in rep["inspection"]] == [("kiosk-01", "camera-down")]
            assert rep["inspection"][0]["detail"] == "camera disappeared: /dev/video0"

            once = run_cli("monitor", "--broker", broker.url, "--once", "--json", "--settle", "0.5")
            assert once.returncode == 0, once.stderr
            out = json.loads(once.stdout)
            (k,) = out["kiosks"]
            assert k["camera_ok"] is False and k["health"]["capture_fps"] == 0.0 and k["health"]["outbox"] >= 0
            assert [r["why"] for r in out["inspection"]] == ["camera-down"]
            assert out["totals"]["kiosks_camera_down"] == 1

            pub.set_health(health())  # the camera is back: off the list at once
            assert wait_for(lambda: camera(True), timeout=3)
            with monitor._lock:
                assert not inspection(list(monitor.fleet.kiosks.values()), ledger.counts()["day"], 0.0, 2)
        finally:
            pub.stop()
            monitor.stop()
