"""Is the system clock synchronised? Cheap enough to ask every second (cached).

Code validity periods are checked against the kiosk's clock, so a Pi that
booted without network (no real-time clock) may reject good codes or accept
expired ones; the guard sees a warning instead.

The kernel knows: ``adjtimex()`` returns ``TIME_ERROR`` while no time
daemon (systemd-timesyncd, chrony, ntpd) has disciplined the clock. That is
what ``timedatectl show -p NTPSynchronized`` reports too, without starting
a process or needing D-Bus.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
import time

TIME_ERROR = 5
CACHE_SECONDS = 30.0

_lock = threading.Lock()
_cached: tuple[float, bool | None] | None = None


def clock_state() -> int | None:
    """The kernel's clock state from ``adjtimex`` (0..5; ``TIME_ERROR`` = not synchronised), or None
    where there is no such call. The screen, the health telemetry and ``kiosk doctor`` all ask this."""
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        libc = ctypes.CDLL(name, use_errno=True)
        fn = libc.adjtimex
    except (OSError, AttributeError):
        return None
    # struct timex is ~200 bytes on every ABI; zeroed, ``modes`` = 0 means read-only.
    buf = ctypes.create_string_buffer(512)
    state = fn(buf)
    return None if state < 0 else int(state)


def read_clock_synced() -> bool | None:
    """Ask the kernel now: True synchronised, False not, None unknown (not Linux)."""
    state = clock_state()
    if state is None:
        return None
    return state != TIME_ERROR


def clock_synced(max_age: float = CACHE_SECONDS, _now=time.monotonic) -> bool | None:
    """:func:`read_clock_synced`, cached for ``max_age`` seconds."""
    global _cached
    now = _now()
    with _lock:
        if _cached is not None and now - _cached[0] < max_age:
            return _cached[1]
    value = read_clock_synced()
    with _lock:
        _cached = (now, value)
    return value
