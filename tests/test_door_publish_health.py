"""The retained ``health`` topic: what the centre sees of a kiosk's camera, frame rates, latency and clock."""

from __future__ import annotations

import json
import math
import time
from datetime import datetime, timezone
from kiosk.door.assembly import open_ledger, open_publisher
from kiosk.door.publish import NullTelemetry
from kiosk.door.publish.payloads import health_payload
from kiosk.testing.clock import FakeClock
from helpers import Collector, checkin, make_config, wait_for
from test_door_publish_payloads import validator


def health(camera_ok=True, **over) -> dict:
    """What the pipeline's main loop passes to ``set_health``."""
    h = {"camera_ok": camera_ok, "camera_error": "" if camera_ok else "camera disappeared: /dev/video0",
         "capture_fps": 29.97, "decode_fps": 28.44, "verdict_latency_p95_ms": 61.2391, "clock_synced": True,
         "trust_age_days": 1.2345, "uptime_s": 3600.7}
    h.update(over)
    return h


def healths(sub: Collector) -> list[dict]:
    return [json.loads(p) for p in sub.of("/health")]


def test_health_is_retained_on_connect_with_outbox_and_rounded_figures(tmp_path, broker):
    cfg = make_config(tmp_path, broker.url)
    with open_ledger(cfg) as ledger:
        for i in range(3):  # recorded while the kiosk was not yet connected: waiting in the outbox
            ledger.record(checkin(pseudonym=str(i)))
        pub = open_publisher(cfg, ledger)
        pub.set_health(health())  # the pipeline reports before the broker answers
        outbox_at_connect = ledger.outbox_size()
        pub.start()
        try:
            assert wait_for(lambda: pub.connected and ledger.outbox_size() == 0)
            late = Collector(broker.url, "checkin/v1/hn-hk/kiosk-01/health")  # a monitor that starts later
            assert wait_for(lambda: late.messages)
            topic, payload, retained = late.messages[0]
            late.close()
        finally:
            pub.stop()
    assert topic == "checkin/v1/hn-hk/kiosk-01/health" and retained
    h = json.loads(payload)
    validator("health").validate(h)
    assert h["camera_ok"] is True and h["camera_error"] == "" and h["clock_synced"] is True
    assert (h["capture_fps"], h["decode_fps"], h["verdict_latency_p95_ms"]) == (30.0, 28.4, 61.2)
    assert (h["trust_age_days"], h["uptime_s"]) == (1.23, 3601)
    assert h["outbox"] == outbox_at_connect == 3  # the backlog as the kiosk connected
    assert abs(datetime.fromisoformat(h["ts"]).timestamp() - time.time()) < 30


def test_health_republished_after_the_broker_comes_back(tmp_path, broker):
    cfg = make_config(tmp_path, broker.url)
    with open_ledger(cfg) as ledger:
        pub = open_publisher(cfg, ledger)
        pub.set_health(health())
        pub.start()
        try:
            assert wait_for(lambda: pub.connected)
            broker.stop()
            assert wait_for(lambda: not pub.connected)
            restarted = datetime.now(timezone.utc)
            broker.start()
            sub = Collector(broker.url, "checkin/v1/+/+/health")
            # The broker kept the old retained copy (persistence); the kiosk sends a fresh one on reconnecting.
            assert wait_for(lambda: any(datetime.fromisoformat(h["ts"]) > restarted for h in healths(sub)))
            sub.close()
        finally:
            pub.stop()


def test_camera_flip_is_published_at_once_and_figures_are_rate_limited(tmp_path, broker):
    cfg = make_config(tmp_path, broker.url)  # counts_interval_seconds and health_interval_seconds: 60 s
    assert cfg.mqtt.counts_interval_seconds == 60 and cfg.mqtt.health_interval_seconds == 60
    assert cfg.mqtt.counts_min_interval_seconds == 0.1
    clock = FakeClock()  # the publisher's intervals move only when the test says so
    with open_ledger(cfg) as ledger:
        sub = Collector(broker.url, "checkin/v1/+/+/health")
        pub = open_publisher(cfg, ledger, clock=clock)
        pub.set_health(health())
        pub.start()
        try:
            assert wait_for(lambda: len(sub.of("/health")) == 1)
            for fps in (29.0, 28.0, 27.0):  # the pipeline reports every second: figures alone wait for the interval
                clock.advance(1.0)
                pub.set_health(health(capture_fps=fps))
                pub.wake()  # as new outbox rows would: the publisher looks, and finds nothing due
            pub.set_health(health(camera_ok=False, capture_fps=0.0, decode_fps=0.0))  # camera unplugged
            # at once: 3 s into a 60 s interval, with no more time given
            assert wait_for(lambda: any(h["camera_ok"] is False for h in healths(sub)), timeout=5)
            assert len(sub.of("/health")) == 2  # the figures alone never went out: the flip came second
            down = healths(sub)[-1]
            assert down["camera_ok"] is False and down["camera_error"] == "camera disappeared: /dev/video0"
            assert down["capture_fps"] == 0.0
            clock.advance(0.125)  # past counts_min_interval_seconds: flips too go out at most this often
            pub.set_health(health(clock_synced=False))  # camera back, clock lost: both flips go out
            assert wait_for(lambda: len(sub.of("/health")) == 3, timeout=2)
            assert (healths(sub)[-1]["camera_ok"], healths(sub)[-1]["clock_synced"]) == (True, False)
        finally:
            pub.stop()
            sub.close()


def test_health_republished_every_interval_with_fresh_figures(tmp_path, broker):
    cfg = make_config(tmp_path, broker.url, health_interval_seconds=1.0)
    clock = FakeClock()  # the publisher's intervals move only when the test says so
    with open_ledger(cfg) as ledger:
        sub = Collector(broker.url, "checkin/v1/+/+/health")
        pub = open_publisher(cfg, ledger, clock=clock)
        pub.set_health(health(uptime_s=10))
        pub.start()
        try:
            assert wait_for(lambda: len(sub.of("/health")) == 1)
            pub.set_health(health(uptime_s=11, capture_fps=15.04))
            clock.advance(1.0)  # the interval
            pub.wake()
            assert wait_for(lambda: len(sub.of("/health")) >= 2, timeout=3)
            last = healths(sub)[-1]
            assert (last["uptime_s"], last["capture_fps"]) == (11, 15.0)
            for up in range(12, 17):  # five reports and five wakes within the next second: one message, at its end
                pub.set_health(health(uptime_s=up))
                pub.wake()
                clock.advance(0.125)  # binary fractions: the second adds up exactly
            clock.advance(0.375)
            pub.wake()
            assert wait_for(lambda: len(sub.of("/health")) >= 3, timeout=3)
            clock.advance(0.125)  # past counts_min_interval_seconds
            pub.set_health(health(uptime_s=17, camera_ok=False))  # a flip: out at once, after whatever was due
            assert wait_for(lambda: any(h["camera_ok"] is False for h in healths(sub)), timeout=3)
            # about one a second, not one per set_health or per wake
            assert [h["uptime_s"] for h in healths(sub)] == [10, 11, 16, 17]
        finally:
            pub.stop()
            sub.close()


def test_health_payload_keeps_only_documented_machine_figures():
    raw = health(camera_ok=False, camera_error="x" * 500, capture_fps=float("nan"), decode_fps=-3,
                 verdict_latency_p95_ms=None, clock_synced=None, trust_age_days="soon",
                 visitor_name="Nguyễn Văn A", last_code="HC1:...")  # must never leave the kiosk
    h = health_payload(raw, outbox=7)
    validator("health").validate(h)
    assert "visitor_name" not in h and "last_code" not in h and "Nguyễn" not in json.dumps(h, ensure_ascii=False)
    assert len(h["camera_error"]) == 200 and h["outbox"] == 7
    assert (h["capture_fps"], h["decode_fps"]) == (0.0, 0.0)  # no NaN in JSON, no negative rates
    assert h["verdict_latency_p95_ms"] is None and h["clock_synced"] is None and h["trust_age_days"] is None
    assert all(not isinstance(v, float) or math.isfinite(v) for v in h.values())


def test_null_telemetry_ignores_health(tmp_path):
    cfg = make_config(tmp_path, "mqtt://localhost:1", "enabled=false\n")
    with open_ledger(cfg) as ledger:
        t = open_publisher(cfg, ledger)
        assert isinstance(t, NullTelemetry)
        t.set_health(health(camera_ok=False))  # no broker, no error, nothing kept
        t.start()
        t.stop()


def test_home_assistant_sees_the_camera_problem(tmp_path, broker):
    cfg = make_config(tmp_path, broker.url, "ha_discovery=true\n")
    with open_ledger(cfg) as ledger:
        sub = Collector(broker.url, "homeassistant/#")
        pub = open_publisher(cfg, ledger)
        pub.start()
        try:
            topic = "homeassistant/binary_sensor/checkin_hn-hk_kiosk-01/camera_problem/config"
            assert wait_for(lambda: any(t == topic for t, _, _ in sub.messages))
            conf = json.loads(next(p for t, p, _ in sub.messages if t == topic))
        finally:
            pub.stop()
            sub.close()
    assert conf["state_topic"] == "checkin/v1/hn-hk/kiosk-01/health" and conf["device_class"] == "problem"
    assert conf["payload_on"] == "PROBLEM" and "camera_ok" in conf["value_template"]
