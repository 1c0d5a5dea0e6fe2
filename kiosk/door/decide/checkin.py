"""Decide stage: one scanned code -> one :class:`Checkin` (verdict, reason, pseudonym).

The desk verifies the payload, applies the venue policy, and counts the same
person only once inside the duplicate window. "The same person" is the
format plug-in's normalized identity (one person may show two different QR
strings), remembered only as a keyed hash.

The window is a seam (:class:`Window`): the running kiosk uses the ledger's
persistent one (:class:`LedgerWindow`), so a restart never counts the people
already inside a second time; :class:`DuplicateWindow` keeps it in memory for
tools and tests. The desk also says whether the door may open
(:attr:`Checkin.opens_door`): by default only for a code whose signature
verified; an unsigned code (PC-Covid, CCCD) is checked in and counted while
the door stays shut for the guard to check the ID card.
"""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Mapping, Protocol

from kiosk.wire import reasons
from kiosk.door.verify import CodeCheck, Holder

SCREEN_FACTS = ("valid_until", "expires_at")  # what a verdict screen may say of a code
ACCEPT = "accept"
REJECT = "reject"


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class Checkin:
    """One visitor's check-in decision: what the ledger records and the screen shows."""

    id: str
    at: datetime
    verdict: str
    reason: str
    format: str
    valid: bool
    signed: bool
    pseudonym: str | None
    holder: Holder | None
    captured_at: float
    source: str
    duplicate: bool = False
    opens_door: bool = False  # the relay opens for this check-in (accepted and verified, or the venue's choice)
    # The code's validity facts the verdict screen names ("expired on <date>"): only these, never personal data.
    facts: Mapping[str, Any] = field(default_factory=dict)

    @property
    def accepted(self) -> bool:
        return self.verdict == ACCEPT

    @property
    def needs_guard(self) -> bool:
        """The door stays shut: a reject, a refused duplicate, or an unsigned code the guard must check."""
        return not self.opens_door


class Window(Protocol):
    """Who was admitted recently. ``seen_recently`` answers for ``key`` at wall-clock ``at``."""

    def seen_recently(self, key: str, at: datetime) -> bool: ...


class LedgerWindow:
    """The ledger's persistent duplicate window: the ledger remembers admissions when it records them."""

    def __init__(self, ledger):
        self.ledger = ledger

    def seen_recently(self, key: str, at: datetime) -> bool:
        return self.ledger.recently_admitted(key, at)


class DuplicateWindow:
    """Remembers who was admitted recently, by pseudonym, in memory (bounded); forgotten on restart."""

    def __init__(self, seconds: float, max_entries: int = 50_000):
        self.seconds = seconds
        self.max_entries = max_entries
        self._seen: OrderedDict[str, float] = OrderedDict()

    def seen_recently(self, key: str, now: float | datetime) -> bool:
        """True when ``key`` was admitted within the window; otherwise remembers it as admitted now."""
        if isinstance(now, datetime):
            now = now.timestamp()
        self._expire(now)
        if key in self._seen:
            return True
        self._seen[key] = now
        if len(self._seen) > self.max_entries:
            self._seen.popitem(last=False)
        return False

    def _expire(self, now: float) -> None:
        while self._seen:
            key, t = next(iter(self._seen.items()))
            if now - t < self.seconds:
                break
            self._seen.popitem(last=False)


class CheckinDesk:
    """verify -> policy -> duplicate window. Thread-safe; never raises for bad payloads."""

    def __init__(self, verifier, policy, pseudonymize: Callable[[str], str], duplicate_window_s: float = 1800.0,
                 duplicates_accepted: bool = True, clock: Callable[[], datetime] | None = None,
                 unsigned_opens_door: bool = False, window: Window | None = None):
        self.verifier = verifier
        self.policy = policy
        self.pseudonymize = pseudonymize
        self.duplicate_window_s = duplicate_window_s
        self.window: Window = window or DuplicateWindow(duplicate_window_s)
        self.duplicates_accepted = duplicates_accepted
        self.unsigned_opens_door = unsigned_opens_door
        self.clock = clock or _utcnow  # wall clock: validity times and the duplicate window
        self._lock = threading.Lock()

    def admit(self, text: str, captured_at: float, source: str = "camera", now: datetime | None = None) -> Checkin:
        """Decide on one scanned payload."""
        now = now or self.clock()
        check: CodeCheck = self.verifier.check(text, at=now)
        verdict, reason = self.policy.decide(check, now)
        pseudonym = self.pseudonymize(check.identity) if check.identity else None
        duplicate = False
        if verdict == ACCEPT and pseudonym is not None:
            with self._lock:
                duplicate = self.window.seen_recently(pseudonym, now)
            if duplicate:
                # The code is fine, the person is already inside: let them through
                # (or not, by policy) but never count them twice.
                reason = reasons.DUPLICATE
                verdict = ACCEPT if self.duplicates_accepted else REJECT
        opens_door = verdict == ACCEPT and (check.signed or self.unsigned_opens_door)
        return Checkin(id=uuid.uuid4().hex, at=now, verdict=verdict, reason=reason, format=check.format,
                       valid=check.valid, signed=check.signed, pseudonym=pseudonym, holder=check.holder,
                       captured_at=captured_at, source=source, duplicate=duplicate, opens_door=opens_door,
                       facts={k: check.facts[k] for k in SCREEN_FACTS if k in check.facts})
