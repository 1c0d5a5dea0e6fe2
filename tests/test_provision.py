"""scripts/provision applied to a directory tree (--root), as it is on a fresh SD card."""

from __future__ import annotations

import stat
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from kiosk import config

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "provision"
PASSWORD = "pw-Zx81-do-not-print"

DEVICE_ARGS = ["--site", "hcm-q1", "--device-id", "gate-01", "--venue-id", "HCM-Q1-000042",
               "--venue-name", "Chợ Bến Thành", "--venue-address", "Lê Lợi, Quận 1",
               "--venue-qr", "https://qr.tokhaiyte.vn/venue/HCM-Q1-000042",
               "--mqtt-url", "mqtts://broker.example.vn:8883", "--mqtt-username", "hcm-q1-gate-01"]


def provision(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), "--root", str(root), *args],
                          capture_output=True, text=True, timeout=60)


@pytest.fixture
def password_file(tmp_path) -> Path:
    p = tmp_path / "password.txt"
    p.write_text(PASSWORD + "\n")
    return p


@pytest.fixture
def tree(tmp_path) -> Path:
    root = tmp_path / "sdcard"
    root.mkdir()
    return root


def mode(p: Path) -> int:
    return stat.S_IMODE(p.lstat().st_mode)


def snapshot(root: Path) -> dict[str, tuple]:
    return {str(p.relative_to(root)): (p.lstat().st_mtime_ns, mode(p), p.read_bytes() if p.is_file() and not p.is_symlink() else None)
            for p in root.rglob("*")}


def test_fresh_tree_becomes_a_kiosk(tree, password_file):
    r = provision(tree, *DEVICE_ARGS, "--mqtt-password-file", str(password_file))
    assert r.returncode == 0, r.stderr
    cfg_path = tree / "etc/kiosk/kiosk.toml"
    data = tomllib.loads(cfg_path.read_text(encoding="utf-8"))
    assert data["device"] == {"site": "hcm-q1", "id": "gate-01"}
    assert data["venue"]["name"] == "Chợ Bến Thành" and data["venue"]["address"] == "Lê Lợi, Quận 1"
    assert data["venue"]["qr_content"] == "https://qr.tokhaiyte.vn/venue/HCM-Q1-000042"
    assert data["mqtt"]["password_file"] == "credential:mqtt_password"
    assert mode(cfg_path) == 0o640
    # The kiosk itself accepts it.
    cfg = config.load(cfg_path)
    assert cfg.mqtt.url == "mqtts://broker.example.vn:8883" and cfg.mqtt.username == "hcm-q1-gate-01"
    # The template's documentation stays in the installed file.
    assert "# Venue name shown on the screen." in cfg_path.read_text(encoding="utf-8")
    # Secrets: only in the credential store, root-only.
    secret = tree / "etc/credstore/kiosk-mqtt/password"
    assert secret.read_text() == PASSWORD + "\n"
    assert mode(secret) == 0o600 and mode(secret.parent) == 0o700
    assert PASSWORD not in cfg_path.read_text() and PASSWORD not in r.stdout + r.stderr
    # The unit is the repository's, enabled the way systemctl enable does it.
    assert (tree / "etc/systemd/system/kiosk.service").read_bytes() == (ROOT / "systemd/kiosk.service").read_bytes()
    wants = tree / "etc/systemd/system/multi-user.target.wants/kiosk.service"
    assert wants.is_symlink() and str(wants.readlink()) == "/etc/systemd/system/kiosk.service"
    assert "Storage=volatile" in (tree / "etc/systemd/journald.conf.d/kiosk.conf").read_text()
    # What a tree cannot do is still shown.
    for skipped in ("apt-get install", "python3-picamera2", "useradd --system", "--system-site-packages", "systemctl daemon-reload"):
        assert skipped in r.stdout, skipped


def test_second_run_changes_nothing_and_says_so(tree, password_file):
    args = (*DEVICE_ARGS, "--mqtt-password-file", str(password_file))
    assert provision(tree, *args).returncode == 0
    before = snapshot(tree)
    r = provision(tree, *args)
    assert r.returncode == 0, r.stderr
    assert "nothing to change" in r.stdout
    assert snapshot(tree) == before


def test_dry_run_prints_every_action_and_writes_nothing(tree, password_file):
    r = provision(tree, *DEVICE_ARGS, "--mqtt-password-file", str(password_file), "--dry-run")
    assert r.returncode == 0, r.stderr
    assert list(tree.iterdir()) == []
    for action in ("would write /etc/kiosk/kiosk.toml", "would write /etc/credstore/kiosk-mqtt/password",
                   "would write /etc/systemd/system/kiosk.service", "would link /etc/systemd/system/multi-user.target.wants/kiosk.service",
                   "apt-get install"):
        assert action in r.stdout, action
    assert "would be made" in r.stdout


def test_changed_venue_updates_only_the_config_and_keeps_the_previous(tree, password_file):
    assert provision(tree, *DEVICE_ARGS, "--mqtt-password-file", str(password_file)).returncode == 0
    args = [a if a != "Chợ Bến Thành" else "Chợ Bình Tây" for a in DEVICE_ARGS]
    r = provision(tree, *args, "--mqtt-password-file", str(password_file))
    assert r.returncode == 0, r.stderr
    changed = [l for l in r.stdout.splitlines() if l.startswith(("write", "update", "create", "link"))]
    assert changed == ["update /etc/kiosk/kiosk.toml (0640)"]
    assert "Chợ Bình Tây" in (tree / "etc/kiosk/kiosk.toml").read_text(encoding="utf-8")
    assert "Chợ Bến Thành" in (tree / "etc/kiosk/kiosk.toml.previous").read_text(encoding="utf-8")


def test_device_file_with_pins_tls_and_credentials(tree, tmp_path):
    device = tmp_path / "gate-02.toml"
    device.write_text('''
[device]
site = "hn-hoankiem"
id = "gate-02"
[venue]
id = "HN-HK-000123"
name = "Nhà sách Tràng Tiền"
qr_content = "https://qr.tokhaiyte.vn/venue/HN-HK-000123"
[signals]
green_led = 17
red_led = 27
buzzer = 22
[mqtt]
url = "mqtts://broker.example.vn:8883"
username = "hn-hoankiem-gate-02"
[credentials]
mqtt_password = "device-file-secret"
mqtt_client_key = "-----BEGIN PRIVATE KEY-----\\nabc\\n-----END PRIVATE KEY-----\\n"
mqtt_client_cert = "-----BEGIN CERTIFICATE-----\\nabc\\n-----END CERTIFICATE-----\\n"
mqtt_ca = "-----BEGIN CERTIFICATE-----\\nca\\n-----END CERTIFICATE-----\\n"
''', encoding="utf-8")
    r = provision(tree, "--device-file", str(device))
    assert r.returncode == 0, r.stderr
    data = tomllib.loads((tree / "etc/kiosk/kiosk.toml").read_text(encoding="utf-8"))
    assert data["signals"]["green_led"] == 17 and data["signals"]["buzzer"] == 22
    assert data["mqtt"]["key_file"] == "credential:mqtt_client-key"
    assert data["mqtt"]["ca_file"] == "/etc/kiosk/mqtt-ca.crt" and data["mqtt"]["cert_file"] == "/etc/kiosk/mqtt-client.crt"
    assert (tree / "etc/kiosk/mqtt-ca.crt").read_text().startswith("-----BEGIN CERTIFICATE-----\nca")
    key = tree / "etc/credstore/kiosk-mqtt/client-key"
    assert mode(key) == 0o600 and "PRIVATE KEY" in key.read_text()
    assert "device-file-secret" not in r.stdout


def test_options_override_the_device_file(tree, tmp_path):
    device = tmp_path / "d.toml"
    device.write_text('[device]\nsite = "s1"\nid = "d1"\n[venue]\nid = "v"\nname = "Old name"\nqr_content = "q"\n', encoding="utf-8")
    r = provision(tree, "--device-file", str(device), "--venue-name", "New name", "--set", "screen.show_name=\"none\"")
    assert r.returncode == 0, r.stderr
    cfg = config.load(tree / "etc/kiosk/kiosk.toml")
    assert cfg.venue.name == "New name" and cfg.screen.show_name == "none"


@pytest.mark.parametrize("args, message", [
    (["--site", "s", "--device-id", "d"], "[venue] id"),
    ([*DEVICE_ARGS, "--set", "signals.grean_led=5"], "grean_led"),
    ([*DEVICE_ARGS, "--set", "signals.green_led=40"], "0..27"),
    ([*DEVICE_ARGS, "--device-file", "/no/such/file.toml"], "cannot read device file"),
])
def test_bad_input_is_refused_before_anything_is_written(tree, args, message):
    r = provision(tree, *args)
    assert r.returncode == 2
    assert message in r.stderr
    assert "Traceback" not in r.stderr
    assert list(tree.iterdir()) == []


def test_unknown_credential_key_is_refused(tree, tmp_path):
    device = tmp_path / "d.toml"
    device.write_text('[device]\nsite = "s"\nid = "d"\n[venue]\nid = "v"\nname = "n"\nqr_content = "q"\n'
                      '[credentials]\nmqtt_pasword = "x"\n', encoding="utf-8")
    r = provision(tree, "--device-file", str(device))
    assert r.returncode == 2 and "mqtt_pasword" in r.stderr


def test_render_config_edits_lines_and_round_trips_awkward_text():
    import importlib.machinery
    import importlib.util

    loader = importlib.machinery.SourceFileLoader("provision_script", str(SCRIPT))
    spec = importlib.util.spec_from_loader("provision_script", loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    template = (ROOT / "config" / "kiosk.example.toml").read_text(encoding="utf-8")
    name = 'Nhà "Văn hoá" \\ Quận 1\ttầng 2'
    text = mod.render_config(template, {"venue": {"name": name}, "signals": {"relay": 5}, "newsect": {"k": [1, 2]}})
    data = tomllib.loads(text)
    assert data["venue"]["name"] == name and data["signals"]["relay"] == 5 and data["newsect"]["k"] == [1, 2]
    assert text.count("\n") >= template.count("\n")  # comments kept
