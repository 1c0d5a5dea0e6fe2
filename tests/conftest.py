"""Shared fixtures: the shared test data, a real mosquitto broker on a free port, no display."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

# Rendering and sound never need a real device in tests.
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
os.environ.setdefault("GPIOZERO_PIN_FACTORY", "mock")

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("KIOSK_SHARED", ROOT.parent / "shared")).resolve()
TESTDATA = SHARED / "testdata"


@pytest.fixture(scope="session")
def testdata() -> Path:
    """``../shared/testdata`` (or ``$KIOSK_SHARED/testdata``); the suite requires it."""
    assert TESTDATA.is_dir(), f"shared test data not found at {TESTDATA} (set KIOSK_SHARED)"
    return TESTDATA


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Broker:
    """A mosquitto we started: ``url`` for the kiosk, ``stop()``/``start()`` to cut and restore it."""

    port: int
    conf: Path
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            # A second mosquitto on the same port fails to bind, while the first answers the wait below and
            # is then never stopped: a broker left running after the suite.
            raise RuntimeError("this mosquitto is already running: stop() it first")
        exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.proc = subprocess.Popen([exe, "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"mosquitto exited with {self.proc.returncode}")
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not start listening")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


def make_broker(tmp: Path) -> Broker:
    port = free_port()
    conf = tmp / "mosquitto.conf"
    # persistence keeps QoS 1 sessions across a stop/start, as a real central broker does.
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location {tmp}/\n"
        # As root, mosquitto drops to user "mosquitto", which cannot write the (0700) pytest tmp dir, and
        # persistence silently fails; "user" names ourselves (no effect when not root).
        f"user {__import__('getpass').getuser()}\n"
        "max_queued_messages 100000\n"
    )
    broker = Broker(port=port, conf=conf)
    broker.start()
    return broker


@pytest.fixture
def broker(tmp_path_factory):
    """A fresh mosquitto on a free port (never 1883), stopped after the test."""
    b = make_broker(tmp_path_factory.mktemp("broker"))
    yield b
    b.stop()
