#!/usr/bin/env python3
"""Screen benchmark: milliseconds to draw each kiosk screen, per size, off-screen.

The baseline, measured in the same run at each size, is the least any frame
costs: filling the surface and blitting one full-screen image. Ratios say how
much the kiosk's drawing adds to that. Setter costs (what the decode thread
and the pipeline pay per call) are in microseconds.

    .venv/bin/python scripts/bench_screen.py              # the table
    .venv/bin/python scripts/bench_screen.py --repeat 50  # more draws per cell
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

SIZES = [(800, 480), (1024, 600), (1920, 1080), (480, 800)]
STATES = ["idle", "live", "accept", "reject", "duplicate"]


def median_ms(fn, repeat: int) -> float:
    fn()  # warm caches (fonts, layout, QR) as a running kiosk has them
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(ROOT / "config" / "demo.toml"))
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args()

    import pygame

    from kiosk.commands.screenshot import sample_checkin, sample_preview
    from kiosk.config import load
    from device.frames import Frame
    from kiosk.door.decode import Decoded
    from kiosk.door.show import KioskStatus, Screen

    cfg = load(args.config)
    image, corners = sample_preview()
    frame = Frame(image, captured_at=0.0, index=0)
    status = KioskStatus(accepted=128, rejected=7, camera_fps=14.8, mqtt_connected=True, clock_synced=True,
                         trust_age_days=3)
    print(f"pygame {pygame.version.ver} (SDL {'.'.join(map(str, pygame.get_sdl_version()))}), "
          f"{args.repeat} draws per cell, median ms; ratio = state / baseline (fill + full-screen blit)")
    print(f"{'size':>10} {'baseline':>9} " + " ".join(f"{s:>16}" for s in STATES))
    for size in SIZES:
        screen = Screen(cfg.screen, cfg.venue, policy=cfg.policy, size=size, headless=True)
        screen.set_status(status)
        screen.set_preview(frame, [Decoded("x", corners)])
        picture = pygame.Surface(size)
        picture.fill((90, 90, 90))

        def baseline():
            screen.surface.fill((0, 0, 0))
            screen.surface.blit(picture, (0, 0))

        base = median_ms(baseline, args.repeat)
        cells = []
        for state in STATES:
            if state not in ("idle", "live"):
                screen.show_checkin(sample_checkin(state, "Nguyễn Văn An", "expired"))
            ms = median_ms(lambda: screen.render(state), args.repeat)
            cells.append(f"{ms:7.2f} ({ms / base:5.1f}x)")
        print(f"{size[0]:>4}x{size[1]:<5} {base:9.3f} " + " ".join(f"{c:>16}" for c in cells))

    screen = Screen(cfg.screen, cfg.venue, policy=cfg.policy, size=(800, 480), headless=True)
    n = 20000
    t = time.perf_counter()
    for i in range(n):
        screen.set_preview(frame, [Decoded("x", corners)])
    preview_us = (time.perf_counter() - t) / n * 1e6
    t = time.perf_counter()
    for i in range(n):
        screen.set_status(KioskStatus(accepted=i))
    status_us = (time.perf_counter() - t) / n * 1e6
    print(f"\nsetters (caller's cost): set_preview {preview_us:.1f} us, set_status {status_us:.1f} us per call")
    return 0


if __name__ == "__main__":
    sys.exit(main())
