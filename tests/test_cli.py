"""The ``kiosk`` command itself: version, help, usage errors."""

from __future__ import annotations

import subprocess
import sys
import time

from kiosk import __version__
from kiosk.cli import COMMANDS


def kiosk(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kiosk", *args], capture_output=True, text=True, timeout=60)


def test_version():
    result = kiosk("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"kiosk {__version__}"


def test_no_command_prints_help_and_exits_2():
    result = kiosk()
    assert result.returncode == 2
    for name in ("run", "demo", "verify", "decode"):
        assert name in result.stdout


def test_every_command_has_help():
    for name in COMMANDS:
        result = kiosk(name, "--help")
        assert result.returncode == 0, (name, result.stderr)
        assert "usage: kiosk" in result.stdout


def test_start_up_is_fast():
    """``kiosk --version`` imports no heavy module (numpy, cv2, pygame, paho)."""
    code = ("import sys, kiosk.cli, kiosk.config; "
            "print(sorted(m for m in ('numpy', 'cv2', 'pygame', 'paho') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout
    assert out.strip() == "[]"
    t0 = time.monotonic()
    kiosk("--version")
    assert time.monotonic() - t0 < 5  # generous: shared machines; the point is no heavy imports
