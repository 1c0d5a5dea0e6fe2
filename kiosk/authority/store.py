"""The authority's answer store: every believed answer, kept the moment it arrives.

One SQLite file beside the keys (``KEYS/trace-answers.sqlite3``, 0600). It holds
the requests the desk made (with the rounds a case request led to) and each
kiosk's answer exactly as the kiosk signed it: the sealed body stays sealed to
the authority's box key, so the store holds no visitor's data in clear and can be
copied to a colleague's machine that has the same keys (``kiosk trace import``
re-verifies every answer it takes from such a copy).

``add_answers`` stores a batch in one transaction and is idempotent: an answer is
keyed by (request, site, device); the same answer again changes nothing, a
refusal is replaced by a later real answer, never the other way round. The
broker's copy of a message is acknowledged only after the commit
(:mod:`kiosk.authority.session`), so a collect killed at any moment loses
nothing: what was not committed is delivered again.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from kiosk.wire import signing
from kiosk.errors import KioskOSError

FILENAME = "trace-answers.sqlite3"

SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    id TEXT PRIMARY KEY,
    case_request TEXT,             -- for a contacts round: the case request it follows; else NULL
    round INTEGER NOT NULL,        -- 1 for a place or case request, 2, 3, ... for its contacts rounds
    kind TEXT NOT NULL,
    topic TEXT NOT NULL,
    broker TEXT NOT NULL,
    client_id TEXT NOT NULL,       -- the persistent broker session the answers are queued in
    body TEXT NOT NULL,            -- the signed request as published
    asked TEXT,                    -- contacts round: {kid: [case check-ins]} sealed to the authority's own key
    created TEXT NOT NULL,
    published TEXT                 -- when the broker acknowledged it; NULL = not (yet) published
);
CREATE TABLE IF NOT EXISTS answers (
    request_id TEXT NOT NULL,
    site TEXT NOT NULL,
    device TEXT NOT NULL,
    outcome TEXT NOT NULL,
    reason TEXT NOT NULL,
    ts TEXT NOT NULL,
    signer TEXT NOT NULL,          -- kid of the registry key that verified it on arrival
    topic TEXT NOT NULL,
    message BLOB NOT NULL,         -- the kiosk's signed message, its body still sealed
    received TEXT NOT NULL,
    PRIMARY KEY (request_id, site, device)
);
"""


@dataclass(frozen=True)
class StoredRequest:
    id: str
    case_request: str | None
    round: int
    kind: str
    topic: str
    broker: str
    client_id: str
    body: dict
    asked: str | None
    created: str
    published: str | None


@dataclass(frozen=True)
class StoredAnswer:
    request_id: str
    site: str
    device: str
    outcome: str
    reason: str
    ts: str
    signer: str
    topic: str
    message: bytes
    received: str


@dataclass(frozen=True)
class NewAnswer:
    """One believed answer to keep (what :meth:`AnswerStore.add_answers` takes)."""

    request_id: str
    site: str
    device: str
    outcome: str
    reason: str
    ts: str
    signer: str
    topic: str
    message: bytes


def path_for(keys_dir: str | os.PathLike) -> Path:
    """Where the store of a key folder lives."""
    return Path(keys_dir) / FILENAME


class AnswerStore:
    """The desk's requests and the answers they got, durable (WAL, synchronous=FULL)."""

    def __init__(self, path: str | os.PathLike, create: bool = True):
        self.path = Path(path)
        self._lock = threading.Lock()
        if not self.path.exists():
            if not create:
                raise KioskOSError(f"{self.path}: no answer store")
            try:  # personal data, even sealed: the tracer's alone from the start
                os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            except FileExistsError:
                pass
            except OSError as exc:
                raise KioskOSError(f"{self.path}: cannot create the answer store ({exc.strerror})") from None
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(SCHEMA)
        except sqlite3.Error as exc:
            raise KioskOSError(f"{self.path}: not a usable answer store ({exc})") from None

    # -- requests --------------------------------------------------------------

    def add_request(self, body: dict, topic: str, broker: str, client_id: str, case_request: str | None = None,
                    round: int = 1, asked: str | None = None, published: str | None = None) -> bool:
        """Keep a request (before it is published, unless ``published`` says when it was); False when known."""
        with self._lock:
            cur = self._db.execute(
                "INSERT OR IGNORE INTO requests (id, case_request, round, kind, topic, broker, client_id, body, asked,"
                " created, published) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (body["id"], case_request, round, body["kind"], topic, broker, client_id,
                 json.dumps(body, ensure_ascii=False, separators=(",", ":")), asked, signing.iso(), published))
            if cur.rowcount == 0 and published:
                self._db.execute("UPDATE requests SET published = ? WHERE id = ? AND published IS NULL",
                                 (published, body["id"]))
            return cur.rowcount == 1

    def mark_published(self, request_id: str) -> None:
        with self._lock:
            self._db.execute("UPDATE requests SET published = ? WHERE id = ? AND published IS NULL",
                             (signing.iso(), request_id))

    def forget_unpublished(self, case_request: str) -> int:
        """Drop rounds of a case that never reached the broker (their check-ins are asked again)."""
        with self._lock:
            return self._db.execute("DELETE FROM requests WHERE case_request = ? AND published IS NULL",
                                    (case_request,)).rowcount

    def request(self, request_id: str) -> StoredRequest | None:
        """A kept request by its id, or by a unique prefix of at least 6 hex digits."""
        with self._lock:
            rows = self._db.execute(_REQUEST_SELECT + " WHERE id = ?", (request_id,)).fetchall()
            if not rows and len(request_id) >= 6:
                rows = self._db.execute(_REQUEST_SELECT + " WHERE id LIKE ? || '%'", (request_id,)).fetchall()
        return _request(rows[0]) if len(rows) == 1 else None

    def rounds(self, case_request: str) -> list[StoredRequest]:
        """The contacts rounds that followed a case request, oldest first."""
        with self._lock:
            rows = self._db.execute(_REQUEST_SELECT + " WHERE case_request = ? ORDER BY round",
                                    (case_request,)).fetchall()
        return [_request(r) for r in rows]

    def all_requests(self) -> list[StoredRequest]:
        with self._lock:
            rows = self._db.execute(_REQUEST_SELECT + " ORDER BY created").fetchall()
        return [_request(r) for r in rows]

    # -- answers ---------------------------------------------------------------

    def add_answers(self, answers: Iterable[NewAnswer]) -> list[str]:
        """Keep a batch of believed answers in one transaction; for each: "new", "upgraded" or "known"."""
        out = []
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                for a in answers:
                    row = db.execute("SELECT outcome FROM answers WHERE request_id = ? AND site = ? AND device = ?",
                                     (a.request_id, a.site, a.device)).fetchone()
                    values = (a.outcome, a.reason, a.ts, a.signer, a.topic, a.message, signing.iso(),
                              a.request_id, a.site, a.device)
                    if row is None:
                        db.execute("INSERT INTO answers (outcome, reason, ts, signer, topic, message, received,"
                                   " request_id, site, device) VALUES (?,?,?,?,?,?,?,?,?,?)", values)
                        out.append("new")
                    elif row[0] == "refused" and a.outcome == "answered":
                        db.execute("UPDATE answers SET outcome = ?, reason = ?, ts = ?, signer = ?, topic = ?,"
                                   " message = ?, received = ? WHERE request_id = ? AND site = ? AND device = ?",
                                   values)
                        out.append("upgraded")
                    else:
                        out.append("known")
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
        return out

    def answers(self, request_id: str) -> list[StoredAnswer]:
        with self._lock:
            rows = self._db.execute("SELECT request_id, site, device, outcome, reason, ts, signer, topic, message,"
                                    " received FROM answers WHERE request_id = ? ORDER BY site, device",
                                    (request_id,)).fetchall()
        # (a copy edited with SQL may hold the message as text: it is checked again on import all the same)
        return [StoredAnswer(*r[:8], r[8] if isinstance(r[8], bytes) else str(r[8]).encode(), r[9]) for r in rows]

    def answer_counts(self) -> dict[str, int]:
        """How many answers are filed under each request id (also ids no request here has)."""
        with self._lock:
            rows = self._db.execute("SELECT request_id, COUNT(*) FROM answers GROUP BY request_id").fetchall()
        return {rid: n for rid, n in rows}

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None  # type: ignore[assignment]


_REQUEST_SELECT = ("SELECT id, case_request, round, kind, topic, broker, client_id, body, asked, created, published"
                   " FROM requests")


def _request(row) -> StoredRequest:
    return StoredRequest(row[0], row[1], row[2], row[3], row[4], row[5], row[6], json.loads(row[7]), row[8],
                         row[9], row[10])
