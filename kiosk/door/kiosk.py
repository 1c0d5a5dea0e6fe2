"""The running kiosk: one loop over the intake, the check-in flow and the supervisor.

source -> decode (scan threads) -> intake -> verify -> decide -> record -> signal / show -> publish

The scan threads put each :class:`CodeSeen` into the bounded :class:`Intake`;
the loop (the caller's thread, which owns pygame) hands it to the
:class:`CheckinFlow`, lets the :class:`Supervisor` refresh health about once
a second and lets the screen draw (bounded by ``screen.fps``, never delaying
a verdict). Work from the network (the centre's signed commands, see
:mod:`kiosk.door.remote.install`; trust bundles and trace requests) is ``post``-ed to the
control thread, off the flow's path.

:func:`kiosk.door.assembly.assemble` builds every stage and the kiosk around them.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

from device.scanners import CodeSeen
from kiosk.config import Config
from kiosk.door.control import Control
from kiosk.door.flow import CheckinFlow, OnCheckin
from kiosk.door.intake import Intake, OverridePress
from kiosk.door.remote.install import Remote
from kiosk.door.stages import Stages
from kiosk.door.supervisor import CAMERA_STUCK_SECONDS, Supervisor
from kiosk.door.systemd import Notify, NullNotifier

log = logging.getLogger(__name__)


class NoRemote:
    """No link to the centre (a kiosk built without one): the null :class:`~kiosk.door.remote.install.Remote`."""

    def close(self) -> None:
        pass


class Kiosk:
    """The running kiosk: the flow, the supervisor and the control thread around one intake."""

    def __init__(self, cfg: Config, stages: Stages, notifier: Notify | None = None,
                 on_checkin: OnCheckin | None = None, *, intake: Intake | None = None,
                 clock: Callable[[], float] | None = None):
        self.cfg = cfg
        self.stages = stages
        self.clock = clock or time.monotonic
        self.intake = intake if intake is not None else Intake(cfg.camera.intake_max, clock=self.clock)
        self.control = Control()
        self.flow = CheckinFlow(stages.desk, stages.ledger, stages.signals, stages.screen, stages.publisher,
                                stages.speaker, override_window_s=cfg.policy.override_window_seconds,
                                clock=self.clock, on_checkin=on_checkin)
        self.supervisor = Supervisor(stages, self.flow, self.intake, notifier or NullNotifier(), notice=lambda: self._notice,
                                     clock=self.clock, camera_stuck_s=CAMERA_STUCK_SECONDS)
        self._stop = threading.Event()
        self._notice = ""
        # The centre's commands and trust bundles (kiosk.door.remote.install.Remote), set by assemble().
        self.remote: Remote | NoRemote = NoRemote()
        stages.signals.on_override = lambda: self.intake.urgent(OverridePress(self.clock()))

    # -- intake (called from scan threads) ---------------------------------------------------
    def code_seen(self, code: CodeSeen) -> bool:
        """Scanner callback: camera codes may be dropped when the intake is full, scanner lines wait."""
        return self.intake.put(code)

    def post(self, fn: Callable[[], object], name: str = "") -> bool:
        """Run ``fn`` on the kiosk's control thread (from any thread, never blocking)."""
        return self.control.post(fn, name)

    def stop(self) -> None:
        self._stop.set()

    # -- centre commands (run on the control thread) ---------------------------------------------
    @property
    def notice(self) -> str:
        """The centre's current notice for the guard ('' when none)."""
        return self._notice

    def set_notice(self, text: str) -> None:
        """Show ``text`` on the guard's bar ('' clears it); the command gate has sanitised it."""
        self._notice = text

    # -- main loop ---------------------------------------------------------------------------
    def run(self, until_exhausted: bool = True) -> int:
        """Run until stopped, or (replays) until the source is exhausted and every code handled."""
        s = self.stages
        s.publisher.start()
        s.scanner.start()
        for extra in s.extra_sources:
            extra.start()
        self.control.start()
        for service in s.services:
            service.start()
        tick = 1.0 / max(1, self.cfg.screen.fps)
        try:
            while not self._stop.is_set():
                item = self.intake.get(timeout=tick)
                if isinstance(item, OverridePress):
                    self.flow.override(item.at)
                elif item is not None:
                    self.flow.handle(item)
                self.supervisor.tick()
                if not s.screen.tick():
                    log.info("window closed")
                    break
                if until_exhausted and s.scanner.wait(0) and self.intake.empty():
                    break
        finally:
            self.shutdown()
        return 0

    def shutdown(self) -> None:
        s = self.stages
        self.supervisor.notifier.stopping()
        self.intake.close()
        for part in [s.scanner, *s.extra_sources]:
            _quietly(part.stop)
        self.remote.close()
        for service in s.services:
            _quietly(service.stop)
        self.control.stop()
        _quietly(s.publisher.stop)
        for part in (s.screen, s.speaker, s.signals):
            _quietly(part.close)
        _quietly(s.ledger.close)


def _quietly(fn: Callable[[], object]) -> None:
    try:
        fn()
    except Exception as exc:  # one part failing to stop must not keep the others running
        log.warning("stopping %s failed: %s", getattr(fn, "__qualname__", fn), exc)


__all__ = ["Kiosk"]
