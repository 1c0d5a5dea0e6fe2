"""The ledger as the running kiosk sees it: out of service instead of a crash when it cannot write.

A full disk, a read-only or corrupt file, at start or later, must not turn
into a traceback and a restart loop under ``Restart=on-failure``: the kiosk
stays up, shows "out of service" (``ok`` is False), and retries with
exponential backoff (``retry()``, called by the supervisor about once a
second). The moment a write succeeds again it serves. Reads (``counts``,
``pending``) answer from the last good state while the file is down, so the
status bar and the publisher keep going.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, TypeVar

from kiosk.door.record.store import COUNTER_TOTALS, Ledger, LedgerError, OutboxMessage

if TYPE_CHECKING:
    from kiosk.door.decide.checkin import Checkin

T = TypeVar("T")

log = logging.getLogger(__name__)


class LedgerDown(LedgerError):
    """The ledger is out of service right now; nothing was recorded."""


def _empty_counts(day: str) -> dict:
    return {"day": day, **{k: 0 for k in COUNTER_TOTALS}, "by_reason": {}, "by_format": {},
            "hourly": [0] * 24, "last_scan": None, "seq": 0}


class LedgerKeeper:
    """Wraps :class:`Ledger`; same reading and writing methods, plus ``ok``, ``error`` and ``retry()``.

    ``open_ledger`` makes a fresh :class:`Ledger` (it may raise LedgerError);
    ``clock`` is monotonic seconds (injected so tests never sleep).
    """

    def __init__(self, open_ledger: Callable[[], Ledger], clock: Callable[[], float] = time.monotonic,
                 backoff_min_s: float = 0.5, backoff_max_s: float = 15.0):
        self._open = open_ledger
        self.clock = clock
        self.backoff_min_s, self.backoff_max_s = backoff_min_s, backoff_max_s
        self._lock = threading.RLock()
        self._ledger: Ledger | None = None
        self._backoff = backoff_min_s
        self._next_try = 0.0
        self._last_counts: dict | None = None
        self.error = ""
        self.failures = 0  # writes and reopen attempts that failed since start (for tests and doctor)
        try:
            self._ledger = open_ledger()
        except LedgerError as exc:
            self._down(exc, "cannot open the ledger")

    # -- state -------------------------------------------------------------------------

    @property
    def ok(self) -> bool:
        """True while check-ins can be recorded."""
        return not self.error

    @property
    def ledger(self) -> Ledger | None:
        """The open ledger (None while it could not be opened)."""
        return self._ledger

    def _down(self, exc: BaseException, what: str) -> None:
        with self._lock:
            self.failures += 1
            first = not self.error
            self.error = str(exc) or type(exc).__name__
            self._next_try = self.clock() + self._backoff
            if first:
                log.error("%s: %s; the kiosk is OUT OF SERVICE until it can write again (retrying)", what, self.error)
            self._backoff = min(self._backoff * 2, self.backoff_max_s)

    def _up(self) -> None:
        with self._lock:
            if self.error:
                log.warning("ledger writable again: the kiosk serves again")
            self.error = ""
            self._backoff = self.backoff_min_s

    def retry(self) -> bool:
        """When out of service and the backoff has passed: reopen or probe the ledger. Returns ``ok``."""
        if self.ok or self.clock() < self._next_try:
            return self.ok
        with self._lock:
            try:
                if self._ledger is None:
                    self._ledger = self._open()
                self._ledger.probe()
            except LedgerError as exc:
                self._down(exc, "ledger still not writable")
                if self._ledger is not None and isinstance(exc.__cause__, sqlite3.DatabaseError) \
                        and not isinstance(exc.__cause__, sqlite3.OperationalError):
                    self._close_quietly()  # a corrupt file: reopen it next time rather than reuse the handle
                return False
            self._up()
            return True

    def _close_quietly(self) -> None:
        ledger, self._ledger = self._ledger, None
        try:
            if ledger is not None:
                ledger.close()
        except Exception as exc:  # closing a broken file must not stop the retry
            log.debug("closing the broken ledger: %s", exc)

    def _live(self) -> Ledger:
        ledger = self._ledger
        if ledger is None or not self.ok:
            raise LedgerDown(f"ledger out of service: {self.error}")
        return ledger

    # -- writing -------------------------------------------------------------------------

    def record(self, checkin: Checkin) -> int:
        """Commit one check-in; raises LedgerError (and goes out of service) when it cannot."""
        ledger = self._live()
        try:
            return ledger.record(checkin)
        except LedgerError as exc:
            self._down(exc, "cannot record a check-in")
            raise
        except sqlite3.Error as exc:  # e.g. a corrupt page met while reading inside the write
            self._down(exc, "cannot record a check-in")
            raise LedgerError(str(exc)) from exc

    def record_override(self, at: datetime | None = None, id: str | None = None, source: str = "button") -> int:
        ledger = self._live()
        try:
            return ledger.record_override(at=at, id=id, source=source)
        except (LedgerError, sqlite3.Error) as exc:
            self._down(exc, "cannot record an override")
            raise LedgerError(str(exc)) from exc

    def recently_admitted(self, pseudonym: str, at: datetime) -> bool:
        """The persistent duplicate window (False while out of service: the record will fail anyway)."""
        ledger = self._ledger
        if ledger is None or not self.ok:
            return False
        try:
            return ledger.recently_admitted(pseudonym, at)
        except sqlite3.Error as exc:
            self._down(exc, "cannot read the duplicate window")
            return False

    # -- reading (for the status bar and the publisher: never raise) ----------------------

    def _read(self, fn: Callable[[Ledger], T], fallback: T) -> T:
        ledger = self._ledger
        if ledger is None:
            return fallback
        try:
            return fn(ledger)
        except (sqlite3.Error, LedgerError) as exc:
            log.debug("ledger read failed: %s", exc)
            return fallback

    def counts(self, day: str | date | None = None) -> dict[str, object]:
        """The day's figures; the last good ones while the file cannot be read."""
        got = self._read(lambda led: led.counts(day), None)
        if got is None:
            return dict(self._last_counts) if self._last_counts else _empty_counts(day or "")
        if day is None:
            self._last_counts = got
        return got

    def outbox_size(self) -> int:
        return self._read(lambda led: led.outbox_size(), 0)

    def pending(self, limit: int = 100, after_seq: int = 0) -> list[OutboxMessage]:
        return self._read(lambda led: led.pending(limit, after_seq), [])

    def ack_many(self, msg_ids: Iterable[str]) -> int:
        ids = list(msg_ids)
        return self._read(lambda led: led.ack_many(ids), 0)

    def ack(self, msg_id: str) -> None:
        self.ack_many([msg_id])

    def today(self) -> str:
        return self._read(lambda led: led.today(), "")

    @property
    def last_seq(self) -> int:
        return self._read(lambda led: led.last_seq, 0)

    @property
    def path(self) -> Path | None:
        return self._ledger.path if self._ledger is not None else None

    def close(self) -> None:
        with self._lock:
            self._close_quietly()
