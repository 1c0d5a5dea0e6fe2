#!/usr/bin/env python3
"""Flood benchmark: codes at the maximum rate through the real check-in flow, for a set duration.

The kiosk is assembled as ``kiosk run`` builds it (real decoders on a looped
replay of camera frames, real verifier and policy, real SQLite ledger with
``synchronous=FULL``, mock GPIO pins, publishing off so the null telemetry
drains the outbox); on top, an injector thread offers camera codes of
ever-new visitors to the intake as fast as it takes them, which is far
faster than the ledger commits: the intake is full all the time and drops
the excess (counted). Every window it prints the process RSS, the check-ins
done, the verdict latency p95 (capture or injection to verdict, in that
window) and the drop count.

    .venv/bin/python scripts/bench_flood.py --seconds 600 --window 30
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_kiosk import pc_covid, write_config  # noqa: E402 (the scripts folder is on the path: this script's own)
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20






def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=600.0, help="how long to flood (default %(default)s)")
    p.add_argument("--window", type=float, default=30.0, help="reporting window in seconds (default %(default)s)")
    p.add_argument("--intake-max", type=int, default=64)
    p.add_argument("--camera-codes", type=int, default=40, help="distinct codes in the replayed camera frames")
    args = p.parse_args()

    from device.frames import ReplaySource
    from device.scanners import CodeSeen
    from gpiozero.pins.mock import MockFactory

    from kiosk.door.assembly import assemble
    from kiosk.testing.visitors import blank_frame, render_frame

    work = Path(tempfile.mkdtemp(prefix="kiosk-flood-"))
    from kiosk import config as kconfig

    cfg = kconfig.load(write_config(work, "flood", f'source = "none"\nintake_max = {args.intake_max}'))
    frames = []
    for i in range(args.camera_codes):
        frames += [render_frame(pc_covid(10**11 + i), seed=i)] * 2 + [blank_frame(seed=i)] * 3
    latencies: list[float] = []
    lock = threading.Lock()

    def on_checkin(checkin, seq, code):
        with lock:
            latencies.append((time.monotonic() - code.captured_at) * 1000)

    kiosk = assemble(cfg, source=ReplaySource(frames, loop=True, fps=0), pin_factory=MockFactory(), headless=True,
                     on_checkin=on_checkin)
    stop = threading.Event()

    def inject():
        n = 2 * 10**11
        while not stop.is_set():
            if not kiosk.intake.camera(CodeSeen(pc_covid(n), time.monotonic(), "camera")):
                time.sleep(0.0005)  # full: the camera would offer its next frame's code a moment later
            n += 1

    rows = []

    def report():
        from kiosk.door.decode.stats import percentile

        start = time.monotonic()
        last_done = 0
        while not stop.wait(args.window):
            with lock:
                window, latencies[:] = list(latencies), []
            done = kiosk.stages.ledger.last_seq
            rows.append((time.monotonic() - start, rss_mb(), done - last_done, percentile(window, 95) if window else 0.0,
                         kiosk.intake.dropped_total, len(kiosk.intake), kiosk.stages.ledger.outbox_size()))
            last_done = done
            t, rss, n, p95, dropped, waiting, outbox = rows[-1]
            print(f"| {t:7.0f} | {rss:7.1f} | {n:7d} | {p95:8.1f} | {dropped:9d} | {waiting:4d} | {outbox:6d} |", flush=True)
            if t >= args.seconds:
                kiosk.stop()
                return

    print(f"flood: {args.seconds:.0f} s, intake_max {args.intake_max}, ledger {cfg.ledger_path}")
    print("| t (s) | RSS MB | check-ins in window | p95 ms | dropped (total) | intake | outbox |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    threads = [threading.Thread(target=inject, daemon=True), threading.Thread(target=report, daemon=True)]
    for t in threads:
        t.start()
    kiosk.run(until_exhausted=False)
    stop.set()
    if len(rows) >= 2:
        first, last = rows[0], rows[-1]
        p95s = [r[3] for r in rows]
        print(f"\nRSS {first[1]:.1f} MB after the first window -> {last[1]:.1f} MB at the end "
              f"({last[1] - first[1]:+.1f} MB); p95 per window {min(p95s):.1f}..{max(p95s):.1f} ms; "
              f"{sum(r[2] for r in rows)} check-ins; {last[4]} camera codes dropped (intake full)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
