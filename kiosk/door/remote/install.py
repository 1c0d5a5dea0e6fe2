"""The centre's reach into a running kiosk: signed commands and trust bundles, on the control thread.

MQTT network thread              control thread                           check-in flow
 cmd/+ message   --offer-->   CommandGate.drain: check, act, answer        (never waits on
                              Coalescer: one trust reload per interval      any of it)
 trust/bundle    --offer-->   BundleMailbox.apply: TrustKeeper.offer

:func:`install` subscribes the kiosk, through the publisher's ``subscribe`` (re-subscribed
on every connect), to ``checkin/v1/{site}/{device}/cmd/+`` (answered on ``cmd-result``
through ``send``) and to the retained trust-bundle topics ``checkin/v1/trust/bundle`` and
``checkin/v1/{site}/trust/bundle`` (BRIEF contract 4). The network thread only queues;
checking signatures, writing the replay floor, reloading or applying trust and signing
answers run on the kiosk's control thread, so a flood costs the flow only a share of the CPU.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import sys
import threading
import time
from dataclasses import dataclass, field

from typing import Callable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk.config import Config
from kiosk.door.publish.base import Telemetry
from kiosk.door.remote.gate import (RELOAD_MIN_INTERVAL_S, CommandGate, Coalescer, centre_keyring, notice_action,
                                    reload_action, update_action)
from kiosk.trust.bundle import MAX_BUNDLE_BYTES, TrustKeeper
from kiosk.trust.store import TrustStore
from kiosk.wire import update as update_request
from kiosk.wire.topics import Topics, bundle_topics

log = logging.getLogger(__name__)

#: ``post(fn, name)``: run ``fn`` on the kiosk's control thread; False when its queue is full.
Post = Callable[[Callable[[], object], str], bool]

FLOOR_FILE = "command-floor.json"  # in the state dir: the newest command issue time acted on

@contextlib.contextmanager
def fine_switching(interval_s: float = 0.0005):
    """Switch threads more often while the control thread parses trust data.

    Parsing hundreds of certificates is tens of ms of pure Python holding the interpreter
    lock; at the default 5 ms switch interval the check-in flow would wait that long for
    every lock hand-over. Only the control thread changes it, and only for the duration.
    """
    before = sys.getswitchinterval()
    sys.setswitchinterval(min(before, interval_s))
    try:
        yield
    finally:
        sys.setswitchinterval(before)


class ReloadTimer:
    """Runs a :class:`Coalescer`'s folded request when it falls due, on the control thread."""

    def __init__(self, coalescer: Coalescer, post: Post):
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


class BundleMailbox:
    """The newest trust-bundle payload per topic, handed to the keeper on the control thread.

    A retained bundle arrives on every connect, and a broker user may publish many: only the
    latest per topic waits (memory bounded by two bundles), applied once per batch.
    """

    def __init__(self, keeper: TrustKeeper, post: Post, max_bytes: int):
        self.keeper = keeper
        self.post = post
        self.max_bytes = max_bytes
        self.results: collections.deque = collections.deque(maxlen=64)  # (topic, Offered), newest last
        self._latest: dict[str, bytes] = {}
        self._posted = False
        self._lock = threading.Lock()

    def offer(self, topic: str, payload: bytes) -> None:
        """Network thread: keep the payload, have it applied soon. Never blocks."""
        if not payload:
            return  # a cleared retained message: the kiosk keeps its last good bundle
        if len(payload) > self.max_bytes:
            log.warning("trust bundle on %s ignored: larger than %d bytes", topic, self.max_bytes)
            return
        with self._lock:
            self._latest[topic] = bytes(payload)
            post, self._posted = not self._posted, True
        if post and not self.post(self.apply, "trust bundle"):
            with self._lock:
                self._posted = False  # the control queue is full: the next bundle tries again

    def apply(self) -> None:
        """Control thread: offer each waiting bundle to the keeper (it logs what it refuses)."""
        with self._lock:
            waiting, self._latest, self._posted = self._latest, {}, False
        for topic, data in waiting.items():
            with fine_switching():
                self.results.append((topic, self.keeper.offer(data, source=topic)))


@dataclass
class Remote:
    """What :func:`install` wired: the gate, the coalesced trust reload, the bundle mailbox."""

    gate: CommandGate
    reloads: Coalescer
    timer: ReloadTimer
    bundles: BundleMailbox | None = field(default=None)

    def close(self) -> None:
        self.timer.cancel()


def reload_trust(keeper: TrustKeeper, cfg: Config) -> None:
    """``reload-trust``: re-read ``[trust] paths`` and the ``[trust] bundle`` file.

    The plain files become the trust keeper's fallback and the bundle file is offered
    like one from MQTT (an older one is refused, the newer kept). The duplicate window is kept.
    """
    with fine_switching():
        paths = [str(cfg.resolve(p)) for p in cfg.trust.paths]
        keeper.replace_fallback(TrustStore.load(paths) if paths else TrustStore.empty())  # raises on a bad file
        if cfg.trust.bundle and len(keeper.authority):
            keeper.load_file(cfg.resolve(cfg.trust.bundle))
    log.info("trust reloaded: %d signer(s)%s", len(keeper),
             f", bundle version {keeper.version}" if keeper.version is not None else "")


def install(cfg: Config, publisher: Telemetry, keeper: TrustKeeper, device_key: Ed25519PrivateKey, *, post: Post,
            set_notice: Callable[[str], None], reload: Callable[[], None] | None = None,
            reload_interval_s: float = RELOAD_MIN_INTERVAL_S, clock: Callable[[], float] = time.time) -> Remote:
    """Subscribe the kiosk to its signed commands and its trust bundles. ``device_key`` signs the answers.

    ``post`` is the kiosk's control thread (:meth:`kiosk.door.kiosk.Kiosk.post`), ``set_notice`` its
    guard's bar. Raises :class:`kiosk.wire.signing.SigningKeyError` when ``[mqtt] centre_key`` names an
    unusable key.
    """
    topics = Topics(cfg.device.site, cfg.device.id)
    ring = centre_keyring(cfg.mqtt.centre_key and str(cfg.resolve(cfg.mqtt.centre_key)))
    if cfg.mqtt.commands and not len(ring):
        log.warning("[mqtt] commands are enabled but [mqtt] centre_key is empty: every command will be refused")
    coalescer = Coalescer(reload or (lambda: reload_trust(keeper, cfg)), interval_s=reload_interval_s)
    timer = ReloadTimer(coalescer, post)
    spool = cfg.resolve(cfg.device.state_dir) / update_request.REQUEST_FILE
    gate = CommandGate(topics, ring, cfg.mqtt.commands,
                       {"notice": notice_action(set_notice), "reload-trust": reload_action(coalescer, timer.arm),
                        "update": update_action(lambda command: update_request.write(spool, command.topic,
                                                                                     command.signed))},
                       device_key, lambda topic, payload: publisher.send(topic, payload),
                       cfg.mqtt.command_max_age_seconds, state_file=cfg.resolve(cfg.device.state_dir) / FLOOR_FILE,
                       clock=clock, schedule=lambda fn: post(fn, "centre commands"))
    publisher.subscribe(gate.topic_filter, gate.offer)
    remote = Remote(gate, coalescer, timer)
    if len(keeper.authority):
        remote.bundles = BundleMailbox(keeper, post, MAX_BUNDLE_BYTES)
        for topic in bundle_topics(cfg.device.site):
            publisher.subscribe(topic, remote.bundles.offer)
    return remote
