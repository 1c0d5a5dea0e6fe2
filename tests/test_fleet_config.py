"""scripts/fleet_config: a fleet file -> per-device SD card files that scripts/provision accepts."""

from __future__ import annotations

import shutil
import stat
import subprocess
import sys
import tarfile
import tomllib
from pathlib import Path

import pytest

from kiosk import config

ROOT = Path(__file__).resolve().parent.parent
FLEET = ROOT / "scripts" / "fleet_config"
PROVISION = ROOT / "scripts" / "provision"

CSV = '''site,device,venue_id,venue_name,venue_address,venue_qr,mqtt_username,mqtt_password,signals.green_led,signals.red_led
hcm-q1,gate-01,HCM-Q1-000042,Chợ Bến Thành,"Lê Lợi, Quận 1",https://qr.tokhaiyte.vn/venue/HCM-Q1-000042,hcm-q1-gate-01,1e5,17,27
hcm-q1,gate-02,000043,"Bưu điện ""Sài Gòn""",,https://qr.tokhaiyte.vn/venue/HCM-Q1-000043,hcm-q1-gate-02,p@ss w0rd,,
'''

TOML = """
[defaults]
site = "hcm-q1"
mqtt_url = "mqtts://broker.example.vn:8883"
"signals.pin_factory" = "lgpio"

[[device]]
device = "gate-01"
venue_id = "HCM-Q1-000042"
venue_name = "Chợ Bến Thành"
venue_qr = "https://qr.tokhaiyte.vn/venue/HCM-Q1-000042"
mqtt_password = "s3cret"
"signals.green_led" = 17
"""


def fleet(tmp_path: Path, name: str, text: str, *args: str) -> subprocess.CompletedProcess:
    src = tmp_path / name
    src.write_text(text, encoding="utf-8")
    return subprocess.run([sys.executable, str(FLEET), str(src), "--out", str(tmp_path / "out"), *args],
                          capture_output=True, text=True, timeout=60)


def test_csv_rows_become_device_files_with_exact_values(tmp_path):
    r = fleet(tmp_path, "fleet.csv", CSV, "--mqtt-url", "mqtts://broker.example.vn:8883")
    assert r.returncode == 0, r.stderr
    one = tomllib.loads((tmp_path / "out/hcm-q1-gate-01/kiosk/device.toml").read_text(encoding="utf-8"))
    assert one["device"] == {"site": "hcm-q1", "id": "gate-01"}
    assert one["venue"]["address"] == "Lê Lợi, Quận 1"
    assert one["signals"] == {"green_led": 17, "red_led": 27}  # pins as numbers
    assert one["credentials"]["mqtt_password"] == "1e5"  # a password is text, never a number
    assert one["mqtt"]["url"] == "mqtts://broker.example.vn:8883"
    two = tomllib.loads((tmp_path / "out/hcm-q1-gate-02/kiosk/device.toml").read_text(encoding="utf-8"))
    assert two["venue"]["name"] == 'Bưu điện "Sài Gòn"' and two["venue"]["id"] == "000043"
    assert "signals" not in two and two["credentials"]["mqtt_password"] == "p@ss w0rd"
    secret = tmp_path / "out/hcm-q1-gate-01/kiosk/device.toml"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert "1e5" not in r.stdout and "p@ss" not in r.stdout


def test_toml_fleet_with_defaults(tmp_path):
    r = fleet(tmp_path, "fleet.toml", TOML)
    assert r.returncode == 0, r.stderr
    d = tomllib.loads((tmp_path / "out/hcm-q1-gate-01/kiosk/device.toml").read_text(encoding="utf-8"))
    assert d["signals"] == {"pin_factory": "lgpio", "green_led": 17}
    assert d["mqtt"]["url"] == "mqtts://broker.example.vn:8883"


def test_device_file_provisions_a_tree_into_a_valid_config(tmp_path):
    assert fleet(tmp_path, "fleet.csv", CSV, "--mqtt-url", "mqtts://broker.example.vn:8883").returncode == 0
    root = tmp_path / "sd"
    root.mkdir()
    r = subprocess.run([sys.executable, str(PROVISION), "--root", str(root), "--device-file",
                        str(tmp_path / "out/hcm-q1-gate-01/kiosk/device.toml")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    cfg = config.load(root / "etc/kiosk/kiosk.toml")
    assert (cfg.device.id, cfg.venue.name, cfg.signals.green_led) == ("gate-01", "Chợ Bến Thành", 17)
    assert cfg.mqtt.password_file == "credential:mqtt_password"
    assert (root / "etc/credstore/kiosk-mqtt/password").read_text() == "1e5\n"


def test_first_boot_files_for_imager_and_cloud_init(tmp_path):
    key = tmp_path / "id.pub"
    key.write_text("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample it@district\n")
    r = fleet(tmp_path, "fleet.csv", CSV, "--bundle", "--ssh-key", str(key), "--admin-user", "itadmin",
              "--wifi-ssid", "Kiosk WiFi", "--wifi-password", 'pa"ss')
    assert r.returncode == 0, r.stderr
    d = tmp_path / "out/hcm-q1-gate-01"
    firstrun = (d / "firstrun.sh").read_text()
    assert subprocess.run(["bash", "-n", str(d / "firstrun.sh")]).returncode == 0
    assert "set_hostname kiosk-hcm-q1-gate-01" in firstrun and "kiosk-firstboot.service" in firstrun
    assert "AAAAC3NzaC1lZDI1NTE5AAAAIExample" in firstrun
    assert "systemd.run=/boot/firmware/firstrun.sh" in (d / "cmdline.txt.append").read_text()
    user_data = (d / "user-data").read_text()
    assert user_data.startswith("#cloud-config\n")
    assert 'hostname: "kiosk-hcm-q1-gate-01"' in user_data
    assert "/usr/local/sbin/kiosk-firstboot" in user_data and "enable, --now, --no-block, kiosk-firstboot.service" in user_data
    assert '"Kiosk WiFi":' in (d / "network-config").read_text()
    # The embedded first-boot script is valid shell, in both ways of booting.
    script = user_data.split("    content: |\n", 1)[1].split("  - path:", 1)[0]
    script = "\n".join(line[6:] for line in script.splitlines())
    assert subprocess.run(["sh", "-n"], input=script, text=True).returncode == 0
    assert "--device-file \"$boot/device.toml\"" in script
    # The bundle holds what provision needs, and nothing of the developer's machine.
    with tarfile.open(d / "kiosk/kiosk-src.tar.gz") as tar:
        names = tar.getnames()
    assert "scripts/provision" in names and "systemd/kiosk.service" in names and "kiosk/config.py" in names
    assert "config/kiosk.example.toml" in names
    assert not any(".venv" in n or "__pycache__" in n or n.startswith(".git") for n in names)


@pytest.mark.skipif(shutil.which("cloud-init") is None, reason="cloud-init not installed")
def test_user_data_passes_cloud_init_schema(tmp_path):
    assert fleet(tmp_path, "fleet.csv", CSV).returncode == 0
    r = subprocess.run(["cloud-init", "schema", "-c", str(tmp_path / "out/hcm-q1-gate-01/user-data")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("text, message", [
    ("site,device,venue_id,venue_name,venue_qr\nhcm,gate-01,V,N,Q\nhcm,gate-01,V2,N2,Q2\n", "already on line 2"),
    ("site,device,venue_id,venue_name,venue_qr\nhcm,gate 01,V,N,Q\n", "may only hold"),
    ("site,device,venue_id,venue_name\nhcm,gate-01,V,N\n", "line 2: missing venue_qr"),
    ("site,device,venue_id,venue_name,venue_qr,colour\nhcm,g,V,N,Q,red\n", "unknown column 'colour'"),
    ("site,device,venue_id,venue_name,venue_qr\n", "no devices"),
])
def test_bad_fleet_files_are_refused_with_the_row(tmp_path, text, message):
    r = fleet(tmp_path, "fleet.csv", text)
    assert r.returncode == 2
    assert message in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "out").exists()
