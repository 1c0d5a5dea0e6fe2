"""The visit log and the trace audit: the only personal data a kiosk keeps, and who asked for it.

The visit log is off by default. When a venue turns it on (``[ledger]
visit_log``), each check-in adds one visit record in the same transaction as
the check-in itself: UTC and local time, venue id, device id, the visitor's
pseudonym, the verdict, and only the personal fields the config allows
(``visit_log_fields``: name, birth_date, id_number, phone, subject_id). A field
that is not allowed is never written, not even briefly. Names are stored as the
code gives them: ``Holder.name`` in the format's display order (Vietnamese family
name first), plus the family and given names where the format keeps them apart
(EU DCC). ``subject_id`` is a signed health declaration's subject (the issuer's
own reference for the person, pseudonymous) with the issuer's key id beside it:
the one way a tracer can reach someone who checked in with a declaration, by
asking its issuer. Records older than the retention (21 days by default) are
purged once a day.

The trace audit (``trace_audit``) keeps every trace request the kiosk answered
or refused, with the reason and how many visit records it disclosed; it holds
no personal data and outlives the visit log (:data:`AUDIT_KEEP_DAYS`), so a
data-protection officer can later see who asked what of this kiosk.

The ledger calls :meth:`VisitLog.add` from its record transaction and
:meth:`VisitLog.purge` from its housekeeping; the tracing responder reads
through :class:`VisitArchive`, its own connection to the same file, so a
three-week query never holds the ledger's lock while visitors check in.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from kiosk.errors import KioskOSError

if TYPE_CHECKING:
    from kiosk.door.verify.base import Holder

VISIT_FIELDS = ("name", "birth_date", "id_number", "phone", "subject_id")
AUDIT_KEEP_DAYS = 366  # the record of disclosures outlives the data disclosed
AUDIT_MAX_REFUSED = 50_000  # refusals can be provoked by anyone on the broker: bounded

# Ledger schema step 3 (kiosk/door/record/schema.py applies it once, in order).
SCHEMA_STEP = """
ALTER TABLE visits ADD COLUMN local TEXT;
ALTER TABLE visits ADD COLUMN venue_id TEXT;
ALTER TABLE visits ADD COLUMN device_id TEXT;
ALTER TABLE visits ADD COLUMN phone TEXT;
ALTER TABLE visits ADD COLUMN family_name TEXT;
ALTER TABLE visits ADD COLUMN given_name TEXT;
CREATE INDEX IF NOT EXISTS visits_pseudonym ON visits(pseudonym, at);
-- Every trace request answered or refused. verified = the request's signature and freshness held
-- (a later copy of the same id is a replay, even after a restart).
CREATE TABLE IF NOT EXISTS trace_audit (
    row INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    request_id TEXT,
    topic TEXT NOT NULL,
    kind TEXT,
    outcome TEXT NOT NULL,
    reason TEXT NOT NULL,
    signer TEXT,
    verified INTEGER NOT NULL,
    records INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS trace_audit_request ON trace_audit(request_id);
"""

# Ledger schema step 4: a health declaration's subject and its issuer's key id (``subject_id``).
SCHEMA_STEP_SUBJECT = """
ALTER TABLE visits ADD COLUMN subject_id TEXT;
ALTER TABLE visits ADD COLUMN subject_issuer TEXT;
"""

# What a visit record holds, in the order of the CSV export and of a trace answer.
COLUMNS = ("time", "local", "venue_id", "device_id", "pseudonym", "verdict", "reason", "format",
           "name", "family_name", "given_name", "birth_date", "id_number", "phone", "subject_id", "subject_issuer")
_SELECT = ("SELECT at, local, venue_id, device_id, pseudonym, verdict, reason, format,"
           " name, family_name, given_name, birth_date, id_number, phone, subject_id, subject_issuer FROM visits")


def utc_text(t: datetime) -> str:
    """The stored UTC form (``2021-09-14T07:30:05.123Z``); it sorts as time does."""
    t = t if t.tzinfo else t.replace(tzinfo=timezone.utc)
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def parse_utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class VisitLog:
    """What the ledger writes for one check-in, under the venue's choices (on/off, allowed fields)."""

    def __init__(self, enabled: bool = False, fields: Iterable[str] = (), retention_days: int = 21,
                 venue_id: str = "", device_id: str = ""):
        self.enabled = bool(enabled)
        allowed = set(fields)
        self.fields = tuple(f for f in VISIT_FIELDS if f in allowed)
        self.retention_days = int(retention_days)
        self.venue_id = venue_id
        self.device_id = device_id

    def add(self, db: sqlite3.Connection, seq: int, at: datetime, local: datetime, pseudonym: str | None,
            verdict: str, reason: str, format: str, holder: Holder | None) -> None:
        """Write one visit record inside the caller's transaction (nothing when the log is off)."""
        if not self.enabled:
            return
        keep = {f: getattr(holder, f, None) if holder is not None and f in self.fields else None for f in VISIT_FIELDS}
        # The name's parts are the name: kept only where the name is.
        family = holder.family_name if holder is not None and keep["name"] is not None else None
        given = holder.given_name if holder is not None and keep["name"] is not None else None
        # A subject id means something only with its issuer (ids are the issuer's own): kept together.
        issuer = holder.subject_issuer if holder is not None and keep["subject_id"] is not None else None
        db.execute(
            "INSERT INTO visits (seq, at, local, venue_id, device_id, pseudonym, verdict, reason, format,"
            " name, family_name, given_name, birth_date, id_number, phone, subject_id, subject_issuer)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (seq, utc_text(at), local.isoformat(timespec="milliseconds"), self.venue_id, self.device_id, pseudonym,
             verdict, reason, format, keep["name"], family, given, keep["birth_date"], keep["id_number"],
             keep["phone"], keep["subject_id"], issuer))

    def purge(self, db: sqlite3.Connection, now: datetime) -> int:
        """Inside the caller's transaction: drop visit records past retention and old audit rows; returns visits dropped."""
        n = db.execute("DELETE FROM visits WHERE at < ?",
                       (utc_text(now - timedelta(days=self.retention_days)),)).rowcount
        db.execute("DELETE FROM trace_audit WHERE at < ?", (utc_text(now - timedelta(days=AUDIT_KEEP_DAYS)),))
        return n

    def between(self, db: sqlite3.Connection, lo: datetime, hi: datetime) -> list[dict]:
        """Visit records with ``lo <= time < hi`` (aware times), oldest first."""
        return between(db, lo, hi)


def _rows(cur: sqlite3.Cursor) -> list[dict]:
    return [dict(zip(COLUMNS, r)) for r in cur.fetchall()]


def between(db: sqlite3.Connection, lo: datetime, hi: datetime, verdicts: Iterable[str] | None = None) -> list[dict]:
    """Visit records with ``lo <= time < hi``, oldest first; only the given verdicts when ``verdicts``."""
    sql, args = _SELECT + " WHERE at >= ? AND at < ?", [utc_text(lo), utc_text(hi)]
    if verdicts is not None:
        vs = list(verdicts)
        sql += f" AND verdict IN ({','.join('?' * len(vs))})"
        args += vs
    return _rows(db.execute(sql + " ORDER BY at, seq", args))


def of_visitor(db: sqlite3.Connection, pseudonyms: Iterable[str], lo: datetime, hi: datetime,
               verdicts: Iterable[str] | None = None) -> list[dict]:
    """The visits of one visitor (any of ``pseudonyms``) with ``lo <= time < hi``, oldest first."""
    ps = list(dict.fromkeys(pseudonyms))
    if not ps:
        return []
    sql = _SELECT + f" WHERE pseudonym IN ({','.join('?' * len(ps))}) AND at >= ? AND at < ?"
    args = [*ps, utc_text(lo), utc_text(hi)]
    if verdicts is not None:
        vs = list(verdicts)
        sql += f" AND verdict IN ({','.join('?' * len(vs))})"
        args += vs
    return _rows(db.execute(sql + " ORDER BY at, seq", args))


@dataclass(frozen=True)
class AuditEntry:
    """One trace request this kiosk answered or refused (no personal data)."""

    at: str
    request_id: str | None
    topic: str
    kind: str | None
    outcome: str  # "answered" | "refused"
    reason: str
    signer: str | None  # the key id that signed the request, when it verified
    verified: bool
    records: int  # visit records disclosed (0 for a refusal)


class VisitArchive:
    """The tracing responder's own connection to the ledger file: visit queries and the trace audit.

    The ledger must have been opened (and so migrated) once before. Reads never block check-ins
    (WAL); an audit row is one short write transaction.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(f"file:{self.path}?mode=rw", uri=True, isolation_level=None,
                                       check_same_thread=False, timeout=10)
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("SELECT 1 FROM trace_audit LIMIT 1")
        except sqlite3.Error as exc:
            raise KioskOSError(f"cannot open the visit log in {self.path}: {exc}") from None

    def between(self, lo: datetime, hi: datetime, verdicts: Iterable[str] | None = None) -> list[dict]:
        with self._lock:
            return between(self._db, lo, hi, verdicts)

    def of_visitor(self, pseudonyms: Iterable[str], lo: datetime, hi: datetime,
                   verdicts: Iterable[str] | None = None) -> list[dict]:
        with self._lock:
            return of_visitor(self._db, pseudonyms, lo, hi, verdicts)

    def audit(self, entry: AuditEntry) -> None:
        """Keep one answered or refused request (durably, before the answer goes out)."""
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                db.execute("INSERT INTO trace_audit (at, request_id, topic, kind, outcome, reason, signer, verified,"
                           " records) VALUES (?,?,?,?,?,?,?,?,?)",
                           (entry.at, entry.request_id, entry.topic, entry.kind, entry.outcome, entry.reason,
                            entry.signer, int(entry.verified), entry.records))
                (refused,) = db.execute("SELECT COUNT(*) FROM trace_audit WHERE verified = 0").fetchone()
                if refused > AUDIT_MAX_REFUSED:
                    db.execute("DELETE FROM trace_audit WHERE row IN (SELECT row FROM trace_audit WHERE verified = 0"
                               " ORDER BY row LIMIT ?)", (refused - AUDIT_MAX_REFUSED,))
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise

    def seen(self, request_id: str) -> bool:
        """True when a request with this id already verified here (answered or refused after verifying)."""
        with self._lock:
            row = self._db.execute("SELECT 1 FROM trace_audit WHERE request_id = ? AND verified = 1 LIMIT 1",
                                   (request_id,)).fetchone()
        return row is not None

    def audit_log(self) -> list[AuditEntry]:
        """Every kept audit row, oldest first."""
        with self._lock:
            rows = self._db.execute("SELECT at, request_id, topic, kind, outcome, reason, signer, verified, records"
                                    " FROM trace_audit ORDER BY row").fetchall()
        return [AuditEntry(*r[:7], bool(r[7]), r[8]) for r in rows]

    def audit_totals(self) -> dict[str, int]:
        """``{"answered": n, "refused": n}`` over the kept audit."""
        with self._lock:
            rows = self._db.execute("SELECT outcome, COUNT(*) FROM trace_audit GROUP BY outcome").fetchall()
        return {"answered": 0, "refused": 0, **dict(rows)}

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None  # type: ignore[assignment]
