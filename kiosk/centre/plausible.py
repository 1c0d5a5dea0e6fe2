"""What one kiosk could have seen: the centre's plausibility limits on signed claims (issue 19.1).

A signature says which kiosk sent a message, not that it is true: a stolen Pi signs whatever its
thief likes with a key the centre trusts. So before a kiosk's own signed message is believed, its
claims are checked against what one kiosk can physically have done, and a message that fails is
refused as ``implausible`` (and the kiosk listed for inspection):

* every time (``ts``, ``last_scan``, an event's ``time``) no later than the centre's clock plus the
  clock skew, and not before :data:`FLOOR` (no kiosk of this system ran before 2020): a far-future
  ``ts`` cannot win the store's newest-first guard for longer than the skew;
* a ``counts`` day no later than the day of its own ``ts`` and no earlier than the day before it (the
  last counts of a day may leave just after midnight; a kiosk offline for days keeps an old day on the
  broker, with an old ``ts`` to match), in the city's time zone (kiosks count by their local day);
* the day's decisions (accepted + rejected + duplicates + overrides) at most ``max_scans_per_minute``
  times the minutes from the day's local midnight to its ``ts`` (plus the skew); each hour of the
  curve at most an hour's worth, the curve's sum at most the day's decisions, nothing in an hour that
  has not begun; ``unique_visitors`` at most accepted + duplicates (a visitor admitted before midnight
  and re-scanned after it is a duplicate today and one of today's visitors); ``seq`` (the kiosk's
  lifetime check-ins) at least the day's decisions and at most the rate times the kiosk's possible
  lifetime (since :data:`FLOOR`), ``dropped_events`` at most ``seq``;
* every health figure finite, an integer where the contract says so, within its range.

A claim that is not even of the contract's type (text where a count belongs) stays ``malformed``;
one of the right type that no kiosk could send (negative, fractional, huge, not finite, out of
range) is ``implausible``. The checks are plain comparisons on values the ingest parsed anyway, and
a day's local midnight is computed once per day string, so they cost little on the hot path
(docs/performance.md). Defaults are far beyond any real venue (a hospital entrance with two lanes
checks in at most about one visitor a second per lane), so a genuine kiosk never meets them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, time as dtime, timedelta
from zoneinfo import ZoneInfo

FLOOR = 1577836800.0  # 2020-01-01T00:00:00Z
MAX_COUNT = 2 ** 53  # JSON's safe integers: the contract's counts and sequence numbers stay below it
DEFAULT_MAX_SCANS_PER_MINUTE = 120.0  # two lanes, a check-in a second each, all day: no venue reaches it
DEFAULT_CLOCK_SKEW_MINUTES = 10.0  # kiosks are NTP-synchronised; a Pi whose clock runs ahead is listed
HOUR_SLACK = 1  # a daylight-saving day's local hours run one ahead of the hours since midnight


class Implausible(Exception):
    """A claim of the contract's type that no real kiosk could make; ``what`` names the field."""

    def __init__(self, what: str):
        super().__init__(what)
        self.what = what


@dataclass(frozen=True)
class Limits:
    """How much one kiosk can do, and how far its clock may run ahead of the centre's."""

    max_scans_per_minute: float = DEFAULT_MAX_SCANS_PER_MINUTE
    clock_skew_minutes: float = DEFAULT_CLOCK_SKEW_MINUTES
    timezone: str = "Asia/Ho_Chi_Minh"
    _days: dict = field(default_factory=dict, repr=False, compare=False)  # day -> (start, end, end of next day)

    def __post_init__(self):
        if not (self.max_scans_per_minute > 0 and math.isfinite(self.max_scans_per_minute)):
            raise ValueError("max_scans_per_minute must be a positive number")
        if not 0 <= self.clock_skew_minutes <= 24 * 60:
            raise ValueError("clock_skew_minutes must be 0-1440")
        ZoneInfo(self.timezone)  # an unknown zone fails here, not on the first message
        # plain attributes, not properties: read on every message
        object.__setattr__(self, "per_second", self.max_scans_per_minute / 60.0)
        object.__setattr__(self, "skew", self.clock_skew_minutes * 60.0)

    def day_bounds(self, day: str) -> tuple[float, float, float]:
        """Epoch seconds of ``day``'s local midnight, of the next one, and of the one after (cached).

        ValueError when ``day`` is not a date (``2021-02-30``): that message is malformed.
        """
        b = self._days.get(day)
        if b is None:
            d = date.fromisoformat(day)
            zone = ZoneInfo(self.timezone)

            def midnight(x: date) -> float:
                return datetime.combine(x, dtime(0), zone).timestamp()

            try:
                b = (midnight(d), midnight(d + timedelta(days=1)), midnight(d + timedelta(days=2)))
            except OverflowError:  # 9999-12-31 has no next day: no kiosk counts it
                raise Implausible("day") from None
            if len(self._days) >= 64:  # a few days are ever current; a flood of odd ones stays bounded
                self._days.clear()
            self._days[day] = b
        return b

    # -- the checks (each raises Implausible naming what failed) --------------------------------
    def when(self, t: float, now: float, what: str) -> float:
        """``t`` itself when it is a time a kiosk could have stamped by ``now``."""
        if not FLOOR <= t <= now + self.skew:
            raise Implausible(what)
        return t

    def counts(self, day: str, figures: list, seq: int, ts: float, scan: float | None, hourly: tuple | None,
               peak: int, now: float) -> None:
        """A ``counts`` message's claims (``figures`` in :data:`kiosk.centre.ingest.COUNT_FIELDS` order; ``peak``:
        the curve's busiest hour, which the ingest found checking the curve's types)."""
        skew = self.skew
        if not FLOOR <= ts <= now + skew:
            raise Implausible("ts")
        start, end, next_end = self._days.get(day) or self.day_bounds(day)
        if not start - skew <= ts < next_end:  # the day of its ts, or the day before
            raise Implausible("day")
        accepted, rejected, duplicates, overrides, unique, dropped = figures
        decisions = accepted + rejected + duplicates + overrides
        elapsed = (ts if ts < end else end) - start + skew
        rate = self.per_second
        if decisions > rate * elapsed:
            raise Implausible("scans")
        if unique > accepted + duplicates:
            raise Implausible("unique_visitors")
        if seq < decisions or seq > rate * (ts - FLOOR + skew):
            raise Implausible("seq")
        if dropped > seq:
            raise Implausible("dropped_events")
        if scan is not None and not (FLOOR <= scan <= now + skew and start - skew <= scan < end + skew):
            raise Implausible("last_scan")
        if hourly is not None:
            begun = int(elapsed // 3600) + HOUR_SLACK  # hours 0..begun may hold check-ins
            if (peak > rate * 3600 or sum(hourly) > decisions
                    or (begun < 23 and any(hourly[begun + 1:]))):
                raise Implausible("hourly")

    def event(self, seq: int, t: float, now: float) -> None:
        skew = self.skew
        if not FLOOR <= t <= now + skew:
            raise Implausible("time")
        if seq > self.per_second * (t - FLOOR + skew):
            raise Implausible("seq")


# health: field -> (integer?, highest); every one at least 0, None allowed where the contract allows null
HEALTH_NUMBERS = {
    "capture_fps": (False, 1000.0), "decode_fps": (False, 1000.0),
    "verdict_latency_p95_ms": (False, 86_400_000.0),  # a day
    "trust_age_days": (False, 3660.0), "trust_age_hours": (False, 87_840.0),  # ten years
    "uptime_s": (True, 315_360_000), "outbox": (True, 10 ** 9), "intake_dropped": (True, 10 ** 9),
    "trust_version": (True, MAX_COUNT - 1), "trace_answered": (True, 10 ** 9), "trace_refused": (True, 10 ** 9),
}
HEALTH_FLAGS = ("camera_ok", "display_ok", "ledger_ok", "gpio_mock", "clock_synced", "trust_stale")


def health_numbers(h: dict) -> dict:
    """The documented health figures of ``h``, checked: ``{field: value or None}``.

    Text or a list where a number belongs is malformed (ValueError); a number that is not finite,
    fractional where an integer belongs, negative or beyond its range is :class:`Implausible`.
    """
    out = {}
    for name, (integer, highest) in HEALTH_NUMBERS.items():
        v = h.get(name)
        if v is None:
            out[name] = None
            continue
        t = type(v)
        if t is not int and t is not float:  # bool is neither
            raise ValueError(name)
        if (integer and t is not int) or not 0 <= v <= highest:  # NaN fails the comparison
            raise Implausible(name)
        out[name] = v
    return out
