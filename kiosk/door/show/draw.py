"""Drawing the screens onto a pygame surface: idle, live, verdict (and out of service), status bar.

Pure drawing: every function takes the surface, the layout, the fonts and
plain values, and keeps no state, so ``kiosk screenshot`` and the live
screen draw exactly the same pixels. The words come from
:mod:`kiosk.door.show.words`; the guard's screen is :mod:`kiosk.door.show.guard_view`.

Text sizes are multiples of the layout's ``unit`` (5 % of the short side);
:data:`SIZES` is what makes verdicts readable from 2 m (docs/screen.md).
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Sequence

from kiosk.door.show import words
from kiosk.door.show.fonts import Fonts
from kiosk.door.show.layout import Layout
from kiosk.door.show.names import printable
from kiosk.door.show.status import KioskStatus
from kiosk.door.show.words import in_language, say

WHITE = (255, 255, 255)
INK = (28, 32, 38)
MUTED = (90, 98, 110)
PAPER = (246, 247, 244)
BAR_BG = (32, 33, 36)
BAR_INK = (230, 232, 236)
GREEN = (27, 128, 62)
RED = (190, 30, 45)
BLUE = (21, 88, 176)
AMBER = (255, 183, 3)
OUTLINE = (255, 214, 0)
SLATE = (58, 62, 70)

# verdict look -> (background, ink, shape). Shape as well as colour: circle + tick (accept),
# octagon + cross (reject), rounded square + double tick (already checked in), an ID card
# (not verified: check the ID card), a no-entry disc (out of service).
LOOKS = {
    words.ACCEPT: (GREEN, WHITE, "circle"),
    words.OVERRIDE: (GREEN, WHITE, "circle"),
    words.REJECT: (RED, WHITE, "octagon"),
    words.DUPLICATE: (BLUE, WHITE, "square"),
    words.UNVERIFIED: (AMBER, INK, "card"),
    words.OUT_OF_SERVICE: (SLATE, WHITE, "no-entry"),
}

# Text size per verdict block role, in layout units: (first language, second language, bold first, max lines).
# 800x480 (unit 24 px): the headline is 74 px (cap height 53 px = 9.5 mm on a 7-inch panel, 16 arcmin at 2 m);
# the second language's headline and both next-step lines are 53 and 48 px (cap >= 34 px = 6 mm, 10 arcmin
# at 2 m). tests/test_door_show_screen.py measures the drawn glyphs against this (docs/screen.md, "Readable at 2 m").
SIZES = {
    "headline": (3.1, 2.25, True, 2),
    "step": (2.0, 2.0, True, 2),
    "detail": (1.15, 1.15, False, 2),
    "name": (1.15, 1.15, False, 1),
}


def _soft(color) -> tuple:
    """The second language's colour: the ink, a little towards the background."""
    return (235, 240, 235) if color == WHITE else (70, 56, 20)


def text_block(surface, fonts: Fonts, lines: Sequence[str], rect, size: int, color, *, bold=False,
               align="left", second_color=None, max_lines=3, second_scale=0.72, trace=None, role="") -> int:
    """Draw language lines (the second one ``second_scale`` of the size, softer) into ``rect``; returns the height used.

    ``surface=None`` measures without drawing. ``bold`` applies to the first
    line, which falls back to the regular weight where bold would need an
    extra line. Each line is wrapped and shrunk to fit the width; the block
    is cut, not overflowed, when the rect is too short. ``trace`` (a list)
    gets ``(role, text, size, (x, y, w, h))`` per drawn line, for tests and the legibility check.
    """
    x, y, w, h = rect
    used = 0
    for i, line in enumerate(lines):
        if not line:
            continue
        s = size if i == 0 else max(10, int(size * second_scale))
        col = color if i == 0 or second_color is None else second_color
        heavy = bold and i == 0
        if heavy and len(fonts.wrap(line, s, w, True)) > len(fonts.wrap(line, s, w, False)):
            heavy = False  # same size and fewer lines beat bold: the size is what carries at 2 m
        fitted, wrapped = fonts.fit(line, w, h - used, s, bold=heavy, max_lines=max_lines)
        for part in wrapped:
            img = fonts.render(part, fitted, col, bold=heavy)
            if used + img.get_height() > h:
                return used
            dx = {"left": 0, "center": (w - img.get_width()) // 2, "right": w - img.get_width()}[align]
            if surface is not None:  # None: measure only
                surface.blit(img, (x + dx, y + used))
                if trace is not None:
                    trace.append((role, part, fitted, (x + dx, y + used, img.get_width(), img.get_height())))
            used += fonts.get(fitted, heavy).get_linesize()
    return used


# -- icons (shape, not colour alone, carries the verdict) -------------------------
def _thick_polyline(surface, color, points, width) -> None:
    """Lines of an even ``width`` at any angle (pygame's own thin out on diagonals), round joints."""
    import pygame

    half = width / 2
    for (x1, y1), (x2, y2) in zip(points, points[1:]):
        length = math.hypot(x2 - x1, y2 - y1) or 1.0
        nx, ny = -(y2 - y1) / length * half, (x2 - x1) / length * half
        pygame.draw.polygon(surface, color, [(x1 + nx, y1 + ny), (x2 + nx, y2 + ny), (x2 - nx, y2 - ny), (x1 - nx, y1 - ny)])
    for x, y in points:
        pygame.draw.circle(surface, color, (round(x), round(y)), max(1, round(half)))


def _tick(surface, color, cx, cy, r, width, dx=0.0) -> None:
    pts = [(cx + (-0.45 + dx) * r, cy + 0.02 * r), (cx + (-0.12 + dx) * r, cy + 0.35 * r),
           (cx + (0.5 + dx) * r, cy - 0.35 * r)]
    _thick_polyline(surface, color, pts, width)


def verdict_icon(surface, look: str, center, radius: int, fg=None, mark=None) -> None:
    """The verdict's shape: circle with a tick, octagon with a cross, square with a double tick,
    an ID card, a no-entry disc; in the look's ink with the background's colour as the mark."""
    import pygame

    cx, cy = center
    r = radius
    width = max(4, r // 5)
    background, ink, shape = LOOKS[look]
    fg = fg or ink
    mark = mark or background
    if shape == "card":
        # An ID card: photo disc on the left, text lines on the right.
        rect = pygame.Rect(0, 0, int(r * 2), int(r * 1.3))
        rect.center = center
        pygame.draw.rect(surface, fg, rect, border_radius=max(4, r // 6))
        pygame.draw.circle(surface, mark, (rect.left + int(r * 0.55), cy - int(r * 0.08)), int(r * 0.3))
        pygame.draw.rect(surface, mark, (rect.left + int(r * 0.25), cy + int(r * 0.3), int(r * 0.6), int(r * 0.16)))
        for k in range(3):
            pygame.draw.rect(surface, mark, (rect.left + int(r * 1.05), cy - int(r * 0.36) + k * int(r * 0.3),
                                             int(r * 0.7), max(3, int(r * 0.14))))
    elif shape == "no-entry":
        pygame.draw.circle(surface, fg, center, r)
        pygame.draw.circle(surface, RED, center, int(r * 0.86))
        pygame.draw.rect(surface, fg, (cx - int(r * 0.6), cy - int(r * 0.15), int(r * 1.2), int(r * 0.3)))
    elif shape == "circle":
        pygame.draw.circle(surface, fg, center, r)
        _tick(surface, mark, cx, cy, r * 0.9, width)
    elif shape == "octagon":
        pts = [(cx + r * math.cos(math.radians(22.5 + 45 * i)), cy + r * math.sin(math.radians(22.5 + 45 * i)))
               for i in range(8)]
        pygame.draw.polygon(surface, fg, pts)
        a = r * 0.42
        _thick_polyline(surface, mark, [(cx - a, cy - a), (cx + a, cy + a)], width)
        _thick_polyline(surface, mark, [(cx - a, cy + a), (cx + a, cy - a)], width)
    else:
        rect = pygame.Rect(0, 0, int(r * 1.8), int(r * 1.8))
        rect.center = center
        pygame.draw.rect(surface, fg, rect, border_radius=max(4, r // 4))
        _tick(surface, mark, cx, cy, r * 0.72, max(3, int(width * 0.8)), dx=-0.22)
        _tick(surface, mark, cx, cy, r * 0.72, max(3, int(width * 0.8)), dx=0.22)


# -- idle ------------------------------------------------------------------------
def idle(surface, lay: Layout, fonts: Fonts, venue, qr_image, now: datetime) -> None:
    """Venue QR (left, or top in portrait), venue name and address, instructions, clock."""
    surface.fill(PAPER, lay.body)
    surface.blit(qr_image, lay.qr[:2])
    language = venue.language
    text_block(surface, fonts, [say("Mã QR địa điểm", "Venue QR code", language)], lay.qr_label, int(lay.unit * 0.7),
               MUTED, align="center", max_lines=1)
    x, y, w, h = lay.text
    u = lay.unit
    # Clock takes a fixed strip at the bottom of the text column.
    clock_h = int(u * 3.4)
    clock_rect = (x, y + h - clock_h, w, clock_h)
    top = y
    top += text_block(surface, fonts, [venue.name], (x, top, w, h * 0.35), int(u * 1.5), INK, bold=True)
    if venue.address:
        top += text_block(surface, fonts, [venue.address], (x, top, w, h * 0.2), int(u * 0.8), MUTED, max_lines=2)
    top += int(u * 0.6)
    room = clock_rect[1] - top
    steps = [
        in_language("Đưa mã QR của bạn vào camera", "Show your QR code to the camera", language),
        in_language("Hoặc quét mã địa điểm bằng điện thoại", "Or scan the venue code with your phone", language),
    ]
    for lines in steps:
        if room <= u:
            break
        used = text_block(surface, fonts, lines, (x, top, w, room), int(u * 1.0), INK, bold=True,
                          second_color=MUTED, max_lines=2)
        top += used + int(u * 0.5)
        room = clock_rect[1] - top
    text_block(surface, fonts, [now.strftime("%H:%M"), now.strftime("%d/%m/%Y")], clock_rect, int(u * 1.6),
               INK, bold=True, second_color=MUTED, align="left", max_lines=1)


# -- live preview ------------------------------------------------------------------
def live(surface, lay: Layout, fonts: Fonts, venue, preview, corners: Sequence[Sequence[tuple[float, float]]]) -> None:
    """Camera preview scaled into the body, located codes outlined, an aiming hint on top."""
    import pygame

    surface.fill(BAR_BG, lay.body)
    bx, by, bw, bh = lay.body
    hint_h = int(lay.unit * 1.6)
    text_block(surface, fonts, [say("Giữ yên mã trước camera", "Hold your code still", venue.language)],
               (bx + lay.margin, by + lay.margin // 2, bw - 2 * lay.margin, hint_h), int(lay.unit * 0.9), WHITE,
               bold=True, align="center", second_color=BAR_INK, max_lines=1)
    if preview is None:
        return
    pw, ph = preview.get_size()
    room_w, room_h = bw - 2 * lay.margin, bh - hint_h - 2 * lay.margin
    scale = min(room_w / pw, room_h / ph)
    sw, sh = max(1, int(pw * scale)), max(1, int(ph * scale))
    ox, oy = bx + (bw - sw) // 2, by + hint_h + lay.margin + (room_h - sh) // 2
    surface.blit(pygame.transform.scale(preview, (sw, sh)), (ox, oy))
    width = max(3, lay.unit // 5)
    for quad in corners:
        pts = [(ox + px * scale, oy + py * scale) for px, py in quad]
        if len(pts) >= 3:
            pygame.draw.polygon(surface, OUTLINE, pts, width)


# -- verdict ---------------------------------------------------------------------------
def _block_size(u: int, role: str, portrait: bool) -> tuple[int, float, bool, int]:
    first, second, bold, max_lines = SIZES[role]
    # A portrait screen is narrow and tall: one more line rather than smaller letters.
    return int(round(u * first)), second / first, bold, max_lines + (1 if portrait and role != "name" else 0)


def verdict(surface, lay: Layout, fonts: Fonts, look: str, blocks: Sequence[words.Block], trace=None) -> None:
    """Full-screen verdict: colour, shape, the decision, the next step, the reason, the masked name.

    Landscape: the shape beside the headline, the rest across the whole
    width below. Portrait: the shape above the words, centred. The group is
    centred vertically in the body. ``blocks`` come from
    :func:`kiosk.door.show.words.verdict_blocks`.
    """
    background, ink, _ = LOOKS[look]
    surface.fill(background, lay.body)
    bx, by, bw, bh = lay.body
    m, u = lay.margin, lay.unit
    gap = max(4, int(u * 0.35))
    head, rest = blocks[0], list(blocks[1:])

    def measure(block, w):
        size, scale, bold, lines = _block_size(u, block.role, lay.portrait)
        return text_block(None, fonts, block.lines, (0, 0, w, bh), size, ink, bold=bold, max_lines=lines,
                          second_scale=scale)

    def draw_block(block, x, top, w, align):
        size, scale, bold, lines = _block_size(u, block.role, lay.portrait)
        return text_block(surface, fonts, block.lines, (x, top, w, max(0, by + bh - m - top)), size, ink, bold=bold,
                          align=align, second_color=_soft(ink), max_lines=lines, second_scale=scale, trace=trace,
                          role=block.role)

    full_x, full_w = bx + m + u // 2, bw - 2 * m - u
    rest_h = sum(measure(b, full_w) for b in rest) + gap * len(rest)
    if lay.portrait:
        head_h = measure(head, full_w)
        # The words come first: the shape shrinks (not below 1.5 units) to leave them their size.
        r = int(max(u * 1.5, min(bw * 0.22, u * 3.4, (bh - 2 * m - u - head_h - rest_h) / 2)))
        total = 2 * r + u + head_h + rest_h
        top = by + max(m, (bh - total) // 2)
        verdict_icon(surface, look, (bx + bw // 2, top + r), r)
        top += 2 * r + u
        top += draw_block(head, full_x, top, full_w, "center") + gap
        for block in rest:
            top += draw_block(block, full_x, top, full_w, "center") + gap
        return
    r = int(min(bh * 0.2, u * 2.9))
    head_x = bx + m + 2 * r + int(u * 1.5)
    head_w = bx + bw - m - head_x
    head_h = measure(head, head_w)
    row_h = max(head_h, 2 * r)
    top = by + max(m, (bh - row_h - gap - rest_h) // 2)
    verdict_icon(surface, look, (bx + m + r + u // 2, top + row_h // 2), r)
    draw_block(head, head_x, top + (row_h - head_h) // 2, head_w, "left")
    top += row_h + gap
    for block in rest:
        top += draw_block(block, full_x, top, full_w, "left") + gap


# -- guard's status bar ----------------------------------------------------------------
def _dot(surface, color, center, r) -> None:
    import pygame

    pygame.draw.circle(surface, color, center, r)


def status_items(status: KioskStatus, clock_ok: bool | None, trust_max_age_days: float | None,
                 language: str, override=None) -> list[tuple[str, str, tuple]]:
    """(kind, text, colour) per item, most important first; kind picks the little icon.

    Every word in the screen's language(s) (``vi / en`` in ``vi+en``);
    ``override`` (a :class:`kiosk.door.show.guard.OverrideChance`) shows how
    long the guard's button can still let the last rejected visitor in.
    """
    items: list[tuple[str, str, tuple]] = [
        ("accepted", f"{status.accepted}", (80, 200, 120)),
        ("rejected", f"{status.rejected}", (240, 90, 90)),
    ]
    if override is not None:
        items.append(("override", f"{say('Cho vào', 'Override', language)} {int(override.seconds_left + 0.999)} s",
                      AMBER))
    shown = set()
    if not status.ledger_ok:
        items.append(("alert", words.degraded_words("ledger-down", language), AMBER))
        shown.add("ledger-down")
    if not status.camera_ok:
        items.append(("alert", words.degraded_words("camera-down", language), AMBER))
        shown.add("camera-down")
    if status.mqtt_connected is False:
        items.append(("alert", say("Mất kết nối", "Offline", language), AMBER))
    if clock_ok is False:
        items.append(("alert", words.degraded_words("clock-unsynced", language), AMBER))
        shown.add("clock-unsynced")
    old = (status.trust_age_days is not None and trust_max_age_days is not None
           and status.trust_age_days > trust_max_age_days)
    if old:
        shown.add("trust-stale")
    for word in status.degraded:
        if word not in shown:
            items.append(("alert", words.degraded_words(str(word), language), AMBER))
            shown.add(word)
    if status.notice:
        items.append(("notice", status.notice, BAR_INK))
    if status.camera_ok:
        items.append(("camera", f"Camera {status.camera_fps:.0f} fps", BAR_INK))
    if status.mqtt_connected:
        items.append(("mqtt-ok", say("Trực tuyến", "Online", language), BAR_INK))
    if status.trust_age_days is not None:
        days = int(status.trust_age_days)
        label = {"vi": f"Khóa {days} ngày", "en": f"Trust {days} d"}
        text = label.get(language) or f"{label['vi']} / {label['en']}"
        items.append(("alert" if old else "trust", text, AMBER if old else BAR_INK))
    return items


def status_bar(surface, lay: Layout, fonts: Fonts, status: KioskStatus, clock_ok: bool | None,
               trust_max_age_days: float | None, language: str, now: datetime, override=None) -> None:
    """Counts, the override's time left, warnings, camera fps, connection, trust-list age and the time, on one line.

    Items that do not fit are dropped from the end (least important first);
    warnings are amber with a triangle so they stand out without colour too.
    """
    import pygame

    x, y, w, h = lay.bar
    surface.fill(BAR_BG, lay.bar)
    items = [(kind, printable(text), color)
             for kind, text, color in status_items(status, clock_ok, trust_max_age_days, language, override)]
    pad = max(6, h // 3)
    r = max(4, int(h * 0.2))
    # Shrink the text (to about a third of the bar) before dropping anything.
    size = max(10, int(h * 0.52))
    while size > max(10, int(h * 0.34)):
        clock_w = fonts.get(size).size("00:00")[0]
        need = sum(2 * r + 4 + fonts.get(size).size(text)[0] + pad for _, text, _ in items)
        if pad + need + pad + clock_w + pad <= w:
            break
        size -= 1
    font = fonts.get(size)
    clock = fonts.render(now.strftime("%H:%M"), size, BAR_INK)
    right = x + w - pad - clock.get_width()
    surface.blit(clock, (right, y + (h - clock.get_height()) // 2))
    cx = x + pad
    cy = y + h // 2
    for kind, text, color in items:
        img = fonts.render(text, size, color)
        need = 2 * r + 4 + img.get_width() + pad
        if cx + need > right - pad:
            if kind in ("accepted", "rejected"):
                continue
            break
        if kind == "accepted":
            _tick(surface, color, cx + r, cy, r * 1.2, max(2, r // 2))
        elif kind == "rejected":
            a = r * 0.8
            pygame.draw.line(surface, color, (cx + r - a, cy - a), (cx + r + a, cy + a), max(2, r // 2))
            pygame.draw.line(surface, color, (cx + r - a, cy + a), (cx + r + a, cy - a), max(2, r // 2))
        elif kind == "alert":
            pygame.draw.polygon(surface, color, [(cx + r, cy - r), (cx + 2 * r, cy + r), (cx, cy + r)])
            pygame.draw.line(surface, BAR_BG, (cx + r, cy - r // 3), (cx + r, cy + r // 3), max(1, r // 4))
        elif kind == "override":  # a key: the button can still open the door
            pygame.draw.circle(surface, color, (cx + r, cy - r // 3), max(2, int(r * 0.6)), max(1, r // 3))
            pygame.draw.line(surface, color, (cx + r, cy), (cx + r, cy + r), max(2, r // 3))
        elif kind == "mqtt-ok":
            _dot(surface, (80, 200, 120), (cx + r, cy), r)
        else:
            _dot(surface, color, (cx + r, cy), max(2, r // 2))
        surface.blit(img, (cx + 2 * r + 4, cy - font.get_height() // 2))
        cx += need
