"""Dedicated scanners: serial (driven through a pseudo-terminal) and keyboard wedge (a fake event stream)."""

from __future__ import annotations

import errno
import os
import queue
import sys
import time
import tty
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import wait_for
from device.scanners import KEYMAP, CodeSeen, HidScanner, KeyDecoder, SerialScanner

HC1 = "HC1:6BFOXN%TS3DH0YOJ58S S-W5HDC *M0II5XHC9B5G2+$N IOP-IA%NFQGRJPC%OQHIZC4.OI1RM8ZA.A5:S9MKN4NN3F85QNCY0O%0VZ001HOC9JU0D0HT0HB2PL/IB*09B9LW4T*8+DCMH0LDK2%K:XFE70*LP$V25$0Q:J:4MO1P0%0L0HD+9E/HY+4J6TH48S%4K.GJ2PT3QY:GQ3TE2I+-CPHN6D7LLK*2HG%89UV-0LZ 2ZJJ524-LH/CJTK96L6SR9MU9DHGZ%P WUQRENS431T1XCNCF+47AY0-IFO0500TGPN8F5G.41Q2E4T8ALW.INSV$ 07UV5SR+BNQHNML7 /KD3TU 4V*CAT3ZGLQMI/XI%ZJNSBBXK2:UG%UJMI:TU+MMPZ5$/PMX19UE4-0HLUQJI5+A8:D*L6PFJ:K9G0V1:KAIBG/PR7*H.8B.L0-GI0SWQSB5X00BF:AS$A5GDM9"
PCCOVID = "001099012345|123456789|Nguyen Van An|01011990|Nam|So 1, Q1|01012021"


def collect(timeout: float, q: queue.Queue, n: int) -> list[CodeSeen]:
    out = []
    deadline = time.monotonic() + timeout
    while len(out) < n and time.monotonic() < deadline:
        try:
            out.append(q.get(timeout=0.05))
        except queue.Empty:
            pass
    return out


# -- serial ---------------------------------------------------------------------


class Pty:
    """A pseudo-terminal standing in for a USB CDC scanner; ``link`` is the stable device path."""

    def __init__(self, link: str):
        self.link = link
        self.plug()

    def plug(self):
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        if os.path.lexists(self.link):
            os.unlink(self.link)
        os.symlink(os.ttyname(self.slave), self.link)

    def write(self, data: bytes):
        os.write(self.master, data)

    def unplug(self):
        os.close(self.master)
        os.close(self.slave)
        os.unlink(self.link)


@pytest.fixture
def pty_scanner(tmp_path):
    port = Pty(str(tmp_path / "ttyACM0"))
    q: queue.Queue = queue.Queue()
    scanner = SerialScanner(port.link, q.put, baud=9600, backoff_min_s=0.05, backoff_max_s=0.2)
    scanner.start()
    wait_for(lambda: scanner.connected, timeout=3)
    yield port, scanner, q
    scanner.stop()
    try:
        port.unplug()
    except OSError:
        pass


def test_serial_scanner_reports_each_line_as_a_code(pty_scanner):
    port, scanner, q = pty_scanner
    port.write(HC1.encode() + b"\r\n")
    port.write(PCCOVID.encode() + b"\r")
    port.write("Nguyễn Văn An|079201000001\n".encode())
    got = collect(3, q, 3)
    assert [c.text for c in got] == [HC1, PCCOVID, "Nguyễn Văn An|079201000001"]
    assert {c.source for c in got} == {"serial"}


def test_serial_code_split_across_reads_is_joined(pty_scanner):
    port, scanner, q = pty_scanner
    port.write(HC1[:100].encode())
    time.sleep(0.05)
    port.write(HC1[100:].encode() + b"\r\n")
    assert [c.text for c in collect(3, q, 1)] == [HC1]


def test_serial_scanner_without_line_ending_ends_a_code_on_a_pause(pty_scanner):
    port, scanner, q = pty_scanner
    port.write(b"HC1:NOSUFFIX")
    assert [c.text for c in collect(3, q, 1)] == ["HC1:NOSUFFIX"]


def test_serial_repeat_of_the_same_code_is_one_scan(pty_scanner):
    port, scanner, q = pty_scanner
    for _ in range(3):  # presentation mode: the scanner re-reads a code held under it
        port.write(b"HC1:SAME\r\n")
    port.write(b"HC1:OTHER\r\n")
    assert [c.text for c in collect(2, q, 3)] == ["HC1:SAME", "HC1:OTHER"]


def test_serial_scanner_reconnects_after_unplug(pty_scanner):
    port, scanner, q = pty_scanner
    port.write(b"first\r\n")
    assert [c.text for c in collect(3, q, 1)] == ["first"]
    port.unplug()
    wait_for(lambda: not scanner.connected, timeout=3)
    assert not scanner.connected and scanner.error
    port.plug()
    wait_for(lambda: scanner.connected, timeout=3)
    port.write(b"second\r\n")
    assert [c.text for c in collect(3, q, 1)] == ["second"]


def test_serial_port_absent_at_start_is_retried_without_crashing(tmp_path):
    q: queue.Queue = queue.Queue()
    scanner = SerialScanner(str(tmp_path / "ttyACM9"), q.put, backoff_min_s=0.05)
    scanner.start()
    wait_for(lambda: "ttyACM9" in scanner.error, timeout=3)
    assert not scanner.connected and "ttyACM9" in scanner.error
    t = time.monotonic()
    scanner.stop()
    assert time.monotonic() - t < 1.0


# -- keyboard wedge (HID) -----------------------------------------------------------


@dataclass
class Event:
    type: int
    code: int
    value: int


SHIFT = 42
_BY_CHAR = {}
for _code, (_plain, _shifted) in KEYMAP.items():
    if _code < 71:  # main block, as a scanner types it (not the keypad)
        _BY_CHAR.setdefault(_plain, (_code, False))
        _BY_CHAR.setdefault(_shifted, (_code, True))


def typed(text: str, enter: bool = True) -> list[Event]:
    """Key events a US-layout keyboard-wedge scanner sends for ``text``."""
    ev = []
    for ch in text:
        code, shift = _BY_CHAR[ch]
        if shift:
            ev.append(Event(1, SHIFT, 1))
        ev += [Event(4, 4, code), Event(1, code, 1), Event(0, 0, 0), Event(1, code, 0)]  # with MSC_SCAN and SYN noise
        if shift:
            ev.append(Event(1, SHIFT, 0))
    if enter:
        ev += [Event(1, 28, 1), Event(1, 28, 0)]
    return ev


class FakeInputDevice:
    """evdev.InputDevice's reading surface over a pipe: ``fd`` for select, ``read()`` for events."""

    def __init__(self):
        self.r, self.w = os.pipe()
        os.set_blocking(self.r, False)
        self.fd = self.r
        self.pending: list[Event] = []
        self.grabbed = self.closed = self.gone = False

    def push(self, events):
        self.pending += events
        os.write(self.w, b"x")

    def unplug(self):
        self.gone = True
        os.write(self.w, b"x")

    def read(self):
        try:
            os.read(self.r, 4096)
        except BlockingIOError:
            pass
        if self.gone:
            raise OSError(errno.ENODEV, "No such device")
        out, self.pending = self.pending, []
        if not out:
            raise BlockingIOError
        return iter(out)

    def grab(self):
        self.grabbed = True

    def close(self):
        self.closed = True
        for fd in (self.r, self.w):
            try:
                os.close(fd)
            except OSError:
                pass


class Devices:
    def __init__(self):
        self.opened: list[FakeInputDevice] = []
        self.fail = 0

    def __call__(self, path):
        if self.fail:
            self.fail -= 1
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", path)
        d = FakeInputDevice()
        self.opened.append(d)
        return d


@pytest.fixture
def hid():
    devices = Devices()
    q: queue.Queue = queue.Queue()
    scanner = HidScanner("/dev/input/by-id/usb-scanner-event-kbd", q.put, open_device=devices, backoff_min_s=0.05)
    scanner.start()
    wait_for(lambda: devices.opened, timeout=3)
    yield devices, scanner, q
    scanner.stop()


def test_hid_scanner_types_hc1_and_pccovid_codes(hid):
    devices, scanner, q = hid
    dev = devices.opened[0]
    assert dev.grabbed  # keystrokes do not also reach the console
    dev.push(typed(HC1))
    dev.push(typed(PCCOVID))
    got = collect(3, q, 2)
    assert [c.text for c in got] == [HC1, PCCOVID]
    assert {c.source for c in got} == {"hid"}


def test_hid_scanner_reconnects_after_unplug(hid):
    devices, scanner, q = hid
    devices.fail = 2  # still gone for the next two tries
    devices.opened[0].unplug()
    wait_for(lambda: len(devices.opened) >= 2, timeout=3)
    assert len(devices.opened) == 2 and devices.opened[0].closed
    devices.opened[1].push(typed("HC1:AGAIN"))
    assert [c.text for c in collect(3, q, 1)] == ["HC1:AGAIN"]


def test_hid_without_evdev_fails_with_a_clear_message(monkeypatch):
    monkeypatch.setitem(sys.modules, "evdev", None)
    q: queue.Queue = queue.Queue()
    scanner = HidScanner("/dev/input/event7", q.put)
    scanner.start()
    scanner._thread.join(2)
    assert not scanner.connected and "python3-evdev" in scanner.error
    scanner.stop()


def test_caps_lock_and_shift_give_the_right_case():
    keys = KeyDecoder()
    out = None
    for e in [Event(1, 58, 1), Event(1, 58, 0),  # caps lock
              Event(1, 30, 1), Event(1, 42, 1), Event(1, 30, 1), Event(1, 42, 0), Event(1, 28, 1)]:
        out = keys.feed(e.type, e.code, e.value) or out
    assert out == "Aa"  # caps lock on: plain a -> A, shifted a -> a


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(sorted(c for c in _BY_CHAR if c not in "\t")), max_size=80))
def test_any_printable_ascii_typed_by_a_scanner_reads_back(text):
    keys = KeyDecoder()
    lines = [line for e in typed(text) if (line := keys.feed(e.type, e.code, e.value)) is not None]
    assert lines == [text]
