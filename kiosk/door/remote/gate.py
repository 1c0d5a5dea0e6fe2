"""The gate every centre-to-kiosk command passes (docs/mqtt.md ``cmd/{name}``, docs/security.md).

Trust rule: a command changes what the kiosk does only when the centre's key
(``[mqtt] centre_key``) signed it for this kiosk's topic, its name is enabled
in ``[mqtt] commands``, it is fresh and it was never seen before. The checks
run in a fixed order, cheapest and least revealing first, and each failure is
one stable word published on ``.../cmd-result`` (signed with the device key)
and logged:

    too-large, wrong-topic, unknown-command, not-enabled,           (before any crypto)
    malformed, unsigned, unknown-key, bad-signature,                (kiosk.wire.signing)
    name-mismatch, malformed,                                       (the signed payload's shape)
    not-yet-valid, expired, stale, replayed,                        (freshness, replay)
    state-unwritable, bad-body, reload-failed, failed               (acting on it)

Threads: :meth:`CommandGate.offer` is called on the MQTT network thread and only
appends to a bounded inbox; :meth:`CommandGate.drain` runs on the kiosk's control
thread, never on the check-in flow. An accepted command's issue time is written
to the state dir *before* the command acts, so a command captured on the wire
cannot be replayed after a kiosk restart (see :class:`ReplayFloor`).
"""

from __future__ import annotations

import collections
import json
import logging
import os
import re
import threading
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from kiosk.wire import commands, reasons, signing
from kiosk.wire.commands import (BAD_BODY, CLEARED, COALESCED, FAILED, NAME_MISMATCH, NOT_ENABLED, OK, QUEUED, REFUSED,
                                 RELOAD_FAILED, RELOADED, SHOWN, STATE_UNWRITABLE, UNKNOWN_COMMAND, WRONG_TOPIC)
from kiosk.wire.reasons import TOO_LARGE
from kiosk.wire.topics import Topics
from kiosk.errors import KioskValueError, SignatureRefused

log = logging.getLogger(__name__)

MAX_COMMAND_BYTES = 4096  # the whole signed message; a notice is at most NOTICE_MAX_CHARS anyway
NOTICE_MAX_CHARS = 200
INBOX_MAX = 2048  # commands waiting for the control thread; beyond it the newest are dropped (counted)
RELOAD_MIN_INTERVAL_S = 10.0  # a trust reload at most this often, whatever the centre sends
SLICE = 8  # commands handled back to back before the control thread rests (a few ms of CPU)
REST_FACTOR = 9.0  # rest this many times as long as the slice took: a flood gets at most 1/10 of the CPU

_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")
_ID = re.compile(r"^[0-9A-Za-z-]{8,64}$")
# Characters never shown or logged: controls, format characters (bidi overrides can make a
# log line read backwards), line/paragraph separators, surrogates, private use, unassigned.
_DROP = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}


class CommandRefused(KioskValueError):
    """A command that must not act; ``reason`` is the stable word sent on cmd-result."""

    def __init__(self, reason: str, detail: str = ""):
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


def sanitise_notice(text: str, limit: int = NOTICE_MAX_CHARS) -> str:
    """Text fit for the guard's bar and a log line: one line, printable, NFC, at most ``limit`` characters.

    Line breaks and tabs become spaces, other control and format characters are dropped,
    runs of spaces collapse: a notice can neither forge a log line nor hide text.
    """
    text = unicodedata.normalize("NFC", text)
    out = []
    for ch in text:
        if ch in "\r\n\t\v\f\x85\u2028\u2029":
            out.append(" ")
        elif unicodedata.category(ch) not in _DROP:
            out.append(ch)
    return " ".join("".join(out).split())[:limit].rstrip()


@dataclass(frozen=True)
class Command:
    """A command that passed every check: it may act."""

    id: str
    name: str
    body: Any
    issued_at: float  # epoch seconds of ``iat``
    topic: str = ""
    signed: bytes = b""  # the message as the centre signed it: ``update`` hands it on to be checked again


@dataclass(frozen=True)
class Outcome:
    """What the kiosk answers on cmd-result for one inbound message."""

    id: str | None
    name: str
    result: str  # OK or REFUSED
    reason: str

    def payload(self, now: float) -> dict:
        return {"id": self.id, "name": self.name, "result": self.result, "reason": self.reason,
                "ts": signing.iso(now)}


class ReplayFloor:
    """The newest issue time of any command this kiosk ever acted on, kept in the state dir.

    After a restart the in-memory nonces are gone; a command issued at or before the
    floor is refused as ``replayed``, so a command captured on the wire acts at most
    once even across restarts and a clock that was wrong at boot (a Pi has no RTC).
    One small JSON file, replaced atomically and fsync'ed before the command acts.
    A command lost between check and write never acted, so replaying it is harmless.
    """

    def __init__(self, path: str | os.PathLike | None, clock: Callable[[], float] = time.time):
        self.path = Path(path) if path else None
        self.value = float("-inf")  # newest issue time acted on, this process included
        self.at_start = self.value  # what refuses: inside one process the nonces catch replays
        if self.path is None:
            return
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            self.value = float(signing.parse_iso(data["newest_iat"]).timestamp())
        except FileNotFoundError:
            pass  # a new kiosk: no command ever acted
        except (OSError, ValueError, KeyError, TypeError, SignatureRefused) as exc:
            # Unreadable: refuse everything issued before now rather than trust nothing happened.
            self.value = clock()
            log.warning("command replay floor %s unreadable (%s); refusing commands issued before now",
                        self.path, type(exc).__name__)
        self.at_start = self.value

    def refuses(self, issued_at: float) -> bool:
        """Issued at or before the newest command a previous run acted on."""
        return issued_at <= self.at_start

    def advance(self, issued_at: float) -> None:
        """Record ``issued_at`` (if newer) durably; raises OSError when it cannot be written."""
        if issued_at <= self.value:
            return
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(self.path.name + ".tmp")
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump({"version": 1, "newest_iat": signing.iso(issued_at)}, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        self.value = issued_at


class Coalescer:
    """Runs an expensive action (a trust reload) at most once per ``interval_s``.

    A request when the last run is older than the interval runs now; a request inside
    the interval is folded into one run at the end of it (:meth:`poll` runs it), so a
    flood of requests costs at most one run per interval and never queues work.
    """

    def __init__(self, action: Callable[[], None], interval_s: float = RELOAD_MIN_INTERVAL_S,
                 clock: Callable[[], float] = time.monotonic):
        self.action = action
        self.interval_s = interval_s
        self.clock = clock
        self.runs = 0
        self.pending = False
        self._last = float("-inf")

    def request(self) -> tuple[str, str]:
        """``(result, reason)``: ran now (reloaded / reload-failed) or folded into the next run (coalesced)."""
        if self.pending or self.clock() - self._last < self.interval_s:
            self.pending = True
            return OK, COALESCED
        return self._run()

    def due_in(self) -> float | None:
        """Seconds until the folded run is due (0: now); None when none is pending."""
        if not self.pending:
            return None
        return max(0.0, self._last + self.interval_s - self.clock())

    def poll(self) -> None:
        """Run the folded request once it is due (call from the control thread)."""
        if self.pending and self.clock() - self._last >= self.interval_s:
            self._run()

    def _run(self) -> tuple[str, str]:
        self.pending = False
        self._last = self.clock()
        self.runs += 1
        try:
            self.action()
        except Exception as exc:  # a bad trust file must not stop the kiosk; the old trust stays
            log.error("trust reload failed, keeping the current trust: %s", exc)
            return REFUSED, RELOAD_FAILED
        return OK, RELOADED


class CommandGate:
    """Checks, runs and answers the centre's commands for one kiosk.

    ``topics`` are the kiosk's (:class:`kiosk.wire.topics.Topics`); ``actions``
    maps a command name to ``fn(command) -> (result, reason)``; ``send(topic, bytes)``
    publishes the signed cmd-result (QoS 1, not retained, best effort); ``schedule(fn)``
    (the kiosk's ``post``) runs ``fn`` on the control thread: :meth:`offer` uses it to
    have the inbox drained, once per batch however many messages arrive.
    """

    def __init__(self, topics: Topics, centre_keys: signing.KeyRing, enabled: Iterable[str],
                 actions: Mapping[str, Callable[[Command], tuple[str, str]]], device_key,
                 send: Callable[[str, bytes], None], max_age_s: float, *, state_file=None,
                 clock: Callable[[], float] = time.time, max_bytes: int = MAX_COMMAND_BYTES,
                 inbox_max: int = INBOX_MAX, schedule: Callable[[Callable[[], object]], bool] | None = None):
        self.topics = topics
        self.prefix = topics.cmd_prefix
        self.result_topic = topics.cmd_result
        self.centre_keys = centre_keys
        self.enabled = frozenset(enabled)
        self.actions = dict(actions)
        self.device_key = device_key
        self.send = send
        self.clock = clock
        self.max_bytes = max_bytes
        self.guard = signing.ReplayGuard(max_age_s, clock=clock)
        self.floor = ReplayFloor(state_file, clock=clock)
        self.inbox: collections.deque[tuple[str, bytes]] = collections.deque()
        self.inbox_max = inbox_max
        self.dropped = 0
        self.answered: collections.Counter[str] = collections.Counter()  # reason -> count
        self.schedule = schedule
        self.rest: Callable[[float], None] = time.sleep  # tests pass a fake
        self._drain_posted = False
        self._lock = threading.Lock()

    @property
    def topic_filter(self) -> str:
        """What to subscribe to: every name, so that disabled and unknown ones are answered too."""
        return self.topics.cmd_filter

    # -- network thread ------------------------------------------------------------
    def offer(self, topic: str, payload: bytes) -> bool:
        """Queue one inbound message (MQTT network thread: never blocks). False when the inbox is full."""
        with self._lock:
            if len(self.inbox) >= self.inbox_max:
                self.dropped += 1
                if self.dropped == 1 or self.dropped % 1000 == 0:
                    log.warning("command inbox full: %d command message(s) dropped unanswered", self.dropped)
                return False
            self.inbox.append((topic, bytes(payload[:self.max_bytes + 1])))
            post = self.schedule is not None and not self._drain_posted
            self._drain_posted = self._drain_posted or post
        if post and not self.schedule(self.drain):
            with self._lock:  # the control queue is full: the next message tries again
                self._drain_posted = False
        return True

    # -- control thread --------------------------------------------------------------
    def drain(self) -> list[Outcome]:
        """Check, act on and answer every queued message, oldest first (control thread).

        Paced: a slice of :data:`SLICE` messages, then a rest of :data:`REST_FACTOR` times as
        long as the slice took, so a flood takes at most a fifth of the CPU and the check-in
        flow (which shares the interpreter lock) never waits behind more than one slice.
        """
        outcomes: list[Outcome] = []
        with self._lock:
            self._drain_posted = False  # from here on a new message needs a new drain
        while True:
            with self._lock:
                batch = [self.inbox.popleft() for _ in range(min(SLICE, len(self.inbox)))]
            if not batch:
                return outcomes
            started = time.perf_counter()
            outcomes += self.handle_many(batch)
            if self.inbox:
                self.rest(REST_FACTOR * (time.perf_counter() - started))

    def handle(self, topic: str, payload: bytes) -> Outcome:
        """Check, act on and answer one message (control thread)."""
        return self.handle_many([(topic, payload)])[0]

    def handle_many(self, messages: list[tuple[str, bytes]]) -> list[Outcome]:
        """Check all, write the replay floor once for the accepted ones, then act and answer in order."""
        checked: list[Command | Outcome] = [self._check_or_refuse(t, p) for t, p in messages]
        accepted = [c for c in checked if isinstance(c, Command)]
        writable = True
        if accepted:
            try:
                self.floor.advance(max(c.issued_at for c in accepted))
            except OSError as exc:
                log.error("cannot record the command replay floor in %s (%s); refusing the commands",
                          self.floor.path, exc.strerror or exc)
                writable = False
        outcomes = []
        for item in checked:
            if isinstance(item, Command):
                item = self._act(item) if writable else Outcome(item.id, item.name, REFUSED, STATE_UNWRITABLE)
            outcomes.append(item)
            self._answer(item)
        return outcomes

    def check(self, topic: str, payload: bytes) -> Command:
        """The checks in their fixed order; raises CommandRefused with the first failing reason."""
        if len(payload) > self.max_bytes:
            raise CommandRefused(TOO_LARGE, f"larger than {self.max_bytes} bytes")
        if not topic.startswith(self.prefix):
            raise CommandRefused(WRONG_TOPIC)
        name = topic[len(self.prefix):]
        if name not in commands.NAMES:
            raise CommandRefused(UNKNOWN_COMMAND)
        if name not in self.enabled or name not in self.actions:
            raise CommandRefused(NOT_ENABLED)
        try:
            verified = signing.verify(payload, topic, self.centre_keys, max_bytes=self.max_bytes)
            body = verified.payload
            if body.get("name") != name:
                raise CommandRefused(NAME_MISMATCH)
            if not isinstance(body.get("id"), str) or not _ID.match(body["id"]):
                raise CommandRefused(reasons.MALFORMED, "id")
            self.guard.check(body)  # not-yet-valid, expired, stale, replayed (this process)
        except SignatureRefused as exc:
            raise CommandRefused(exc.reason, exc.detail) from None
        issued = signing.parse_iso(body["iat"]).timestamp()
        if self.floor.refuses(issued):  # acted on before a restart, or older than that
            raise CommandRefused(reasons.REPLAYED, "issued before the newest command acted on")
        return Command(id=body["id"], name=name, body=body.get("body"), issued_at=issued, topic=topic,
                       signed=payload)

    def _check_or_refuse(self, topic: str, payload: bytes) -> Command | Outcome:
        try:
            return self.check(topic, payload)
        except CommandRefused as exc:
            return Outcome(_claimed_id(payload, self.max_bytes), _claimed_name(topic, self.prefix), REFUSED, exc.reason)

    def _act(self, command: Command) -> Outcome:
        try:
            result, reason = self.actions[command.name](command)
        except CommandRefused as exc:
            result, reason = REFUSED, exc.reason
        except Exception:  # a faulty action must not kill the control thread
            log.exception("command %s %s failed", command.name, command.id)
            result, reason = REFUSED, FAILED
        return Outcome(command.id, command.name, result, reason)

    def _answer(self, outcome: Outcome) -> None:
        self.answered[outcome.reason] += 1
        level = logging.INFO if outcome.result == OK else logging.WARNING
        # %r: whatever a message carried, it cannot start a new log line.
        log.log(level, "command %r id %r: %s %s", outcome.name, outcome.id, outcome.result, outcome.reason)
        message = signing.sign_bytes(outcome.payload(self.clock()), self.result_topic, self.device_key)
        try:
            if self.send(self.result_topic, message) is False:
                log.info("cmd-result for %r not sent: the broker is not connected", outcome.id)
        except Exception as exc:  # best effort: the broker may be gone; the command's effect stands
            log.warning("cmd-result for %r not sent: %s", outcome.id, exc)


def _claimed_name(topic: str, prefix: str) -> str:
    """The topic's command name for the answer, if it looks like one ('' otherwise)."""
    name = topic[len(prefix):] if topic.startswith(prefix) else ""
    return name if _NAME.match(name) else ""


def _claimed_id(payload: bytes, max_bytes: int) -> str | None:
    """The id a refused message claims, echoed only when it has the shape of an id (else null)."""
    if len(payload) > max_bytes:
        return None
    try:
        obj = json.loads(payload)
    except (ValueError, RecursionError):
        return None
    claimed = obj.get("id") if isinstance(obj, dict) else None
    return claimed if isinstance(claimed, str) and _ID.match(claimed) else None


# -- the kiosk's commands ------------------------------------------------------------

def notice_action(show: Callable[[str], None]) -> Callable[[Command], tuple[str, str]]:
    """``notice``: body is the text for the guard's bar (sanitised); empty clears it."""

    def run(command: Command) -> tuple[str, str]:
        body = command.body
        if body is None:
            body = ""
        if isinstance(body, dict):
            body = body.get("text", "")
        if not isinstance(body, str):
            raise CommandRefused(BAD_BODY, "notice text must be a string")
        text = sanitise_notice(body)
        show(text)
        log.info("notice from the centre: %r", text)
        return OK, SHOWN if text else CLEARED

    return run


def reload_action(coalescer: Coalescer, folded: Callable[[], None] | None = None) -> Callable[[Command], tuple[str, str]]:
    """``reload-trust``: rate-limited and coalesced; the body is ignored. ``folded()`` after a folded request."""

    def run(command: Command) -> tuple[str, str]:
        outcome = coalescer.request()
        if folded is not None and coalescer.pending:
            folded()
        return outcome

    return run


def update_action(queue: Callable[[Command], None]) -> Callable[[Command], tuple[str, str]]:
    """``update``: the body names a release (version, url, sha256); ``queue(command)`` hands the signed command
    to the root updater, which checks the signature again before it installs anything (kiosk.wire.update)."""
    from kiosk.wire.update import BadRequest, release_of

    def run(command: Command) -> tuple[str, str]:
        try:
            release_of(command.body)
        except BadRequest as exc:
            raise CommandRefused(BAD_BODY, str(exc)) from None
        queue(command)
        log.info("update to %r queued for the root updater", command.body.get("version"))
        return OK, QUEUED

    return run


def centre_keyring(ref: str, base=None) -> signing.KeyRing:
    """The centre's command key from ``[mqtt] centre_key`` (a PEM file); empty: a ring that trusts nobody."""
    if not ref:
        return signing.KeyRing()
    path = Path(ref)
    if base is not None and not path.is_absolute():
        path = Path(base) / path
    return signing.KeyRing.of({"centre": signing.load_public_key(path)})
