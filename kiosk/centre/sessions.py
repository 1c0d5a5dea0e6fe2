"""Dashboard sessions the server can end: a table in the centre's store.

The browser holds only a random id (256 bits, cookie ``centre_session``); the store keeps the
SHA-256 of it, so a copy of the database logs nobody in. Each row carries the account, the
account's *stamp* when it logged in (:attr:`kiosk.centre.accounts.Account.stamp`: a new password,
role, districts or a disabling changes it) and the session's CSRF token. Every request looks its
session up, so in every dashboard process that shares the store:

* logout deletes the row: the cookie is worthless at once;
* a password change, a disabling or a removal: the account no longer matches the row's stamp (or
  no longer exists), so the row is deleted at the next request; ``kiosk centre user ... --db``
  also deletes the account's rows itself;
* idle (``idle_seconds``, default 30 min) and absolute (``max_seconds``, default 12 h) timeouts;
* a login always makes a new id (the old one, if any, is deleted): no session fixation.

``seen`` is written at most once a minute per session (``touch_seconds``), not at every request.
The table is the store's (migration 3, :mod:`kiosk.centre.migrations`).
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass

TOKEN_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


@dataclass(frozen=True)
class Session:
    id_hash: str
    account: str
    stamp: str
    csrf: str
    created: float
    seen: float


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def end_account_sessions(store, account: str) -> int:
    """Delete every session of ``account`` (``kiosk centre user passwd|disable|remove --db``)."""
    n = store.query("SELECT COUNT(*) AS n FROM web_sessions WHERE account = ?", [account])[0]["n"]
    store.execute("DELETE FROM web_sessions WHERE account = ?", [account])
    return int(n)


class Sessions:
    def __init__(self, store, idle_seconds: float = 1800.0, max_seconds: float = 12 * 3600.0,
                 touch_seconds: float = 60.0, clock=time.time):
        self.store = store
        self.idle_seconds, self.max_seconds, self.touch_seconds = idle_seconds, max_seconds, touch_seconds
        self.clock = clock
        self._pruned = 0.0
        self._lock = threading.Lock()

    def start(self, account: str, stamp: str, replacing: str | None = None) -> tuple[str, Session]:
        """A new session for ``account``: (the id for the cookie, the session). ``replacing``: the id of
        the browser's session before this login, ended here."""
        now = self.clock()
        if replacing:
            self.end(replacing)
        token = secrets.token_urlsafe(32)
        s = Session(_hash(token), account, stamp, secrets.token_urlsafe(32), now, now)
        self.store.execute("INSERT INTO web_sessions (id_hash, account, stamp, csrf, created, seen) "
                           "VALUES (?, ?, ?, ?, ?, ?)", [s.id_hash, s.account, s.stamp, s.csrf, s.created, s.seen])
        self._prune(now)
        return token, s

    def find(self, token: str | None) -> Session | None:
        """The live session of a cookie's id, or None (unknown, malformed, idle too long or too old)."""
        if not token or len(token) > 64 or not TOKEN_CHARS.issuperset(token):
            return None
        rows = self.store.query("SELECT id_hash, account, stamp, csrf, created, seen FROM web_sessions "
                                "WHERE id_hash = ?", [_hash(token)])
        if not rows:
            return None
        s = Session(**rows[0])
        now = self.clock()
        if now - s.seen > self.idle_seconds or now - s.created > self.max_seconds:
            self.store.execute("DELETE FROM web_sessions WHERE id_hash = ?", [s.id_hash])
            return None
        if now - s.seen >= self.touch_seconds:
            self.store.execute("UPDATE web_sessions SET seen = ? WHERE id_hash = ?", [now, s.id_hash])
        return s

    def end(self, token: str | None) -> None:
        if token and len(token) <= 64 and TOKEN_CHARS.issuperset(token):
            self.store.execute("DELETE FROM web_sessions WHERE id_hash = ?", [_hash(token)])

    def end_session(self, s: Session) -> None:
        self.store.execute("DELETE FROM web_sessions WHERE id_hash = ?", [s.id_hash])

    def end_account(self, account: str) -> int:
        return end_account_sessions(self.store, account)

    def count(self, account: str | None = None) -> int:
        if account is None:
            return int(self.store.query("SELECT COUNT(*) AS n FROM web_sessions")[0]["n"])
        return int(self.store.query("SELECT COUNT(*) AS n FROM web_sessions WHERE account = ?", [account])[0]["n"])

    def _prune(self, now: float) -> None:
        """Forget expired sessions, at most once a minute (at a login)."""
        with self._lock:
            if now - self._pruned < 60:
                return
            self._pruned = now
        self.store.execute("DELETE FROM web_sessions WHERE seen < ? OR created < ?",
                           [now - self.idle_seconds, now - self.max_seconds])
