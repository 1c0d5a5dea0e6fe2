"""The accounts' audit log: logins, logouts, failed logins and every account change, one JSON line each.

Written by the dashboard and by ``kiosk centre user ...`` to one file (default: beside the
accounts file, ``NAME.audit.jsonl``, mode 0600), appended in one ``write`` per line so several
processes may share it. Never a password; a failed login names the account only when it exists
(a name typed into the wrong field may be a password), and an address is the client's as the
limiter sees it. Each line also goes to the ``kiosk.centre.audit`` logger (the journal).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path

from kiosk.wire.signing import iso

log = logging.getLogger("kiosk.centre.audit")


def default_path(accounts_path: str | os.PathLike) -> Path:
    p = Path(accounts_path)
    return p.with_name(p.stem + ".audit.jsonl")


class AuditLog:
    """Appends events to ``path`` (None: the logger only)."""

    def __init__(self, path: str | os.PathLike | None = None, clock=time.time):
        self.path = Path(path) if path else None
        self.clock = clock
        self._lock = threading.Lock()

    def write(self, event: str, **fields) -> dict:
        entry = {"at": iso(self.clock()), "event": event, **{k: v for k, v in fields.items() if v is not None}}
        line = json.dumps(entry, ensure_ascii=False, sort_keys=False)
        log.info("%s", line)
        if self.path is not None:
            with self._lock:
                try:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                    fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                    try:
                        os.write(fd, (line + "\n").encode("utf-8"))
                    finally:
                        os.close(fd)
                except OSError as exc:
                    log.error("cannot write the audit log %s: %s", self.path, exc.strerror)
        return entry

    def read(self) -> list[dict]:
        """Every entry so far (tests and ``kiosk centre user log``-style inspection)."""
        if self.path is None or not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text(encoding="utf-8").splitlines() if line.strip()]
