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

from kiosk.command_gate import (CommandGate, Coalescer, RELOAD_MIN_INTERVAL_S, centre_keyring, notice_action,
                                reload_action, update_action)
from kiosk.publish.topics import PREFIX, Topics

log = logging.getLogger(__name__)

FLOOR_FILE = "command-floor.json"  # in the state dir: the newest command issue time acted on
FLEET_BUNDLE_TOPIC = f"{PREFIX}/trust/bundle"


def bundle_topics(site: str) -> list[str]:
    """The retained topics a kiosk takes trust bundles from: the fleet's and its site's."""
    return [FLEET_BUNDLE_TOPIC, f"{PREFIX}/{site}/trust/bundle"]


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


class BundleMailbox:
    """The newest trust-bundle payload per topic, handed to the keeper on the control thread.

    A retained bundle arrives on every connect, and a broker user may publish many: only the
    latest per topic waits (memory bounded by two bundles), applied once per batch.
    """

    def __init__(self, keeper, post, max_bytes: int):
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


def reload_trust(kiosk) -> None:
    """``reload-trust``: re-read ``[trust] paths`` and the ``[trust] bundle`` file.

    With a trust keeper the plain files become its fallback and the bundle file is offered
    like one from MQTT (an older one is refused, the newer kept); without one (a kiosk built
    from a plain store) the store is swapped whole. The duplicate window is kept either way.
    """
    from kiosk.assembly import load_trust

    cfg, s = kiosk.cfg, kiosk.stages
    with fine_switching():
        if hasattr(s.trust, "replace_fallback"):
            from kiosk.trust import TrustStore

            paths = [str(cfg.resolve(p)) for p in cfg.trust.paths]
            s.trust.replace_fallback(TrustStore.load(paths) if paths else TrustStore.empty())  # raises on a bad file
            if cfg.trust.bundle and len(s.trust.authority):
                s.trust.load_file(cfg.resolve(cfg.trust.bundle))
        else:
            s.trust = s.desk.verifier.trust = load_trust(cfg)
    log.info("trust reloaded: %d signer(s)%s", len(s.trust),
             f", bundle version {s.trust.version}" if getattr(s.trust, "version", None) is not None else "")


def install(kiosk, cfg, publisher, device_key, *, reload=None, reload_interval_s: float = RELOAD_MIN_INTERVAL_S,
            clock=time.time) -> Remote:
    """Subscribe ``kiosk`` to its signed commands and its trust bundles. ``device_key`` signs the answers.

    Raises :class:`kiosk.signing.SigningKeyError` when ``[mqtt] centre_key`` names an unusable key.
    """
    topics = Topics(cfg.device.site, cfg.device.id)
    ring = centre_keyring(cfg.mqtt.centre_key and str(cfg.resolve(cfg.mqtt.centre_key)))
    if cfg.mqtt.commands and not len(ring):
        log.warning("[mqtt] commands are enabled but [mqtt] centre_key is empty: every command will be refused")
    coalescer = Coalescer(lambda: (reload or reload_trust)(kiosk), interval_s=reload_interval_s)
    timer = ReloadTimer(coalescer, kiosk.post)
    from kiosk import update_spool

    spool = cfg.resolve(cfg.device.state_dir) / update_spool.REQUEST_FILE
    queue_update = lambda command: update_spool.write(spool, command.topic, command.signed)  # noqa: E731
    gate = CommandGate(topics.base, ring, cfg.mqtt.commands,
                       {"notice": notice_action(kiosk.set_notice), "reload-trust": reload_action(coalescer, timer.arm),
                        "update": update_action(queue_update)},
                       device_key, lambda topic, payload: publisher.send(topic, payload),
                       cfg.mqtt.command_max_age_seconds, state_file=cfg.resolve(cfg.device.state_dir) / FLOOR_FILE,
                       clock=clock, schedule=lambda fn: kiosk.post(fn, "centre commands"))
    publisher.subscribe(gate.topic_filter, gate.offer)
    remote = Remote(gate, coalescer, timer)
    keeper = kiosk.stages.trust
    if hasattr(keeper, "offer") and len(getattr(keeper, "authority", ())):
        from kiosk.trust_bundle import MAX_BUNDLE_BYTES

        remote.bundles = BundleMailbox(keeper, kiosk.post, MAX_BUNDLE_BYTES)
        for topic in bundle_topics(cfg.device.site):
            publisher.subscribe(topic, remote.bundles.offer)
    return remote
