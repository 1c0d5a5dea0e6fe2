"""The guard's screen: the recent verdicts and what the override button would do now.

Opened by a tap on the status bar (or :meth:`kiosk.door.show.Screen.toggle_guard`),
closed by another tap or after ``GUARD_SECONDS``; a visitor's verdict always
comes first. One row per verdict, newest first: time, verdict (shape and
word), reason in plain words, masked name. The reject the button would let in
is outlined, with the seconds left.
"""

from __future__ import annotations

from typing import Sequence

from kiosk.door.show import reason_text
from kiosk.door.show import draw, words
from kiosk.door.show.fonts import Fonts
from kiosk.door.show.guard import OverrideChance, Row
from kiosk.door.show.layout import Layout
from kiosk.door.show.words import say

GUARD_SECONDS = 30.0  # the guard's screen closes by itself: the venue code must come back for visitors
MIN_ROWS = 10


def _row_reason(row: Row, language: str) -> str:
    if row.look == words.UNVERIFIED:
        return say(*words.HEADLINES[words.UNVERIFIED], language)
    return words.reason_words(row.reason, language)


def override_line(chance: OverrideChance | None, language: str) -> str:
    """What the button does now, in words."""
    if chance is None:
        return say("Không có lượt từ chối nào để cho vào", "No rejected visitor to let in", language)
    seconds = int(chance.seconds_left + 0.999)
    who = f"{chance.row.name}, " if chance.row.name else ""
    vi = f"Nút bảo vệ cho vào: {who}{reason_text.words(chance.row.reason, 'vi')}, còn {seconds} s"
    en = f"Button lets in: {who}{reason_text.words(chance.row.reason, 'en')}, {seconds} s left"
    return say(vi, en, language, sep="  ·  ")


def guard(surface, lay: Layout, fonts: Fonts, rows: Sequence[Row], chance: OverrideChance | None,
          language: str, trace=None) -> None:
    """Draw the guard's screen into the body (the status bar stays below)."""
    import pygame

    surface.fill(draw.BAR_BG, lay.body)
    bx, by, bw, bh = lay.body
    m, u = lay.margin, lay.unit
    x, w = bx + m, bw - 2 * m
    top = by + m // 2
    top += draw.text_block(surface, fonts, [say("Bảo vệ: lượt quét gần đây", "Guard: recent verdicts", language)],
                           (x, top, w, u * 2), int(u * 1.0), draw.WHITE, bold=True, max_lines=1, trace=trace,
                           role="title")
    colour = draw.AMBER if chance is not None else draw.BAR_INK
    top += draw.text_block(surface, fonts, [override_line(chance, language)], (x, top, w, u * 3), int(u * 0.8),
                           colour, bold=chance is not None, max_lines=2, trace=trace, role="override")
    top += m // 2
    two_lines = bw < 600  # portrait: reason on its own line under time, verdict and name
    size = max(10, int(u * 0.72))
    font = fonts.get(size)
    line_h = font.get_linesize()
    row_h = line_h * (2 if two_lines else 1) + max(2, m // 3)
    room = by + bh - m // 2 - top
    shown = list(rows[:max(MIN_ROWS, room // row_h)])
    if len(shown) * row_h > room and shown:  # shrink to keep at least MIN_ROWS rows
        size = max(10, int(size * room / (len(shown) * row_h)))
        font = fonts.get(size)
        line_h = font.get_linesize()
        row_h = line_h * (2 if two_lines else 1) + max(2, m // 3)
    if not shown:
        draw.text_block(surface, fonts, [say("Chưa có lượt quét nào", "No verdicts yet", language)],
                        (x, top, w, line_h * 2), size, draw.BAR_INK, max_lines=1, trace=trace, role="empty")
        return
    time_w = font.size("00:00:00")[0] + m
    icon_r = max(4, int(line_h * 0.36))
    lang = "en" if language == "en" else "vi"
    verdict_w = max(fonts.get(size, True).size(words.VERDICT_WORDS[k][0 if lang == "vi" else 1])[0]
                    for k in words.VERDICT_WORDS) + 2 * icon_r + m
    for i, row in enumerate(shown):
        y = top + i * row_h
        if y + row_h > by + bh:
            break
        if i % 2:
            surface.fill((44, 45, 49), (bx, y, bw, row_h))
        if chance is not None and row is chance.row:
            pygame.draw.rect(surface, draw.AMBER, (bx + 2, y, bw - 4, row_h), max(2, m // 4))
        cy = y + line_h // 2
        surface.blit(fonts.render(row.at.strftime("%H:%M:%S"), size, draw.BAR_INK), (x, y))
        draw.verdict_icon(surface, row.look, (x + time_w + icon_r, cy), icon_r, fg=draw.LOOKS[row.look][0],
                          mark=draw.BAR_BG)
        vx = x + time_w + 2 * icon_r + m // 2
        word = words.VERDICT_WORDS[row.look][0 if lang == "vi" else 1]
        surface.blit(fonts.render(word, size, draw.WHITE, bold=True), (vx, y))
        name_img = fonts.render(row.name, size, draw.BAR_INK) if row.name else None
        reason = _row_reason(row, language)
        if two_lines:
            if name_img is not None:
                surface.blit(name_img, (x + w - name_img.get_width(), y))
            draw.text_block(surface, fonts, [reason], (x + time_w, y + line_h, w - time_w, line_h), size,
                            draw.BAR_INK, max_lines=1, trace=trace, role="row")
        else:
            name_w = name_img.get_width() + m if name_img is not None else 0
            rx = x + time_w + verdict_w
            draw.text_block(surface, fonts, [reason], (rx, y, max(10, w - (rx - x) - name_w), line_h), size,
                            draw.BAR_INK, max_lines=1, trace=trace, role="row")
            if name_img is not None:
                surface.blit(name_img, (x + w - name_img.get_width(), y))
