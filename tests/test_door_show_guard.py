"""The guard's view: recent verdicts, the reject the override would let in and for how long, the status bar.

Driven only through the screen's public calls (show_checkin, set_status, toggle_guard) and an
injected clock, as the kiosk's flow drives it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping

import pytest

pygame = pytest.importorskip("pygame")
np = pytest.importorskip("numpy")

from kiosk.wire import reasons  # noqa: E402
from kiosk.door.show import KioskStatus, draw  # noqa: E402
from kiosk.door.show.guard_view import GUARD_SECONDS  # noqa: E402
from kiosk.testing.clock import FakeClock  # noqa: E402
from test_door_show_screen import Holder, drawn_text, kiosk_config, make_screen, pixels, shows  # noqa: E402,F401

T0 = datetime(2021, 10, 5, 2, 41, 0, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Visit:
    verdict: str
    reason: str
    holder: Holder | None = Holder("Nguyễn Văn An")
    duplicate: bool = False
    signed: bool = True
    facts: Mapping[str, Any] = field(default_factory=dict)
    id: str = ""
    at: datetime = T0


def window_config(seconds=60, **kw):
    return kiosk_config(extra=f"[policy]\noverride_window_seconds = {seconds}", **kw)


def queue(screen, clock, n, start=0):
    """n visitors, 5 s apart, alternating accept / reject; returns them."""
    visits = []
    for i in range(start, start + n):
        v = Visit("reject" if i % 2 else "accept", reasons.EXPIRED if i % 2 else reasons.OK,
                  holder=Holder(f"Trần Thị Khách{i}"), id=f"c{i}", at=T0 + timedelta(seconds=5 * i))
        screen.show_checkin(v)
        visits.append(v)
        clock.t += 5
    return visits


def test_the_guard_screen_lists_at_least_the_last_ten_verdicts(drawn_text):
    clock = FakeClock()
    screen = make_screen(window_config(), clock=clock)
    visits = queue(screen, clock, 14)
    assert screen.toggle_guard() is True
    assert screen.state() == "guard"
    screen.render()
    rows = [text for role, text, _, _ in screen.last_drawn if role == "row"]
    assert len(rows) >= 10
    local = [v.at.astimezone().strftime("%H:%M:%S") for v in visits]
    # newest first: time, verdict, reason in plain words, masked name
    assert local[-1] in drawn_text and local[-10] in drawn_text
    assert "Từ chối" in drawn_text and "Vào" in drawn_text
    assert shows(drawn_text, "Hết hạn / Expired") and shows(drawn_text, "Hợp lệ / Valid")
    assert "Trần T. K." in drawn_text
    assert not any("Khách" in t for t in drawn_text)  # never the full name on the guard's screen


def test_the_guard_screen_masks_names_even_when_the_verdict_shows_them_in_full(drawn_text):
    clock = FakeClock()
    screen = make_screen(window_config(show_name="full"), clock=clock)
    screen.show_checkin(Visit("accept", reasons.OK, id="a"))
    clock.t += 3
    screen.toggle_guard()
    screen.render()
    assert "Nguyễn V. A." in drawn_text and "Nguyễn Văn An" not in drawn_text


def test_no_names_at_all_when_the_venue_shows_none(drawn_text):
    clock = FakeClock()
    screen = make_screen(window_config(show_name="none"), clock=clock)
    screen.show_checkin(Visit("reject", reasons.EXPIRED, id="a"))
    clock.t += 3
    screen.toggle_guard()
    screen.render()
    assert not any("Nguyễn" in t for t in drawn_text)


def test_override_chance_counts_down_and_ends_with_the_window(drawn_text):
    clock = FakeClock()
    screen = make_screen(window_config(60), clock=clock)
    screen.show_checkin(Visit("reject", reasons.SIGNATURE_INVALID, id="r1"))
    clock.t += 17
    chance = screen.guard_log.override_chance()
    assert chance.row.checkin_id == "r1" and chance.seconds_left == pytest.approx(43)
    screen.toggle_guard()
    screen.render()
    assert shows(drawn_text, "Nút bảo vệ cho vào: Nguyễn V. A., Chữ ký không hợp lệ, còn 43 s")
    assert shows(drawn_text, "Button lets in: Nguyễn V. A., Invalid signature, 43 s left")
    assert "Cho vào / Override 43 s" in drawn_text  # on the status bar too, on every screen
    clock.t += 43.5
    assert screen.guard_log.override_chance() is None
    drawn_text.clear()
    screen.render("guard")  # the guard's screen closed by itself meanwhile: drawn on request
    assert shows(drawn_text, "No rejected visitor to let in")
    assert not any(t.startswith("Cho vào / Override") for t in drawn_text)


@pytest.mark.parametrize("later", [Visit("accept", reasons.OK, id="a2"), Visit("reject", reasons.EXPIRED, id="r2"),
                                   Visit("accept", reasons.OVERRIDE, id="r1")],
                         ids=["accept", "another-reject", "the-override-itself"])
def test_any_later_verdict_moves_the_override_on(later):
    clock = FakeClock()
    screen = make_screen(window_config(60), clock=clock)
    screen.show_checkin(Visit("reject", reasons.EXPIRED, id="r1"))
    clock.t += 2
    screen.show_checkin(later)
    chance = screen.guard_log.override_chance()
    if later.verdict == "reject":
        assert chance.row.checkin_id == "r2" and chance.seconds_left == pytest.approx(60)
    else:
        assert chance is None


def test_a_refused_duplicate_can_be_overridden():
    clock = FakeClock()
    screen = make_screen(window_config(60), clock=clock)
    screen.show_checkin(Visit("reject", reasons.DUPLICATE, duplicate=True, id="d1"))
    assert screen.guard_log.override_chance().row.checkin_id == "d1"


def test_the_reject_the_override_applies_to_is_outlined():
    clock = FakeClock()
    screen = make_screen(window_config(60), clock=clock)
    def amber_rows():
        img = pixels(screen.render())[:screen._current_layout().bar[1]]
        return int((img == np.array(draw.AMBER)).all(axis=2).any(axis=1).sum())

    queue(screen, clock, 3)  # accept, reject, accept: nothing to override
    screen.toggle_guard()
    assert amber_rows() == 0
    screen.show_checkin(Visit("reject", reasons.EXPIRED, id="last"))
    clock.t += screen.config.verdict_seconds + 0.1  # the verdict has had its seconds; the guard's screen is back
    assert screen.state() == "guard"
    assert amber_rows() > 20  # the outline round the row (and the amber line saying what the button does)


def test_a_visitors_verdict_comes_before_the_guard_screen_which_closes_by_itself():
    clock = FakeClock()
    screen = make_screen(window_config(), clock=clock)
    screen.toggle_guard()
    screen.show_checkin(Visit("accept", reasons.OK, id="a"))
    assert screen.state() == "verdict"
    clock.t += 2.5
    assert screen.state() == "guard"
    clock.t += GUARD_SECONDS
    assert screen.state() == "idle"
    assert screen.toggle_guard() is True and screen.toggle_guard() is False and screen.state() == "idle"


def test_the_guard_opens_their_screen_with_a_tap_on_the_status_bar():
    screen = make_screen(size=(800, 480))
    bar_top = screen._current_layout().bar[1]
    tap = pygame.event.Event(pygame.MOUSEBUTTONDOWN, pos=(400, bar_top + 5), button=1)
    elsewhere = pygame.event.Event(pygame.MOUSEBUTTONDOWN, pos=(400, 100), button=1)
    finger = pygame.event.Event(pygame.FINGERDOWN, x=0.5, y=(bar_top + 5) / 480, touch_id=0, finger_id=0)
    assert screen._is_guard_tap(tap) and screen._is_guard_tap(finger)
    assert not screen._is_guard_tap(elsewhere)  # a visitor touching the screen opens nothing


def test_the_guard_screen_fits_every_size(drawn_text):
    for size in [(800, 480), (480, 800), (1920, 1080), (1024, 600)]:
        clock = FakeClock()
        screen = make_screen(window_config(), size=size, clock=clock)
        queue(screen, clock, 20)
        screen.toggle_guard()
        drawn_text.clear()
        drawn_text.widths.clear()
        screen.render()
        rows = [rect for role, _, _, rect in screen.last_drawn if role == "row"]
        assert len(rows) >= 10, size
        assert all(x >= 0 and x + w <= size[0] and y + h <= screen._current_layout().bar[1] for x, y, w, h in rows)
        assert max(drawn_text.widths) <= size[0]


# -- the status bar, in both languages -------------------------------------------------------------------------
def test_status_bar_is_bilingual_in_vi_en():
    status = KioskStatus(accepted=3, rejected=1, camera_ok=False, mqtt_connected=False, clock_synced=False,
                         trust_age_days=45, degraded=("gpio-mock", "display-down", "trust-stale", "camera-down",
                                                      "clock-unsynced"))
    bar = [text for _, text, _ in draw.status_items(status, False, 30, "vi+en")]
    words_items = [t for t in bar if not re.fullmatch(r"[\d:]+", t)]
    assert words_items and all(" / " in t for t in words_items), words_items
    for expected in ("Camera lỗi / Camera down", "Mất kết nối / Offline", "Giờ chưa đồng bộ / Clock not synced",
                     "GPIO giả lập / GPIO simulated", "Màn hình lỗi / Display down", "Khóa 45 ngày / Trust 45 d"):
        assert expected in bar
    # a health word already shown by its own item is not repeated
    assert sum("Camera down" in t for t in bar) == 1 and sum("Clock not synced" in t for t in bar) == 1
    assert not any("Trust list stale" in t for t in bar)  # the amber trust age says it
    healthy = [text for _, text, _ in draw.status_items(KioskStatus(camera_fps=15, mqtt_connected=True,
                                                                    trust_age_days=2), True, 30, "vi+en")]
    assert healthy == ["0", "0", "Camera 15 fps", "Trực tuyến / Online", "Khóa 2 ngày / Trust 2 d"]


def test_warnings_come_before_healthy_figures_when_the_bar_is_short(drawn_text):
    screen = make_screen(size=(800, 480))
    screen.set_status(KioskStatus(accepted=3, rejected=1, camera_fps=15, mqtt_connected=True, clock_synced=True,
                                  trust_age_days=2, degraded=("gpio-mock",)))
    screen.render("idle")
    assert "GPIO giả lập / GPIO simulated" in drawn_text


@pytest.mark.parametrize("language,present,absent", [("vi", "GPIO giả lập", "simulated"),
                                                     ("en", "GPIO simulated", "giả lập")])
def test_status_bar_in_one_language(drawn_text, language, present, absent):
    screen = make_screen(kiosk_config(language=language), size=(1920, 1080))
    screen.set_status(KioskStatus(degraded=("gpio-mock",), mqtt_connected=True, clock_synced=True))
    screen.render("idle")
    assert present in drawn_text and not any(absent in t for t in drawn_text)


def test_an_unknown_health_word_is_still_shown(drawn_text):
    screen = make_screen(size=(1920, 1080))
    screen.set_status(KioskStatus(degraded=("fan-stuck",), clock_synced=True))
    screen.render("idle")
    assert "fan-stuck" in drawn_text
