"""Verdict screens that tell people what to do, drawn for real (pygame, SDL dummy driver).

Next steps per reason, "not verified: check the ID card", out of service, names that would
crash the renderer, and the legibility criterion measured on the rendered glyphs.
"""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Mapping

import pytest

pygame = pytest.importorskip("pygame")
np = pytest.importorskip("numpy")

from kiosk.wire import reasons  # noqa: E402
from kiosk.door.show import reason_text
from kiosk.door.show import KioskStatus, draw, words  # noqa: E402
from kiosk.testing.clock import FakeClock  # noqa: E402
from test_door_show_screen import (Holder, dominant, drawn_text, kiosk_config, make_screen, pixels,  # noqa: E402,F401
                         screen_font, shows)


@dataclass(frozen=True)
class Visit:
    """Duck-typed Checkin with the fields the verdict screens read."""

    verdict: str
    reason: str
    holder: Holder | None = Holder("Nguyễn Văn An")
    duplicate: bool = False
    signed: bool = True
    facts: Mapping[str, Any] = field(default_factory=dict)
    id: str = "c1"
    at: datetime | None = None  # none: the screen's own clock


# -- next steps ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("reason,vi,en", [
    (reasons.UNKNOWN_FORMAT, "Không phải mã sức khỏe", "Not a health code"),  # a venue code, a web link
    (reasons.UNSIGNED, "Hãy đưa mã PC-Covid của bạn", "Show your PC-Covid code"),
    (reasons.policy("format"), "Hãy đưa mã PC-Covid của bạn", "Show your PC-Covid code"),
    (reasons.SIGNATURE_INVALID, "Xin gặp bảo vệ", "Please see the guard"),
    (reasons.REVOKED, "Xin gặp bảo vệ", "Please see the guard"),
    (reasons.policy("test-too-old"), "Xin gặp bảo vệ", "Please see the guard"),
    (reasons.MALFORMED, "Đưa lại mã", "Show it again"),
    (reasons.EXPIRED, "Hãy đưa mã còn hạn", "Show a code that is still valid"),  # no date known
    ("some-future-reason", "Xin gặp bảo vệ", "Please see the guard"),
])
def test_every_reject_says_what_to_do_next_in_both_languages(drawn_text, screen_font, reason, vi, en):
    screen = make_screen(kiosk_config(extra=screen_font))
    screen.show_checkin(Visit("reject", reason))
    screen.render()
    assert shows(drawn_text, vi) and shows(drawn_text, en)
    assert shows(drawn_text, "Không được vào") and shows(drawn_text, "Not admitted")


def test_unknown_format_has_plain_words_for_a_venue_code_or_web_link(drawn_text):
    screen = make_screen()
    screen.show_checkin(Visit("reject", reasons.UNKNOWN_FORMAT, holder=None))
    screen.render()
    assert shows(drawn_text, "Không phải mã sức khỏe") and shows(drawn_text, "Not a health code")
    assert shows(drawn_text, "PC-Covid")


@pytest.mark.parametrize("facts", [
    {"valid_until": "2021-10-03T08:00:00+00:00"},  # a health declaration
    {"expires_at": "2021-10-03T08:00:00+00:00", "type": "v"},  # an EU DCC
], ids=["declaration", "dcc"])
def test_expired_says_on_which_day(drawn_text, facts):
    screen = make_screen()
    screen.show_checkin(Visit("reject", reasons.EXPIRED, facts=facts))
    screen.render()
    day = datetime(2021, 10, 3, 8, tzinfo=timezone.utc).astimezone().strftime("%d/%m/%Y")
    assert shows(drawn_text, f"Hết hạn ngày {day}") and shows(drawn_text, f"Expired on {day}")


def test_next_step_in_one_language_only(drawn_text):
    screen = make_screen(kiosk_config(language="en"))
    screen.show_checkin(Visit("reject", reasons.SIGNATURE_INVALID))
    screen.render()
    assert shows(drawn_text, "Please see the guard") and not shows(drawn_text, "Xin gặp")


def test_reason_helpers_for_other_callers():
    assert reason_text.next_step(reasons.EXPIRED, "en", {"valid_until": "garbage"}) == "Show a code that is still valid"
    assert reason_text.expired_on({"expires_at": None}) is None
    assert reason_text.expired_on(None) is None


# -- not verified: check the ID card ---------------------------------------------------------------------
def test_an_unsigned_code_tells_the_guard_to_check_the_id_card(drawn_text, screen_font):
    """Default policy: an unsigned PC-Covid/CCCD code is checked in, the door stays shut, the guard checks the ID."""
    screen = make_screen(kiosk_config(extra=screen_font))
    screen.show_checkin(Visit("accept", reasons.OK, signed=False))
    img = pixels(screen.render())
    assert dominant(img) == draw.AMBER
    assert shows(drawn_text, "Chưa xác minh") and shows(drawn_text, "Not verified")
    assert shows(drawn_text, "check the ID card") and shows(drawn_text, "kiểm tra CCCD")
    assert not shows(drawn_text, "Mời vào")  # it must not say "come in" while the door stays shut


def test_a_venue_that_opens_for_unsigned_codes_shows_the_accept_screen(drawn_text):
    screen = make_screen(kiosk_config(extra="[policy]\nunsigned_opens_door = true"))
    screen.show_checkin(Visit("accept", reasons.OK, signed=False))
    assert dominant(pixels(screen.render())) == draw.GREEN
    assert shows(drawn_text, "Mời vào")


def test_an_unverified_screen_has_its_own_shape():
    def icon(visit):
        screen = make_screen()
        screen.show_checkin(visit)
        img = pixels(screen.render())
        lay = screen._current_layout()
        bg = np.array(draw.LOOKS[words.verdict_look(visit)][0])
        # The icon sits left of the headline: everything there that is not the background.
        return (np.abs(img[:lay.body[3], :lay.margin * 2 + 7 * lay.unit].astype(int) - bg).sum(axis=2) > 60)

    unverified = icon(Visit("accept", reasons.OK, signed=False))
    for other in (Visit("accept", reasons.OK), Visit("reject", reasons.EXPIRED),
                  Visit("accept", reasons.DUPLICATE, duplicate=True)):
        assert (unverified != icon(other)).mean() > 0.03


# -- out of service ---------------------------------------------------------------------------------------
def test_a_ledger_that_cannot_write_puts_the_kiosk_out_of_service(drawn_text, screen_font):
    clock = FakeClock()
    screen = make_screen(kiosk_config(extra=screen_font), clock=clock)
    screen.set_status(KioskStatus(ledger_ok=False, degraded=("ledger-down",)))
    assert screen.state() == "out-of-service"
    img = pixels(screen.render())
    assert dominant(img) == draw.SLATE
    assert shows(drawn_text, "Tạm ngừng phục vụ") and shows(drawn_text, "Out of service")
    assert shows(drawn_text, "Xin gặp bảo vệ") and shows(drawn_text, "Please see the guard")
    assert shows(drawn_text, "Sổ ghi lỗi / Ledger down")  # the guard's bar says why
    # Nothing else replaces it while the ledger is down: no verdict can be recorded.
    screen.show_checkin(Visit("accept", reasons.OK))
    assert screen.state() == "out-of-service"
    screen.set_status(KioskStatus(ledger_ok=True))
    assert screen.state() == "verdict"
    clock.t += 5
    assert screen.state() == "idle"


# -- names and text that would crash the renderer -------------------------------------------------------------
@pytest.mark.parametrize("name", [
    "Nguyễn\x00 Văn An", "\x00\x00\x00", "Trần\u202eThị\u202c Bình\x07", "Lê\ud800 Văn", "A\r\nB\tC", "Đ" * 5000,
], ids=["nul", "only-nul", "bidi-bell", "surrogate", "newlines", "very-long"])
@pytest.mark.parametrize("mode", ["masked", "full"])
def test_a_name_with_control_characters_never_crashes_the_screen(drawn_text, name, mode):
    screen = make_screen(kiosk_config(show_name=mode))
    screen.show_checkin(Visit("accept", reasons.OK, holder=Holder(name)))
    screen.render()
    screen.toggle_guard()
    clock_past = screen._checkin_at + 10
    screen.render("guard")
    assert screen.state(clock_past) == "guard"
    for text in drawn_text:
        assert not any(unicodedata.category(c).startswith("C") for c in text), repr(text)


def test_a_notice_with_a_nul_draws():
    screen = make_screen()
    screen.set_status(KioskStatus(notice="Kiểm tra\x00 camera\x1b[2J"))
    screen.render("idle")


# -- readable at 2 m -------------------------------------------------------------------------------------------
# The official Raspberry Pi 7-inch touch display: 800x480 pixels on an active area of 154.08 x 85.92 mm.
PANEL_MM = (154.08, 85.92)
DISTANCE_MM = 2000.0
HEADLINE_ARCMIN = 16.0  # ISO 9241-303 / ANSI-HFES 100 minimum character height for reading
SECOND_ARCMIN = 10.0  # the letter size of 20/40 (6/12) acuity, the usual driving-licence standard


def pixel_pitch_mm(size):
    """Vertical size of one pixel on the 7-inch panel, landscape or turned to portrait."""
    w, h = size
    return PANEL_MM[1] / h if w > h else PANEL_MM[0] / h


def arcmin(height_mm, distance_mm=DISTANCE_MM):
    return math.degrees(2 * math.atan(height_mm / 2 / distance_mm)) * 60


def first_glyph_height(img, rect, background):
    """Height in pixels of the ink of the first letter drawn in ``rect`` (a capital: its cap height)."""
    x, y, w, h = rect
    crop = img[y:y + h, x:x + w].astype(int)
    ink = np.abs(crop - np.array(background)).sum(axis=2) > 150
    cols = np.nonzero(ink.any(axis=0))[0]
    start = cols[0]
    end = start
    while end + 1 < ink.shape[1] and ink[:, end + 1].any():
        end += 1
    rows = np.nonzero(ink[:, start:end + 1].any(axis=1))[0]
    return rows[-1] - rows[0] + 1


def _plain_capital(text):
    c = text[0]
    return c == "Đ" or (c.isupper() and len(unicodedata.normalize("NFD", c)) == 1)


VISITS = {
    "accept": Visit("accept", reasons.OK),
    "reject-expired": Visit("reject", reasons.EXPIRED, facts={"valid_until": "2021-10-03T08:00:00+00:00"}),
    "reject-unknown-format": Visit("reject", reasons.UNKNOWN_FORMAT),
    "reject-signature": Visit("reject", reasons.SIGNATURE_INVALID),
    "reject-unsigned": Visit("reject", reasons.UNSIGNED),
    "reject-malformed": Visit("reject", reasons.MALFORMED),
    "reject-policy": Visit("reject", reasons.policy("vaccination-incomplete")),
    "duplicate": Visit("accept", reasons.DUPLICATE, duplicate=True),
    "duplicate-refused": Visit("reject", reasons.DUPLICATE, duplicate=True),
    "override": Visit("accept", reasons.OVERRIDE),
    "unverified": Visit("accept", reasons.OK, signed=False),
    "out-of-service": None,
}


@pytest.mark.parametrize("size", [(800, 480), (480, 800)], ids=["800x480", "480x800"])
@pytest.mark.parametrize("which", list(VISITS))
def test_verdict_words_are_readable_from_two_metres(screen_font, size, which):
    """Measured on the drawn pixels: the decision at >= 16 arcmin from 2 m, every headline and next step >= 10."""
    screen = make_screen(kiosk_config(extra=screen_font), size=size)
    if VISITS[which] is None:
        screen.set_status(KioskStatus(ledger_ok=False))
    else:
        screen.show_checkin(VISITS[which])
    img = pixels(screen.render())
    look = words.OUT_OF_SERVICE if VISITS[which] is None else words.verdict_look(VISITS[which])
    background = draw.LOOKS[look][0]
    pitch = pixel_pitch_mm(size)
    lines = [(role, text, rect) for role, text, _, rect in screen.last_drawn if role in ("headline", "step")]
    assert {role for role, _, _ in lines} >= {"headline"}
    first = lines[0]
    assert first[0] == "headline"
    checked = 0
    for role, text, rect in lines:
        if not _plain_capital(text):
            continue  # continuation lines of a wrapped sentence start with a small letter
        px = first_glyph_height(img, rect, background)
        angle = arcmin(px * pitch)
        need = HEADLINE_ARCMIN if (role, text, rect) == first else SECOND_ARCMIN
        assert angle >= need, f"{text!r}: {px} px = {px * pitch:.1f} mm = {angle:.1f}' at 2 m, want {need}'"
        checked += 1
    assert checked >= (2 if which in ("accept", "out-of-service") else 3)
