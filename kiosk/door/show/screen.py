"""The kiosk screen: the latest state in, at most ``[screen] fps`` frames out.

Setters (:meth:`Screen.show_checkin`, :meth:`Screen.set_status`,
:meth:`Screen.set_preview`) only swap references under a lock, so the decode
thread and the pipeline never wait for drawing. :meth:`Screen.tick`, called
from the main loop, draws from the newest state when something changed (or
the clock moved), and at most ``fps`` times a second.

What is on screen at a moment:

* "out of service" while the ledger cannot write (``KioskStatus.ledger_ok``
  False): visitors are sent to the guard, as no check-in can be recorded;
* a verdict for ``verdict_seconds`` after :meth:`show_checkin`;
* the guard's screen (recent verdicts, the pending override) while the guard
  has it open (:meth:`toggle_guard`, a tap on the status bar);
* otherwise the live camera preview while a code was located in it within
  the last ``live_seconds`` (visitors see where to aim);
* otherwise the idle screen with the venue QR code.

The guard's status bar stays at the bottom of all of them.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime
from typing import TYPE_CHECKING, Callable, Sequence

from device import clock
from kiosk.door.show import draw, guard_view, layout, venue_qr, words
from kiosk.door.show.fonts import Fonts, find_fonts
from kiosk.door.show.guard import GuardLog
from kiosk.door.show.names import mask_name, shown_name
from kiosk.door.show.status import KioskStatus
from kiosk.config import PolicyConfig, ScreenConfig, VenueConfig
from kiosk.door.show.words import verdict_look

if TYPE_CHECKING:  # annotations only: the frames and decoders pull numpy in
    import numpy
    from device.frames import Frame
    from kiosk.door.decide.checkin import Checkin
    from kiosk.door.decode.decoders import Decoded

log = logging.getLogger(__name__)

STATES = ("idle", "live", "verdict", "guard", "out-of-service")
LOOK_STATES = ("accept", "reject", "duplicate", "duplicate-refused", "override", "unverified")


_GREY_PALETTE = [(i, i, i) for i in range(256)]


def _preview_surface(image):
    """A pygame surface from a camera image (grey HxW or BGR HxWx3 uint8 numpy array).

    Zero-copy where pygame can read the array as it is (8-bit palette for
    grey, "BGR" for colour, pygame >= 2.1.3); otherwise one numpy conversion
    to RGB (grey on pygame 2.1.2, which refuses palettes without a display).
    """
    import numpy as np
    import pygame

    h, w = image.shape[:2]
    image = np.ascontiguousarray(image, dtype=np.uint8)
    if image.ndim == 2:
        surface = pygame.image.frombuffer(image, (w, h), "P")
        try:
            surface.set_palette(_GREY_PALETTE)
            return surface
        except pygame.error:  # pygame 2.1.2 (Bookworm): no palettes before the display is initialised
            rgb = np.ascontiguousarray(np.repeat(image[:, :, None], 3, axis=2))
            return pygame.image.frombuffer(rgb.tobytes(), (w, h), "RGB")
    image = np.ascontiguousarray(image[:, :, :3])
    try:
        return pygame.image.frombuffer(image, (w, h), "BGR")
    except ValueError:  # pygame before 2.1.3 knows no "BGR"
        return pygame.image.frombuffer(np.ascontiguousarray(image[:, :, ::-1]).tobytes(), (w, h), "RGB")


class Screen:
    """The pygame kiosk screen, built from its sections: ``Screen(cfg.screen, cfg.venue, policy=cfg.policy)``.

    ``headless=True`` draws into an off-screen surface of ``size`` and never
    touches the display (``kiosk screenshot``, tests). ``policy`` (the
    ``[policy]`` section; taken from the whole config) says whether unsigned
    codes open the door and how long the guard's override lasts.
    ``clock`` (monotonic) times the screens and the override window;
    ``wallclock`` gives the time shown.
    """

    def __init__(self, config: ScreenConfig, venue: VenueConfig, *, size: tuple[int, int] | None = None,
                 headless: bool = False, trust_max_age_days: float | None = None, policy: PolicyConfig | None = None,
                 clock: Callable[[], float] = time.monotonic, wallclock: Callable[[], datetime] = datetime.now):
        import pygame

        self.config, self.venue = config, venue
        self.trust_max_age_days = trust_max_age_days
        self._clock, self._wallclock = clock, wallclock
        self._lock = threading.Lock()
        self._checkin: Checkin | None = None
        self._checkin_at = -1e9
        self._status = KioskStatus()
        self._preview_image: numpy.ndarray | None = None
        self._preview_corners: tuple = ()
        self._code_seen_at = -1e9
        self._version = 0  # bumped by every setter: "something to draw"
        self._drawn: tuple | None = None
        self._last_draw = -1e9
        self._closed = False
        self.unsigned_opens_door = policy.unsigned_opens_door if policy is not None else False
        self.guard_log = GuardLog(policy.override_window_seconds if policy is not None else 60.0, clock=clock)
        self._guard_until = -1e9  # the guard's screen is open until then (monotonic)
        self.last_drawn: list = []  # (role, text, size, rect) of the last verdict or guard screen's lines
        self.fonts = Fonts(find_fonts(config.font))
        if size is None and config.size != "auto":
            size = layout.parse_size(config.size)
        self.display = None
        if headless:
            self.surface = pygame.Surface(size or (800, 480))
        else:
            from device.display import open_display

            self.display = open_display(size=size, fullscreen=config.fullscreen)
            self.surface = self.display.surface
        self._layout: layout.Layout | None = None
        self._qr_image = None

    # -- state setters: cheap, any thread ------------------------------------------
    def show_checkin(self, checkin: Checkin | None) -> None:
        """Show this check-in's verdict now, for ``verdict_seconds``; it also goes into the guard's list."""
        look = verdict_look(checkin, self.unsigned_opens_door)
        holder = checkin.holder if checkin is not None else None
        # The guard's list is on a screen the queue can see: masked at most, never the full name.
        name = "" if self.config.show_name == "none" else mask_name(holder.name if holder is not None else None)
        at = checkin.at if checkin is not None else None
        at = at.astimezone() if isinstance(at, datetime) and at.tzinfo else self._wallclock()
        self.guard_log.add(checkin, look, name, at)
        with self._lock:
            self._checkin, self._checkin_at = checkin, self._clock()
            self._version += 1

    def toggle_guard(self) -> bool:
        """Open the guard's screen (recent verdicts, the pending override), or close it; True when now open."""
        now = self._clock()
        with self._lock:
            opening = now >= self._guard_until
            self._guard_until = now + guard_view.GUARD_SECONDS if opening else -1e9
            self._version += 1
        return opening

    def set_status(self, status: KioskStatus) -> None:
        """New figures for the guard's status bar."""
        with self._lock:
            if status != self._status:
                self._status = status
                self._version += 1

    def set_preview(self, frame: Frame, decoded: Sequence[Decoded] = ()) -> None:
        """The newest camera frame and what was located in it (``Scanner``'s ``on_frame``).

        Only references are kept; the conversion to pixels happens in
        :meth:`tick`, and only when the preview is on screen.
        """
        image = frame.image
        corners = tuple(tuple(d.corners) for d in decoded if d.corners)
        now = self._clock()
        with self._lock:
            self._preview_image, self._preview_corners = image, corners
            if decoded:
                self._code_seen_at = now
            if now - self._code_seen_at < self._live_seconds():
                self._version += 1

    # -- drawing ----------------------------------------------------------------------------
    def _live_seconds(self) -> float:
        return float(self.config.live_seconds)

    def state(self, now: float | None = None) -> str:
        """What is on screen now: ``out-of-service``, ``verdict``, ``guard``, ``live`` or ``idle``."""
        now = self._clock() if now is None else now
        with self._lock:
            guard_open = now < self._guard_until
            if not self._status.ledger_ok:
                return "guard" if guard_open else "out-of-service"
            if self._checkin is not None and now - self._checkin_at < self.config.verdict_seconds:
                return "verdict"
            if guard_open:
                return "guard"
            if self._preview_image is not None and now - self._code_seen_at < self._live_seconds():
                return "live"
        return "idle"

    def _current_layout(self) -> layout.Layout:
        size = self.surface.get_size()
        if self._layout is None or (self._layout.width, self._layout.height) != size:
            self._layout = layout.compute(size, self.venue.qr_content)
            self._qr_image = venue_qr.qr_surface(self.venue.qr_content, self._layout.qr_module_px)
            if self._layout.qr_module_px < venue_qr.MIN_MODULE_PX:
                log.warning("venue QR is only %d px per module on %dx%d (want >= %d): shorten [venue] qr_content "
                            "or use a bigger screen", self._layout.qr_module_px, *size, venue_qr.MIN_MODULE_PX)
        return self._layout

    def render(self, state: str | None = None):
        """Draw ``state`` (one of :data:`STATES`; accept/reject/... mean verdict) from the current data.

        ``None`` draws what :meth:`state` says is on screen now. Returns the surface drawn on.
        """
        if state in LOOK_STATES:
            state = "verdict"
        state = state or self.state()
        if state not in STATES:
            raise ValueError(f"unknown screen state {state!r} (known: {', '.join(STATES)})")
        with self._lock:
            checkin, status = self._checkin, self._status
            image, corners = self._preview_image, self._preview_corners
        lay = self._current_layout()
        now = self._wallclock()
        surface = self.surface
        language = self.venue.language
        trace: list = []
        chance = self.guard_log.override_chance()
        if state == "out-of-service":
            draw.verdict(surface, lay, self.fonts, words.OUT_OF_SERVICE,
                         words.verdict_blocks(words.OUT_OF_SERVICE, "", "", language), trace)
        elif state == "guard":
            guard_view.guard(surface, lay, self.fonts, self.guard_log.rows(), chance, language, trace)
        elif state == "verdict" and checkin is not None:
            holder = checkin.holder
            name = shown_name(holder.name if holder is not None else None, self.config.show_name)
            look = verdict_look(checkin, self.unsigned_opens_door)
            facts = checkin.facts  # the check's facts the verdict names (the expiry date)
            draw.verdict(surface, lay, self.fonts, look,
                         words.verdict_blocks(look, str(checkin.reason), name, language, facts), trace)
        elif state == "live":
            preview = _preview_surface(image) if image is not None else None
            draw.live(surface, lay, self.fonts, self.venue, preview, corners)
        else:
            draw.idle(surface, lay, self.fonts, self.venue, self._qr_image, now)
        clock_ok = status.clock_synced if status.clock_synced is not None else clock.clock_synced()
        draw.status_bar(surface, lay, self.fonts, status, clock_ok, self.trust_max_age_days, language, now, chance)
        self.last_drawn = trace
        return surface

    def tick(self) -> bool:
        """Draw if due (at most ``fps`` a second, only on change or a new minute/second); False if the window closed."""
        if self._closed:
            return False
        if self.display is not None:
            import pygame

            for event in pygame.event.get():
                if event.type == pygame.QUIT:
                    return False
                if self._is_guard_tap(event):
                    self.toggle_guard()
                # Escape quits a windowed (development) kiosk only: a full-screen kiosk has no keyboard user.
                if event.type == pygame.KEYDOWN and event.key == pygame.K_ESCAPE and not self.display.fullscreen:
                    return False
        now = self._clock()
        if now - self._last_draw < 1.0 / max(1, self.config.fps):
            return True
        state = self.state(now)
        with self._lock:
            version = self._version
        key = (state, version, int(self._wallclock().timestamp()))
        if key == self._drawn:
            return True
        self._drawn, self._last_draw = key, now
        self.render(state)
        if self.display is not None:
            self.display.flip()
        return True

    def _is_guard_tap(self, event) -> bool:
        """A tap or click on the status bar, or G on a keyboard: the guard opens or closes their screen."""
        import pygame

        w, h = self.surface.get_size()
        bar_top = self._current_layout().bar[1]
        if event.type == pygame.MOUSEBUTTONDOWN:
            return event.pos[1] >= bar_top
        if event.type == getattr(pygame, "FINGERDOWN", -1):  # touch: coordinates are 0..1
            return event.y * h >= bar_top
        return event.type == pygame.KEYDOWN and event.key == pygame.K_g

    def close(self) -> None:
        """Release the display. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self.display is not None:
            self.display.close()
