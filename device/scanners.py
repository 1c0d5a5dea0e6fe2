"""Dedicated USB code scanners: a serial (USB CDC) scanner and a keyboard-wedge (HID) scanner.

Both deliver text the scanner already decoded, one code per line, and report
it as a :class:`CodeSeen` through ``on_code`` from their own reader thread,
the same way the camera pipeline does. A scanner that is unplugged is
reopened with backoff until it comes back; ``connected`` and ``error`` say
how it is doing. pyserial is imported when a serial scanner opens, evdev
when a HID scanner opens (it is optional: ``pip install checkin-kiosk[hid]``
or apt's python3-evdev).

A keyboard wedge types what a US keyboard can: HC1, PC-Covid and ASCII CCCD
payloads arrive intact, but letters with Vietnamese diacritics (a CCCD's
name) cannot be typed as key codes; use the scanner's serial (USB CDC) mode
for those.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import select
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from device import DeviceError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CodeSeen:
    """One visitor's scan, after re-arm filtering."""

    text: str
    captured_at: float  # monotonic time of the frame (or of the scanner line)
    source: str  # "camera" | "serial" | "hid"
    corners: tuple | None = None


class ScannerUnavailable(DeviceError, RuntimeError):
    """A scanner's driver library is missing; the message says what to install."""


class _Reader:
    """A reader thread with reconnect-on-failure and a time-based repeat filter."""

    source = "scanner"

    def __init__(self, path: str, on_code: Callable[[CodeSeen], None], repeat_seconds: float = 1.0,
                 backoff_min_s: float = 0.5, backoff_max_s: float = 10.0):
        self.path = path
        self.on_code = on_code
        # Presentation-mode scanners re-read a code held under them; one visitor is one scan.
        self.repeat_seconds = repeat_seconds
        self.backoff_min_s, self.backoff_max_s = backoff_min_s, backoff_max_s
        self.connected = False
        self.error = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last: tuple[str, float] = ("", 0.0)

    def start(self) -> None:
        """Start reading in a background thread."""
        self._thread = threading.Thread(target=self._run, name=f"{self.source}-scanner", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop reading and release the device; returns within about a second."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(1.0)

    def _emit(self, text: str, at: float) -> None:
        text = text.strip("\r\n")
        if not text:
            return
        last_text, last_at = self._last
        if text == last_text and at - last_at < self.repeat_seconds:
            self._last = (text, at)
            return
        self._last = (text, at)
        try:
            self.on_code(CodeSeen(text, at, self.source))
        except Exception:
            log.exception("%s scanner: code callback failed", self.source)

    def _run(self) -> None:
        backoff = self.backoff_min_s
        while not self._stop.is_set():
            try:
                self._session()
                backoff = self.backoff_min_s
            except ScannerUnavailable as exc:
                self.connected, self.error = False, str(exc)
                log.error("%s scanner: %s", self.source, exc)
                return  # retrying cannot install a library
            except (OSError, ValueError) as exc:
                if self.connected or self.error != str(exc):
                    log.warning("%s scanner %s: %s (retrying)", self.source, self.path, exc)
                self.connected, self.error = False, str(exc) or type(exc).__name__
                if self._stop.wait(backoff):
                    break
                backoff = min(backoff * 2, self.backoff_max_s)
        self.connected = False

    def _session(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


class SerialScanner(_Reader):
    """A USB CDC scanner (``/dev/ttyACM0``): lines ending in CR and/or LF.

    Scanners set up without a line ending are handled too: a pause of
    ``idle_end_s`` after the last byte ends the code.
    """

    source = "serial"

    def __init__(self, path: str, on_code: Callable[[CodeSeen], None], baud: int = 9600, idle_end_s: float = 0.15,
                 **kw: Any):
        super().__init__(path, on_code, **kw)
        self.baud = baud
        self.idle_end_s = idle_end_s

    def _session(self) -> None:
        try:
            import serial
        except ImportError:
            raise ScannerUnavailable("pyserial is not installed (pip install pyserial)") from None
        try:
            port = serial.Serial(self.path, self.baud, timeout=0.1)
        except serial.SerialException as exc:
            raise OSError(f"cannot open {self.path}: {exc}") from None
        self.connected, self.error = True, ""
        log.info("serial scanner on %s", self.path)
        buf = bytearray()
        last_byte_at = 0.0
        try:
            while not self._stop.is_set():
                try:
                    chunk = port.read(4096)
                except serial.SerialException as exc:
                    raise OSError(f"{self.path} disconnected: {exc}") from None
                now = time.monotonic()
                if chunk:
                    buf += chunk
                    last_byte_at = now
                    *lines, rest = re.split(rb"\r\n|\r|\n", bytes(buf))
                    buf = bytearray(rest)
                    for line in lines:
                        self._emit(_text(line), now)
                elif buf and now - last_byte_at >= self.idle_end_s:
                    self._emit(_text(bytes(buf)), now)
                    buf.clear()
        finally:
            port.close()


def _text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


# Linux input key codes (linux/input-event-codes.h) -> (plain, shifted) on a US layout,
# which is what keyboard-wedge scanners emulate by default.
_ROWS = {
    2: "1!", 3: "2@", 4: "3#", 5: "4$", 6: "5%", 7: "6^", 8: "7&", 9: "8*", 10: "9(", 11: "0)", 12: "-_", 13: "=+",
    15: "\t\t", 26: "[{", 27: "]}", 39: ";:", 40: "'\"", 41: "`~", 43: "\\|", 51: ",<", 52: ".>", 53: "/?", 57: "  ",
    55: "**", 71: "77", 72: "88", 73: "99", 74: "--", 75: "44", 76: "55", 77: "66", 78: "++", 79: "11", 80: "22",
    81: "33", 82: "00", 83: "..", 98: "//",
}
for _start, _letters in ((16, "qwertyuiop"), (30, "asdfghjkl"), (44, "zxcvbnm")):
    for _i, _c in enumerate(_letters):
        _ROWS[_start + _i] = _c + _c.upper()
KEYMAP: dict[int, tuple[str, str]] = {code: (pair[0], pair[1]) for code, pair in _ROWS.items()}
KEY_ENTER, KEY_KPENTER = 28, 96
KEY_LEFTSHIFT, KEY_RIGHTSHIFT, KEY_CAPSLOCK = 42, 54, 58
EV_KEY = 1


class KeyDecoder:
    """Turns key events (type, code, value) into lines of text, tracking Shift and Caps Lock."""

    def __init__(self) -> None:
        self.shift = 0
        self.caps = False
        self._chars: list[str] = []

    def feed(self, etype: int, code: int, value: int) -> str | None:
        """One input event; returns a finished line on Enter, else None."""
        if etype != EV_KEY:
            return None
        if code in (KEY_LEFTSHIFT, KEY_RIGHTSHIFT):
            self.shift = max(0, self.shift + (1 if value == 1 else -1 if value == 0 else 0))
            return None
        if value != 1:  # key up or auto-repeat: a scanner types each character once
            return None
        if code == KEY_CAPSLOCK:
            self.caps = not self.caps
        elif code in (KEY_ENTER, KEY_KPENTER):
            line, self._chars = "".join(self._chars), []
            return line
        elif code in KEYMAP:
            plain, shifted = KEYMAP[code]
            ch = shifted if self.shift else plain
            if self.caps and plain.isalpha():
                ch = plain if self.shift else shifted
            self._chars.append(ch)
        return None


def _open_evdev(path: str):
    try:
        import evdev
    except ImportError:
        raise ScannerUnavailable("HID scanner needs python-evdev (apt install python3-evdev, "
                                 "or pip install 'checkin-kiosk[hid]')") from None
    return evdev.InputDevice(path)


class HidScanner(_Reader):
    """A keyboard-wedge scanner read from its input device (``/dev/input/by-id/...-event-kbd``).

    The device is grabbed so its keystrokes do not also reach the console or
    the kiosk window. ``open_device`` replaces ``evdev.InputDevice`` (tests pass
    a fake with ``fd``, ``read()``, ``grab()``, ``close()``).
    """

    source = "hid"

    def __init__(self, path: str, on_code: Callable[[CodeSeen], None], open_device: Callable[[str], Any] | None = None,
                 **kw: Any):
        super().__init__(path, on_code, **kw)
        self._open_device = open_device or _open_evdev

    def _session(self) -> None:
        device = self._open_device(self.path)
        try:
            try:
                device.grab()
            except OSError as exc:
                log.warning("hid scanner %s: cannot grab (%s); keystrokes also reach other programs", self.path, exc)
            self.connected, self.error = True, ""
            log.info("hid scanner on %s", self.path)
            keys = KeyDecoder()
            while not self._stop.is_set():
                ready, _, _ = select.select([device.fd], [], [], 0.2)
                if not ready:
                    continue
                try:
                    events = list(device.read())
                except BlockingIOError:
                    continue
                except OSError as exc:
                    if exc.errno in (errno.ENODEV, errno.EIO, errno.EBADF):
                        raise OSError(f"{self.path} unplugged") from None
                    raise
                now = time.monotonic()
                for ev in events:
                    line = keys.feed(ev.type, ev.code, ev.value)
                    if line is not None:
                        self._emit(line, now)
        finally:
            try:
                device.close()
            except OSError:
                pass


def device_exists(path: str) -> bool:
    """Whether a scanner's device node is present (for ``kiosk doctor``)."""
    return os.path.exists(path)
