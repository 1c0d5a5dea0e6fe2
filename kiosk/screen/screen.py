"""The kiosk screen: the latest state in, at most ``[screen] fps`` frames out.

Setters (:meth:`Screen.show_checkin`, :meth:`Screen.set_status`,
:meth:`Screen.set_preview`) only swap references under a lock, so the decode
thread and the pipeline never wait for drawing. :meth:`Screen.tick`, called
from the main loop, draws from the newest state when something changed (or
the clock moved), and at most ``fps`` times a second.

What is on screen at a moment:

* a verdict for ``verdict_seconds`` after :meth:`show_checkin`;
* otherwise the live camera preview while a code was located in it within
  the last ``live_seconds`` (visitors see where to aim);
* otherwise the idle screen with the venue QR code.

The guard's status bar stays at the bottom of all three.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime
from typing import Any, Callable, Sequence

from kiosk import reasons
from kiosk import clock
from kiosk.screen import draw, layout, venue_qr
from kiosk.screen.fonts import Fonts, find_fonts
from kiosk.screen.names import shown_name
from kiosk.screen.status import KioskStatus

log = logging.getLogger(__name__)

STATES = ("idle", "live", "verdict")


def verdict_look(checkin: Any) -> str:
    """accept / reject / duplicate / override: which verdict screen a check-in gets.

    A duplicate the venue refuses (``duplicates_accepted = false``) gets the
    reject screen, with "Already checked in" as its reason: colour and shape
    always match whether the door opens.
    """
    if getattr(checkin, "verdict", "") != "accept":
        return "reject"
    if getattr(checkin, "duplicate", False) or getattr(checkin, "reason", "") == reasons.DUPLICATE:
        return "duplicate"
    return "override" if getattr(checkin, "reason", "") == reasons.OVERRIDE else "accept"


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
    """The pygame kiosk screen. ``Screen(cfg)`` with the whole config, or ``Screen(cfg.screen, cfg.venue)``.

    ``headless=True`` draws into an off-screen surface of ``size`` and never
    touches the display (``kiosk screenshot``, tests).
    """

    def __init__(self, config: Any, venue: Any = None, *, size: tuple[int, int] | None = None,
                 headless: bool = False, trust_max_age_days: float | None = None,
                 clock: Callable[[], float] = time.monotonic, wallclock: Callable[[], datetime] = datetime.now):
        import pygame

        if hasattr(config, "screen"):  # the whole Config
            trust_max_age_days = trust_max_age_days if trust_max_age_days is not None else config.trust.max_age_days
            venue = venue or config.venue
            config = config.screen
        if venue is None:
            raise ValueError("Screen needs the venue ([venue] section)")
        self.config, self.venue = config, venue
        self.trust_max_age_days = trust_max_age_days
        self._clock, self._wallclock = clock, wallclock
        self._lock = threading.Lock()
        self._checkin: Any = None
        self._checkin_at = -1e9
        self._status = KioskStatus()
        self._preview_image: Any = None
        self._preview_corners: tuple = ()
        self._code_seen_at = -1e9
        self._version = 0  # bumped by every setter: "something to draw"
        self._drawn: tuple | None = None
        self._last_draw = -1e9
        self._closed = False
        self.fonts = Fonts(find_fonts(getattr(config, "font", "")))
        if size is None and getattr(config, "size", "auto") != "auto":
            size = layout.parse_size(config.size)
        self.display = None
        if headless:
            self.surface = pygame.Surface(size or (800, 480))
        else:
            from device.display import open_display

            self.display = open_display(size=size, fullscreen=getattr(config, "fullscreen", True))
            self.surface = self.display.surface
        self._layout: layout.Layout | None = None
        self._qr_image = None

    # -- state setters: cheap, any thread ------------------------------------------
    def show_checkin(self, checkin: Any) -> None:
        """Show this check-in's verdict now, for ``verdict_seconds``."""
        with self._lock:
            self._checkin, self._checkin_at = checkin, self._clock()
            self._version += 1

    def set_status(self, status: KioskStatus) -> None:
        """New figures for the guard's status bar."""
        with self._lock:
            if status != self._status:
                self._status = status
                self._version += 1

    def set_preview(self, frame: Any, decoded: Sequence[Any] = ()) -> None:
        """The newest camera frame and what was located in it (``Scanner``'s ``on_frame``).

        Only references are kept; the conversion to pixels happens in
        :meth:`tick`, and only when the preview is on screen.
        """
        image = getattr(frame, "image", frame)
        corners = tuple(tuple(d.corners) for d in decoded if getattr(d, "corners", None))
        now = self._clock()
        with self._lock:
            self._preview_image, self._preview_corners = image, corners
            if decoded:
                self._code_seen_at = now
            if now - self._code_seen_at < self._live_seconds():
                self._version += 1

    # -- drawing ----------------------------------------------------------------------------
    def _live_seconds(self) -> float:
        return float(getattr(self.config, "live_seconds", 1.5))

    def state(self, now: float | None = None) -> str:
        """What is on screen now: ``verdict``, ``live`` or ``idle``."""
        now = self._clock() if now is None else now
        with self._lock:
            if self._checkin is not None and now - self._checkin_at < self.config.verdict_seconds:
                return "verdict"
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
        """Draw ``state`` (idle, live, verdict; accept/reject/duplicate mean verdict) from the current data.

        ``None`` draws what :meth:`state` says is on screen now. Returns the surface drawn on.
        """
        if state in ("accept", "reject", "duplicate", "override"):
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
        if state == "verdict" and checkin is not None:
            holder = getattr(checkin, "holder", None)
            name = shown_name(getattr(holder, "name", None), getattr(self.config, "show_name", "masked"))
            draw.verdict(surface, lay, self.fonts, verdict_look(checkin), checkin.reason, name, self.venue.language)
        elif state == "live":
            preview = _preview_surface(image) if image is not None else None
            draw.live(surface, lay, self.fonts, self.venue, preview, corners)
        else:
            draw.idle(surface, lay, self.fonts, self.venue, self._qr_image, now)
        clock_ok = status.clock_synced if status.clock_synced is not None else clock.clock_synced()
        draw.status_bar(surface, lay, self.fonts, status, clock_ok, self.trust_max_age_days, self.venue.language, now)
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

    def close(self) -> None:
        """Release the display. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self.display is not None:
            self.display.close()
