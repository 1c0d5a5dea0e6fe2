"""``kiosk demo``: sample visitors through the whole pipeline, with mock GPIO pins.

Replays camera frames of codes that must be accepted, rejected for different
reasons, and a duplicate; shows them in a window when a display exists (else
headless), logs every verdict and pin change, publishes to ``--broker``
(buffering in the ledger's outbox when no broker answers) and exits 0 when
every sample got the answer it must get.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path

from kiosk import config
from kiosk.wire import reasons


def add_arguments(p) -> None:
    # No default here: the demo config's own URL (never the port 1883 a machine's own broker may hold).
    p.add_argument("--broker", default=None, help="MQTT broker URL (default: the demo config's [mqtt] url)")
    p.add_argument("--loop", action="store_true", help="keep replaying the samples until interrupted")
    p.add_argument("--headless", action="store_true", help="no window even when a display exists")
    p.add_argument("--config", default=None, help="config to run the demo with (default: config/demo.toml)")
    p.add_argument("--state-dir", default=None, help="where the demo ledger goes (default: a fresh temporary folder)")
    p.add_argument("--flush-seconds", type=float, default=5.0, help="how long to wait for the broker to take the counts at the end")


def _has_display() -> bool:
    if os.environ.get("SDL_VIDEODRIVER") == "dummy":
        return False
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def run(args) -> int:
    from kiosk.testing.visitors import DEMO_CONFIG, replay_frames, samples

    cfg = config.load(args.config or DEMO_CONFIG)
    state_dir = args.state_dir or tempfile.mkdtemp(prefix="kiosk-demo-")
    cfg = dataclasses.replace(
        cfg,
        device=dataclasses.replace(cfg.device, state_dir=state_dir),
        ledger=dataclasses.replace(cfg.ledger, path=""),
        mqtt=dataclasses.replace(cfg.mqtt, url=args.broker or cfg.mqtt.url),
    )
    headless = args.headless or not _has_display() or not cfg.screen.enabled

    from device.frames import ReplaySource
    from gpiozero.pins.mock import MockFactory

    from kiosk.door.assembly import assemble

    visitors = samples()
    expected = {s.payload: s for s in visitors}
    results: list[tuple] = []
    start = time.monotonic()

    def on_checkin(checkin, seq, code):
        s = expected.get(code.text)
        ok = s is not None and (checkin.verdict, checkin.reason) == (s.verdict, s.reason)
        results.append((s, checkin, ok))
        mark = {"accept": "ACCEPT", "reject": "REJECT"}[checkin.verdict]
        label = s.label if s else "unexpected code"
        print(f"{time.monotonic() - start:6.2f}s  #{seq:<3} {mark} {checkin.reason:<18} {checkin.format:<19} "
              f"{('signed' if checkin.signed else 'unsigned') if checkin.valid else '':<8} {label}"
              + ("" if ok else f"   <-- expected {s.verdict} {s.reason}" if s else ""), flush=True)

    # Each code is held up long enough to read its verdict on screen. A headless single pass
    # replays as fast as decoding allows and drops no frame (a slow Pi Zero reads every sample);
    # a headless --loop is paced so it does not flood the ledger.
    fps = 2.0 if not headless else 10.0 if args.loop else 0.0
    frames = replay_frames(visitors, frames_per_code=3 if headless else 5, gap_frames=2 if headless else 1)
    source = ReplaySource(frames, loop=args.loop, fps=fps)
    pins = MockFactory()
    kiosk = assemble(cfg, source=source, pin_factory=pins, headless=headless, on_checkin=on_checkin)
    print(f"kiosk demo: {len(visitors)} visitors at {cfg.venue.name} ({'headless' if headless else 'window'}), "
          f"broker {args.broker or cfg.mqtt.url}, ledger {cfg.ledger_path}", flush=True)
    publisher = kiosk.stages.publisher
    if args.loop:
        _run_forever(kiosk)
    else:
        kiosk.run(until_exhausted=True)
    _print_pins(pins, cfg.signals, start)
    from kiosk.door.record import Ledger

    with_ledger = Ledger(str(cfg.ledger_path))
    counts = with_ledger.counts()
    pending = with_ledger.outbox_size()
    with_ledger.close()
    print(f"counts: accepted {counts['accepted']}, rejected {counts['rejected']}, duplicates {counts['duplicates']}, "
          f"by reason {counts['by_reason']}")
    if publisher.enabled:
        state = "all published" if pending == 0 else f"{pending} messages kept in the outbox for the next connection"
        print(f"mqtt {args.broker or cfg.mqtt.url}: {state}")
    read = {id(r[0]) for r in results if r[0] is not None}
    missing = [s.label for s in visitors if id(s) not in read]
    bad = [r for r in results if not r[2]]
    for label in missing:
        print(f"not read: {label}", file=sys.stderr)
    if not args.loop and (missing or bad):
        print(f"kiosk demo: {len(bad)} wrong verdicts, {len(missing)} codes not read", file=sys.stderr)
        return 1
    print("kiosk demo: every visitor got the answer they must get")
    return 0


def _run_forever(kiosk) -> int:
    try:
        return kiosk.run(until_exhausted=False)
    except KeyboardInterrupt:
        return 0


def _print_pins(pins, signals_cfg, start: float) -> None:
    """The mock pins' timelines: what the LEDs, buzzer and relay did, on the same clock as the verdicts."""
    roles = {getattr(signals_cfg, f): f for f in ("green_led", "red_led", "buzzer", "relay", "button", "status_led")
             if getattr(signals_cfg, f) is not None}
    print("pin changes (mock GPIO; + on, - off; seconds as above):")
    for info, pin in sorted(pins.pins.items(), key=lambda kv: kv[0].name):
        number = int(info.name.removeprefix("GPIO"))
        # MockPin keeps each change's time since the previous one, and the last change's clock time.
        t, changes = pin._last_change - sum(st.timestamp for st in pin.states[1:]) - start, []
        for st in pin.states[1:]:
            t += st.timestamp
            changes.append(f"{t:.2f}{'+' if st.state else '-'}")
        if changes:
            print(f"  {info.name:<6} {roles.get(number, ''):<10} {len(changes):>3} changes: {' '.join(changes[:14])}"
                  f"{' ...' if len(changes) > 14 else ''}")
