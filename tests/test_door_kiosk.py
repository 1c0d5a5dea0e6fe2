"""The whole pipeline, end to end, with real stages: replayed frames, real decoders and
verifiers, a real SQLite ledger, gpiozero's MockFactory pins, a real mosquitto."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from helpers import kiosk_config, wait_for
from kiosk import config
from kiosk.wire import reasons
from kiosk.testing.visitors import replay_frames, samples

ROOT = Path(__file__).resolve().parent.parent


def run_replay(cfg, items, pins=None, on_checkin=None, signals_spy=None):
    from device.frames import ReplaySource
    from gpiozero.pins.mock import MockFactory

    from kiosk.door.assembly import assemble

    seen = []

    def record(checkin, seq, code):
        seen.append((code.text, checkin, seq))
        if on_checkin:
            on_checkin(checkin, seq, code)

    pins = pins or MockFactory()
    # fps=0: every frame is decoded (no drops), so the test does not depend on the machine's speed.
    source = ReplaySource(replay_frames(items, frames_per_code=3, gap_frames=2), fps=0)
    k = assemble(cfg, source=source, pin_factory=pins, headless=True, on_checkin=record)
    if signals_spy:
        signals_spy(k)
    assert k.run(until_exhausted=True) == 0
    return seen, pins


def ledger_counts(cfg):
    from kiosk.door.record import Ledger

    with Ledger(str(cfg.ledger_path)) as ledger:
        return ledger.counts(), ledger.outbox_size()


def test_every_sample_gets_its_verdict_and_is_counted_once(tmp_path, broker):
    cfg = kiosk_config(tmp_path, broker.url)
    items = samples()
    got, pins = run_replay(cfg, items)
    by_text = {text: c for text, c, _ in got}
    for s in items:
        assert s.payload in by_text, f"not read: {s.label}"
        c = by_text[s.payload]
        assert (c.verdict, c.reason) == (s.verdict, s.reason), s.label
    assert len(got) == len(items), "each code held up for several frames is one scan"
    counts, _ = ledger_counts(cfg)
    accepted = sum(1 for s in items if s.verdict == "accept" and s.reason != reasons.DUPLICATE)
    assert counts["accepted"] == accepted
    assert counts["duplicates"] == 1
    assert counts["rejected"] == sum(1 for s in items if s.verdict == "reject")
    # The green LED lit for accepted visitors, the red one for rejected ones.
    assert any(st.state for st in pins.pin(17).states)
    assert any(st.state for st in pins.pin(27).states)


def test_published_counts_equal_the_ledger(tmp_path, broker):
    import paho.mqtt.client as mqtt

    cfg = kiosk_config(tmp_path, broker.url)
    items = samples()
    run_replay(cfg, items)
    counts, pending = ledger_counts(cfg)
    assert pending == 0, "every event was acknowledged by the broker"
    received: dict[str, bytes] = {}
    done = threading.Event()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)

    def on_message(c, u, msg):
        received[msg.topic] = msg.payload
        if msg.topic.endswith("/counts"):
            done.set()

    client.on_message = on_message
    client.on_connect = lambda c, u, f, rc, p=None: c.subscribe("checkin/v1/test-site/kiosk-t1/#")
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    try:
        assert done.wait(10), "retained counts are on the broker"
    finally:
        client.loop_stop()
        client.disconnect()
    published = json.loads(received["checkin/v1/test-site/kiosk-t1/counts"])
    assert published["accepted"] == counts["accepted"]
    assert published["rejected"] == counts["rejected"]
    assert published["duplicates"] == 1
    text = json.dumps(published, ensure_ascii=False)
    assert "Nguyễn" not in text and "001088012345" not in text, "no personal data leaves the device"


def test_ledger_commits_before_the_visitor_sees_the_verdict(tmp_path):
    cfg = kiosk_config(tmp_path)
    observed = []

    def spy(k):
        signals = k.stages.signals
        real_accept = signals.accept

        def accept(**kw):
            db = sqlite3.connect(cfg.ledger_path)  # a second reader, as after a power cut
            observed.append(db.execute("select count(*) from checkins").fetchone()[0])
            db.close()
            real_accept(**kw)

        signals.accept = accept

    items = [s for s in samples() if s.verdict == "accept" and s.reason == reasons.OK][:2]
    run_replay(cfg, items, signals_spy=spy)
    assert observed == [1, 2]


def test_broker_away_keeps_every_message(tmp_path):
    cfg = kiosk_config(tmp_path, "mqtt://127.0.0.1:9")  # nothing listens there
    items = samples()
    got, _ = run_replay(cfg, items)
    counts, pending = ledger_counts(cfg)
    assert len(got) == len(items)
    assert pending >= len(items), "events wait in the outbox for the broker"


def test_guard_override_lets_the_rejected_visitor_in(tmp_path):
    from gpiozero.pins.mock import MockFactory

    cfg = kiosk_config(tmp_path)
    pins = MockFactory()
    items = [s for s in samples() if s.reason == reasons.EXPIRED]

    def press(checkin, seq, code):
        if checkin.verdict == "reject":
            button = pins.pin(24)
            button.drive_low()  # gpiozero Button: pull-up, pressed = low
            button.drive_high()

    run_replay(cfg, items, pins=pins, on_checkin=press)
    counts, _ = ledger_counts(cfg)
    assert counts["rejected"] == 1
    assert counts["overrides"] == 1
    assert counts["accepted"] == 0, "an override is counted apart from accepted visitors"


def test_kiosk_run_replays_a_folder_and_exits(tmp_path):
    import cv2

    folder = tmp_path / "frames"
    folder.mkdir()
    items = [s for s in samples() if s.reason in (reasons.OK, reasons.UNKNOWN_FORMAT)]
    for i, frame in enumerate(replay_frames(items, frames_per_code=2, gap_frames=1)):
        cv2.imwrite(str(folder / f"{i:04d}.png"), frame)
    cfg = kiosk_config(tmp_path)
    text = Path(cfg.source_path).read_text().replace('source = "none"', f'source = "folder"\npath = "{folder}"')
    Path(cfg.source_path).write_text(text)
    result = subprocess.run([sys.executable, "-m", "kiosk", "-v", "run", "--config", cfg.source_path, "--headless"],
                            capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    counts, _ = ledger_counts(config.load(cfg.source_path))
    assert counts["accepted"] == sum(1 for s in items if s.verdict == "accept")
    assert counts["rejected"] == 1
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("with_broker", [True, False])
def test_demo_command(tmp_path, request, with_broker):
    url = request.getfixturevalue("broker").url if with_broker else "mqtt://127.0.0.1:9"
    result = subprocess.run([sys.executable, "-m", "kiosk", "demo", "--headless", "--broker", url,
                             "--state-dir", str(tmp_path), "--flush-seconds", "3"],
                            capture_output=True, text=True, timeout=180, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    out = result.stdout
    assert out.count("ACCEPT") >= 3 and out.count("REJECT") >= 4
    assert "duplicate" in out and "expired" in out and "unknown-key" in out
    assert "pin changes" in out and "GPIO17" in out
    if with_broker:
        assert "all published" in out
    else:
        assert "kept in the outbox" in out


def test_centre_can_post_a_notice_and_reload_the_trust_list(tmp_path, broker):
    """Signed commands arrive only when the config enables them, and run on the kiosk's control thread."""
    import paho.mqtt.publish as publish

    from kiosk.wire import signing
    from kiosk.wire.commands import signed as signed_command

    centre = signing.generate_key()
    signing.write_public_key(tmp_path / "centre.pub.pem", centre)
    cfg = kiosk_config(tmp_path, broker.url, extra='commands = ["notice", "reload-trust"]\n'
                                                   f'centre_key = "{tmp_path / "centre.pub.pem"}"')
    from device.frames import ReplaySource
    from gpiozero.pins.mock import MockFactory

    from kiosk.door.assembly import assemble

    frames = [replay_frames(samples()[:1])[-1]] * 40  # nobody at the door for a couple of seconds
    k = assemble(cfg, source=ReplaySource(frames, fps=20), pin_factory=MockFactory(), headless=True)
    keeper, old_files = k.stages.trust, k.stages.trust.fallback

    def send_when_subscribed():
        pub = k.stages.publisher
        wait_for(lambda: pub.subscribed(k.remote.gate.topic_filter))
        for name, body in (("notice", "Kiểm tra lúc 14:00"), ("reload-trust", "")):
            topic, message, _ = signed_command(name, body, "test-site", "kiosk-t1", centre)
            publish.single(topic, message, hostname="127.0.0.1", port=broker.port, qos=1)

    sender = threading.Thread(target=send_when_subscribed)
    sender.start()
    k.run(until_exhausted=True)
    sender.join()
    assert k.notice == "Kiểm tra lúc 14:00"
    # The same keeper (the verifier and the policy read it), with the trust files read afresh.
    assert k.stages.trust is keeper and k.stages.desk.verifier.trust is keeper
    assert keeper.fallback is not old_files and len(keeper) == len(old_files) > 0


@pytest.mark.parametrize("hang", [None, "decoder", "camera"])
def test_watchdog_is_fed_only_while_frames_are_decoded(tmp_path, hang):
    """On the supervisor's injected clock: a hung decoder or camera stops the pings, a healthy one keeps them."""
    from gpiozero.pins.mock import MockFactory

    from kiosk.door.assembly import assemble
    from kiosk.testing.clock import FakeClock
    from kiosk.testing.doubles import FakeCamera, RecordingNotifier

    cfg = kiosk_config(tmp_path)
    clock = FakeClock()
    notifier = RecordingNotifier(clock)
    k = assemble(cfg, pin_factory=MockFactory(), headless=True, notifier=notifier, clock=clock)
    camera = k.stages.scanner = FakeCamera()
    try:
        for second in range(60):
            camera.captured += 30 if hang != "camera" else 0
            camera.decoded += 30 if hang is None else 0
            camera.fps = 0.0 if hang == "camera" and second else 30.0
            if hang == "camera":
                camera.captured = max(camera.captured, 1)  # it delivered one frame, then hung
            k.supervisor.tick()
            clock.advance(1.0)
        assert notifier.ready_at is not None, "the camera delivered frames: READY was sent"
        if hang:
            assert k.supervisor.stuck, "the hang is noticed"
            assert len(notifier.pings) <= 22, "pings stop once the hang lasts CAMERA_STUCK_SECONDS"
        else:
            assert not k.supervisor.stuck and len(notifier.pings) == 60
    finally:
        k.shutdown()
