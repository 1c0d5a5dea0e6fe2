"""The kiosk's display: pick an SDL video driver that works here, full screen, no cursor.

* ``SDL_VIDEODRIVER`` set in the environment wins (tests set ``dummy``).
* A desktop session (``WAYLAND_DISPLAY`` or ``DISPLAY``) uses the desktop's
  driver, as any window would.
* Without a desktop (Raspberry Pi OS Lite, a systemd service on the console)
  the screen is driven directly through KMS/DRM (``kmsdrm``).
* If no driver opens, the kiosk keeps scanning and signalling with an
  off-screen surface, and says so with a WARNING: a dead HDMI cable must not
  stop the door.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from typing import Mapping

log = logging.getLogger(__name__)
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")  # no greeting on stdout / in the journal

FALLBACK = "dummy"
DEFAULT_WINDOW = (800, 480)  # the official 7" touchscreen, when nothing says otherwise


@dataclass
class Display:
    """An open display: the surface to draw on, the driver that opened it, and how to show a frame."""

    surface: object  # pygame.Surface
    driver: str
    fullscreen: bool

    @property
    def size(self) -> tuple[int, int]:
        return self.surface.get_size()

    @property
    def real(self) -> bool:
        """False when nothing is visible (dummy/offscreen driver)."""
        return self.driver not in ("dummy", "offscreen")

    def flip(self) -> None:
        import pygame

        pygame.display.flip()

    def close(self) -> None:
        import pygame

        pygame.display.quit()


def is_raspberry_pi() -> bool:
    """True on a Raspberry Pi (device-tree model), for the log line only."""
    try:
        with open("/proc/device-tree/model", "rb") as f:
            return b"Raspberry Pi" in f.read()
    except OSError:
        return False


def choose_drivers(env: Mapping[str, str] | None = None, platform: str | None = None) -> list[str | None]:
    """SDL video drivers to try, in order; ``None`` is SDL's own choice (the desktop's)."""
    env = os.environ if env is None else env
    platform = sys.platform if platform is None else platform
    explicit = env.get("SDL_VIDEODRIVER", "").strip()
    if explicit:
        return [explicit] if explicit == FALLBACK else [explicit, FALLBACK]
    if platform.startswith("linux") and not (env.get("WAYLAND_DISPLAY") or env.get("DISPLAY")):
        return ["kmsdrm", FALLBACK]
    return [None, FALLBACK]


def _window_size(size: tuple[int, int] | None, fullscreen: bool, driver: str) -> tuple[int, int]:
    if size:
        return size
    if fullscreen and driver not in ("dummy", "offscreen"):
        return (0, 0)  # SDL: the display's own mode
    return DEFAULT_WINDOW


def open_display(size: tuple[int, int] | None = None, fullscreen: bool = True, title: str = "Check-in kiosk",
                 env: Mapping[str, str] | None = None) -> Display:
    """Open the display with the first driver that works; never raises for a missing screen."""
    import pygame

    drivers = choose_drivers(env)
    previous = os.environ.get("SDL_VIDEODRIVER")
    last_error = ""
    for i, driver in enumerate(drivers):
        if driver is None:
            os.environ.pop("SDL_VIDEODRIVER", None)
        else:
            os.environ["SDL_VIDEODRIVER"] = driver
        if driver == FALLBACK and i > 0:
            log.warning("no display could be opened (%s); the screen is NOT shown, drawing off-screen "
                        "(scanning and signals go on)", last_error)
        try:
            pygame.display.init()
            actual = pygame.display.get_driver()
            flags = pygame.FULLSCREEN if fullscreen and actual not in ("dummy", "offscreen") else 0
            surface = pygame.display.set_mode(_window_size(size, fullscreen, actual), flags)
        except pygame.error as exc:
            last_error = f"{driver or 'desktop'}: {exc}"
            if i + 1 < len(drivers):
                log.warning("display driver %s failed (%s); trying %s", driver or "(desktop)", exc,
                            drivers[i + 1] or "(desktop)")
            pygame.display.quit()
            continue
        pygame.display.set_caption(title)
        if fullscreen or actual == "kmsdrm":
            pygame.mouse.set_visible(False)  # a kiosk has no pointer; a touch must not leave an arrow
        log.info("display: %s driver, %dx%d%s%s", actual, *surface.get_size(), " full screen" if flags else "",
                 " (Raspberry Pi)" if is_raspberry_pi() else "")
        return Display(surface=surface, driver=actual, fullscreen=bool(flags))
    if previous is not None:
        os.environ["SDL_VIDEODRIVER"] = previous
    raise RuntimeError(f"no SDL video driver could be opened: {last_error}")
