"""Drawing the four screens onto a pygame surface: idle, live, verdict, status bar.

Pure drawing: every function takes the surface, the layout, the fonts and
plain values, and keeps no state, so ``kiosk screenshot`` and the live
screen draw exactly the same pixels.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Sequence

from kiosk import reasons
from kiosk.screen.fonts import Fonts
from kiosk.screen.layout import Layout
from kiosk.screen.status import KioskStatus

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

# verdict look -> (background, headline (vi, en), shape). Shape as well as colour:
# circle + tick, octagon + cross, rounded square + double tick.
LOOKS = {
    "accept": (GREEN, ("Mời vào", "Welcome"), "circle"),
    "override": (GREEN, ("Mời vào", "Welcome"), "circle"),
    "reject": (RED, ("Không được vào", "Not admitted"), "octagon"),
    "duplicate": (BLUE, (reasons.words(reasons.DUPLICATE, "vi"), reasons.words(reasons.DUPLICATE, "en")), "square"),
}


def in_language(vi: str, en: str, language: str) -> list[str]:
    """The lines to show for ``[venue] language``: vi, en, or both (Vietnamese first)."""
    if language == "vi":
        return [vi]
    if language == "en":
        return [en]
    return [vi, en] if vi != en else [vi]


def reason_lines(reason: str, language: str) -> list[str]:
    """A reason code in plain words (kiosk.reasons), in the screen's language(s)."""
    return in_language(reasons.words(reason, "vi"), reasons.words(reason, "en"), language)


def text_block(surface, fonts: Fonts, lines: Sequence[str], rect, size: int, color, *, bold=False,
               align="left", second_color=None, max_lines=3) -> int:
    """Draw language lines (the second one smaller and softer) into ``rect``; returns the height used.

    ``surface=None`` measures without drawing.
    Each line is wrapped and shrunk to fit the width; the block is cut, not
    overflowed, when the rect is too short.
    """
    x, y, w, h = rect
    used = 0
    for i, line in enumerate(lines):
        if not line:
            continue
        s = size if i == 0 else max(10, int(size * 0.72))
        col = color if i == 0 or second_color is None else second_color
        fitted, wrapped = fonts.fit(line, w, h - used, s, bold=bold and i == 0, max_lines=max_lines)
        for part in wrapped:
            img = fonts.render(part, fitted, col, bold=bold and i == 0)
            if used + img.get_height() > h:
                return used
            dx = {"left": 0, "center": (w - img.get_width()) // 2, "right": w - img.get_width()}[align]
            if surface is not None:  # None: measure only
                surface.blit(img, (x + dx, y + used))
            used += fonts.get(fitted, bold and i == 0).get_linesize()
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


def verdict_icon(surface, look: str, center, radius: int, fg=WHITE, mark=None) -> None:
    """The verdict's shape: white circle with a tick, octagon with a cross, square with a double tick."""
    import pygame

    cx, cy = center
    r = radius
    width = max(4, r // 5)
    mark = mark or LOOKS[look][0]
    shape = LOOKS[look][2]
    if shape == "circle":
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
    text_block(surface, fonts, [" / ".join(in_language("Mã QR địa điểm", "Venue QR code", language))], lay.qr_label, int(lay.unit * 0.7), MUTED, align="center", max_lines=1)
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
    text_block(surface, fonts, [" / ".join(in_language("Giữ yên mã trước camera", "Hold your code still", venue.language))],
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


# -- verdict -------------------------------------------------------------------------
def _verdict_blocks(look: str, reason: str, name: str, language: str) -> list[tuple[list[str], float, bool]]:
    """(lines, size relative to the unit, bold) per text block of a verdict, top to bottom."""
    _, (vi, en), _ = LOOKS[look]
    blocks: list[tuple[list[str], float, bool]] = [(in_language(vi, en, language), 1.9, True)]
    if look == "override":
        blocks.append((reason_lines(reasons.OVERRIDE, language), 1.1, False))
    elif look == "reject":
        blocks.append((reason_lines(reason, language), 1.4, True))
    elif look == "duplicate":
        blocks.append((in_language("Đã được tính một lần", "Counted once", language), 0.9, False))
    if name:
        blocks.append(([name], 1.1, False))
    return blocks


def verdict(surface, lay: Layout, fonts: Fonts, look: str, reason: str, name: str, language: str) -> None:
    """Full-screen verdict: colour, shape, headline, reason in plain words, masked name.

    Landscape: the shape on the left, the words beside it. Portrait: the
    shape above the words, the pair centred on the screen.
    """
    background = LOOKS[look][0]
    surface.fill(background, lay.body)
    bx, by, bw, bh = lay.body
    m, u = lay.margin, lay.unit
    gap = int(u * 0.5)
    blocks = _verdict_blocks(look, reason, name, language)
    if lay.portrait:
        x, w, h = bx + m, bw - 2 * m, int(bh * 0.5)
    else:
        r = int(min(bh * 0.36, bw * 0.2))
        x = bx + 2 * m + 2 * r + 2 * u
        w, h = bw - x - m, bh - 2 * m
    # Measure first (surface=None), so the words can be centred.
    heights = [text_block(None, fonts, lines, (0, 0, w, h), int(u * scale), WHITE, bold=bold, max_lines=2)
               for lines, scale, bold in blocks]
    total = sum(heights) + gap * (len(blocks) - 1)
    if lay.portrait:
        r = int(max(u, min(bw * 0.3, (bh - total - 2 * u - 2 * m) / 2)))
        group_top = by + max(m, (bh - (2 * r + 2 * u + total)) // 2)
        verdict_icon(surface, look, (bx + bw // 2, group_top + r), r)
        top, align = group_top + 2 * r + 2 * u, "center"
    else:
        verdict_icon(surface, look, (bx + m + r + u, by + bh // 2), r)
        top, align = by + m + max(0, (h - total) // 2), "left"
    bottom = by + bh - m
    for (lines, scale, bold), used in zip(blocks, heights):
        text_block(surface, fonts, lines, (x, top, w, max(0, bottom - top)), int(u * scale), WHITE, bold=bold,
                   align=align, second_color=(235, 240, 235), max_lines=2)
        top += used + gap


# -- guard's status bar ----------------------------------------------------------------
def _dot(surface, color, center, r) -> None:
    import pygame

    pygame.draw.circle(surface, color, center, r)


def status_items(status: KioskStatus, clock_ok: bool | None, trust_max_age_days: float | None,
                 language: str) -> list[tuple[str, str, tuple]]:
    """(kind, text, colour) per item, most important first; kind picks the little icon."""
    both = language == "vi+en"
    vi = language != "en"
    items: list[tuple[str, str, tuple]] = [
        ("accepted", f"{status.accepted}", (80, 200, 120)),
        ("rejected", f"{status.rejected}", (240, 90, 90)),
    ]
    if not status.camera_ok:
        items.append(("alert", "Camera lỗi / down" if both else "Camera lỗi" if vi else "Camera down", AMBER))
    else:
        items.append(("camera", f"Camera {status.camera_fps:.0f} fps", BAR_INK))
    if status.mqtt_connected is not None:
        items.append(("mqtt-ok" if status.mqtt_connected else "alert",
                      "MQTT" if status.mqtt_connected else ("MQTT mất kết nối / offline" if both else
                                                            "MQTT mất kết nối" if vi else "MQTT offline"),
                      BAR_INK if status.mqtt_connected else AMBER))
    if clock_ok is False:
        items.append(("alert", "Giờ chưa đồng bộ / Clock not synced" if both else
                      "Giờ chưa đồng bộ" if vi else "Clock not synced", AMBER))
    if status.trust_age_days is not None:
        days = int(status.trust_age_days)
        old = trust_max_age_days is not None and status.trust_age_days > trust_max_age_days
        label = f"{'Khóa' if vi and not both else 'Trust'} {days} {'ngày' if vi and not both else 'd'}"
        items.append(("alert" if old else "trust", label, AMBER if old else BAR_INK))
    if status.notice:
        items.append(("notice", status.notice, BAR_INK))
    return items


def status_bar(surface, lay: Layout, fonts: Fonts, status: KioskStatus, clock_ok: bool | None,
               trust_max_age_days: float | None, language: str, now: datetime) -> None:
    """Counts, camera fps, MQTT, clock sync, trust-list age and the time, on one dark line.

    Items that do not fit are dropped from the end (least important first);
    warnings are amber with a triangle so they stand out without colour too.
    """
    import pygame

    x, y, w, h = lay.bar
    surface.fill(BAR_BG, lay.bar)
    items = status_items(status, clock_ok, trust_max_age_days, language)
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
        elif kind == "mqtt-ok":
            _dot(surface, (80, 200, 120), (cx + r, cy), r)
        else:
            _dot(surface, color, (cx + r, cy), max(2, r // 2))
        surface.blit(img, (cx + 2 * r + 4, cy - font.get_height() // 2))
        cx += need
