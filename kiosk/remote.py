"""The centre's reach into a running kiosk: its signed commands, wired to the control thread.

MQTT network thread           control thread                      check-in flow
 cmd/+ message  --offer-->  CommandGate.drain: check, act, answer   (never waits on any of it)
                            Coalescer: one trust reload per interval

:func:`install` subscribes the kiosk to ``checkin/v1/{site}/{device}/cmd/+`` through the
publisher's ``subscribe`` (re-subscribed on every connect) and answers every message on
``cmd-result`` through its ``send``. The network thread only queues; checking signatures,
writing the replay floor, reloading trust and signing the answer run on the kiosk's
control thread, so a flood of commands costs the flow nothing but a share of the CPU.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from dataclasses import dataclass

from kiosk.command_gate import (CommandGate, Coalescer, RELOAD_MIN_INTERVAL_S, centre_keyring, notice_action,
                                reload_action)
from kiosk.publish.topics import Topics

log = logging.getLogger(__name__)

FLOOR_FILE = "command-floor.json"  # in the state dir: the newest command issue time acted on


class ReloadTimer:
    """Runs a :class:`Coalescer`'s folded request when it falls due, on the control thread."""

    def __init__(self, coalescer: Coalescer, post):
        self.coalescer = coalescer
        self.post = post
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()

    def arm(self) -> None:
        """After a request: make sure a folded one will run (one timer, however many requests)."""
        due = self.coalescer.due_in()
        with self._lock:
            if due is None or self._timer is not None:
                return
            self._timer = threading.Timer(max(due, 0.1), self._fire)  # never a busy loop on a full queue
            self._timer.daemon = True
            self._timer.start()

    def _fire(self) -> None:
        with self._lock:
            self._timer = None

        def run():
            self.coalescer.poll()
            self.arm()  # still pending (not due yet on this clock): wait again

        if not self.post(run, "trust reload"):
            self.arm()  # the control queue is full: try again when due

    def cancel(self) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()


@dataclass
class Remote:
    """What :func:`install` wired: the gate, and the coalesced trust reload (for doctor and tests)."""

    gate: CommandGate
    reloads: Coalescer
    timer: ReloadTimer

    def close(self) -> None:
        self.timer.cancel()


def reload_trust(kiosk) -> None:
    """Re-read the trust the config names and swap it in whole (the duplicate window is kept)."""
    from kiosk.assembly import load_trust

    s = kiosk.stages
    # Parsing hundreds of certificates is tens of ms of pure Python holding the interpreter lock;
    # switching threads 10x more often meanwhile keeps the check-in flow's waits short.
    interval = sys.getswitchinterval()
    sys.setswitchinterval(min(interval, 0.0005))
    try:
        trust = load_trust(kiosk.cfg)  # raises on a bad file: the Coalescer logs it, the old trust stays
    finally:
        sys.setswitchinterval(interval)
    s.trust = s.desk.verifier.trust = trust
    log.info("trust reloaded: %d signer(s)", len(trust))


def install(kiosk, cfg, publisher, device_key, *, reload=None, reload_interval_s: float = RELOAD_MIN_INTERVAL_S,
            clock=time.time) -> Remote:
    """Subscribe ``kiosk`` to its signed commands. ``device_key`` signs the answers (an Ed25519 private key).

    Raises :class:`kiosk.signing.SigningKeyError` when ``[mqtt] centre_key`` names an unusable key.
    """
    topics = Topics(cfg.device.site, cfg.device.id)
    ring = centre_keyring(cfg.mqtt.centre_key and str(cfg.resolve(cfg.mqtt.centre_key)))
    if cfg.mqtt.commands and not len(ring):
        log.warning("[mqtt] commands are enabled but [mqtt] centre_key is empty: every command will be refused")
    coalescer = Coalescer(lambda: (reload or reload_trust)(kiosk), interval_s=reload_interval_s)
    timer = ReloadTimer(coalescer, kiosk.post)
    gate = CommandGate(topics.base, ring, cfg.mqtt.commands,
                       {"notice": notice_action(kiosk.set_notice), "reload-trust": reload_action(coalescer, timer.arm)},
                       device_key, lambda topic, payload: publisher.send(topic, payload),
                       cfg.mqtt.command_max_age_seconds, state_file=cfg.resolve(cfg.device.state_dir) / FLOOR_FILE,
                       clock=clock, schedule=lambda fn: kiosk.post(fn, "centre commands"))
    publisher.subscribe(gate.topic_filter, gate.offer)
    return Remote(gate, coalescer, timer)
