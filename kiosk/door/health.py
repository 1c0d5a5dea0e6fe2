"""The kiosk's figures: the guard's status bar (:class:`KioskStatus`) and the ``health`` telemetry.

Both are read from the stages as they are right now: the ledger's counts,
the scan figures, the publisher's connection, the trust keeper's age and
state, the display, the GPIO factory, the intake's drops and the tracing
service's answers. No personal data: these go to the screen and to the centre.
"""

from __future__ import annotations

from typing import Callable

from kiosk.door.decode.stats import ScanStats
from kiosk.door.flow import CheckinFlow
from kiosk.door.intake import Intake
from kiosk.door.show.status import KioskStatus
from kiosk.door.stages import Stages


class HealthFigures:
    """Computes the status bar and the health dict (contract 7) for one kiosk."""

    def __init__(self, stages: Stages, flow: CheckinFlow, intake: Intake, *, notice: Callable[[], str],
                 clock_synced: Callable[[], bool | None], started: float):
        self.stages, self.flow, self.intake = stages, flow, intake
        self.notice = notice
        self.clock_synced = clock_synced
        self.started = started

    @property
    def mqtt_ok(self) -> bool:
        """The centre is reachable, or publishing is off (then nothing is missing)."""
        publisher = self.stages.publisher
        return publisher.connected or not publisher.enabled

    def status(self, stats: ScanStats) -> KioskStatus:
        """The guard's status bar figures, from the ledger and the stages."""
        s = self.stages
        counts = s.ledger.counts()
        synced = self.clock_synced()
        return KioskStatus(
            accepted=int(counts.get("accepted", 0)), rejected=int(counts.get("rejected", 0)),
            camera_fps=stats.capture_fps, camera_ok=stats.camera_ok,
            mqtt_connected=s.publisher.connected if s.publisher.enabled else None,
            clock_synced=synced, trust_age_days=s.trust.age_days, notice=self.notice(),
            ledger_ok=s.ledger.ok, degraded=tuple(self.degraded(stats, synced)))

    def degraded(self, stats: ScanStats, synced: bool | None) -> list[str]:
        """The health words (contract 7) that apply right now."""
        s = self.stages
        words = []
        if not s.ledger.ok:
            words.append("ledger-down")
        if not stats.camera_ok:
            words.append("camera-down")
        if not s.screen.display_ok:
            words.append("display-down")
        if s.signals.mock:
            words.append("gpio-mock")
        if s.trust.stale:
            words.append("trust-stale")
        if synced is False:
            words.append("clock-unsynced")
        return words

    def health(self, status: KioskStatus, stats: ScanStats, now: float) -> dict[str, object]:
        """The ``health`` telemetry: is this kiosk able to check people in (no personal data)."""
        s = self.stages
        trust = s.trust
        age_hours = trust.age_hours
        if age_hours is None and trust.age_days is not None:
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
            "gpio_mock": bool(s.signals.mock),
            "degraded": list(status.degraded),
            "intake_dropped": self.intake.dropped_today(),
            "trust_version": trust.version,
            "trust_age_hours": age_hours,
            "trust_stale": bool(trust.stale),
            **self._trace_counts(),
        }

    def _trace_counts(self) -> dict[str, int]:
        """Trace requests answered and refused since start (docs/tracing.md), from the tracing service."""
        answered = refused = 0
        for service in self.stages.services:
            stats = service.stats()
            answered += int(stats.get("answered", 0))
            refused += int(stats.get("refused", 0))
        return {"trace_answered": answered, "trace_refused": refused}
