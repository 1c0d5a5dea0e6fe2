"""``kiosk screenshot``: render one kiosk screen to a PNG, without a display.

For the docs, for inspectors who want to see the venue code at a given
screen size, and for checking a config's look before it goes to a kiosk.
The verdict screens show a made-up visitor; nothing is read or recorded.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping

from kiosk import config
from kiosk.wire import reasons

STATES = ("idle", "live", "accept", "reject", "duplicate", "duplicate-refused", "override", "unverified", "guard",
          "out-of-service")


def add_arguments(p) -> None:
    p.add_argument("--config", required=True, metavar="FILE", help="kiosk config (venue, [screen] settings)")
    p.add_argument("--state", choices=STATES, default="idle", help="which screen (default: idle)")
    p.add_argument("--size", metavar="WxH", help="screen size, e.g. 800x480 or 480x800 (default: [screen] size, else 800x480)")
    p.add_argument("--out", required=True, metavar="FILE.png", help="PNG file to write")
    p.add_argument("--name", default="Nguyễn Văn An", help="sample visitor's name on verdict screens")
    p.add_argument("--reason", default=reasons.EXPIRED, help="reason code on the reject screen (default: expired)")
    p.add_argument("--clock-unsynced", action="store_true", help="show the clock-sync warning in the status bar")
    p.add_argument("--degraded", default="", metavar="WORDS",
                   help="comma-separated health words for the guard bar, e.g. gpio-mock,trust-stale")


@dataclass(frozen=True)
class _SampleHolder:
    name: str | None


@dataclass(frozen=True)
class _SampleCheckin:
    """Stands in for kiosk.door.decide.checkin.Checkin: the fields the screen reads."""

    verdict: str
    reason: str
    holder: _SampleHolder | None
    duplicate: bool = False
    id: str = ""
    at: datetime | None = None
    format: str = "health-declaration"
    valid: bool = True
    signed: bool = True
    pseudonym: str | None = None
    captured_at: float = 0.0
    source: str = "camera"
    facts: Mapping[str, Any] = field(default_factory=dict)


def sample_checkin(state: str, name: str, reason: str, at: datetime | None = None):
    """The made-up check-in a verdict screenshot shows."""
    verdict, why, dup, signed = {
        "accept": ("accept", reasons.OK, False, True),
        "reject": ("reject", reason, False, True),
        "duplicate": ("accept", reasons.DUPLICATE, True, True),
        "duplicate-refused": ("reject", reasons.DUPLICATE, True, True),
        "override": ("accept", reasons.OVERRIDE, False, True),
        "unverified": ("accept", reasons.OK, False, False),
    }[state]
    at = at or datetime.now(timezone.utc)
    # An expired sample says when it expired, as a real declaration's or DCC's facts do.
    facts = {"valid_until": (at - timedelta(days=2)).isoformat()} if why == reasons.EXPIRED else {}
    return _SampleCheckin(verdict=verdict, reason=why, holder=_SampleHolder(name), duplicate=dup, signed=signed,
                          id=uuid.uuid4().hex, at=at, valid=verdict == "accept", facts=facts,
                          format="health-declaration" if signed else "pc-covid")


# The guard's list in a screenshot: (seconds before now, state, reason, name).
_SAMPLE_QUEUE = [
    (610, "accept", reasons.OK, "Trần Thị Bình"), (560, "accept", reasons.OK, "Lê Văn Cường"),
    (515, "duplicate", reasons.DUPLICATE, "Trần Thị Bình"), (470, "reject", reasons.UNKNOWN_FORMAT, None),
    (400, "unverified", reasons.OK, "Phạm Minh Châu"), (330, "accept", reasons.OK, "Hoàng Anh Dũng"),
    (260, "reject", reasons.SIGNATURE_INVALID, "Vũ Thị Hoa"), (250, "override", reasons.OVERRIDE, "Vũ Thị Hoa"),
    (190, "accept", reasons.OK, "Đặng Quốc Huy"), (120, "reject", reasons.policy("test-too-old"), "Bùi Thu Hà"),
    (70, "accept", reasons.OK, "Ngô Văn Khánh"), (18, "reject", reasons.EXPIRED, "Nguyễn Văn An"),
]

def sample_preview(width: int = 640, height: int = 480):
    """A grey camera-like frame with a visitor's code held up, and where the code is."""
    import numpy as np
    import segno

    frame = np.full((height, width, 3), 96, dtype=np.uint8)
    frame[:, :, 0] = np.linspace(70, 130, width, dtype=np.uint8)[None, :]  # a little depth, not flat grey
    qr = segno.make("HC1:SAMPLE-VISITOR-CODE-NOT-REAL", error="m")
    matrix = np.array([[bool(v) for v in row] for row in qr.matrix])
    px = max(2, int(height * 0.5) // (len(matrix) + 4))
    code = np.kron(~matrix, np.ones((px, px), dtype=bool))
    border = 2 * px
    card = np.full((code.shape[0] + 2 * border, code.shape[1] + 2 * border), 255, dtype=np.uint8)
    card[border:-border, border:-border] = np.where(code, 255, 0)
    y0, x0 = (height - card.shape[0]) // 2, (width - card.shape[1]) // 2
    frame[y0:y0 + card.shape[0], x0:x0 + card.shape[1]] = card[:, :, None]
    s = code.shape[0]
    tl = (x0 + border, y0 + border)
    corners = (tl, (tl[0] + s, tl[1]), (tl[0] + s, tl[1] + s), (tl[0], tl[1] + s))
    return frame, corners


def run(args) -> int:
    from kiosk.cli import UsageError
    from device.frames import Frame
    from kiosk.door.decode import Decoded
    from kiosk.door.show import KioskStatus, Screen
    from kiosk.door.show.layout import parse_size

    cfg = config.load(args.config)
    size_text = args.size or (cfg.screen.size if cfg.screen.size != "auto" else "800x480")
    try:
        size = parse_size(size_text)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if not args.out.lower().endswith(".png"):
        raise UsageError(f"--out must name a .png file, got {args.out!r}")
    out_dir = os.path.dirname(os.path.abspath(args.out))
    if not os.path.isdir(out_dir):
        raise UsageError(f"folder {out_dir!r} does not exist")
    if args.reason and not reasons.is_known(args.reason):
        raise UsageError(f"unknown reason code {args.reason!r}")

    import pygame

    degraded = tuple(w.strip() for w in args.degraded.split(",") if w.strip())
    ticks = [0.0]  # the screen's monotonic clock: the sample queue is replayed through it
    screen = Screen(cfg.screen, cfg.venue, policy=cfg.policy, trust_max_age_days=cfg.trust.max_age_days, size=size,
                    headless=True, clock=lambda: ticks[0])
    screen.set_status(KioskStatus(accepted=128, rejected=7, camera_fps=14.8, camera_ok=True,
                                  mqtt_connected=True if cfg.mqtt.enabled else None,
                                  clock_synced=not args.clock_unsynced, trust_age_days=3,
                                  ledger_ok=args.state != "out-of-service",
                                  degraded=degraded + (("ledger-down",) if args.state == "out-of-service" else ())))
    if args.state == "live":
        image, corners = sample_preview()
        screen.set_preview(Frame(image, captured_at=0.0, index=0), [Decoded("sample", corners)])
    elif args.state == "guard":
        now = datetime.now(timezone.utc)
        for ago, state, reason, name in _SAMPLE_QUEUE:
            ticks[0] = 1000.0 - ago
            screen.show_checkin(sample_checkin(state, name, reason, at=now - timedelta(seconds=ago)))
        ticks[0] = 1000.0
        screen.toggle_guard()
    elif args.state not in ("idle", "out-of-service"):
        screen.show_checkin(sample_checkin(args.state, args.name, args.reason))
    surface = screen.render(args.state)
    try:
        pygame.image.save(surface, args.out)
    except (pygame.error, OSError) as exc:
        raise UsageError(f"cannot write {args.out!r}: {exc}") from None
    screen.close()
    print(f"{args.out}: {args.state} screen, {size[0]}x{size[1]}")
    return 0
