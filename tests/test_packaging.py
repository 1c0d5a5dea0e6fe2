"""Installing the kiosk on a Raspberry Pi pulls nothing heavy from pip.

On the Pi, numpy, OpenCV, pygame and picamera2 come from apt (Raspberry Pi OS
Bookworm) and the project goes into a venv made with --system-site-packages.
apt's python3-opencv registers no pip metadata, so a base dependency on
opencv-python (or on anything that needs it) would make pip install a second
OpenCV, built against another numpy, over the one picamera2 uses.

These tests resolve the project's requirements with pip for the Pi itself
(Bookworm: CPython 3.11; Trixie: CPython 3.13; manylinux aarch64, binary wheels
only) against PyPI, and check the list. They need PyPI; when it cannot be reached they fail with pip's reason.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# What the Pi takes from apt, never from pip (normalized distribution names).
HEAVY = re.compile(r"^(numpy|opencv(-contrib)?-python(-headless)?|pygame(-ce)?|picamera2|simplejpeg|scipy)$")

# Raspberry Pi OS, 64-bit: Bookworm has CPython 3.11 and glibc 2.36, Trixie CPython 3.13 and glibc 2.41.
# pip does not expand manylinux_2_X platforms to older ones by itself, so name each one.
RELEASES = {"bookworm": ("3.11", 36), "trixie": ("3.13", 41)}


def pi_platforms(glibc_minor: int) -> list[str]:
    return ["manylinux2014_aarch64"] + [f"manylinux_2_{v}_aarch64" for v in range(17, glibc_minor + 1)]




def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def _requirement_name(req: str) -> str:
    return _norm(re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", req).group(1))


def resolve_for_pi(requirements: list[str], tmp_path: Path, release: str = "bookworm") -> dict[str, str]:
    """Resolve ``requirements`` with pip as a Pi would; return {name: version} of everything pip would install."""
    report = tmp_path / "report.json"
    python, glibc = RELEASES[release]
    cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
           "--report", str(report), "--python-version", python, "--implementation", "cp",
           "--only-binary=:all:"]
    for platform in pi_platforms(glibc):
        cmd += ["--platform", platform]
    env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
    try:
        proc = subprocess.run(cmd + requirements, capture_output=True, text=True, timeout=120, env=env)
    except subprocess.TimeoutExpired:
        pytest.fail("pip took more than 120 s to resolve the requirements: is PyPI reachable?")
    if proc.returncode != 0:
        # pip's notes about unusable local find-links locations only hide the cause.
        lines = [ln for ln in (proc.stderr or proc.stdout).strip().splitlines() if "is ignored" not in ln]
        tail = "\n".join(lines[-15:])
        pytest.fail(
            f"pip could not resolve the project's requirements for a Pi ({release}: CPython {python}, aarch64, "
            "wheels only).\n"
            "Either PyPI is unreachable (network) or a requirement has no aarch64 wheel, which the Pi "
            f"would have to compile:\n{tail}",
            pytrace=False,
        )
    data = json.loads(report.read_text(encoding="utf-8"))
    return {_norm(item["metadata"]["name"]): item["metadata"]["version"] for item in data["install"]}


def test_base_requirements_name_no_heavy_library():
    base = [_requirement_name(r) for r in _project()["dependencies"]]
    assert not [n for n in base if HEAVY.match(n)], f"heavy libraries among the base dependencies: {base}"


def test_desktop_extra_names_the_heavy_libraries():
    desktop = {_requirement_name(r) for r in _project()["optional-dependencies"]["desktop"]}
    assert {"numpy", "opencv-python-headless", "pygame"} <= desktop


@pytest.mark.parametrize("release", sorted(RELEASES))
def test_pi_install_pulls_nothing_heavy_from_pip(tmp_path, release):
    base = _project()["dependencies"]
    resolved = resolve_for_pi(base, tmp_path, release)
    # The resolution really covered the base requirements ...
    assert {_requirement_name(r) for r in base} <= set(resolved), resolved
    # ... and nothing in it, direct or transitive, is one of apt's libraries.
    heavy = sorted(f"{n}=={v}" for n, v in resolved.items() if HEAVY.match(n))
    assert not heavy, f"pip would install on the Pi, over apt's stack: {heavy}"


def test_desktop_extra_brings_the_heavy_libraries(tmp_path):
    project = _project()
    resolved = resolve_for_pi(project["dependencies"] + project["optional-dependencies"]["desktop"], tmp_path)
    assert {"numpy", "opencv-python-headless", "pygame"} <= set(resolved), sorted(resolved)
    assert "picamera2" not in resolved  # from the Raspberry Pi archive only
