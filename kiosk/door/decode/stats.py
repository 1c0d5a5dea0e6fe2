"""Scan statistics for the screen and telemetry: frame rates, capture-to-decode latency, drops."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class ScanStats:
    """A snapshot of the camera pipeline's health.

    ``latency_p95_ms`` is from the frame's capture to its decode result (the
    verdict follows within the main loop's tick); ``lag_frames_max`` is how
    many newer frames had been captured by the time the slowest recent frame
    was decoded (0 or 1 = decoding keeps up).
    """

    capture_fps: float
    decode_fps: float
    latency_p95_ms: float
    camera_ok: bool
    camera_error: str
    frames_captured: int = 0
    frames_decoded: int = 0
    frames_dropped: int = 0
    lag_frames_max: int = 0
    latency_mean_ms: float = 0.0


class RateMeter:
    """Events per second over a sliding window (safe across threads)."""

    def __init__(self, window_s: float = 2.0):
        self.window_s = window_s
        self._times: deque[float] = deque(maxlen=1024)
        self._lock = threading.Lock()

    def tick(self, t: float | None = None) -> None:
        with self._lock:
            self._times.append(time.monotonic() if t is None else t)

    def rate(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        with self._lock:
            recent = [t for t in self._times if now - t <= self.window_s]
        if len(recent) < 2:
            return 0.0
        span = recent[-1] - recent[0]
        # A stream that stopped shows 0, not the rate it had before it stopped.
        if now - recent[-1] > 2 * (span / (len(recent) - 1)) + 0.5:
            return 0.0
        return (len(recent) - 1) / span if span > 0 else 0.0


class Window:
    """The last ``size`` samples of a measurement, for percentiles."""

    def __init__(self, size: int = 300):
        self._values: deque[float] = deque(maxlen=size)
        self._lock = threading.Lock()

    def add(self, value: float) -> None:
        with self._lock:
            self._values.append(value)

    def values(self) -> list[float]:
        with self._lock:
            return list(self._values)

    def percentile(self, q: float) -> float:
        return percentile(self.values(), q)

    def mean(self) -> float:
        v = self.values()
        return sum(v) / len(v) if v else 0.0


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0..100) by linear interpolation; 0.0 for no values."""
    if not values:
        return 0.0
    v = sorted(values)
    k = (len(v) - 1) * q / 100.0
    lo = int(k)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)
