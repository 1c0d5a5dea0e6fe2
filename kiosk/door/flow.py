"""The check-in flow: admit -> record -> signal -> show -> wake, and nothing else.

One visitor's code goes through the desk (verify, policy, duplicate window),
is committed to the ledger *before* anyone is told "accepted", then the
signals, the speaker and the screen give the verdict and the publisher is
woken. Each stage's failure is contained: logged once with the check-in id,
and the next visitor is served. A ledger that cannot write refuses the
check-in (nothing is signalled as accepted) and the supervisor shows the
kiosk out of service until it can write again.

The door: it opens only for :attr:`Checkin.opens_door` (a verified code, or
what ``[policy] unsigned_opens_door`` allows). The guard's override opens it
for the last visitor the door stayed shut for (a reject, a refused duplicate,
an unsigned code), only within ``[policy] override_window_seconds`` of that
verdict and only while no later verdict came in.
"""

from __future__ import annotations

import collections
import logging
import time
from dataclasses import replace
from datetime import datetime, timezone
from typing import Callable

from kiosk.wire import reasons
from kiosk.door.decide.checkin import ACCEPT, Checkin
from kiosk.door.record import LedgerError
from device.scanners import CodeSeen
from kiosk.door.decode.stats import percentile
from kiosk.door.stages import Desk, LedgerStage, ScreenStage, SignalStage, Speaker, Telemetry

log = logging.getLogger(__name__)

#: ``on_checkin(checkin, seq, code)`` after each recorded check-in (the demo's and the tests' window on the flow).
OnCheckin = Callable[[Checkin, int, CodeSeen], None]


class CheckinFlow:
    """Runs on the kiosk's loop thread only; the stages it holds need no locking."""

    def __init__(self, desk: Desk, ledger: LedgerStage, signals: SignalStage, screen: ScreenStage,
                 telemetry: Telemetry, speaker: Speaker, *, override_window_s: float = 60.0,
                 clock: Callable[[], float] = time.monotonic,
                 on_checkin: OnCheckin | None = None):
        self.desk, self.ledger, self.signals, self.screen = desk, ledger, signals, screen
        self.telemetry, self.speaker = telemetry, speaker
        self.override_window_s = override_window_s
        self.clock = clock
        self.on_checkin: OnCheckin = on_checkin or _nobody
        # Recent capture-to-verdict latencies (bounded: the kiosk runs for months).
        self.latencies_ms: collections.deque[float] = collections.deque(maxlen=300)
        self.refused_out_of_service = 0
        self._shut: tuple[Checkin, float] | None = None  # the last verdict that left the door shut, and when

    # -- one visitor ---------------------------------------------------------------------

    def handle(self, code: CodeSeen) -> Checkin | None:
        """Decide on one code, commit it, then signal, show and wake the publisher. Never raises."""
        self._shut = None  # a later verdict: an override can no longer refer to an earlier one
        if not self.ledger.ok:
            self.refused_out_of_service += 1
            log.info("code from %s not checked in: the kiosk is out of service (ledger)", code.source)
            return None
        try:
            checkin = self.desk.admit(code.text, captured_at=code.captured_at, source=code.source)
        except Exception as exc:  # the desk never raises for bad payloads; this would be a bug
            log.error("a code from %s could not be decided (%s: %s); next visitor", code.source,
                      type(exc).__name__, exc, exc_info=True)
            return None
        try:
            seq = self.ledger.record(checkin)  # durable before anyone is told "accepted"
        except LedgerError as exc:
            log.error("check-in %s not recorded (%s): out of service until the ledger writes again", checkin.id, exc)
            return None
        except Exception as exc:
            log.error("check-in %s not recorded (%s: %s)", checkin.id, type(exc).__name__, exc, exc_info=True)
            return None
        self._stage(checkin, "signal", self._signal, checkin)
        self._stage(checkin, "speak", self.speaker.welcome if checkin.opens_door else self.speaker.see_guard)
        self._stage(checkin, "show", self.screen.show_checkin, checkin)
        self._stage(checkin, "wake", self.telemetry.wake)
        if checkin.needs_guard:
            self._shut = (checkin, self.clock())
        latency = (self.clock() - checkin.captured_at) * 1000
        self.latencies_ms.append(latency)
        log.info("check-in %s #%s: %s %s (%s%s%s) %.0f ms", checkin.id, seq, checkin.verdict, checkin.reason,
                 checkin.format, "" if checkin.signed else ", unsigned",
                 "" if checkin.opens_door else ", door shut", latency)
        self._stage(checkin, "on_checkin", self.on_checkin, checkin, seq, code)
        return checkin

    def _signal(self, checkin: Checkin) -> None:
        if checkin.duplicate:
            # A refused duplicate keeps the door shut; so does an unsigned code by default.
            self.signals.duplicate(admitted=checkin.verdict == ACCEPT, open_door=checkin.opens_door)
        elif checkin.verdict == ACCEPT:
            self.signals.accept(open_door=checkin.opens_door)
        else:
            self.signals.reject()

    @staticmethod
    def _stage(checkin: Checkin, name: str, fn: Callable[..., object], *args: object) -> None:
        try:
            fn(*args)
        except Exception as exc:  # contained: the check-in is recorded, the next visitor must be served
            log.error("check-in %s: %s stage failed (%s: %s)", checkin.id, name, type(exc).__name__, exc,
                      exc_info=log.isEnabledFor(logging.DEBUG))

    # -- the guard's button --------------------------------------------------------------

    def override(self, pressed_at: float | None = None) -> bool:
        """Let in the visitor the door last stayed shut for, if recent enough; True when the door opened."""
        pressed_at = self.clock() if pressed_at is None else pressed_at
        shut = self._shut
        if shut is None:
            log.info("override pressed, but no visitor is waiting at the shut door (or a later verdict came in)")
            return False
        refused, at = shut
        if pressed_at - at > self.override_window_s:
            self._shut = None
            log.info("override pressed %.0f s after check-in %s (limit %.0f s): ignored", pressed_at - at,
                     refused.id, self.override_window_s)
            return False
        if not self.ledger.ok:
            log.warning("override pressed while out of service: not recorded, the door stays shut")
            return False
        self._shut = None
        try:
            self.ledger.record_override(source="button")
        except LedgerError as exc:
            log.error("override of check-in %s not recorded (%s): the door stays shut", refused.id, exc)
            return False
        shown = _as_override(refused)
        self._stage(shown, "signal", self.signals.override)
        self._stage(shown, "speak", self.speaker.welcome)
        self._stage(shown, "show", self.screen.show_checkin, shown)
        self._stage(shown, "wake", self.telemetry.wake)
        log.info("guard override of check-in %s (%s)", refused.id, refused.reason)
        return True

    # -- figures -----------------------------------------------------------------------------

    def verdict_latency_p95_ms(self) -> float | None:
        """95th percentile of recent capture-to-verdict times (None before the first visitor)."""
        return percentile(list(self.latencies_ms), 95) if self.latencies_ms else None


def _nobody(checkin: Checkin, seq: int, code: CodeSeen) -> None:
    """No one watches the flow (the running kiosk): the null ``on_checkin``."""


def _as_override(c: Checkin) -> Checkin:
    return replace(c, verdict=ACCEPT, reason=reasons.OVERRIDE, at=datetime.now(timezone.utc), opens_door=True)
