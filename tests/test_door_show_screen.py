"""The kiosk screen, drawn for real with pygame (SDL dummy driver): what visitors, guards and inspectors see."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Mapping

import pytest

pygame = pytest.importorskip("pygame")
np = pytest.importorskip("numpy")
zxingcpp = pytest.importorskip("zxingcpp")

from kiosk.testing.clock import FakeClock
from kiosk.wire import reasons  # noqa: E402
from kiosk.config import parse  # noqa: E402
from kiosk.door.show import KioskStatus, Screen, mask_name, shown_name  # noqa: E402
from device import clock as clocksync  # noqa: E402
from kiosk.door.show import draw  # noqa: E402
from kiosk.door.show.fonts import Fonts, draws_vietnamese, find_fonts  # noqa: E402
from kiosk.door.show.venue_qr import QUIET_ZONE  # noqa: E402

QR = "https://qr.tokhaiyte.vn/dd/HN-HK-000123"
SIZES = [(800, 480), (1024, 600), (1920, 1080), (480, 800), (600, 1024)]


def kiosk_config(language="vi+en", show_name="masked", qr=QR, extra=""):
    return parse(f"""
[device]
site = "hn"
id = "k1"
[venue]
id = "HN-HK-000123"
name = "Nhà sách Tràng Tiền"
address = "61 Tràng Tiền, Hoàn Kiếm, Hà Nội"
qr_content = "{qr}"
language = "{language}"
[screen]
show_name = "{show_name}"
verdict_seconds = 2.0
fps = 10
{extra}
""")


@dataclass(frozen=True)
class Holder:
    name: str | None = None


@dataclass(frozen=True)
class Visit:
    """Duck-typed Checkin: the fields the screen reads."""

    verdict: str
    reason: str
    holder: Holder | None = Holder("Nguyễn Văn An")
    duplicate: bool = False
    signed: bool = True
    facts: Mapping[str, Any] = field(default_factory=dict)
    id: str = ""
    at: datetime | None = None  # none: the screen's own clock


# The screen fonts to check layouts with: Noto Sans where fonts-noto-core is installed, DejaVu Sans
# (the only one on a minimal Raspberry Pi OS / CI machine, scripts/setup's fonts-dejavu-core) wherever it
# is. Their widths differ, so the same words break into lines differently.
_FONT_PATHS = {
    "dejavu": "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "noto": "/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf",
}
SCREEN_FONTS = [pytest.param(path, id=name) for name, path in _FONT_PATHS.items() if Path(path).is_file()] \
    or [pytest.param("", id="system")]  # neither installed: whatever find_fonts picks


@pytest.fixture(params=SCREEN_FONTS)
def screen_font(request):
    """A ``[screen] font = ...`` config line forcing one font (``""``: let the screen find one)."""
    return f'font = "{request.param}"' if request.param else ""


def shows(drawn: list, phrase: str) -> bool:
    """True when ``phrase`` was drawn, whether on one line or broken over several (as a visitor reads it)."""
    return phrase in " ".join(" ".join(t.split()) for t in drawn)


def pixels(surface):
    return np.ascontiguousarray(pygame.surfarray.array3d(surface).transpose(1, 0, 2))


@pytest.fixture
def drawn_text(monkeypatch):
    """Every string the screen draws (a spy on the font renderer), to check words without OCR.

    ``seen.widths`` has each rendered line's width in pixels, to check that nothing overflows.
    """
    seen = DrawnText()
    original = Fonts.render

    def spy(self, text, size, color, bold=False):
        image = original(self, text, size, color, bold)
        seen.append(text)
        seen.widths.append(image.get_width())
        return image

    monkeypatch.setattr(Fonts, "render", spy)
    return seen


class DrawnText(list):
    def __init__(self):
        super().__init__()
        self.widths: list[int] = []


def make_screen(cfg=None, size=(800, 480), **kw):
    cfg = cfg or kiosk_config()
    kw = {"policy": cfg.policy, "trust_max_age_days": cfg.trust.max_age_days, **kw}
    return Screen(cfg.screen, cfg.venue, size=size, headless=True, **kw)


# -- venue QR: what an inspector checks --------------------------------------------------------
@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_idle_venue_qr_decodes_to_the_configured_content(size):
    screen = make_screen(size=size)
    img = pixels(screen.render("idle"))
    found = zxingcpp.read_barcodes(img)
    assert [r.text for r in found if r.format == zxingcpp.BarcodeFormat.QRCode] == [QR]


def _finder_geometry(img):
    """Module size and top-left of the QR, measured from the top-left finder pattern (7 dark modules)."""
    grey = img.mean(axis=2)
    dark = grey < 60
    ys, xs = np.nonzero(dark)
    # The QR's top-left finder: the first dark row of the left-most dark block.
    top = ys.min()
    row = dark[top]
    left = int(np.argmax(row))
    run = int(np.argmin(row[left:]))  # length of the dark run = 7 modules
    return run / 7, left, top


@pytest.mark.parametrize("size", [(800, 480), (480, 800)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_venue_qr_has_big_modules_and_a_quiet_zone(size):
    screen = make_screen(size=size)
    img = pixels(screen.render("idle"))
    qx, qy, qw, qh = screen._current_layout().qr
    qr_img = img[qy:qy + qh, qx:qx + qw]
    module, left, top = _finder_geometry(qr_img)
    assert module >= 6 and module == int(module), f"{module} px per module"
    m = int(module)
    # 4 light modules all round the code
    assert left >= QUIET_ZONE * m and top >= QUIET_ZONE * m
    light = qr_img.mean(axis=2) > 200
    assert light[:QUIET_ZONE * m, :].all() and light[:, :QUIET_ZONE * m].all()
    assert light[-QUIET_ZONE * m:, :].all() and light[:, -QUIET_ZONE * m:].all()


def test_long_venue_content_still_decodes_on_the_small_screen():
    long_qr = "https://qr.tokhaiyte.vn/dd/" + "HN-HK-000123-" * 12
    screen = make_screen(kiosk_config(qr=long_qr), size=(800, 480))
    found = zxingcpp.read_barcodes(pixels(screen.render("idle")))
    assert [r.text for r in found] == [long_qr]


@pytest.mark.parametrize("size", [(800, 480), (480, 800)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_idle_shows_venue_instructions_in_both_languages_and_the_clock(drawn_text, screen_font, size):
    screen = make_screen(kiosk_config(extra=screen_font), size=size, wallclock=lambda: datetime(2021, 10, 5, 9, 41))
    screen.render("idle")
    # Line breaks depend on the font's widths; the words, whole and in order, must not.
    assert shows(drawn_text, "Nhà sách Tràng Tiền")
    assert shows(drawn_text, "61 Tràng Tiền, Hoàn Kiếm, Hà Nội")
    assert shows(drawn_text, "Đưa mã QR của bạn vào camera") and shows(drawn_text, "Show your QR code to the camera")
    assert "09:41" in drawn_text and "05/10/2021" in drawn_text
    assert max(drawn_text.widths) <= size[0]  # nothing runs off the screen


def test_english_only_venue_has_no_vietnamese_instructions(drawn_text):
    make_screen(kiosk_config(language="en")).render("idle")
    joined = " ".join(drawn_text)
    assert "Show your QR code" in joined and "Đưa mã" not in joined


# -- verdicts: what the visitor sees --------------------------------------------------------------
def dominant(img):
    body = img[: int(img.shape[0] * 0.9)].reshape(-1, 3)
    colours, counts = np.unique(body, axis=0, return_counts=True)
    return tuple(int(c) for c in colours[counts.argmax()])


@pytest.mark.parametrize("visit,colour", [
    (Visit("accept", reasons.OK), draw.GREEN),
    (Visit("reject", reasons.EXPIRED), draw.RED),
    (Visit("accept", reasons.DUPLICATE, duplicate=True), draw.BLUE),
    (Visit("accept", reasons.OVERRIDE), draw.GREEN),
], ids=["accept", "reject", "duplicate", "override"])
def test_verdict_fills_the_screen_with_its_colour(visit, colour):
    screen = make_screen()
    screen.show_checkin(visit)
    assert dominant(pixels(screen.render())) == colour


def _icon_mask(visit):
    """Where the verdict icon is white: its shape with the colour taken away."""
    screen = make_screen()
    screen.show_checkin(visit)
    img = pixels(screen.render())
    lay = screen._current_layout()
    r = int(min(lay.body[3] * 0.36, lay.body[2] * 0.2))
    x0 = lay.margin + lay.unit
    icon = img[lay.body[3] // 2 - r: lay.body[3] // 2 + r, x0: x0 + 2 * r]
    return icon.min(axis=2) > 250


def test_verdicts_differ_by_shape_not_only_colour():
    masks = {look: _icon_mask(v) for look, v in [
        ("accept", Visit("accept", reasons.OK)), ("reject", Visit("reject", reasons.EXPIRED)),
        ("duplicate", Visit("accept", reasons.DUPLICATE, duplicate=True))]}
    for a, b in [("accept", "reject"), ("accept", "duplicate"), ("reject", "duplicate")]:
        assert (masks[a] != masks[b]).mean() > 0.05, (a, b)


def test_reject_names_the_reason_in_plain_words_in_both_languages(drawn_text, screen_font):
    screen = make_screen(kiosk_config(extra=screen_font))
    screen.show_checkin(Visit("reject", reasons.SIGNATURE_INVALID))
    screen.render()
    assert shows(drawn_text, "Chữ ký không hợp lệ") and shows(drawn_text, "Invalid signature")


def test_policy_reason_in_plain_words(drawn_text, screen_font):
    screen = make_screen(kiosk_config(language="vi", extra=screen_font))
    screen.show_checkin(Visit("reject", reasons.policy("test-too-old")))
    screen.render()
    assert shows(drawn_text, "Xét nghiệm đã quá hạn") and not shows(drawn_text, "Test too old")
    lay = screen._current_layout()
    assert max(drawn_text.widths) <= lay.width - lay.margin  # beside the icon, never past the edge


def test_duplicate_says_come_in(drawn_text, screen_font):
    screen = make_screen(kiosk_config(extra=screen_font))
    screen.show_checkin(Visit("accept", reasons.DUPLICATE, duplicate=True))
    screen.render()
    assert shows(drawn_text, "Mời vào") and shows(drawn_text, "Come in")
    assert shows(drawn_text, "Đã quét") and shows(drawn_text, "Already checked in")


def test_a_refused_duplicate_is_a_reject_screen_that_sends_the_visitor_to_the_guard(drawn_text):
    """[policy] duplicates_accepted = false: the desk's verdict is reject, and the screen says what to do."""
    screen = make_screen(kiosk_config(extra="[policy]\nduplicates_accepted = false"))
    screen.show_checkin(Visit("reject", reasons.DUPLICATE, duplicate=True))
    assert dominant(pixels(screen.render())) == draw.RED
    assert shows(drawn_text, "Xin gặp bảo vệ") and shows(drawn_text, "Please see the guard")
    assert shows(drawn_text, "Đã quét / Already checked in")
    assert not shows(drawn_text, "Mời vào") and not shows(drawn_text, "Come in")


@pytest.mark.parametrize("mode,shown,hidden", [
    ("masked", "Nguyễn V. A.", "Văn"),
    ("full", "Nguyễn Văn An", None),
    ("none", None, "Nguyễn"),
])
def test_name_on_the_verdict_screen_follows_show_name(drawn_text, mode, shown, hidden):
    screen = make_screen(kiosk_config(show_name=mode))
    screen.show_checkin(Visit("accept", reasons.OK))
    screen.render()
    joined = " | ".join(drawn_text)
    if shown:
        assert shown in drawn_text
    if hidden:
        assert hidden not in joined


def test_verdict_without_a_holder_draws():
    screen = make_screen()
    screen.show_checkin(Visit("reject", reasons.MALFORMED, holder=None))
    assert dominant(pixels(screen.render())) == draw.RED


@pytest.mark.parametrize("name,masked", [
    ("Nguyễn Văn An", "Nguyễn V. A."),
    ("Trần Thị Đức Hạnh", "Trần T. Đ. H."),
    ("  nguyễn   văn  an ", "nguyễn V. A."),
    ("NGUYEN<VAN<AN", "NGUYEN V. A."),
    ("Lê", "Lê"),
    ("", ""),
    (None, ""),
])
def test_mask_name(name, masked):
    assert mask_name(name) == masked


def test_mask_name_keeps_decomposed_vietnamese_letters_whole():
    import unicodedata

    decomposed = unicodedata.normalize("NFD", "Nguyễn Đức Ẩn")
    assert mask_name(decomposed) == "Nguyễn Đ. Ẩ."
    assert shown_name(decomposed, "none") == ""


# -- timing: verdict, back to idle, live preview -----------------------------------------------------
def test_verdict_stays_about_two_seconds_then_idle():
    clock = FakeClock()
    screen = make_screen(clock=clock)
    assert screen.state() == "idle"
    screen.show_checkin(Visit("accept", reasons.OK))
    assert screen.state() == "verdict"
    clock.t += 1.9
    assert screen.state() == "verdict"
    clock.t += 0.2
    assert screen.state() == "idle"


def test_a_new_verdict_replaces_the_one_on_screen():
    clock = FakeClock()
    screen = make_screen(clock=clock)
    screen.show_checkin(Visit("accept", reasons.OK))
    clock.t += 1.5
    screen.show_checkin(Visit("reject", reasons.EXPIRED))
    clock.t += 1.5
    assert screen.state() == "verdict"
    assert dominant(pixels(screen.render())) == draw.RED


@dataclass(frozen=True)
class Located:
    text: str
    corners: tuple


@dataclass
class Frame:
    image: object


def test_live_preview_while_a_code_is_in_view_with_its_outline():
    clock = FakeClock()
    screen = make_screen(clock=clock)
    frame = np.full((480, 640), 120, np.uint8)
    screen.set_preview(Frame(frame), [])
    assert screen.state() == "idle"  # a camera with no code in view: the venue QR stays
    quad = ((200, 140), (440, 140), (440, 380), (200, 380))
    screen.set_preview(Frame(frame), [Located("x", quad)])
    assert screen.state() == "live"
    img = pixels(screen.render())
    outline = (img == np.array(draw.OUTLINE)).all(axis=2)
    ys, xs = np.nonzero(outline)
    assert outline.sum() > 500
    # the outline sits in the middle of the preview, where the code is
    assert 0.3 < xs.mean() / img.shape[1] < 0.7 and 0.3 < ys.mean() / img.shape[0] < 0.7
    clock.t += 2.0
    screen.set_preview(Frame(frame), [])
    assert screen.state() == "idle"


def test_live_preview_of_a_colour_frame_keeps_its_colours():
    screen = make_screen()
    bgr = np.zeros((240, 320, 3), np.uint8)
    bgr[:, :, 2] = 200  # red in OpenCV's BGR order
    screen.set_preview(Frame(bgr), [Located("x", ((10, 10), (50, 10), (50, 50), (10, 50)))])
    img = pixels(screen.render("live"))
    lay = screen._current_layout()
    centre = img[lay.body[3] // 2, lay.width // 2]
    assert tuple(centre) == (200, 0, 0)


def test_preview_conversion_without_pygame_bgr_support(monkeypatch):
    """pygame before 2.1.3 has no "BGR" buffer format: the numpy conversion must give the same picture."""
    from kiosk.door.show import screen as screen_mod

    bgr = np.zeros((60, 80, 3), np.uint8)
    bgr[:, :, 0], bgr[:, :, 1], bgr[:, :, 2] = 10, 20, 200  # B, G, R
    fast = pixels(screen_mod._preview_surface(bgr))
    original = pygame.image.frombuffer

    def old_pygame(buf, size, fmt):
        if fmt == "BGR":
            raise ValueError("Unrecognized type of format")
        return original(buf, size, fmt)

    monkeypatch.setattr(pygame.image, "frombuffer", old_pygame)
    slow = pixels(screen_mod._preview_surface(bgr))
    assert (fast == slow).all() and tuple(slow[5, 5]) == (200, 20, 10)


def test_grey_preview_keeps_its_grey_levels():
    from kiosk.door.show import screen as screen_mod

    grey = np.arange(256, dtype=np.uint8).reshape(16, 16)
    img = pixels(screen_mod._preview_surface(grey))
    assert (img[:, :, 0] == grey).all() and (img[:, :, 1] == grey).all()


def test_grey_preview_without_palette_support_keeps_its_grey_levels(monkeypatch):
    """pygame 2.1.2 (Bookworm) refuses set_palette before the display is up: the RGB copy must look the same."""
    from kiosk.door.show import screen as screen_mod

    class OldSurface(pygame.Surface):  # pygame's Surface type itself cannot be patched
        def set_palette(self, palette):
            raise pygame.error("cannot set palette without pygame.display initialized")

    original = pygame.image.frombuffer

    def old_pygame(buf, size, fmt):
        return OldSurface(size, 0, 8) if fmt == "P" else original(buf, size, fmt)

    monkeypatch.setattr(pygame.image, "frombuffer", old_pygame)
    grey = np.arange(256, dtype=np.uint8).reshape(16, 16)
    img = pixels(screen_mod._preview_surface(grey))
    assert all((img[:, :, c] == grey).all() for c in range(3))
    # and the live screen draws with it
    screen = make_screen()
    screen.set_preview(Frame(np.full((48, 64), 200, np.uint8)), [Located("x", ((1, 1), (9, 1), (9, 9), (1, 9)))])
    shown = pixels(screen.render("live"))
    lay = screen._current_layout()
    assert tuple(shown[lay.body[3] // 2, lay.width // 2]) == (200, 200, 200)


def test_a_verdict_wins_over_the_live_preview():
    screen = make_screen()
    screen.set_preview(Frame(np.zeros((48, 64), np.uint8)), [Located("x", ((1, 1), (9, 1), (9, 9), (1, 9)))])
    screen.show_checkin(Visit("reject", reasons.EXPIRED))
    assert screen.state() == "verdict"


# -- never blocks scanning ---------------------------------------------------------------------------
def test_tick_draws_at_most_fps_and_only_on_change(monkeypatch):
    clock = FakeClock()
    wall = [datetime(2021, 10, 5, 9, 41, 0)]
    screen = make_screen(clock=clock, wallclock=lambda: wall[0])
    renders = []
    original = screen.render
    monkeypatch.setattr(screen, "render", lambda state=None: renders.append(state) or original(state))
    for _ in range(50):
        assert screen.tick()
    assert len(renders) == 1  # nothing changed: one frame
    screen.show_checkin(Visit("accept", reasons.OK))
    assert screen.tick() and len(renders) == 1  # within 1/fps of the last frame: waits
    clock.t += 0.11
    assert screen.tick() and renders[-1] == "verdict" and len(renders) == 2
    clock.t += 0.11
    screen.tick()
    assert len(renders) == 2
    clock.t += 2.0
    screen.tick()
    assert renders[-1] == "idle"


def test_setters_are_cheap_and_thread_safe():
    screen = make_screen()
    frame = Frame(np.zeros((480, 640, 3), np.uint8))
    located = [Located("x", ((100, 100), (200, 100), (200, 200), (100, 200)))]
    start = time.perf_counter()
    for i in range(2000):
        screen.set_preview(frame, located)
        screen.set_status(KioskStatus(accepted=i))
    per_call_ms = (time.perf_counter() - start) / 4000 * 1000
    assert per_call_ms < 0.5

    errors = []
    stop = threading.Event()

    def hammer():
        try:
            i = 0
            while not stop.is_set():
                screen.set_preview(frame, located if i % 2 else [])
                screen.show_checkin(Visit("reject" if i % 3 else "accept", reasons.EXPIRED))
                screen.set_status(KioskStatus(accepted=i, rejected=i // 2))
                i += 1
        except Exception as exc:  # pragma: no cover - the failure being tested for
            errors.append(exc)

    threads = [threading.Thread(target=hammer) for _ in range(3)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 0.5
    while time.monotonic() < deadline:
        screen.render()
    stop.set()
    for t in threads:
        t.join()
    assert not errors


# -- guard's status bar -------------------------------------------------------------------------------
def test_status_bar_shows_counts_fps_mqtt_and_trust_age(drawn_text):
    screen = make_screen(size=(1024, 600))
    screen.set_status(KioskStatus(accepted=128, rejected=7, camera_fps=14.8, camera_ok=True,
                                  mqtt_connected=True, clock_synced=True, trust_age_days=3.4))
    screen.render("idle")
    for text in ("128", "7", "Camera 15 fps", "Trực tuyến / Online", "Khóa 3 ngày / Trust 3 d"):
        assert text in drawn_text
    assert not any("đồng bộ" in t for t in drawn_text)


def test_status_bar_warns_the_guard(drawn_text):
    screen = make_screen(size=(1920, 1080), trust_max_age_days=30)
    screen.set_status(KioskStatus(accepted=1, rejected=0, camera_ok=False, mqtt_connected=False,
                                  clock_synced=False, trust_age_days=45, notice="Kiểm tra camera"))
    img = pixels(screen.render("idle"))
    joined = " | ".join(drawn_text)
    assert "Camera lỗi / Camera down" in joined
    assert "Mất kết nối / Offline" in joined
    assert "Giờ chưa đồng bộ / Clock not synced" in joined
    assert "Kiểm tra camera" in joined
    lay = screen._current_layout()
    bar = img[lay.bar[1]:, :]
    assert (bar == np.array(draw.AMBER)).all(axis=2).sum() > 200  # warnings stand out in amber


def test_status_bar_asks_the_system_clock_when_not_told(monkeypatch, drawn_text):
    monkeypatch.setattr(clocksync, "clock_synced", lambda *a, **k: False)
    screen = make_screen(kiosk_config(language="en"), size=(1024, 600))
    screen.set_status(KioskStatus(clock_synced=None))
    screen.render("idle")
    assert "Clock not synced" in drawn_text


def test_status_bar_drops_items_that_do_not_fit_instead_of_overflowing(drawn_text):
    screen = make_screen(size=(480, 800))
    screen.set_status(KioskStatus(accepted=123456, rejected=654321, camera_ok=False, mqtt_connected=False,
                                  clock_synced=False, trust_age_days=400, notice="x" * 200))
    screen.render("idle")
    assert "123456" in drawn_text and "654321" in drawn_text  # the counts always stay
    assert "x" * 200 not in drawn_text


# -- fonts and config ------------------------------------------------------------------------------
def test_font_found_draws_vietnamese():
    files = find_fonts("")
    assert files.regular is not None and draws_vietnamese(files.regular)
    assert draws_vietnamese(files.bold)


@pytest.mark.parametrize("letter,plain", [("ễ", "ê"), ("ặ", "ă"), ("ơ", "o"), ("ư", "u"), ("đ", "d"), ("Đ", "D"),
                                          ("ạ", "a"), ("ỹ", "y")])
def test_the_screens_font_draws_vietnamese_letters_with_their_marks(letter, plain):
    """What a visitor reads: each letter drawn, not the missing-glyph box, and not with its mark dropped."""
    fonts = make_screen().fonts

    def ink(text):
        return pygame.image.tostring(fonts.render(text, 32, (0, 0, 0)), "RGBA")

    assert ink(letter) != ink("\ufdd0")  # a non-character: the font's missing-glyph box
    assert ink(letter) != ink(plain)


def test_a_file_that_is_not_a_font_is_not_taken_for_one(tmp_path):
    junk = tmp_path / "junk.ttf"
    junk.write_bytes(b"not a font at all")
    assert not draws_vietnamese(str(junk))


def test_a_configured_font_without_vietnamese_falls_back_with_a_warning(tmp_path, caplog):
    missing = tmp_path / "nope.ttf"
    with caplog.at_level("WARNING"):
        files = find_fonts(str(missing))
    assert "not found" in caplog.text
    assert draws_vietnamese(files.regular)


def test_screen_accepts_the_section_pair_too():
    cfg = kiosk_config()
    screen = Screen(cfg.screen, cfg.venue, size=(800, 480), headless=True)
    assert zxingcpp.read_barcodes(pixels(screen.render("idle")))[0].text == QR


def test_unknown_state_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown screen state"):
        make_screen().render("dancing")


def test_clock_sync_helper_is_cached(monkeypatch):
    calls = []
    monkeypatch.setattr(clocksync, "_cached", None)
    monkeypatch.setattr(clocksync, "read_clock_synced", lambda: calls.append(1) or True)
    t = FakeClock(0.0)
    assert clocksync.clock_synced(_now=t) is True
    t.advance(10)
    clocksync.clock_synced(_now=t)
    assert len(calls) == 1
    t.advance(21)
    clocksync.clock_synced(_now=t)
    assert len(calls) == 2


def test_clock_sync_reads_the_kernel():
    # On Linux adjtimex always answers; the value depends on the machine, the type does not.
    assert clocksync.read_clock_synced() in (True, False)


def test_the_pipelines_own_checkin_is_shown(drawn_text):
    from datetime import timezone

    from kiosk.door.decide.checkin import Checkin
    from kiosk.door.verify import Holder as CodeHolder

    checkin = Checkin(id="0" * 32, at=datetime.now(timezone.utc), verdict="reject", reason=reasons.REVOKED,
                      format="eu-dcc", valid=False, signed=True, pseudonym="ab" * 32,
                      holder=CodeHolder(name="Phạm Minh Châu", birth_date="1990-01-02", id_number="001090000001"),
                      captured_at=0.0, source="camera")
    screen = make_screen()
    screen.show_checkin(checkin)
    assert dominant(pixels(screen.render())) == draw.RED
    joined = " | ".join(drawn_text)
    assert "Phạm M. C." in drawn_text and "Đã bị thu hồi" in joined and "Revoked" in joined
    assert "1990" not in joined and "001090000001" not in joined  # nothing but the masked name
