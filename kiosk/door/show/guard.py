"""What the guard needs to know: the recent verdicts, and which reject the override button would let in.

Kept by the screen from the :meth:`~kiosk.door.show.Screen.show_checkin`
stream alone (no ledger query): each verdict shown is one row. The override
rule is the flow's own (issue 11): the button lets in the last rejected
visitor only within ``[policy] override_window_seconds`` of that reject and
only while no later verdict came in. The screen computes the same from the
stream and an injected monotonic clock, so what the guard reads is what the
button will do.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Callable

from kiosk.door.show import words

if TYPE_CHECKING:
    from kiosk.door.decide.checkin import Checkin

KEEP = 50  # rows kept; the guard screen shows as many as fit (at least 10 on 800x480)


@dataclass(frozen=True)
class Row:
    """One verdict in the guard's list. Only the masked name: the queue can see this screen too."""

    at: datetime  # local wall time of the verdict
    look: str  # kiosk.door.show.words look: accept, reject, duplicate, override, unverified
    reason: str
    name: str
    checkin_id: str


@dataclass(frozen=True)
class OverrideChance:
    """The reject the guard's button would let in now, and for how long it still can."""

    row: Row
    seconds_left: float


class GuardLog:
    """Recent verdicts and the pending override; thread-safe, cheap to update."""

    def __init__(self, window_seconds: float = 60.0, clock: Callable[[], float] | None = None, keep: int = KEEP):
        import time

        self.window_seconds = float(window_seconds)
        self._clock = clock or time.monotonic
        self._rows: deque[Row] = deque(maxlen=keep)
        self._reject: tuple[Row, float] | None = None  # the last verdict, when it was a reject
        self._lock = threading.Lock()

    def add(self, checkin: Checkin | None, look: str, name: str, at: datetime) -> None:
        """One verdict shown: a row, and the override's candidate moves on."""
        row = Row(at=at, look=look, reason=str(checkin.reason) if checkin is not None else "", name=name,
                  checkin_id=str(checkin.id) if checkin is not None else "")
        now = self._clock()
        with self._lock:
            self._rows.appendleft(row)
            # Any later verdict ends the chance to override the earlier reject (an override too).
            self._reject = (row, now) if look == words.REJECT else None

    def rows(self, limit: int | None = None) -> list[Row]:
        """Newest first."""
        with self._lock:
            rows = list(self._rows)
        return rows if limit is None else rows[:limit]

    def override_chance(self) -> OverrideChance | None:
        """The reject the button would let in, or None (none, a later verdict came, or the window passed)."""
        with self._lock:
            pending = self._reject
        if pending is None:
            return None
        row, at = pending
        left = self.window_seconds - (self._clock() - at)
        return OverrideChance(row, left) if left > 0 else None
