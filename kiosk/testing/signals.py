"""A player for :mod:`device.signals` whose patterns move on a clock the test controls.

The kiosk's :class:`device.signals.ThreadPlayer` holds each step of a pattern in a real
thread's wait, so a test that watched the pins had to sleep and allow for a late wake-up
(and was flaky under load). :class:`ClockedPlayer` runs the same steps on a
:class:`~kiosk.testing.clock.FakeClock`: nothing moves until the test calls
:meth:`ClockedPlayer.advance`, which plays every step that falls due, in time order, with
the clock set to the step's time. Every change of an output is written down with that time
in :attr:`ClockedPlayer.changes`, so a test reads exact durations (gpiozero's ``MockPin``
gives the order of the physical pin states; its timestamps are real time).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from device.signals import Output, Steps
from kiosk.testing.clock import FakeClock


@dataclass
class _Running:
    device: Output
    steps: Iterator[tuple[bool, float]]
    due: float
    order: int  # steps due at the same moment play in the order their patterns started


@dataclass(frozen=True)
class Change:
    """An output took ``value`` at ``at`` (the clock's seconds)."""

    at: float
    device: Output
    value: bool


class ClockedPlayer:
    """Plays :mod:`device.signals` patterns on ``clock``'s time (a :class:`device.signals.Player`)."""

    def __init__(self, clock: FakeClock | None = None):
        self.clock = clock if clock is not None else FakeClock()
        self.changes: list[Change] = []
        self._running: dict[int, _Running] = {}
        self._started = 0

    # -- the Player seam --------------------------------------------------------
    def play(self, device: Output, steps: Steps) -> None:
        self._running.pop(id(device), None)
        self._started += 1
        self._running[id(device)] = _Running(device, iter(steps), self.clock(), self._started)
        self._run_until(self.clock())

    def set(self, device: Output, value: bool) -> None:
        self._running.pop(id(device), None)
        self._write(device, value)

    def close(self) -> None:
        self._running.clear()

    # -- for the test -------------------------------------------------------------
    def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass, playing every step that falls due meanwhile."""
        target = self.clock() + seconds
        self._run_until(target)
        self.clock.advance(target - self.clock())

    def times(self, device: Output, since: float = float("-inf")) -> list[float]:
        """When ``device`` changed, from ``since`` on."""
        return [c.at for c in self.changes if c.device is device and c.at >= since]

    @property
    def playing(self) -> int:
        """How many patterns are still running (an endless one, the status LED's, always is)."""
        return len(self._running)

    # -- inside ----------------------------------------------------------------------
    def _run_until(self, target: float) -> None:
        while True:
            due = [r for r in self._running.values() if r.due <= target]
            if not due:
                return
            running = min(due, key=lambda r: (r.due, r.order))
            if running.due > self.clock():
                self.clock.advance(running.due - self.clock())
            step = next(running.steps, None)
            if step is None:
                del self._running[id(running.device)]
                continue
            value, seconds = step
            self._write(running.device, value)
            running.due = self.clock() + seconds

    def _write(self, device: Output, value: bool) -> None:
        before = device.value
        device.on() if value else device.off()
        if device.value != before:
            self.changes.append(Change(self.clock(), device, value))
