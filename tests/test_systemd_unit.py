"""systemd/kiosk.service: the settings the kiosk depends on, and systemd's own verdict on the file."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "systemd" / "kiosk.service"


def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """systemd's INI dialect: repeated keys accumulate, '#'/';' comments, backslash continuations."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    pending = ""
    for raw in text.splitlines():
        line = pending + raw.strip()
        pending = ""
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


@pytest.fixture(scope="module")
def unit():
    return parse_unit(UNIT.read_text())


def one(unit, key, section="Service"):
    values = unit[section][key]
    assert len(values) == 1, f"{key} set {len(values)} times"
    return values[0]


def test_notify_with_watchdog_and_restart(unit):
    assert one(unit, "Type") == "notify"
    assert one(unit, "NotifyAccess") == "main"
    assert int(one(unit, "WatchdogSec")) >= 10  # pings every quarter of it; room for a slow frame
    assert one(unit, "Restart") == "on-failure"
    # A configuration error exits 2 (kiosk.cli): restarting cannot fix it, so no crash loop.
    assert one(unit, "RestartPreventExitStatus").split() == ["2"]
    assert one(unit, "ExecStart") == "/opt/kiosk/venv/bin/kiosk run --config /etc/kiosk/kiosk.toml"


def test_runs_as_kiosk_user_with_device_groups(unit):
    assert one(unit, "User") == "kiosk"
    groups = set(one(unit, "SupplementaryGroups").split())
    assert {"video", "gpio", "render", "input", "dialout"} <= groups


def test_state_and_credentials(unit):
    assert one(unit, "StateDirectory") == "kiosk"  # /var/lib/kiosk = [device] state_dir default
    assert unit["Service"]["LoadCredential"] == ["mqtt:/etc/credstore/kiosk-mqtt"]
    assert one(unit, "WorkingDirectory") == "/run/kiosk" and one(unit, "RuntimeDirectory") == "kiosk"


def test_hardening_that_still_reaches_the_devices(unit):
    svc = unit["Service"]
    for key, value in {"ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes", "NoNewPrivileges": "yes",
                       "DevicePolicy": "closed", "ProtectKernelTunables": "yes", "ProtectKernelModules": "yes",
                       "ProtectControlGroups": "yes", "RestrictSUIDSGID": "yes", "LockPersonality": "yes"}.items():
        assert svc[key] == [value], key
    assert one(unit, "CapabilityBoundingSet") == ""
    allowed = {v.split()[0] for v in svc["DeviceAllow"]}
    # /dev/dri, /dev/video* + /dev/media*, /dev/dma_heap, /dev/gpiochip*, /dev/input/*, and serial scanners
    # both as /dev/ttyACM* (CDC-ACM) and /dev/ttyUSB* (behind a CP210x/CH340/FTDI bridge)
    assert {"char-drm", "char-video4linux", "char-media", "char-dma_heap", "char-gpiochip", "char-input",
            "char-ttyACM", "char-ttyUSB"} <= allowed
    modes = {v.split()[0]: v.split()[1] for v in svc["DeviceAllow"]}
    assert modes["char-ttyUSB"] == modes["char-ttyACM"] == "rw"
    assert "PrivateDevices" not in svc  # it would hide every device above


def test_logs_only_to_the_journal(unit):
    assert one(unit, "StandardOutput") == "journal" and one(unit, "StandardError") == "journal"
    assert "LogsDirectory" not in unit["Service"]


def test_enabled_for_boot(unit):
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]


def _verify(tmp_path: Path, unit_text: str, name: str = "kiosk.service",
            exe_path: str = "opt/kiosk/venv/bin/kiosk") -> subprocess.CompletedProcess:
    """systemd-analyze verify in a tree with the unit, its ExecStart and the system's units."""
    root = tmp_path / "root"
    shutil.copytree("/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
    exe = root / exe_path
    exe.parent.mkdir(parents=True)
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    (root / "etc/systemd/system").mkdir(parents=True)
    (root / "etc/systemd/system" / name).write_text(unit_text)
    return subprocess.run(["systemd-analyze", "verify", "--man=no", f"--root={root}", f"/etc/systemd/system/{name}"],
                          capture_output=True, text=True, timeout=60)


needs_analyze = pytest.mark.skipif(shutil.which("systemd-analyze") is None or not Path("/usr/lib/systemd/system").is_dir(),
                                   reason="systemd-analyze not installed (apt install systemd)")


@needs_analyze
def test_systemd_analyze_verify_accepts_the_unit(tmp_path):
    r = _verify(tmp_path, UNIT.read_text())
    assert r.returncode == 0 and not r.stderr.strip(), r.stderr


@needs_analyze
def test_systemd_analyze_verify_catches_a_broken_unit(tmp_path):
    r = _verify(tmp_path, UNIT.read_text().replace("Type=notify", "Type=notifyy"))
    assert "notifyy" in r.stderr


@needs_analyze
def test_first_boot_unit_verifies_and_runs_once(tmp_path):
    text = (ROOT / "systemd" / "kiosk-firstboot.service").read_text()
    r = _verify(tmp_path, text, "kiosk-firstboot.service", "usr/local/sbin/kiosk-firstboot")
    assert r.returncode == 0 and not r.stderr.strip(), r.stderr
    unit = parse_unit(text)
    assert one(unit, "Type") == "oneshot"
    assert unit["Unit"]["ConditionPathExists"] == ["/boot/firmware/kiosk/device.toml"]


def test_first_boot_sandbox_leaves_writable_exactly_what_provisioning_writes():
    """The hardened first-boot unit (issue 23 loose end): root, but a write outside ReadWritePaths fails on the Pi,
    so every place kiosk-firstboot and kiosk provision write must be inside them, and nothing else is."""
    from kiosk.ops import fleet, provision

    svc = parse_unit((ROOT / "systemd" / "kiosk-firstboot.service").read_text())["Service"]
    assert svc["ProtectSystem"] == ["strict"] and svc["ProtectHome"] == ["yes"]
    writable = [p.lstrip("-") for line in svc["ReadWritePaths"] for p in line.split()]
    written = [provision.PREFIX, provision.CONFIG, provision.CREDSTORE, provision.UNIT, provision.JOURNALD,
               provision.AUTHORITY_KEY, fleet.BOOT + "/kiosk/device.toml", "/usr/local/sbin/kiosk-firstboot",
               "/var/lib/dpkg", "/var/cache/apt", "/usr/lib/python3"]  # apt and dpkg install under /usr and /var
    for path in written:
        assert any(path == w or path.startswith(w.rstrip("/") + "/") for w in writable), path
    assert set(writable) == {"/usr", "/etc", "/var", "/opt", "/boot/firmware"}  # not /home, /root, /srv, /boot
    for key in ("NoNewPrivileges", "PrivateTmp", "PrivateDevices", "ProtectKernelTunables", "ProtectKernelModules",
                "ProtectControlGroups", "ProtectClock", "RestrictNamespaces", "LockPersonality"):
        assert svc[key] == ["yes"], key
    caps = set(svc["CapabilityBoundingSet"][0].split())
    assert not caps & {"CAP_SYS_ADMIN", "CAP_SYS_MODULE", "CAP_NET_ADMIN", "CAP_SYS_PTRACE", "CAP_SYS_TIME",
                       "CAP_SYS_BOOT", "CAP_MKNOD", "CAP_SYS_RAWIO", "CAP_BPF"}
    assert svc["RestrictAddressFamilies"] == ["AF_UNIX AF_INET AF_INET6 AF_NETLINK"]
