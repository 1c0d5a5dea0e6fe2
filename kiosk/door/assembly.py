"""Assembly: every stage of the kiosk built from a validated config, in one step.

Each stage is built from its own section: the desk from ``[policy]``, the
signals from ``[signals]``, the screen from ``[screen]`` (with the venue it
shows), the camera and the intake from ``[camera]``, the USB scanners from
``[scanner]``, the speaker from ``[audio]``. The ledger, the publisher, the
trust keeper, the device key and the pseudonym key are built from their sections
too, given where the config lives (its folder, ``state_dir``) to find their files:
this module is the one place of the door that reads the whole config
(:func:`open_ledger`, :func:`open_publisher`, :func:`load_trust`,
:func:`load_device_key`, :func:`open_pseudonyms` are its readings, for the tools
and the tests as for :func:`assemble`). Hardware is touched only here, and the
backends the config names are imported only then.

The ledger comes inside a :class:`~kiosk.door.record.LedgerKeeper` (a file
that cannot be opened or written makes the kiosk out of service, not a crash);
the screen inside a :class:`~kiosk.door.stages.ContainedScreen`; absent stages
are null objects. The intake exists before the scanners, so they are built with
their final callbacks and the :class:`~kiosk.door.kiosk.Kiosk` is made last.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from device.scanners import CodeSeen
from device.signals import open_signals
from kiosk.config import CameraConfig, Config, PolicyConfig, ScannerConfig, ScreenConfig, VenueConfig
from kiosk.door.decide.checkin import CheckinDesk, LedgerWindow
from kiosk.door.decide.policy import Policy
from kiosk.door.decode import Scanner, default_decoder
from kiosk.door.flow import OnCheckin
from kiosk.door.intake import Intake
from kiosk.door.kiosk import Kiosk
from kiosk.door.publish.base import NullTelemetry, Telemetry
from kiosk.door.publish.device_key import DeviceKey, load_or_create
from kiosk.door.record import Ledger, LedgerKeeper
from kiosk.door.remote import install as remote
from kiosk.door.stages import (CameraStage, CodeScanner, ContainedScreen, NullCamera, NullScreen, ScreenStage, Service,
                               Stages)
from kiosk.door.systemd import Notify
from kiosk.door.verify.verifier import Verifier
from kiosk.trust.bundle import TrustKeeper, open_keeper
from kiosk.trust.pseudonym import Pseudonyms

if TYPE_CHECKING:
    from device.frames import FrameSource
    from gpiozero import Factory

log = logging.getLogger(__name__)


def load_trust(cfg: Config) -> TrustKeeper:
    """The kiosk's trust keeper: the signed bundle ([trust] bundle, last good in state_dir), else [trust] paths."""
    tc = cfg.trust
    return open_keeper(paths=[cfg.resolve(p) for p in tc.paths],
                       authority_key=cfg.resolve(tc.authority_key) if tc.authority_key else None,
                       bundle=cfg.resolve(tc.bundle) if tc.bundle else None, state_dir=cfg.state_dir,
                       max_age_hours=tc.max_age_hours, site=cfg.device.site)


def load_device_key(cfg: Config) -> DeviceKey:
    """The key ``[device] key_file`` names (made on first start)."""
    return load_or_create(cfg.device, cfg.resolve)


def open_pseudonyms(cfg: Config) -> Pseudonyms:
    """The pseudonym key of ``[ledger] pseudonym_key_file``, else the one in ``state_dir`` (made on first start)."""
    return Pseudonyms.load(cfg.ledger.pseudonym_key_file, state_dir=cfg.state_dir, resolve=cfg.resolve,
                           base=cfg.base_dir)


def open_ledger(cfg: Config) -> Ledger:
    """The ledger ``[ledger]`` describes, with the duplicate window of ``[policy]`` and who is counting."""
    return Ledger.open(cfg.ledger, cfg.ledger_path, duplicate_window_s=cfg.policy.duplicate_window_minutes * 60,
                       venue_id=cfg.venue.id, device_id=cfg.device.id)


def open_publisher(cfg: Config, ledger, info: dict | None = None, device_key: DeviceKey | None = None,
                   clock: Callable[[], float] = time.monotonic) -> Telemetry:
    """The telemetry the config asks for (not started): MQTT, or the null one when ``[mqtt] enabled = false``.

    ``device_key`` signs every message; None loads it from ``[device] key_file`` (made on first start).
    ``clock`` times the publisher's intervals.
    """
    if not cfg.mqtt.enabled:
        return NullTelemetry(ledger)
    from kiosk.door.publish.mqtt import MqttPublisher
    from kiosk.door.publish.payloads import config_hash

    key = device_key or load_device_key(cfg)
    return MqttPublisher(cfg.mqtt, cfg.device, cfg.venue, ledger, {"config_sha256": config_hash(cfg), **(info or {})},
                         base_dir=cfg.base_dir, device_key=key, clock=clock)


def build_desk(policy: PolicyConfig, trust: TrustKeeper, pseudonyms: Pseudonyms,
               resolve: Callable[[str], Path]) -> CheckinDesk:
    """verify + policy + duplicate window from ``[policy]``.

    The desk's duplicate window is in memory until :func:`assemble` gives it the ledger's.
    """
    verifier = Verifier(trust, clock_skew_seconds=policy.clock_skew_seconds)
    rules = Policy.from_config(policy, resolve=resolve, trust=trust)
    return CheckinDesk(verifier, rules, pseudonyms.of, duplicate_window_s=policy.duplicate_window_minutes * 60,
                       duplicates_accepted=policy.duplicates_accepted,
                       unsigned_opens_door=policy.unsigned_opens_door)


def build_ledger(cfg: Config, clock: Callable[[], float] = time.monotonic) -> LedgerKeeper:
    """The ledger the config describes, kept by a :class:`LedgerKeeper` (never raises for the file)."""
    return LedgerKeeper(lambda: open_ledger(cfg), clock=clock)


def build_screen(screen: ScreenConfig, venue: VenueConfig, policy: PolicyConfig, *, trust_max_age_days: float,
                 headless: bool) -> ScreenStage:
    """The screen, or the null one when headless or disabled."""
    if not screen.enabled or headless:
        return NullScreen(display_expected=False)
    from kiosk.door.show import Screen  # pygame: only when the kiosk has a screen

    try:
        return ContainedScreen(Screen(screen, venue, policy=policy, trust_max_age_days=trust_max_age_days))
    except Exception as exc:  # no font, no SDL at all: the door still works, and health says so
        log.error("the screen cannot be opened (%s: %s); going on without it", type(exc).__name__, exc)
        return NullScreen(display_expected=True)


def build_camera(camera: CameraConfig, source: FrameSource | None, intake: Intake,
                 screen: ScreenStage) -> CameraStage:
    """The camera's scanner threads over ``source`` (else the configured one), or the null camera."""
    if source is None and camera.source != "none":
        from device.frames import open_source

        source = open_source(camera.source, camera.path, width=camera.width, height=camera.height, fps=camera.fps,
                             loop=camera.loop, replay_fps=camera.replay_fps)
    if source is None:
        return NullCamera()
    return Scanner(source, default_decoder(), on_code=intake.camera, rearm_seconds=camera.rearm_seconds,
                   on_frame=screen.set_preview)


def assemble(cfg: Config, *, source: FrameSource | None = None, pin_factory: Factory | None = None,
             headless: bool = False, notifier: Notify | None = None, on_checkin: OnCheckin | None = None,
             clock: Callable[[], float] = time.monotonic) -> Kiosk:
    """Build every stage and the kiosk around them.

    ``source`` replaces the configured frame source (the demo's replay);
    ``pin_factory`` replaces the configured gpiozero factory (MockFactory);
    ``clock`` (monotonic seconds) is injected into the flow, the supervisor and the ledger's retry.
    """
    from device.audio import open_speaker

    device_key = load_device_key(cfg)  # first start makes it; a bad key file stops here with one line
    trust = load_trust(cfg)
    desk = build_desk(cfg.policy, trust, open_pseudonyms(cfg), cfg.resolve)
    ledger = build_ledger(cfg, clock)
    desk.window = LedgerWindow(ledger)  # the duplicate window survives restarts
    signals = open_signals(cfg.signals, pin_factory=pin_factory)
    screen = build_screen(cfg.screen, cfg.venue, cfg.policy, trust_max_age_days=cfg.trust.max_age_days,
                          headless=headless)
    publisher = open_publisher(cfg, ledger, device_key=device_key)
    intake = Intake(cfg.camera.intake_max, clock=clock)
    stages = Stages(desk=desk, ledger=ledger, signals=signals, trust=trust, publisher=publisher,
                    scanner=build_camera(cfg.camera, source, intake, screen), screen=screen,
                    speaker=open_speaker(cfg.audio), extra_sources=_code_scanners(cfg.scanner, intake.scanner),
                    services=_tracing(cfg, publisher, device_key))
    kiosk = Kiosk(cfg, stages, notifier=notifier, on_checkin=on_checkin, intake=intake, clock=clock)
    # The centre's signed commands and trust bundles, worked on the control thread.
    kiosk.remote = remote.install(cfg, publisher, trust, device_key.key, post=kiosk.post, set_notice=kiosk.set_notice)
    return kiosk


def _tracing(cfg: Config, publisher: Telemetry, device_key: DeviceKey) -> list[Service]:
    """The trace responder behind the publisher (docs/tracing.md), when the kiosk talks to a broker.

    It answers even with the visit log off (the answer is "log off"), so the authority knows who
    was asked. A responder that cannot be built (no ledger file yet, a bad authority key) leaves
    the door working and says why once.
    """
    if not cfg.mqtt.enabled:
        return []
    from kiosk.door.tracing import responder_from_config
    from kiosk.door.tracing.service import TraceService

    try:
        # the responder signs with, and opens case entries by, the Ed25519 key itself (not the DeviceKey wrapper)
        return [TraceService(responder_from_config(cfg, device_key=device_key.key), publisher)]
    except Exception as exc:  # noqa: BLE001 - tracing must never stop the door
        log.error("contact tracing is unavailable: %s", exc)
        return []


def _code_scanners(scanner: ScannerConfig, on_code: Callable[[CodeSeen], bool]) -> list[CodeScanner]:
    """Dedicated USB scanners (serial, keyboard wedge) configured beside the camera, from ``[scanner]``."""
    found: list[CodeScanner] = []
    if scanner.serial_port or scanner.hid_device:
        from device import scanners

        if scanner.serial_port:
            found.append(scanners.SerialScanner(scanner.serial_port, on_code, baud=scanner.serial_baud))
        if scanner.hid_device:
            found.append(scanners.HidScanner(scanner.hid_device, on_code))
    return found
