"""The supervisor: is the kiosk able to check people in, and who needs to know.

Apart from the check-in flow, about once a second (``tick()`` from the
kiosk's loop, on an injected clock so tests never sleep) it runs five jobs,
each its own small part:

* :class:`InService`: retries an out-of-service ledger (with the keeper's
  backoff) and switches the signals in and out of service the moment it changes;
* :class:`~kiosk.door.liveness.Liveness`: a camera or a decoder hung in its
  driver or library stops the systemd watchdog pings, so the service restarts;
* :class:`SystemdReport`: READY once the camera delivered its first frame (also
  when out of service: a kiosk that shows "see the guard" is up, and a missing
  READY would have systemd restart it in a loop), the watchdog pings and STATUS;
* the status LED and the guard's status bar (:meth:`Supervisor.refresh`);
* :class:`~kiosk.door.health.HealthFigures`: the status bar's figures and the
  health telemetry (display, ledger, mock GPIO, degraded words, intake drops, trust).
"""

from __future__ import annotations

import logging
import time
from typing import Callable

from device.clock import clock_synced as system_clock_synced
from kiosk.door.decode.stats import ScanStats
from kiosk.door.flow import CheckinFlow
from kiosk.door.health import HealthFigures
from kiosk.door.intake import Intake
from kiosk.door.liveness import CAMERA_STUCK_SECONDS, Liveness
from kiosk.door.show.status import KioskStatus
from kiosk.door.stages import LedgerStage, SignalStage, Stages
from kiosk.door.systemd import Notify

log = logging.getLogger(__name__)

__all__ = ["CAMERA_STUCK_SECONDS", "InService", "Supervisor", "SystemdReport"]


class InService:
    """The ledger's retry, and the signals switched in or out of service when it changes."""

    def __init__(self, ledger: LedgerStage, signals: SignalStage):
        self.ledger, self.signals = ledger, signals
        self.state: bool | None = None  # unknown until the first tick

    def check(self) -> bool:
        """Retry the ledger if it is down; True when the state changed (the signals were told)."""
        ok = self.ledger.retry()
        if ok == self.state:
            return False
        self.state = ok
        self.signals.set_in_service(ok)
        return True


class SystemdReport:
    """READY once, the watchdog pings while nothing is hung, and a one-line STATUS."""

    def __init__(self, notifier: Notify):
        self.notifier = notifier
        self.ready = False

    def report(self, status: KioskStatus, mqtt_ok: bool, *, up: bool, stuck: str) -> None:
        if not self.ready and up:
            # Display and ledger were opened at assembly; the camera is up once it delivered a frame.
            self.notifier.ready()
            self.ready = True
        if not stuck:
            self.notifier.ping()
        self.notifier.status(status_line(status, mqtt_ok))


def status_line(status: KioskStatus, mqtt_ok: bool) -> str:
    """What ``systemctl status kiosk`` shows."""
    words = " ".join(status.degraded)
    return (f"{'serving' if status.ledger_ok else 'OUT OF SERVICE'}; camera {'ok' if status.camera_ok else 'DOWN'}, "
            f"mqtt {'ok' if mqtt_ok else 'offline'}{'; ' + words if words else ''}")


class Supervisor:
    """Runs the kiosk's five jobs beside the flow, about once a second."""

    def __init__(self, stages: Stages, flow: CheckinFlow, intake: Intake, notifier: Notify, *,
                 notice: Callable[[], str] = lambda: "", clock: Callable[[], float] = time.monotonic,
                 clock_synced: Callable[[], bool | None] = system_clock_synced,
                 camera_stuck_s: float = CAMERA_STUCK_SECONDS, every_s: float = 1.0):
        self.stages = stages
        self.clock = clock
        self.every_s = every_s
        self.started = clock()
        self.in_service = InService(stages.ledger, stages.signals)
        self.liveness = Liveness(self.started, camera_stuck_s)
        self.systemd = SystemdReport(notifier)
        self.figures = HealthFigures(stages, flow, intake, notice=notice, clock_synced=clock_synced,
                                     started=self.started)
        self._last = float("-inf")
        self._failed_logged = False
        self.last_status = KioskStatus()
        self.last_health: dict[str, object] = {}

    @property
    def notifier(self) -> Notify:
        return self.systemd.notifier

    @property
    def ready(self) -> bool:
        return self.systemd.ready

    @property
    def stuck(self) -> str:
        return self.liveness.stuck

    def tick(self) -> None:
        """Called on every loop pass: cheap unless a refresh is due. Never raises."""
        try:
            self._tick()
            self._failed_logged = False
        except Exception as exc:  # supervision must never stop the door
            if not self._failed_logged:
                log.error("supervisor step failed (%s: %s)", type(exc).__name__, exc, exc_info=True)
                self._failed_logged = True

    def _tick(self) -> None:
        now = self.clock()
        changed = self.in_service.check()
        if not changed and now - self._last < (self.every_s if self.ready else self.every_s / 10):
            return
        self._last = now
        self.refresh(now)

    def refresh(self, now: float | None = None) -> None:
        """Recompute every figure and tell the signals, the screen, the publisher and systemd."""
        s = self.stages
        now = self.clock() if now is None else now
        stats = s.scanner.stats()
        mqtt_ok = self.figures.mqtt_ok
        s.signals.set_health(stats.camera_ok and mqtt_ok)  # the status LED
        status = self.figures.status(stats)
        s.screen.set_status(status)  # the guard's status bar
        health = self.figures.health(status, stats, now)
        s.publisher.set_health(health)
        self.last_status, self.last_health = status, health
        present = s.scanner.present
        exhausted = s.scanner.wait(0)
        stuck = self.liveness.update(now, stats, present, exhausted)
        self.systemd.report(status, mqtt_ok, up=not present or stats.frames_captured > 0 or exhausted, stuck=stuck)

    def status(self, stats: ScanStats | None = None) -> KioskStatus:
        """The guard's status bar figures right now."""
        return self.figures.status(self.stages.scanner.stats() if stats is None else stats)
