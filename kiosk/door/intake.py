"""The intake: scanned codes waiting for the check-in flow, bounded so that memory stays flat.

Camera codes are dropped when ``[camera] intake_max`` of them already wait
(counted per day and published in health as ``intake_dropped``): the visitor
is simply read again once the flow catches up. Lines from a USB scanner are
never dropped: the scanner's reader thread waits for room instead (the
scanner buffers the next lines itself). A guard's override press goes first.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from dataclasses import dataclass
from datetime import date
from typing import Callable

from device.scanners import CodeSeen

log = logging.getLogger(__name__)

SCANNER_MAX = 32  # USB scanner lines waiting before the reader thread blocks
URGENT_MAX = 8  # override presses waiting (a bouncing button cannot fill memory)


@dataclass(frozen=True)
class OverridePress:
    """The guard pressed the override button at monotonic time ``at``."""

    at: float


class Intake:
    """A bounded FIFO of scanned codes (:class:`device.scanners.CodeSeen`) and override presses."""

    def __init__(self, camera_max: int = 64, scanner_max: int = SCANNER_MAX, clock: Callable[[], float] = time.monotonic,
                 today: Callable[[], str] = lambda: date.today().isoformat()):
        self.camera_max, self.scanner_max = int(camera_max), int(scanner_max)
        self.clock, self.today = clock, today
        self._items: collections.deque[tuple[str, CodeSeen]] = collections.deque()
        self._urgent: collections.deque[OverridePress] = collections.deque()
        self._waiting = {"camera": 0, "scanner": 0}
        self._cond = threading.Condition()
        self._closed = False
        self._dropped_day = ""
        self._dropped_today = 0
        self.dropped_total = 0
        self._drop_logged_at = float("-inf")

    # -- producers (scanner threads, gpiozero's thread) ------------------------------------

    def camera(self, code: CodeSeen) -> bool:
        """A camera code: queued, or dropped (and counted) when ``camera_max`` already wait. Never blocks."""
        with self._cond:
            if self._waiting["camera"] >= self.camera_max:
                self._count_drop()
                return False
            self._waiting["camera"] += 1
            self._items.append(("camera", code))
            self._cond.notify_all()
        return True

    def scanner(self, code: CodeSeen, timeout: float | None = None) -> bool:
        """A USB scanner line: never dropped; waits while ``scanner_max`` lines wait. False only when closed
        (or after ``timeout``)."""
        deadline = None if timeout is None else self.clock() + timeout
        with self._cond:
            while self._waiting["scanner"] >= self.scanner_max and not self._closed:
                left = None if deadline is None else deadline - self.clock()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(0.5 if left is None else min(left, 0.5))
            if self._closed:
                return False
            self._waiting["scanner"] += 1
            self._items.append(("scanner", code))
            self._cond.notify_all()
        return True

    def urgent(self, item: OverridePress) -> bool:
        """An override press: handled before any waiting code."""
        with self._cond:
            if len(self._urgent) >= URGENT_MAX:
                return False
            self._urgent.append(item)
            self._cond.notify_all()
        return True

    def put(self, code: CodeSeen) -> bool:
        """Route a code by its ``source``: ``camera`` may be dropped, anything else waits."""
        if code.source == "camera":
            return self.camera(code)
        return self.scanner(code)

    # -- the consumer (the flow's loop) ----------------------------------------------------

    def get(self, timeout: float = 0.0) -> CodeSeen | OverridePress | None:
        """The next item (override presses first), or None after ``timeout`` seconds with nothing."""
        with self._cond:
            if not self._urgent and not self._items and timeout > 0:
                self._cond.wait(timeout)
            if self._urgent:
                return self._urgent.popleft()
            if not self._items:
                return None
            kind, code = self._items.popleft()
            self._waiting[kind] -= 1
            self._cond.notify_all()  # room for a waiting scanner line
            return code

    def empty(self) -> bool:
        with self._cond:
            return not self._items and not self._urgent

    def __len__(self) -> int:
        with self._cond:
            return len(self._items) + len(self._urgent)

    def dropped_today(self) -> int:
        """Camera codes dropped today because the intake was full."""
        with self._cond:
            if self._dropped_day != self.today():
                return 0
            return self._dropped_today

    def close(self) -> None:
        """Wake every waiting producer; later scanner lines are refused."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def _count_drop(self) -> None:
        day = self.today()
        if day != self._dropped_day:
            self._dropped_day, self._dropped_today = day, 0
        self._dropped_today += 1
        self.dropped_total += 1
        now = self.clock()
        if now - self._drop_logged_at > 60:  # once a minute, not once per frame
            self._drop_logged_at = now
            log.warning("intake full (%d camera codes waiting): dropping new camera codes (counted in health "
                        "intake_dropped); the visitor is read again", self.camera_max)
