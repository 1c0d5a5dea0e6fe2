"""The supervisor: is the kiosk able to check people in, and who needs to know.

Apart from the check-in flow, about once a second (``tick()`` from the
kiosk's loop, on an injected clock so tests never sleep) it:

* retries an out-of-service ledger (with the keeper's backoff) and switches
  the signals and the screen in and out of service the moment it changes;
* decides liveness: a camera that reports itself healthy but delivered no
  frame for ``camera_stuck_s``, or a decoder that finished none while frames
  keep coming, is hung in its driver or library: it stops feeding the systemd
  watchdog so the service is restarted;
* sends READY once the camera delivered its first frame (also when out of
  service: a kiosk that shows "see the guard" is up, and a missing READY would
  have systemd restart it in a loop), the watchdog pings and STATUS;
* sets the status LED, the guard's status bar and the health telemetry
  (display, ledger, mock GPIO, degraded words, intake drops, trust state).
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable

from kiosk.door.show.status import KioskStatus

log = logging.getLogger(__name__)

# A camera that reports itself healthy but has delivered no frame for this long
# is hung inside its driver, and a decoder that finished no frame for this long
# while frames keep coming is hung inside its library: stop feeding the systemd
# watchdog so the service is restarted. A camera that reports an error is reopened by the scanner instead
# (with backoff), and the kiosk keeps serving USB scanners meanwhile.
CAMERA_STUCK_SECONDS = 20.0


class NullNotifier:
    """Outside systemd: READY, pings and STATUS go nowhere."""

    def ready(self, status: str = "") -> bool:
        return False

    def ping(self) -> bool:
        return False

    def status(self, text: str) -> bool:
        return False

    def stopping(self, status: str = "") -> bool:
        return False


class Supervisor:
    """Liveness, READY/watchdog, status LED, status bar and health figures for one kiosk."""

    def __init__(self, stages: Any, flow: Any, intake: Any, notifier: Any = None, *,
                 notice: Callable[[], str] = lambda: "", clock: Callable[[], float] = time.monotonic,
                 clock_synced: Callable[[], bool | None] | None = None, camera_stuck_s: float = CAMERA_STUCK_SECONDS,
                 every_s: float = 1.0):
        from device.clock import clock_synced as system_clock_synced

        self.stages, self.flow, self.intake = stages, flow, intake
        self.notifier = notifier if notifier is not None else NullNotifier()
        self.notice = notice
        self.clock = clock
        self.clock_synced = clock_synced or system_clock_synced
        self.camera_stuck_s = camera_stuck_s
        self.every_s = every_s
        self.started = clock()
        self.ready = False
        self.stuck = ""
        self._last = float("-inf")
        self._in_service: bool | None = None
        self._camera_alive = self._decoder_alive = self.started
        self._decoded_seen = 0
        self._stuck_logged = False
        self._failed_logged = False
        self.last_status = KioskStatus()
        self.last_health: dict = {}

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
        s = self.stages
        now = self.clock()
        in_service = s.ledger.retry()
        changed = in_service != self._in_service
        if changed:
            self._in_service = in_service
            s.signals.set_in_service(in_service)
        if not changed and now - self._last < (self.every_s if self.ready else self.every_s / 10):
            return
        self._last = now
        self.refresh(now)

    def refresh(self, now: float | None = None) -> None:
        """Recompute every figure and tell the signals, the screen, the publisher and systemd."""
        s = self.stages
        now = self.clock() if now is None else now
        stats = s.scanner.stats()
        present = getattr(s.scanner, "present", True)
        mqtt_ok = s.publisher.connected or not getattr(s.publisher, "enabled", True)
        s.signals.set_health(stats.camera_ok and mqtt_ok)
        status = self.status(stats)
        s.screen.set_status(status)
        health = self.health(status, stats, now)
        s.publisher.set_health(health)
        self.last_status, self.last_health = status, health
        self._liveness(now, stats, present)
        if not self.ready and (not present or stats.frames_captured > 0 or s.scanner.wait(0)):
            # Display and ledger were opened at assembly; the camera is up once it delivered a frame.
            self.notifier.ready()
            self.ready = True
        if not self.stuck:
            self.notifier.ping()
        self.notifier.status(self._status_line(status, mqtt_ok))

    def _liveness(self, now: float, stats: Any, present: bool) -> None:
        s = self.stages
        if not present or not stats.camera_ok or stats.capture_fps > 0 or s.scanner.wait(0):
            self._camera_alive = now
        # The decoder is stuck when frames keep coming but none has been decoded for a while
        # (a decoder library hanging on one frame): nothing else would ever notice.
        if not present or stats.frames_decoded != self._decoded_seen or stats.capture_fps == 0:
            self._decoder_alive = now
            self._decoded_seen = stats.frames_decoded
        self.stuck = ("camera delivered no frame" if now - self._camera_alive > self.camera_stuck_s else
                      "decoder finished no frame" if now - self._decoder_alive > self.camera_stuck_s else "")
        if self.stuck and not self._stuck_logged:
            log.error("%s for over %.0f s; letting the watchdog restart the kiosk", self.stuck, self.camera_stuck_s)
            self._stuck_logged = True

    @staticmethod
    def _status_line(status: KioskStatus, mqtt_ok: bool) -> str:
        words = " ".join(status.degraded)
        return (f"{'serving' if status.ledger_ok else 'OUT OF SERVICE'}; camera {'ok' if status.camera_ok else 'DOWN'}, "
                f"mqtt {'ok' if mqtt_ok else 'offline'}{'; ' + words if words else ''}")

    # -- figures -----------------------------------------------------------------------------

    def status(self, stats: Any = None) -> KioskStatus:
        """The guard's status bar figures, from the ledger and the stages."""
        s = self.stages
        stats = s.scanner.stats() if stats is None else stats
        counts = s.ledger.counts()
        synced = self.clock_synced()
        return KioskStatus(
            accepted=counts.get("accepted", 0), rejected=counts.get("rejected", 0),
            camera_fps=stats.capture_fps, camera_ok=stats.camera_ok,
            mqtt_connected=s.publisher.connected if getattr(s.publisher, "enabled", True) else None,
            clock_synced=synced, trust_age_days=getattr(s.trust, "age_days", None), notice=self.notice(),
            ledger_ok=s.ledger.ok, degraded=tuple(self.degraded(stats, synced)))

    def degraded(self, stats: Any, synced: bool | None) -> list[str]:
        """The health words (contract 7) that apply right now."""
        s = self.stages
        words = []
        if not s.ledger.ok:
            words.append("ledger-down")
        if not stats.camera_ok:
            words.append("camera-down")
        if not s.screen.display_ok:
            words.append("display-down")
        if getattr(s.signals, "mock", False):
            words.append("gpio-mock")
        if getattr(s.trust, "stale", False):
            words.append("trust-stale")
        if synced is False:
            words.append("clock-unsynced")
        return words

    def health(self, status: KioskStatus, stats: Any, now: float | None = None) -> dict:
        """The ``health`` telemetry: is this kiosk able to check people in (no personal data)."""
        s = self.stages
        now = self.clock() if now is None else now
        trust = s.trust
        age_hours = getattr(trust, "age_hours", None)
        if age_hours is None and getattr(trust, "age_days", None) is not None:
            age_hours = trust.age_days * 24
        return {
            "camera_ok": status.camera_ok,
            "camera_error": stats.camera_error or "",
            "capture_fps": round(stats.capture_fps, 1),
            "decode_fps": round(stats.decode_fps, 1),
            "verdict_latency_p95_ms": self.flow.verdict_latency_p95_ms(),
            "clock_synced": status.clock_synced,
            "trust_age_days": status.trust_age_days,
            "uptime_s": round(now - self.started, 1),
            "display_ok": s.screen.display_ok,
            "ledger_ok": s.ledger.ok,
            "gpio_mock": bool(getattr(s.signals, "mock", False)),
            "degraded": list(status.degraded),
            "intake_dropped": self.intake.dropped_today(),
            "trust_version": getattr(trust, "version", None),
            "trust_age_hours": age_hours,
            "trust_stale": bool(getattr(trust, "stale", False)),
            **self._trace_counts(),
        }

    def _trace_counts(self) -> dict:
        """Trace requests answered and refused since start (docs/tracing.md), from the tracing service."""
        answered = refused = 0
        for service in self.stages.services:
            stats = service.stats()
            answered += int(stats.get("answered", 0))
            refused += int(stats.get("refused", 0))
        return {"trace_answered": answered, "trace_refused": refused}
