"""Stand-ins for the door's seams that record what they were told, or report what the test sets.

Like gpiozero's ``MockPin``: the fakes are first-class code, built to the same seams as the
real stages (:mod:`kiosk.door.stages`, :class:`kiosk.door.systemd.Notify`), so a test drives
the kiosk through its real supervisor and flow and asserts on what these recorded.
"""

from __future__ import annotations

import time
from typing import Callable

from kiosk.door.decode.stats import ScanStats
from kiosk.door.stages import NullCamera


class RecordingNotifier:
    """Stands in for systemd's notify socket: records READY, the watchdog pings and STATUS lines."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self.pings: list[float] = []
        self.ready_at: float | None = None
        self.statuses: list[str] = []
        self.stopped = False

    def ready(self, status: str = "") -> bool:
        self.ready_at = self.clock()
        return True

    def ping(self) -> bool:
        self.pings.append(self.clock())
        return True

    def status(self, text: str) -> bool:
        self.statuses.append(text)
        return True

    def stopping(self, status: str = "") -> bool:
        self.stopped = True
        return True


class FakeCamera(NullCamera):
    """A camera stage whose frame counters the test drives (what a hung driver or decoder looks like).

    Started, stopped and never exhausted like the null camera, but present, with the figures the test sets.
    """

    present = True

    def __init__(self, fps: float = 30.0):
        self.captured = self.decoded = 0
        self.fps = fps

    def stats(self) -> ScanStats:
        return ScanStats(capture_fps=self.fps, decode_fps=self.fps, latency_p95_ms=5.0, camera_ok=True,
                         camera_error="", frames_captured=self.captured, frames_decoded=self.decoded)
