"""Tell systemd how the kiosk is doing: READY, STATUS, WATCHDOG pings, STOPPING.

``kiosk.service`` is ``Type=notify`` with ``WatchdogSec=``: systemd considers the
kiosk started only once :meth:`Notifier.ready` is sent (camera, display and
ledger up), and restarts it when the main loop stops calling :meth:`Notifier.ping`
for longer than the watchdog interval -- so a hung camera or screen gets the
kiosk restarted instead of leaving a dark entrance.

The protocol (``sd_notify(3)``) is one datagram of ``KEY=value`` lines to the
AF_UNIX socket named in ``$NOTIFY_SOCKET``; a few lines of :mod:`socket` do it,
so no libsystemd binding is needed. Outside systemd (tests, the demo, a
developer's shell) every call is a cheap no-op.

Usage in the pipeline::

    notifier = Notifier()            # from $NOTIFY_SOCKET / $WATCHDOG_USEC
    ...                              # open camera, display, ledger
    notifier.ready("scanning")
    while running:
        ...
        notifier.ping()              # every loop pass; rate-limited internally
        notifier.status("scanning; mqtt offline")   # sent only when it changes
    notifier.stopping()
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from typing import Protocol

log = logging.getLogger(__name__)


class Notify(Protocol):
    """What the supervisor tells the service manager: :class:`Notifier`, :class:`NullNotifier`, or a test's recorder."""

    def ready(self, status: str = "") -> bool: ...
    def ping(self) -> bool: ...
    def status(self, text: str) -> bool: ...
    def stopping(self, status: str = "") -> bool: ...


class NullNotifier:
    """Outside systemd: READY, pings and STATUS go nowhere."""

    def ready(self, status: str = "") -> bool:
        return False

    def ping(self) -> bool:
        return False

    def status(self, text: str) -> bool:
        return False

    def stopping(self, status: str = "") -> bool:
        return False


class Notifier:
    """sd_notify client. Never raises: a lost notification must not stop check-ins."""

    def __init__(self, socket_path: str | None = None, watchdog_usec: int | None = None,
                 clock=time.monotonic, environ: dict | None = None):
        """With no arguments, set up from the environment systemd gives the service
        (``$NOTIFY_SOCKET``, ``$WATCHDOG_USEC``); outside systemd every call is a no-op.

        ``socket_path``: a ``$NOTIFY_SOCKET`` value (``@name`` = abstract namespace), ""
        to disable; ``watchdog_usec``: the watchdog interval in microseconds (None = none).
        """
        if socket_path is None:
            socket_path, watchdog_usec = _from_environment(os.environ if environ is None else environ)
        self._address = _address(socket_path) if socket_path else None
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._clock = clock
        self._last_ping = float("-inf")
        self._last_status: str | None = None
        self._warned = False
        #: Seconds systemd waits for a ping before killing the kiosk; None without a watchdog.
        self.watchdog_interval: float | None = watchdog_usec / 1e6 if watchdog_usec and watchdog_usec > 0 else None

    @classmethod
    def from_env(cls, environ: dict | None = None) -> "Notifier":
        """A notifier for this process as systemd started it (the same as ``Notifier()``)."""
        return cls(environ=environ)

    @property
    def enabled(self) -> bool:
        """True when running under systemd with a notification socket."""
        return self._address is not None

    @property
    def watchdog_enabled(self) -> bool:
        return self.enabled and self.watchdog_interval is not None

    def ready(self, status: str = "") -> bool:
        """The kiosk is up (camera, display and ledger open): systemd ends the start-up wait."""
        lines = ["READY=1"]
        if self.watchdog_interval:
            lines.append("WATCHDOG=1")  # start the watchdog period afresh after a slow start-up
        if status:
            lines.append(f"STATUS={_one_line(status)}")
            self._last_status = _one_line(status)
        sent = self._send(lines)
        if sent and self.watchdog_interval:
            self._last_ping = self._clock()
        return sent

    def status(self, text: str) -> bool:
        """Free-form state shown by ``systemctl status kiosk``; sent only when it changed."""
        text = _one_line(text)
        if text == self._last_status:
            return False
        self._last_status = text
        return self._send([f"STATUS={text}"])

    def ping(self) -> bool:
        """Keep the watchdog fed. Cheap to call on every main-loop pass: a datagram
        goes out at most every quarter of the watchdog interval."""
        if self.watchdog_interval is None or self._address is None:
            return False
        now = self._clock()
        if now - self._last_ping < self.watchdog_interval / 4:
            return False
        self._last_ping = now
        return self._send(["WATCHDOG=1"])

    def extend_timeout(self, seconds: float) -> bool:
        """Ask for more start-up/stop time (e.g. a slow camera), without being READY yet."""
        return self._send([f"EXTEND_TIMEOUT_USEC={int(seconds * 1e6)}"])

    def stopping(self, status: str = "") -> bool:
        """The kiosk is shutting down on purpose (not a hang)."""
        lines = ["STOPPING=1"]
        if status:
            lines.append(f"STATUS={_one_line(status)}")
        return self._send(lines)

    def close(self) -> None:
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None

    def __enter__(self) -> "Notifier":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _send(self, lines: list[str]) -> bool:
        if self._address is None:
            return False
        data = ("\n".join(lines) + "\n").encode("utf-8")
        with self._lock:
            try:
                if self._sock is None:
                    self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._sock.sendto(data, self._address)
                return True
            except OSError as exc:
                # Say it once: a broken notify socket would otherwise flood the journal
                # at the main loop's rate. systemd's watchdog will act on the silence.
                if not self._warned:
                    log.warning("cannot notify systemd at %s: %s", self._address, exc)
                    self._warned = True
                return False


def _from_environment(env) -> tuple[str, int | None]:
    """($NOTIFY_SOCKET, $WATCHDOG_USEC). The watchdog applies only when ``WATCHDOG_PID`` is
    unset or is our pid: the variables are inherited by children, which must not ping for us."""
    usec = None
    pid = env.get("WATCHDOG_PID")
    if not pid or pid == str(os.getpid()):
        try:
            usec = int(env.get("WATCHDOG_USEC", "") or 0) or None
        except ValueError:
            usec = None
    return env.get("NOTIFY_SOCKET", ""), usec


def _address(path: str) -> str | bytes:
    # "@name" is Linux's abstract namespace: a leading NUL byte instead of the "@".
    return b"\0" + path[1:].encode() if path.startswith("@") else path


def _one_line(text: str) -> str:
    # A newline would start a new KEY=value assignment in the datagram.
    return " ".join(str(text).split())
