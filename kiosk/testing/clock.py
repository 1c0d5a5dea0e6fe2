"""A clock that moves only when the test (or the benchmark) says so.

Pass it wherever the kiosk takes a clock (``clock=`` of the flow, the supervisor, the
intake, the screen, the command gate, the notifier): a test then advances time rather
than sleeping, so it never waits and never flakes. ``sleep`` moves the clock too, for
code that paces itself with an injected ``sleep``.
"""

from __future__ import annotations

from datetime import datetime, timezone


class FakeClock:
    """Seconds (monotonic or wall-clock, as the caller reads them) that move only when told."""

    def __init__(self, t: float = 1000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass."""
        self.t += seconds

    def sleep(self, seconds: float) -> None:
        """A sleep that takes no time: the clock moves on by ``seconds``."""
        self.advance(seconds)

    def utc(self) -> datetime:
        """The clock as an aware UTC datetime (for code that reads the wall clock as a datetime)."""
        return datetime.fromtimestamp(self.t, timezone.utc)
