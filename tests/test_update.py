"""scripts/update: switch to a new release and roll back when kiosk.service does not become ready.

systemctl is replaced by a small fake that reports the service as ready or failed
depending on which release /opt/kiosk/venv points at, as the real one would after
a restart on a good or a broken release.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

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
    loader = importlib.machinery.SourceFileLoader("prov", str(ROOT / "scripts" / "provision"))
    spec = importlib.util.spec_from_loader("prov", loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return f"{mod.project_version(ROOT)}-{mod.source_digest(ROOT)[:10]}"


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


def update(prefix: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(UPDATE), "--prefix", str(prefix), "--systemctl", str(prefix.parent / "systemctl"),
                           "--ready-timeout", "3", "--settle", "1", *args], capture_output=True, text=True, timeout=60)


def test_good_release_is_switched_to_and_kept(prefix):
    name = release_name()
    make_release(prefix, name)
    r = update(prefix)
    assert r.returncode == 0, r.stderr
    assert os.readlink(prefix / "venv") == f"releases/{name}"
    assert "ready on" in r.stdout
    assert "restart kiosk.service" in (prefix / "systemctl.log").read_text()
    again = update(prefix)
    assert again.returncode == 0 and "already running" in again.stdout


def test_release_that_never_becomes_ready_is_rolled_back(prefix):
    make_release(prefix, release_name(), broken=True)
    r = update(prefix)
    assert r.returncode == 1
    assert os.readlink(prefix / "venv") == "releases/0.0.9-old"
    assert "rolled back to releases/0.0.9-old: ready" in r.stderr
    assert (prefix / "systemctl.log").read_text().count("restart kiosk.service") == 2


def test_release_that_rejects_the_config_is_never_switched_to(prefix):
    make_release(prefix, release_name(), config_ok=False)
    r = update(prefix)
    assert r.returncode == 1
    assert "was not touched" in r.stderr
    assert os.readlink(prefix / "venv") == "releases/0.0.9-old"
    assert not (prefix / "systemctl.log").exists()


def test_dry_run_changes_nothing(prefix):
    r = update(prefix, "--dry-run")
    assert r.returncode == 0, r.stderr
    assert "would create the release venv" in r.stdout and "would switch" in r.stdout
    assert os.readlink(prefix / "venv") == "releases/0.0.9-old"
    assert [p.name for p in (prefix / "releases").iterdir()] == ["0.0.9-old"]
