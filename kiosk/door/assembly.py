"""Assembly: every stage of the kiosk built from a validated config, in one step.

Hardware is touched only here. The ledger comes inside a
:class:`~kiosk.door.record.LedgerKeeper` (a file that cannot be opened or written
makes the kiosk out of service, not a crash); the screen inside a
:class:`~kiosk.stages.ContainedScreen`; absent stages are null objects.
The intake exists before the scanners, so they are built with their final
callbacks and the :class:`~kiosk.door.kiosk.Kiosk` is made last.
"""

from __future__ import annotations

import logging

from kiosk.config import Config

log = logging.getLogger(__name__)


def load_trust(cfg: Config):
    """The kiosk's trust keeper: the signed bundle ([trust] bundle, last good in state_dir), else [trust] paths."""
    from kiosk.trust.bundle import keeper_from_config

    return keeper_from_config(cfg)


def build_desk(cfg: Config, trust=None):
    """verify + policy + duplicate window from the config. Returns (desk, trust).

    The desk's duplicate window is in memory until :func:`assemble` gives it the ledger's.
    """
    from kiosk.door.decide.checkin import CheckinDesk
    from kiosk.door.decide.policy import Policy
    from kiosk.trust.pseudonym import Pseudonyms
    from kiosk.door.verify.verifier import Verifier

    if trust is None:
        trust = load_trust(cfg)
    verifier = Verifier(trust, clock_skew_seconds=cfg.policy.clock_skew_seconds)
    policy = Policy.from_config(cfg.policy, resolve=cfg.resolve, trust=trust)
    pseudonyms = Pseudonyms.from_config(cfg)
    desk = CheckinDesk(verifier, policy, pseudonyms.of, duplicate_window_s=cfg.policy.duplicate_window_minutes * 60,
                       duplicates_accepted=cfg.policy.duplicates_accepted,
                       unsigned_opens_door=cfg.policy.unsigned_opens_door)
    return desk, trust


def build_ledger(cfg: Config, clock=None):
    """The ledger the config describes, kept by a :class:`LedgerKeeper` (never raises for the file)."""
    import time

    from kiosk.door.record import Ledger, LedgerKeeper

    return LedgerKeeper(lambda: Ledger.from_config(cfg), clock=clock or time.monotonic)


def build_screen(cfg: Config, headless: bool):
    """The screen, or the null one when headless or disabled."""
    from kiosk.door.stages import ContainedScreen, NullScreen

    if not cfg.screen.enabled or headless:
        return NullScreen(display_expected=False)
    from kiosk.door.show import Screen

    try:
        return ContainedScreen(Screen(cfg))
    except Exception as exc:  # no font, no SDL at all: the door still works, and health says so
        log.error("the screen cannot be opened (%s: %s); going on without it", type(exc).__name__, exc)
        return NullScreen(display_expected=True)


def assemble(cfg: Config, *, source=None, pin_factory=None, headless: bool = False, notifier=None,
             on_checkin=None, clock=None):
    """Build every stage and the kiosk around them.

    ``source`` replaces the configured frame source (the demo's replay);
    ``pin_factory`` replaces the configured gpiozero factory (MockFactory);
    ``clock`` (monotonic seconds) is injected into the flow, the supervisor and the ledger's retry.
    """
    import time

    from device.signals import open_signals
    from kiosk.door.decide.checkin import LedgerWindow
    from kiosk.door.intake import Intake
    from kiosk.door.remote import install as remote
    from kiosk.door.kiosk import Kiosk, Stages
    from kiosk.door.publish import open_publisher
    from kiosk.door.publish.device_key import load_or_create
    from kiosk.door.stages import NullCamera

    clock = clock or time.monotonic
    device_key = load_or_create(cfg)  # first start makes it; a bad key file stops here with one line
    desk, trust = build_desk(cfg)
    ledger = build_ledger(cfg, clock)
    desk.window = LedgerWindow(ledger)  # the duplicate window survives restarts
    signals = open_signals(cfg.signals, pin_factory=pin_factory)
    screen = build_screen(cfg, headless)
    publisher = open_publisher(cfg, ledger, device_key=device_key)
    intake = Intake(cfg.camera.intake_max, clock=clock)
    scanner = NullCamera()
    if source is None and cfg.camera.source != "none":
        from device.frames import open_source

        source = open_source(cfg.camera.source, cfg.camera.path, width=cfg.camera.width, height=cfg.camera.height,
                             fps=cfg.camera.fps, loop=cfg.camera.loop, replay_fps=cfg.camera.replay_fps)
    if source is not None:
        from kiosk.door.decode import Scanner, default_decoder

        scanner = Scanner(source, default_decoder(), on_code=intake.camera, rearm_seconds=cfg.camera.rearm_seconds,
                          on_frame=screen.set_preview)
    from device.audio import open_speaker

    stages = Stages(desk=desk, ledger=ledger, signals=signals, scanner=scanner, screen=screen, publisher=publisher,
                    speaker=open_speaker(cfg.audio), extra_sources=_code_scanners(cfg, intake.scanner), trust=trust,
                    services=_tracing(cfg, publisher, device_key))
    kiosk = Kiosk(cfg, stages, notifier=notifier, on_checkin=on_checkin, intake=intake, clock=clock)
    kiosk.remote = remote.install(kiosk, cfg, publisher, device_key.key)  # signed commands, on the control thread
    return kiosk


def _tracing(cfg: Config, publisher, device_key) -> list:
    """The trace responder behind the publisher (docs/tracing.md), when the kiosk talks to a broker.

    It answers even with the visit log off (the answer is "log off"), so the authority knows who
    was asked. A responder that cannot be built (no ledger file yet, a bad authority key) leaves
    the door working and says why once.
    """
    if not cfg.mqtt.enabled:
        return []
    from kiosk.tracing import responder_from_config
    from kiosk.tracing.service import TraceService

    try:
        # the responder signs with, and opens case entries by, the Ed25519 key itself (not the DeviceKey wrapper)
        return [TraceService(responder_from_config(cfg, device_key=device_key.key), publisher)]
    except Exception as exc:  # noqa: BLE001 - tracing must never stop the door
        log.error("contact tracing is unavailable: %s", exc)
        return []


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
