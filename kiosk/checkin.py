"""Decide stage: one scanned code -> one :class:`Checkin` (verdict, reason, pseudonym).

The desk verifies the payload, applies the venue policy, and counts the same
person only once inside the duplicate window. "The same person" is the
format plug-in's normalized identity (one person may show two different QR
strings), remembered only as a keyed hash.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable

from kiosk import reasons
from kiosk.codes import CodeCheck, Holder

ACCEPT = "accept"
REJECT = "reject"


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

    @property
    def accepted(self) -> bool:
        return self.verdict == ACCEPT


class DuplicateWindow:
    """Remembers who was admitted recently, by pseudonym, with bounded memory."""

    def __init__(self, seconds: float, max_entries: int = 50_000):
        self.seconds = seconds
        self.max_entries = max_entries
        self._seen: OrderedDict[str, float] = OrderedDict()

    def seen_recently(self, key: str, now: float) -> bool:
        """True when ``key`` was admitted within the window; otherwise remembers it as admitted now."""
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
                 duplicates_accepted: bool = True, clock: Callable[[], float] = time.monotonic):
        self.verifier = verifier
        self.policy = policy
        self.pseudonymize = pseudonymize
        self.window = DuplicateWindow(duplicate_window_s)
        self.duplicates_accepted = duplicates_accepted
        self.clock = clock
        self._lock = threading.Lock()

    def admit(self, text: str, captured_at: float, source: str = "camera", now: datetime | None = None) -> Checkin:
        """Decide on one scanned payload."""
        now = now or datetime.now(timezone.utc)
        check: CodeCheck = self.verifier.check(text, at=now)
        verdict, reason = self.policy.decide(check, now)
        pseudonym = self.pseudonymize(check.identity) if check.identity else None
        duplicate = False
        if verdict == ACCEPT and pseudonym is not None:
            with self._lock:
                duplicate = self.window.seen_recently(pseudonym, self.clock())
            if duplicate:
                # The code is fine, the person is already inside: let them through
                # (or not, by policy) but never count them twice.
                reason = reasons.DUPLICATE
                verdict = ACCEPT if self.duplicates_accepted else REJECT
        return Checkin(id=uuid.uuid4().hex, at=now, verdict=verdict, reason=reason, format=check.format,
                       valid=check.valid, signed=check.signed, pseudonym=pseudonym, holder=check.holder,
                       captured_at=captured_at, source=source, duplicate=duplicate)
