"""The ledger: check-ins, daily counters, unique visitors, the outbox and the optional visit log.

One SQLite file in WAL mode with ``synchronous=FULL``: in WAL mode ``NORMAL``
can lose the last transactions on a power cut (not on a crash), and a visitor
who has seen "accepted" must stay counted. FULL costs one fsync of the WAL per
check-in, a few milliseconds on an SD card, far below one visitor per second.

``record()`` writes, in one transaction, the check-in, its counters, the
visitor's pseudonym for the day's unique count and for the duplicate window
(``admitted``: so a restart, even a SIGKILL, never forgets who is inside), and
an outbox row holding the domain event; only then does the caller signal the
verdict. The ledger knows nothing of MQTT: :mod:`kiosk.door.publish.payloads`
renders the outbox events and the day's counts into the wire format. The outbox is bounded: when it is full the
oldest event messages are dropped and the loss is counted (``dropped_events``);
the counters are never dropped, so the day's figures stay right however long
the kiosk is offline.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable

from kiosk.wire import reasons
from kiosk.errors import KioskOSError
from kiosk.door.record.schema import migrate
from kiosk.door.record.visits import VisitLog

if TYPE_CHECKING:  # the desk makes check-ins; the ledger only reads their fields
    from kiosk.config import LedgerConfig
    from kiosk.door.decide.checkin import Checkin
    from kiosk.door.verify.base import Holder

log = logging.getLogger(__name__)

COUNTER_TOTALS = ("accepted", "rejected", "duplicates", "overrides", "unique_visitors", "dropped_events")
EVENT_KEEP_DAYS = 92  # check-in events (no personal data) are pruned after a quarter


class LedgerError(KioskOSError, RuntimeError):
    """The ledger file cannot be opened or written (the check-in was not recorded)."""


def _now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class OutboxMessage:
    """One unsent outbox row: ``payload`` is the domain event as JSON (``kind`` "event"), which
    :func:`kiosk.door.publish.payloads.event_payload` renders for the wire."""

    seq: int
    id: str
    kind: str
    payload: str


def utc_iso(t: datetime) -> str:
    """``2021-09-14T07:30:05.123Z``: the time format of every published message."""
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo is not None else t.replace(tzinfo=timezone.utc)


class Ledger:
    """The kiosk's durable record. Thread-safe: the pipeline records, the publisher drains."""

    def __init__(self, path: str | Path, outbox_max: int = 100000, visit_log: bool = False,
                 visit_log_fields: Iterable[str] = (), retention_days: int = 21, tz: tzinfo | None = None,
                 duplicate_window_s: float = 1800.0, clock: Callable[[], datetime] = _now,
                 venue_id: str = "", device_id: str = ""):
        """``clock`` is the wall clock (aware datetimes): housekeeping and the duplicate window use it."""
        self.path = Path(path)
        self.outbox_max = int(outbox_max)
        self.visit_log = VisitLog(visit_log, visit_log_fields, retention_days, venue_id, device_id)
        self.tz = tz  # None: the kiosk's local time zone decides what "today" is
        self.duplicate_window_s = float(duplicate_window_s)
        self.clock = clock
        self._db = None
        self._lock = threading.RLock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if not self.path.exists():
                # Owner-only from the start (SQLite gives the -wal/-shm files the same mode): pseudonyms
                # and the optional visit log are personal data.
                os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
            self._db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False, timeout=10)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            migrate(self._db)
            (self._outbox_count,) = self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()
            self._housekeeping_day = ""
            self._drop_logged_at = -1e9
            self._housekeeping(self.clock())
        except (OSError, sqlite3.Error) as exc:
            if self._db is not None:
                self._db.close()
                self._db = None
            raise LedgerError(f"cannot open ledger {self.path}: {exc}") from None

    @classmethod
    def open(cls, section: LedgerConfig, path: Path, *, duplicate_window_s: float, venue_id: str,
             device_id: str) -> "Ledger":
        """The ledger ``[ledger]`` describes, at ``path`` (the config's ``ledger_path``), counting for
        ``venue_id``/``device_id`` with ``[policy]``'s duplicate window."""
        return cls(path, outbox_max=section.outbox_max, visit_log=section.visit_log,
                   visit_log_fields=section.visit_log_fields, retention_days=section.retention_days,
                   duplicate_window_s=duplicate_window_s, venue_id=venue_id, device_id=device_id)

    # -- writing -----------------------------------------------------------

    def local(self, t: datetime) -> datetime:
        """``t`` in the time zone that decides the day and the hour buckets."""
        return _aware(t).astimezone(self.tz)

    def record(self, checkin: Checkin) -> int:
        """Commit one check-in (a :class:`kiosk.door.decide.checkin.Checkin`); returns its device sequence number.

        Recording the same check-in id again changes nothing and returns the first number,
        so a retried call never counts a visitor twice.
        """
        return self._record(
            id=checkin.id, at=_aware(checkin.at), verdict=checkin.verdict, reason=checkin.reason,
            format=checkin.format or "unknown", valid=bool(checkin.valid), signed=bool(checkin.signed),
            source=checkin.source or "", duplicate=bool(checkin.duplicate), override=False,
            pseudonym=checkin.pseudonym, holder=checkin.holder)

    def record_override(self, at: datetime | None = None, id: str | None = None, source: str = "button") -> int:
        """Commit a guard override (the guard let someone in with the button); returns its sequence number.

        Counted under ``overrides`` only, never as an accepted visitor.
        """
        return self._record(
            id=id or uuid.uuid4().hex, at=_aware(at or self.clock()), verdict="accept",
            reason=reasons.OVERRIDE, format="none", valid=False, signed=False, source=source,
            duplicate=False, override=True, pseudonym=None, holder=None)

    def _record(self, *, id: str, at: datetime, verdict: str, reason: str, format: str, valid: bool, signed: bool,
                source: str, duplicate: bool, override: bool, pseudonym: str | None, holder: Holder | None) -> int:
        if verdict not in ("accept", "reject"):
            raise ValueError(f"verdict must be accept or reject, got {verdict!r}")
        local = self.local(at)
        day, at_text = local.date().isoformat(), utc_iso(at)
        with self._lock:
            self._housekeeping(self.clock())  # wall clock, not the check-in's own time
            db = self._db
            try:
                db.execute("BEGIN IMMEDIATE")
                try:
                    cur = db.execute(
                        "INSERT INTO checkins (id, at, day, verdict, reason, format, valid, signed, source, duplicate, override)"
                        " VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                        (id, at_text, day, verdict, reason, format, valid, signed, source, duplicate, override))
                except sqlite3.IntegrityError:
                    db.execute("ROLLBACK")
                    (seq,) = db.execute("SELECT seq FROM checkins WHERE id = ?", (id,)).fetchone()
                    return seq
                seq = cur.lastrowid
                names = [f"reason:{reason}"]
                if override:
                    names.append("overrides")
                elif duplicate:
                    names += ["duplicates", f"format:{format}"]
                else:
                    names += ["accepted" if verdict == "accept" else "rejected", f"format:{format}"]
                    if verdict == "accept":
                        names.append(f"hour:{local.hour:02d}")
                if verdict == "accept" and pseudonym and not override:
                    if db.execute("INSERT OR IGNORE INTO day_visitors (day, pseudonym) VALUES (?, ?)",
                                  (day, pseudonym)).rowcount:
                        names.append("unique_visitors")
                    if not duplicate:  # the window starts at the admission, re-scans do not extend it
                        db.execute("INSERT OR REPLACE INTO admitted (pseudonym, at) VALUES (?, ?)",
                                   (pseudonym, at.timestamp()))
                self._bump(day, names)
                payload = json.dumps({"id": id, "seq": seq, "at": at_text, "verdict": verdict, "reason": reason,
                                      "format": format, "signed": signed, "duplicate": duplicate,
                                      "override": override, "source": source}, separators=(",", ":"))
                db.execute("INSERT INTO outbox (seq, id, kind, payload) VALUES (?, ?, 'event', ?)", (seq, id, payload))
                self._outbox_count += 1
                if self._outbox_count > self.outbox_max:
                    # Make room for 1% more at once: fewer, larger deletes while offline for days.
                    self._drop_oldest(self._outbox_count - self.outbox_max + self.outbox_max // 100)
                self.visit_log.add(db, seq, at, local, pseudonym, verdict, reason, format, holder)
                db.execute("COMMIT")
            except BaseException as exc:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                (self._outbox_count,) = db.execute("SELECT COUNT(*) FROM outbox").fetchone()
                if isinstance(exc, sqlite3.Error):  # disk full, I/O error: nothing was recorded
                    raise LedgerError(f"cannot record check-in in {self.path}: {exc}") from exc
                raise
        return seq

    def _bump(self, day: str, names: list[str], by: int = 1) -> None:
        self._db.executemany(
            "INSERT INTO counters (day, name, n) VALUES (?, ?, ?) ON CONFLICT (day, name) DO UPDATE SET n = n + excluded.n",
            [(day, name, by) for name in names])

    def _drop_oldest(self, n: int) -> None:
        """Make room in a full outbox: the oldest event messages go, and the loss is counted today."""
        cur = self._db.execute(
            "DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox WHERE kind = 'event' ORDER BY seq LIMIT ?)", (n,))
        dropped = cur.rowcount
        self._outbox_count -= dropped
        if dropped:
            self._bump(self.local(self.clock()).date().isoformat(), ["dropped_events"], dropped)
            now = time.monotonic()
            if now - self._drop_logged_at > 60:  # once a minute, not once per visitor
                self._drop_logged_at = now
                log.warning("outbox full (%d messages): dropping the oldest unsent events (counted in dropped_events)",
                            self.outbox_max)

    def _housekeeping(self, now: datetime) -> None:
        """Once a day: purge the visit log past retention, old pseudonyms and old events."""
        today = self.local(now).date()
        if today.isoformat() == self._housekeeping_day:
            return
        self._housekeeping_day = today.isoformat()
        self.purge(now)

    def purge(self, now: datetime | None = None) -> int:
        """Delete visit-log entries older than the retention; returns how many went."""
        now = _aware(now or self.clock())
        today = self.local(now).date()
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            n = self.visit_log.purge(db, now)
            # Yesterday's pseudonyms are kept so a late recount of yesterday stays right; older go.
            db.execute("DELETE FROM day_visitors WHERE day < ?", ((today - timedelta(days=1)).isoformat(),))
            db.execute("DELETE FROM checkins WHERE day < ? AND seq NOT IN (SELECT seq FROM outbox)",
                       ((today - timedelta(days=EVENT_KEEP_DAYS)).isoformat(),))
            # Admissions older than the window (with a day to spare for a clock set back) decide nothing.
            db.execute("DELETE FROM admitted WHERE at < ?", (now.timestamp() - self.duplicate_window_s - 86400,))
            db.execute("COMMIT")
        if n:
            log.info("visit log: purged %d entries older than %d days", n, self.visit_log.retention_days)
        return n

    def probe(self) -> None:
        """Write and remove a page-sized row: raises LedgerError when the file does not take writes now.

        The out-of-service retry calls it; a page-sized row makes the file grow, as a check-in
        on a full disk would.
        """
        with self._lock:
            db = self._db
            if db is None:
                raise LedgerError(f"ledger {self.path} is closed")
            try:
                db.execute("BEGIN IMMEDIATE")
                db.execute("INSERT OR REPLACE INTO ledger_probe (n, pad) VALUES (1, zeroblob(8192))")
                db.execute("DELETE FROM ledger_probe")
                db.execute("COMMIT")
            except sqlite3.Error as exc:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise LedgerError(f"cannot write ledger {self.path}: {exc}") from exc

    # -- reading -------------------------------------------------------------

    def recently_admitted(self, pseudonym: str, at: datetime) -> bool:
        """True when this person was admitted (not as a duplicate) less than the window before ``at``."""
        with self._lock:
            row = self._db.execute("SELECT at FROM admitted WHERE pseudonym = ?", (pseudonym,)).fetchone()
        return row is not None and _aware(at).timestamp() - row[0] < self.duplicate_window_s

    @property
    def last_seq(self) -> int:
        """The newest device sequence number (0 before the first check-in)."""
        with self._lock:
            row = self._db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'checkins'").fetchone()
        return row[0] if row else 0

    def today(self) -> str:
        """Today's date (ISO) in the ledger's time zone."""
        return self.local(self.clock()).date().isoformat()

    def counts(self, day: str | date | None = None) -> dict:
        """The day's figures (``accepted``, ``rejected``, ``duplicates``, ``overrides``, ``unique_visitors``,
        ``dropped_events``, ``by_reason``, ``by_format``, ``hourly``, ``last_scan``, ``seq``).

        :func:`kiosk.door.publish.payloads.counts_payload` renders them for the wire (docs/mqtt.md).
        """
        day = (day.isoformat() if isinstance(day, date) else day) or self.today()
        with self._lock:
            rows = self._db.execute("SELECT name, n FROM counters WHERE day = ?", (day,)).fetchall()
            row = self._db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'checkins'").fetchone()
            # (day, seq) order of the day index: the newest row without scanning the day
            last = self._db.execute("SELECT at FROM checkins WHERE day = ? ORDER BY seq DESC LIMIT 1", (day,)).fetchone()
        out: dict[str, object] = {"day": day, **{k: 0 for k in COUNTER_TOTALS[:4]}, "by_reason": {}, "by_format": {},
                               "unique_visitors": 0, "hourly": [0] * 24, "dropped_events": 0}
        for name, n in rows:
            kind, _, key = name.partition(":")
            if kind == "reason":
                out["by_reason"][key] = n
            elif kind == "format":
                out["by_format"][key] = n
            elif kind == "hour":
                out["hourly"][int(key)] = n
            else:
                out[name] = n
        out["last_scan"] = last[0] if last else None  # the day's newest check-in (UTC)
        out["seq"] = row[0] if row else 0
        return out

    def outbox_size(self) -> int:
        """Messages waiting for the broker's acknowledgement."""
        with self._lock:
            return self._outbox_count

    def pending(self, limit: int = 100, after_seq: int = 0) -> list[OutboxMessage]:
        """The oldest unsent messages (by sequence number) after ``after_seq``."""
        with self._lock:
            rows = self._db.execute("SELECT seq, id, kind, payload FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?",
                                    (after_seq, limit)).fetchall()
        return [OutboxMessage(*r) for r in rows]

    def ack(self, msg_id: str) -> None:
        """The broker has the message: delete it from the outbox."""
        self.ack_many([msg_id])

    def ack_many(self, msg_ids: Iterable[str]) -> int:
        """Delete several acknowledged messages in one transaction; returns how many were still there."""
        ids = [(i,) for i in msg_ids]
        if not ids:
            return 0
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                n = db.executemany("DELETE FROM outbox WHERE id = ?", ids).rowcount
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            self._outbox_count -= n
        return n

    def visits(self, start: date | datetime, end: date | datetime) -> list[dict]:
        """Visit records from ``start`` to ``end``, oldest first (see :mod:`kiosk.door.record.visits`).

        Dates are local days, both included; aware times are a half-open window ``[start, end)``.
        """
        lo = start if isinstance(start, datetime) else self._day_start(start)
        hi = end if isinstance(end, datetime) else self._day_start(end + timedelta(days=1))
        with self._lock:
            return self.visit_log.between(self._db, lo, hi)

    def _day_start(self, d: date) -> datetime:
        """Local midnight starting ``d``, as an aware time."""
        midnight = datetime.combine(d, datetime.min.time())
        return midnight.replace(tzinfo=self.tz) if self.tz else midnight.astimezone()

    def close(self) -> None:
        """Close the file (idempotent)."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None  # type: ignore[assignment]

    def __enter__(self) -> "Ledger":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
