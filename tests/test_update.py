"""kiosk update (kiosk/ops/update.py): switch to a new release and roll back when kiosk.service does not become ready.

systemctl is replaced by a small fake that reports the service as ready or failed
depending on which release /opt/kiosk/venv points at, as the real one would after
a restart on a good or a broken release. The updater's clock is injected: waiting
for READY and the settle time pass without sleeping.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kiosk import cli
from kiosk.ops import update as kupdate
from kiosk.testing.clock import FakeClock

ROOT = Path(__file__).resolve().parent.parent
UPDATE = ROOT / "scripts" / "update"

FAKE_SYSTEMCTL = """#!/bin/sh
# Fake systemctl: kiosk.service is 'active' unless the venv link points at a release marked broken.
prefix="{prefix}"
echo "$*" >> "$prefix/systemctl.log"
case "$1" in
  show)
    if [ -e "$prefix/venv/BROKEN" ]; then echo ActiveState=failed; echo SubState=failed; echo NRestarts=3
    else echo ActiveState=active; echo SubState=running; echo NRestarts=0; echo StatusText=scanning; fi ;;
esac
exit 0
"""


def release_name() -> str:
    return kupdate.release_name(ROOT)


def make_release(prefix: Path, name: str, config_ok: bool = True, broken: bool = False) -> Path:
    """A release venv as far as update looks at it: its kiosk command and completion mark."""
    rel = prefix / "releases" / name
    (rel / "bin").mkdir(parents=True)
    kiosk = rel / "bin" / "kiosk"
    kiosk.write_text(f"#!/bin/sh\nexit {0 if config_ok else 2}\n")
    kiosk.chmod(0o755)
    (rel / ".kiosk-release").write_text(name + "\n")
    if broken:
        (rel / "BROKEN").write_text("")
    return rel


@pytest.fixture
def prefix(tmp_path) -> Path:
    p = tmp_path / "opt-kiosk"
    (p / "releases").mkdir(parents=True)
    make_release(p, "0.0.9-old")
    (p / "venv").symlink_to("releases/0.0.9-old")
    fake = tmp_path / "systemctl"
    fake.write_text(FAKE_SYSTEMCTL.format(prefix=p))
    fake.chmod(0o755)
    return p


class Result:
    def __init__(self, returncode: int, out: str, err: str):
        self.returncode, self.stdout, self.stderr = returncode, out, err


@pytest.fixture
def update(capsys):
    def run(prefix: Path, *args: str) -> Result:
        parser = argparse.ArgumentParser()
        kupdate.add_arguments(parser)
        opts = parser.parse_args(["--prefix", str(prefix), "--systemctl", str(prefix.parent / "systemctl"),
                                  "--ready-timeout", "3", "--settle", "1", *args])
        clock = FakeClock(0.0)  # time.monotonic and time.sleep for the updater: sleeping advances it at once
        updater = kupdate.Updater(Path(opts.prefix), opts.systemctl.split(), opts.dry_run, sleep=clock.sleep, clock=clock)
        rc = kupdate.run(opts, updater=updater)
        out = capsys.readouterr()
        return Result(rc, out.out, out.err)
    return run


def test_good_release_is_switched_to_and_kept(prefix, update):
    name = release_name()
    make_release(prefix, name)
    r = update(prefix)
    assert r.returncode == 0, r.stderr
    assert os.readlink(prefix / "venv") == f"releases/{name}"
    assert "ready on" in r.stdout
    assert "restart kiosk.service" in (prefix / "systemctl.log").read_text()
    again = update(prefix)
    assert again.returncode == 0 and "already running" in again.stdout


def test_release_that_never_becomes_ready_is_rolled_back(prefix, update):
    make_release(prefix, release_name(), broken=True)
    r = update(prefix)
    assert r.returncode == 1
    assert os.readlink(prefix / "venv") == "releases/0.0.9-old"
    assert "rolled back to releases/0.0.9-old: ready" in r.stderr
    assert (prefix / "systemctl.log").read_text().count("restart kiosk.service") == 2


def test_release_that_rejects_the_config_is_never_switched_to(prefix, update):
    make_release(prefix, release_name(), config_ok=False)
    r = update(prefix)
    assert r.returncode == 1
    assert "was not touched" in r.stderr
    assert os.readlink(prefix / "venv") == "releases/0.0.9-old"
    assert not (prefix / "systemctl.log").exists()


def test_dry_run_changes_nothing(prefix, update):
    r = update(prefix, "--dry-run")
    assert r.returncode == 0, r.stderr
    assert "would create the release venv" in r.stdout and "would switch" in r.stdout
    assert os.readlink(prefix / "venv") == "releases/0.0.9-old"
    assert [p.name for p in (prefix / "releases").iterdir()] == ["0.0.9-old"]
    assert "ready" not in r.stdout.replace("READY", "") and "nothing was installed" in r.stdout
    assert not (prefix / "systemctl.log").exists()


@pytest.mark.parametrize("setup", ["no-prefix", "no-systemctl", "not-the-project"])
def test_dry_run_never_claims_ready_and_never_prints_a_traceback(tmp_path, setup):
    """Through the real command line, in the situations an operator gets wrong."""
    prefix = tmp_path / "nothing-here"
    args = ["update", "--dry-run", "--prefix", str(prefix), "--ready-timeout", "1", "--settle", "0"]
    if setup == "no-systemctl":
        args += ["--systemctl", str(tmp_path / "no-such-systemctl")]
    if setup == "not-the-project":
        args += ["--source", str(tmp_path)]
    r = subprocess.run([sys.executable, "-m", "kiosk", *args], capture_output=True, text=True, timeout=60)
    assert "Traceback" not in r.stderr
    assert "is ready" not in r.stdout + r.stderr
    if setup == "not-the-project":
        assert r.returncode == 2 and "not the kiosk project" in r.stderr
    else:
        assert r.returncode == 0, r.stderr
        assert "dry run" in r.stdout and not prefix.exists()


def test_script_is_a_thin_wrapper(prefix):
    r = subprocess.run([sys.executable, str(UPDATE), "--dry-run", "--prefix", str(prefix)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "would switch" in r.stdout and os.readlink(prefix / "venv") == "releases/0.0.9-old"
