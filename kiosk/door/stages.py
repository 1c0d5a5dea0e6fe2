"""The seams of the check-in flow: one small typed interface per stage, the null ones, and the built set.

Like gpiozero's devices, the flow knows each stage only through these
Protocols; an absent stage is a null object (:class:`NullScreen`,
:class:`NullCamera`, :class:`NullSpeaker`, and the publisher's
:class:`kiosk.door.publish.base.NullTelemetry`), never ``None``, so the flow
has no "is it there" branches. :class:`ContainedScreen` wraps the real screen
so that nothing a visitor shows (a NUL in a signed name, say) can stop the
loop inside pygame. :class:`Stages` is what :mod:`kiosk.door.assembly` builds.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Callable, Protocol, Sequence, runtime_checkable

from kiosk.door.decide.checkin import Checkin
from kiosk.door.decode.stats import ScanStats
from kiosk.door.publish.base import Telemetry
from kiosk.door.show.status import KioskStatus
from kiosk.trust.bundle import TrustKeeper

if TYPE_CHECKING:  # for annotations only: the screen module pulls in pygame, the decoders numpy
    from device.frames import Frame
    from kiosk.door.decode.decoders import Decoded
    from kiosk.door.show.screen import Screen

log = logging.getLogger(__name__)

__all__ = ["Background", "CameraStage", "CodeScanner", "ContainedScreen", "Desk", "LedgerStage", "NullCamera", "NullScreen",
           "NullSpeaker", "ScreenStage", "Service", "SignalStage", "Speaker", "Stages", "Telemetry"]


@runtime_checkable
class Desk(Protocol):
    """Verify, apply the venue policy and the duplicate window: :class:`kiosk.door.decide.checkin.CheckinDesk`."""

    def admit(self, text: str, captured_at: float, source: str = "camera", now: datetime | None = None) -> Checkin: ...


@runtime_checkable
class LedgerStage(Protocol):
    """Record (durably, before the signal) and read the day's figures: :class:`kiosk.door.record.LedgerKeeper`."""

    @property
    def ok(self) -> bool: ...
    def record(self, checkin: Checkin) -> int: ...
    def record_override(self, at: datetime | None = None, id: str | None = None, source: str = "button") -> int: ...
    def recently_admitted(self, pseudonym: str, at: datetime) -> bool: ...
    def counts(self, day: str | date | None = None) -> dict[str, object]: ...
    def outbox_size(self) -> int: ...
    def retry(self) -> bool: ...
    def close(self) -> None: ...


@runtime_checkable
class SignalStage(Protocol):
    """LEDs, buzzer, door relay, guard button: :class:`device.signals.Signals`. Never blocks."""

    on_override: Callable[[], None] | None
    mock: bool  # gpiozero fell back to mock pins: health says "gpio-mock"

    def accept(self, open_door: bool = True) -> None: ...
    def reject(self) -> None: ...
    def duplicate(self, admitted: bool = True, open_door: bool | None = None) -> None: ...
    def override(self) -> None: ...
    def set_health(self, ok: bool) -> None: ...
    def set_in_service(self, ok: bool) -> None: ...
    def close(self) -> None: ...


@runtime_checkable
class ScreenStage(Protocol):
    """What the visitor and the guard see: :class:`kiosk.door.show.Screen` (inside :class:`ContainedScreen`)."""

    @property
    def display_ok(self) -> bool: ...
    def show_checkin(self, checkin: Checkin | None) -> None: ...
    def set_status(self, status: KioskStatus) -> None: ...
    def set_preview(self, frame: Frame, decoded: Sequence[Decoded] = ()) -> None: ...
    def tick(self) -> bool: ...
    def close(self) -> None: ...


@runtime_checkable
class Speaker(Protocol):
    """Spoken verdicts (contract 10: ``device.audio``): never blocking."""

    def welcome(self) -> None: ...
    def see_guard(self) -> None: ...
    def close(self) -> None: ...


@runtime_checkable
class Background(Protocol):
    """Something that runs beside the loop, started and stopped with the kiosk."""

    def start(self) -> None: ...
    def stop(self) -> None: ...


@runtime_checkable
class CameraStage(Background, Protocol):
    """The camera's scanner threads: :class:`kiosk.door.decode.Scanner`."""

    present: bool  # False for "no camera": liveness and READY do not wait for frames

    def wait(self, timeout: float | None = None) -> bool: ...
    def stats(self) -> ScanStats: ...


class CodeScanner(Background, Protocol):
    """A dedicated USB code scanner beside the camera (:mod:`device.scanners`): its lines go to the intake."""


class Service(Background, Protocol):
    """A background service beside the flow (contact tracing), whose figures go into health."""

    def stats(self) -> dict[str, int]: ...


class NullScreen:
    """No screen (``[screen] enabled = false`` or headless): verdicts go to LEDs, buzzer and door only."""

    def __init__(self, display_expected: bool = False):
        # A display the config asked for but that is not there is a degraded state, not "no screen".
        self.display_ok = not display_expected

    def show_checkin(self, checkin: Checkin | None) -> None:
        pass

    def set_status(self, status: KioskStatus) -> None:
        pass

    def set_preview(self, frame: Frame, decoded: Sequence[Decoded] = ()) -> None:
        pass

    def tick(self) -> bool:
        return True

    def close(self) -> None:
        pass


class NullSpeaker:
    """No spoken verdicts (the default until ``device.audio`` is wired)."""

    def welcome(self) -> None:
        pass

    def see_guard(self) -> None:
        pass

    def close(self) -> None:
        pass


IDLE_STATS = ScanStats(capture_fps=0.0, decode_fps=0.0, latency_p95_ms=0.0, camera_ok=True, camera_error="")


class NullCamera:
    """``[camera] source = "none"``: codes come from USB scanners only; never "exhausted"."""

    present = False

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def wait(self, timeout: float | None = None) -> bool:
        return False

    def stats(self) -> ScanStats:
        return IDLE_STATS


class ContainedScreen:
    """The real screen, with every drawing failure contained.

    A check-in the screen cannot draw (for example a holder name with a NUL
    character in a correctly signed code) is logged once with its id, and the
    screen goes back to idle; the next visitor is served. A screen that keeps
    failing with nothing of a visitor's on it is reported (``display_ok``
    False) and retried quietly.
    """

    def __init__(self, screen: Screen):
        self.screen = screen
        self._shown: Checkin | None = None
        self._failing = False
        self.failures = 0

    @property
    def display_ok(self) -> bool:
        display = self.screen.display
        return not self._failing and display is not None and display.real

    def show_checkin(self, checkin: Checkin | None) -> None:
        self._shown = checkin
        self.screen.show_checkin(checkin)

    def set_status(self, status: KioskStatus) -> None:
        self.screen.set_status(status)

    def set_preview(self, frame: Frame, decoded: Sequence[Decoded] = ()) -> None:
        self.screen.set_preview(frame, decoded)

    def tick(self) -> bool:
        try:
            alive = self.screen.tick()
        except Exception as exc:
            self.failures += 1
            shown, self._shown = self._shown, None
            if shown is not None:
                log.error("check-in %s: the screen cannot draw it (%s: %s); showing the idle screen",
                          shown.id, type(exc).__name__, exc)
                self.screen.show_checkin(None)
            elif not self._failing:
                log.error("the screen cannot draw (%s: %s); the kiosk goes on without it", type(exc).__name__, exc)
                self._failing = True
            return True
        if self._failing:
            log.warning("the screen draws again")
            self._failing = False
        return alive

    def close(self) -> None:
        try:
            self.screen.close()
        except Exception as exc:  # closing must not stop the shutdown
            log.debug("closing the screen: %s", exc)


@dataclass
class Stages:
    """The built stages (absent ones are null objects); tests and the demo pass their own doubles in."""

    desk: Desk
    ledger: LedgerStage
    signals: SignalStage
    trust: TrustKeeper  # the one trust type: the last good bundle, or the plain [trust] paths
    publisher: Telemetry  # MQTT, or the NullTelemetry that drains the outbox
    scanner: CameraStage = field(default_factory=NullCamera)
    screen: ScreenStage = field(default_factory=NullScreen)
    speaker: Speaker = field(default_factory=NullSpeaker)
    extra_sources: list[CodeScanner] = field(default_factory=list)  # serial / HID code scanners
    services: list[Service] = field(default_factory=list)
