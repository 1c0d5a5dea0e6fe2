"""Wiring: build every stage from the config and run the kiosk's main loop.

source -> decode (scan threads) -> verify -> decide -> record -> signal / show -> publish

The scan threads hand each :class:`CodeSeen` to this loop through a queue;
the loop owns the desk, the ledger, the signals and the screen, so none of
them needs locking. The ledger commit comes *before* the signal: once a
visitor has seen "accepted" the count cannot be lost. Drawing is bounded by
``screen.fps`` and never delays a verdict; a lost camera or broker only
changes the status bar.
"""

from __future__ import annotations

import collections
import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

from kiosk import reasons
from kiosk.checkin import ACCEPT, Checkin, CheckinDesk
from kiosk.config import Config

log = logging.getLogger(__name__)

_OVERRIDE = object()  # queue marker: the guard pressed the override button


@dataclass(frozen=True)
class _Command:
    """A command from the centre (``.../cmd/{name}``), handed from paho's thread to the main loop."""

    name: str
    payload: str


# A camera that reports itself healthy but has delivered no frame for this long
# is hung inside its driver, and a decoder that finished no frame for this long
# while frames keep coming is hung inside its library: stop feeding the systemd
# watchdog so the service is restarted. A camera that reports an error is reopened by the scanner instead
# (with backoff), and the kiosk keeps serving USB scanners meanwhile.
CAMERA_STUCK_SECONDS = 20.0


@dataclass
class Stages:
    """The built stages; tests and the demo pass their own doubles in."""

    desk: CheckinDesk
    ledger: Any
    signals: Any
    scanner: Any = None
    screen: Any = None
    publisher: Any = None
    extra_sources: list = field(default_factory=list)  # serial / HID code scanners
    trust: Any = None


def load_trust(cfg: Config):
    """The kiosk's trust keeper: the signed bundle ([trust] bundle, last good in state_dir), else [trust] paths."""
    from kiosk.trust_bundle import keeper_from_config

    return keeper_from_config(cfg)


def build_desk(cfg: Config, trust=None):
    """verify + policy + duplicate window from the config. Returns (desk, trust)."""
    from kiosk.policy import Policy
    from kiosk.pseudonym import Pseudonyms
    from kiosk.verify import Verifier

    if trust is None:
        trust = load_trust(cfg)
    verifier = Verifier(trust, clock_skew_seconds=cfg.policy.clock_skew_seconds)
    policy = Policy.from_config(cfg.policy, resolve=cfg.resolve, trust=trust)
    pseudonyms = Pseudonyms.from_config(cfg)
    desk = CheckinDesk(verifier, policy, pseudonyms.of, duplicate_window_s=cfg.policy.duplicate_window_minutes * 60,
                       duplicates_accepted=cfg.policy.duplicates_accepted)
    return desk, trust


def build_ledger(cfg: Config):
    from kiosk.ledger import Ledger

    cfg.ledger_path.parent.mkdir(parents=True, exist_ok=True)
    return Ledger(str(cfg.ledger_path), outbox_max=cfg.ledger.outbox_max, visit_log=cfg.ledger.visit_log,
                  visit_log_fields=tuple(cfg.ledger.visit_log_fields), retention_days=cfg.ledger.retention_days)


class Kiosk:
    """The running kiosk: a main loop over scanned codes, status and drawing."""

    def __init__(self, cfg: Config, stages: Stages, notifier=None, on_checkin: Callable[[Checkin, int, Any], None] | None = None):
        self.cfg = cfg
        self.stages = stages
        self.notifier = notifier
        self.on_checkin = on_checkin
        self.codes: queue.Queue = queue.Queue()
        self._stop = threading.Event()
        self._last_reject: Checkin | None = None
        self._last_status = 0.0
        self._camera_alive = time.monotonic()
        self._camera_stuck_logged = False
        self._decoder_alive = time.monotonic()
        self._decoded_seen = 0
        self._ready = False
        # Recent capture-to-verdict latencies (bounded: the kiosk runs for months).
        self.latencies_ms: collections.deque[float] = collections.deque(maxlen=300)
        self._started = time.monotonic()
        self._notice = ""
        if stages.signals is not None:
            stages.signals.on_override = lambda: self.codes.put(_OVERRIDE)
        if stages.publisher is not None:
            stages.publisher.on_command = lambda name, payload: self.codes.put(_Command(name, payload))

    # -- intake (called from scan threads) ---------------------------------
    def code_seen(self, code) -> None:
        """Scanner callback: hand the code to the main loop."""
        self.codes.put(code)

    def stop(self) -> None:
        self._stop.set()

    # -- the decision path ---------------------------------------------------
    def handle(self, code) -> Checkin:
        """Decide on one code, commit it, then signal, show and publish it."""
        s = self.stages
        checkin = s.desk.admit(code.text, captured_at=code.captured_at, source=code.source)
        seq = s.ledger.record(checkin)  # durable before anyone is told "accepted"
        if checkin.duplicate:
            s.signals.duplicate(admitted=checkin.verdict == ACCEPT)  # a refused duplicate keeps the door shut
        elif checkin.verdict == ACCEPT:
            s.signals.accept()
        else:
            s.signals.reject()
            self._last_reject = checkin
        if s.screen is not None:
            s.screen.show_checkin(checkin)
        if s.publisher is not None:
            s.publisher.wake()
        latency = (time.monotonic() - checkin.captured_at) * 1000
        self.latencies_ms.append(latency)
        log.info("check-in %s: %s %s (%s%s) %.0f ms", seq, checkin.verdict, checkin.reason, checkin.format,
                 "" if checkin.signed else ", unsigned", latency)
        if self.on_checkin:
            self.on_checkin(checkin, seq, code)
        return checkin

    def override(self) -> None:
        """Guard's button: let the last rejected visitor in, counted as an override."""
        s = self.stages
        rejected = self._last_reject
        if rejected is None:
            log.info("override pressed with no rejected visitor to let in")
            return
        self._last_reject = None
        s.ledger.record_override(source="button")
        s.signals.override()
        if s.screen is not None:
            s.screen.show_checkin(_as_override(rejected))
        if s.publisher is not None:
            s.publisher.wake()
        log.info("guard override of check-in %s (%s)", rejected.id, rejected.reason)

    @property
    def notice(self) -> str:
        """The centre's current notice for the guard ('' when none)."""
        return self._notice

    def command(self, name: str, payload: str) -> None:
        """A command the config allowed ([mqtt] commands): reload the trust list, or show a notice."""
        s = self.stages
        if name == "reload-trust":
            try:
                trust = load_trust(self.cfg)
            except Exception as exc:  # a bad trust file must not stop the door; the old list stays
                log.error("trust list reload failed, keeping the old one: %s", exc)
            else:
                # Only the keys change: the duplicate window (who is inside) is kept.
                s.trust = s.desk.verifier.trust = trust
                log.info("trust list reloaded")
        elif name == "notice":
            self._notice = payload.strip()[:200]
            log.info("notice from the centre: %s", self._notice or "(cleared)")
        else:
            log.warning("ignored unknown command %r", name)

    # -- status --------------------------------------------------------------
    def status(self, stats=None):
        """The guard's status bar figures, from the ledger and the stages."""
        from kiosk.clock import clock_synced
        from kiosk.screen import KioskStatus

        s = self.stages
        counts = s.ledger.counts()
        if stats is None and s.scanner is not None:
            stats = s.scanner.stats()
        publisher_ok = bool(s.publisher and s.publisher.connected)
        return KioskStatus(
            accepted=counts.get("accepted", 0), rejected=counts.get("rejected", 0),
            camera_fps=stats.capture_fps if stats else 0.0, camera_ok=stats.camera_ok if stats else True,
            mqtt_connected=publisher_ok if s.publisher is not None else None,
            clock_synced=clock_synced(), trust_age_days=getattr(s.trust, "age_days", None), notice=self._notice)

    def verdict_latency_p95_ms(self) -> float | None:
        """95th percentile of recent capture-to-verdict times (None before the first visitor)."""
        from kiosk.scan.stats import percentile

        return percentile(list(self.latencies_ms), 95) if self.latencies_ms else None

    def health(self, status, stats) -> dict:
        """The ``health`` telemetry: is this kiosk able to check people in (no personal data)."""
        return {
            "camera_ok": status.camera_ok,
            "camera_error": (stats.camera_error if stats else "") or "",
            "capture_fps": round(stats.capture_fps, 1) if stats else 0.0,
            "decode_fps": round(stats.decode_fps, 1) if stats else 0.0,
            "verdict_latency_p95_ms": self.verdict_latency_p95_ms(),
            "clock_synced": status.clock_synced,
            "trust_age_days": status.trust_age_days,
            "uptime_s": round(time.monotonic() - self._started, 1),
        }

    def _refresh_status(self, now: float) -> None:
        if now - self._last_status < (1.0 if self._ready else 0.1):
            return
        self._last_status = now
        s = self.stages
        stats = s.scanner.stats() if s.scanner is not None else None
        camera_ok = stats.camera_ok if stats else True
        mqtt_ok = s.publisher.connected if s.publisher is not None else True
        s.signals.set_health(camera_ok and mqtt_ok)
        status = self.status(stats)
        if s.screen is not None:
            s.screen.set_status(status)
        if s.publisher is not None:
            s.publisher.set_health(self.health(status, stats))
        if stats is None or not stats.camera_ok or stats.capture_fps > 0 or s.scanner.wait(0):
            self._camera_alive = now
        # The decoder is stuck when frames keep coming but none has been decoded for a while
        # (a decoder library hanging on one frame): nothing else would ever notice.
        if stats is None or stats.frames_decoded != self._decoded_seen or stats.capture_fps == 0:
            self._decoder_alive = now
            self._decoded_seen = stats.frames_decoded if stats else 0
        stuck = ("camera delivered no frame" if now - self._camera_alive > CAMERA_STUCK_SECONDS else
                 "decoder finished no frame" if now - self._decoder_alive > CAMERA_STUCK_SECONDS else "")
        if stuck and not self._camera_stuck_logged:
            log.error("%s for over %.0f s; letting the watchdog restart the kiosk", stuck, CAMERA_STUCK_SECONDS)
            self._camera_stuck_logged = True
        if self.notifier is not None and not self._ready and (
                stats is None or stats.frames_captured > 0 or s.scanner.wait(0)):
            # Display and ledger were opened in assemble(); the camera is up once it delivered a frame.
            self.notifier.ready()
            self._ready = True
        if self.notifier is not None:
            if not stuck:
                self.notifier.ping()
            self.notifier.status(f"camera {'ok' if camera_ok else 'DOWN'}, mqtt {'ok' if mqtt_ok else 'offline'}")

    # -- main loop -----------------------------------------------------------
    def run(self, until_exhausted: bool = True) -> int:
        """Run until stopped, or (replays) until the source is exhausted and every code handled."""
        s = self.stages
        if s.publisher is not None:
            s.publisher.start()
        if s.scanner is not None:
            s.scanner.start()
        for extra in s.extra_sources:
            extra.start()
        tick = 1.0 / max(1, self.cfg.screen.fps)
        try:
            while not self._stop.is_set():
                try:
                    item = self.codes.get(timeout=tick)
                except queue.Empty:
                    item = None
                if item is _OVERRIDE:
                    self.override()
                elif isinstance(item, _Command):
                    self.command(item.name, item.payload)
                elif item is not None:
                    self.handle(item)
                now = time.monotonic()
                self._refresh_status(now)
                if s.screen is not None and not s.screen.tick():
                    log.info("window closed")
                    break
                if until_exhausted and s.scanner is not None and s.scanner.wait(0) and self.codes.empty():
                    break
        finally:
            self.shutdown()
        return 0

    def shutdown(self) -> None:
        s = self.stages
        if self.notifier is not None:
            self.notifier.stopping()
        for part in [s.scanner, *s.extra_sources]:
            if part is not None:
                part.stop()
        if s.publisher is not None:
            s.publisher.stop()
        for part in (s.screen, s.signals):
            if part is not None:
                part.close()
        s.ledger.close()


def _as_override(c: Checkin) -> Checkin:
    from dataclasses import replace

    return replace(c, verdict=ACCEPT, reason=reasons.OVERRIDE, at=datetime.now(timezone.utc))


def assemble(cfg: Config, *, source=None, pin_factory=None, headless: bool = False, notifier=None,
             on_checkin=None) -> Kiosk:
    """Build every stage from a validated config (hardware is touched only here).

    ``source`` replaces the configured frame source (the demo's replay);
    ``pin_factory`` replaces the configured gpiozero factory (MockFactory).
    """
    from device.signals import open_signals
    from kiosk.scan import Scanner, default_decoder

    desk, trust = build_desk(cfg)
    ledger = build_ledger(cfg)
    signals = open_signals(cfg.signals, pin_factory=pin_factory)
    screen = None
    if cfg.screen.enabled and not headless:
        from kiosk.screen import Screen

        screen = Screen(cfg)
    publisher = None
    if cfg.mqtt.enabled:
        from kiosk.publish import open_publisher

        publisher = open_publisher(cfg, ledger)
    stages = Stages(desk=desk, ledger=ledger, signals=signals, screen=screen, publisher=publisher, trust=trust)
    kiosk = Kiosk(cfg, stages, notifier=notifier, on_checkin=on_checkin)
    if source is None and cfg.camera.source != "none":
        from device.frames import open_source

        source = open_source(cfg.camera.source, cfg.camera.path, width=cfg.camera.width, height=cfg.camera.height,
                             fps=cfg.camera.fps, loop=cfg.camera.loop, replay_fps=cfg.camera.replay_fps)
    if source is not None:
        on_frame = screen.set_preview if screen is not None else None
        stages.scanner = Scanner(source, default_decoder(), on_code=kiosk.code_seen,
                                 rearm_seconds=cfg.camera.rearm_seconds, on_frame=on_frame)
    stages.extra_sources = _code_scanners(cfg, kiosk.code_seen)
    return kiosk


def _code_scanners(cfg: Config, on_code) -> list:
    """Dedicated USB scanners (serial, keyboard wedge) configured beside the camera."""
    found = []
    if cfg.scanner.serial_port or cfg.scanner.hid_device:
        from device import scanners

        if cfg.scanner.serial_port:
            found.append(scanners.SerialScanner(cfg.scanner.serial_port, on_code, baud=cfg.scanner.serial_baud))
        if cfg.scanner.hid_device:
            found.append(scanners.HidScanner(cfg.scanner.hid_device, on_code))
    return found
