"""kiosk.door.systemd: real datagrams on a real AF_UNIX socket, as systemd receives them."""

from __future__ import annotations

import os
import socket
import uuid

import pytest

from kiosk.testing.clock import FakeClock
from kiosk.door.systemd import Notifier


@pytest.fixture
def manager(tmp_path):
    """The service manager's end: a bound datagram socket and its path."""
    path = str(tmp_path / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(1.0)
    yield sock, path
    sock.close()


def received(sock) -> list[str]:
    """Every datagram waiting on the socket, decoded."""
    out = []
    sock.setblocking(False)
    try:
        while True:
            out.append(sock.recv(4096).decode())
    except BlockingIOError:
        pass
    finally:
        sock.settimeout(1.0)
    return out


def test_ready_status_and_stopping_arrive_as_sd_notify_lines(manager):
    sock, path = manager
    n = Notifier(path)
    assert n.enabled and not n.watchdog_enabled
    assert n.ready("camera, display and ledger up")
    assert sock.recv(4096) == b"READY=1\nSTATUS=camera, display and ledger up\n"
    assert n.status("scanning; mqtt offline")
    assert sock.recv(4096) == b"STATUS=scanning; mqtt offline\n"
    assert n.stopping("shutting down")
    assert sock.recv(4096) == b"STOPPING=1\nSTATUS=shutting down\n"
    n.close()


def test_status_is_sent_only_when_it_changes_and_newlines_cannot_inject_keys(manager):
    sock, path = manager
    n = Notifier(path)
    assert n.status("scanning")
    assert not n.status("scanning")
    assert n.status("camera lost\nREADY=1")
    assert received(sock) == ["STATUS=scanning\n", "STATUS=camera lost READY=1\n"]


def test_ping_is_rate_limited_to_a_quarter_of_the_watchdog_interval(manager):
    sock, path = manager
    clock = FakeClock()
    n = Notifier(path, watchdog_usec=20_000_000, clock=clock)
    assert n.watchdog_interval == 20.0
    n.ready()
    assert received(sock) == ["READY=1\nWATCHDOG=1\n"]
    # A main loop at 15 passes per second for 4 s sends nothing more...
    for _ in range(60):
        clock.t += 1 / 15
        n.ping()
    assert received(sock) == []
    # ...and a ping once 5 s (a quarter of 20 s) passed since the last one.
    clock.t += 1.1
    assert n.ping()
    assert received(sock) == ["WATCHDOG=1\n"]
    assert not n.ping()


def test_abstract_namespace_socket(tmp_path):
    name = f"kiosk-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(b"\0" + name.encode())
    sock.settimeout(1.0)
    try:
        Notifier("@" + name).ready()
        assert sock.recv(4096) == b"READY=1\n"
    finally:
        sock.close()


def test_from_env_reads_notify_socket_and_watchdog(manager):
    _, path = manager
    n = Notifier.from_env({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())})
    assert n.enabled and n.watchdog_interval == 30.0


def test_default_constructor_reads_the_service_environment(manager, monkeypatch):
    sock, path = manager
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    monkeypatch.setenv("WATCHDOG_USEC", "8000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    n = Notifier()
    assert n.watchdog_interval == 8.0
    n.ready()
    assert sock.recv(4096) == b"READY=1\nWATCHDOG=1\n"


def test_watchdog_meant_for_another_process_is_ignored(manager):
    _, path = manager
    n = Notifier.from_env({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"})
    assert n.enabled and n.watchdog_interval is None
    assert not n.ping()


def test_outside_systemd_everything_is_a_noop():
    n = Notifier.from_env({})
    assert not n.enabled
    assert n.watchdog_interval is None
    assert not n.ready("x") and not n.status("y") and not n.ping() and not n.stopping()


def test_a_vanished_socket_is_logged_once_and_never_raises(tmp_path, caplog):
    n = Notifier(str(tmp_path / "gone"), watchdog_usec=1)
    with caplog.at_level("WARNING", logger="kiosk.door.systemd"):
        for _ in range(5):
            assert not n.status(f"s{_}")
    assert len([r for r in caplog.records if "cannot notify" in r.message]) == 1
