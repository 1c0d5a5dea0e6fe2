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


def test_kiosk_and_device_errors_are_one_line_with_their_exit_code(monkeypatch, capsys):
    """Any KioskError or DeviceError (and an OSError) from a command: one line, its exit code, no traceback."""
    import types

    from device import DeviceError
    from device.frames import CameraError
    from kiosk import cli
    from kiosk.errors import KioskOSError, KioskValueError

    cases = [(KioskValueError("bad --at value\nforged: line"), 2), (KioskOSError("ledger disk full"), 1),
             (CameraError("no camera 0"), 1), (DeviceError("relay board gone"), 1),
             (ConnectionRefusedError(111, "Connection refused"), 1), (FileNotFoundError(2, "No such file", "x.pem"), 1)]
    for exc, code in cases:
        def run(args, exc=exc):
            raise exc
        fake = types.SimpleNamespace(add_arguments=lambda p: None, run=run)
        monkeypatch.setattr(cli.importlib, "import_module", lambda name, fake=fake: fake)
        assert cli.main(["verify"]) == code
        err = capsys.readouterr().err
        assert "Traceback" not in err and err.startswith("kiosk verify: ")
        assert all(line.startswith("kiosk verify: ") for line in err.splitlines())
    assert isinstance(CameraError("x"), OSError) and isinstance(CameraError("x"), DeviceError)


def test_bad_files_named_on_the_command_line_print_no_traceback(tmp_path):
    import os

    os.mkfifo(tmp_path / "fifo.toml")
    for args in (["config", "check", str(tmp_path / "fifo.toml")], ["config", "check", str(tmp_path)],
                 ["run", "--config", str(tmp_path / "missing.toml")]):
        r = kiosk(*args)
        assert r.returncode == 2 and "Traceback" not in r.stderr, (args, r.stderr)
        assert str(tmp_path) in r.stderr
