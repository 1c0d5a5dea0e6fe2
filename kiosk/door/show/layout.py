"""Where things go, for any screen size: landscape and portrait alike.

Everything is a proportion of the screen, so the same code fits the 7"
official touchscreen (800x480), 1024x600 panels, a 1080p monitor, or a
screen turned on its side (480x800).
"""

from __future__ import annotations

from dataclasses import dataclass

from kiosk.door.show import venue_qr


@dataclass(frozen=True)
class Layout:
    """Rectangles as (x, y, w, h) tuples; ``unit`` is the base text height in pixels."""

    width: int
    height: int
    portrait: bool
    margin: int
    unit: int
    bar: tuple[int, int, int, int]  # guard's status bar (bottom)
    body: tuple[int, int, int, int]  # everything above the bar
    qr: tuple[int, int, int, int]  # venue QR, quiet zone included, whole pixels per module
    qr_module_px: int
    qr_label: tuple[int, int, int, int]  # "Venue QR code" under the code
    text: tuple[int, int, int, int]  # venue name, address, instructions, clock


def parse_size(text: str) -> tuple[int, int]:
    """``"800x480"`` -> (800, 480); raises ValueError with a plain message."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"size must be WIDTHxHEIGHT, e.g. 800x480, got {text!r}") from None
    if not (120 <= w <= 8192 and 120 <= h <= 8192):
        raise ValueError(f"size {w}x{h} is outside 120..8192 pixels")
    return w, h


def compute(size: tuple[int, int], qr_content: str) -> Layout:
    """The layout of a ``size`` screen showing ``qr_content`` as the venue code."""
    w, h = size
    short = min(w, h)
    margin = max(6, short // 40)
    bar_h = max(22, round(short * 0.07))
    body = (0, 0, w, h - bar_h)
    bar = (0, h - bar_h, w, bar_h)
    unit = max(12, round(short * 0.05))
    modules = venue_qr.modules_with_quiet_zone(qr_content)
    label_h = max(14, round(unit * 0.8))
    portrait = h > w
    if portrait:
        side_room = min(w - 2 * margin, int(body[3] * 0.58) - label_h)
    else:
        side_room = min(body[3] - 2 * margin - label_h, int(w * 0.56) - 2 * margin)
    module_px = venue_qr.module_px_for(qr_content, side_room)
    side = module_px * modules
    if portrait:
        qr = ((w - side) // 2, margin, side, side)
        label = (margin, qr[1] + side, w - 2 * margin, label_h)
        top = label[1] + label_h + margin
        text = (margin, top, w - 2 * margin, body[3] - top - margin)
    else:
        qr = (margin, max(margin, (body[3] - side - label_h) // 2), side, side)
        label = (qr[0], qr[1] + side, side, label_h)
        left = qr[0] + side + 2 * margin
        text = (left, margin, w - left - margin, body[3] - 2 * margin)
    return Layout(width=w, height=h, portrait=portrait, margin=margin, unit=unit, bar=bar, body=body,
                  qr=qr, qr_module_px=module_px, qr_label=label, text=text)
