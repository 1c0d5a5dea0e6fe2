"""kiosk fleet (kiosk/ops/fleet.py): a fleet file -> per-device SD card files that kiosk provision accepts,
device keys and the fleet registry. In-process through the CLI; the broker files are tested
against a real mosquitto in test_fleet_broker.py."""

from __future__ import annotations

import re
import shutil
import stat
import subprocess
import sys
import tarfile
import tomllib
from pathlib import Path

import json

import pytest

from kiosk import cli, config
from kiosk.wire import signing

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


class Result:
    def __init__(self, returncode: int, out: str, err: str):
        self.returncode, self.stdout, self.stderr = returncode, out, err


@pytest.fixture
def fleet(capsys):
    def run(tmp_path: Path, name: str, text: str, *args: str) -> Result:
        src = tmp_path / name
        src.write_text(text, encoding="utf-8")
        rc = cli.main(["fleet", str(src), "--out", str(tmp_path / "out"), *args])
        out = capsys.readouterr()
        return Result(rc, out.out, out.err)
    return run


def test_csv_rows_become_device_files_with_exact_values(tmp_path, fleet):
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
    # The password is never printed (the output also holds random key ids: look for the value as a word).
    assert not re.search(r"(?<![0-9a-z])1e5(?![0-9a-z])", r.stdout) and "p@ss" not in r.stdout


def test_toml_fleet_with_defaults(tmp_path, fleet):
    r = fleet(tmp_path, "fleet.toml", TOML)
    assert r.returncode == 0, r.stderr
    d = tomllib.loads((tmp_path / "out/hcm-q1-gate-01/kiosk/device.toml").read_text(encoding="utf-8"))
    assert d["signals"] == {"pin_factory": "lgpio", "green_led": 17}
    assert d["mqtt"]["url"] == "mqtts://broker.example.vn:8883"


def test_device_file_provisions_a_tree_into_a_valid_config(tmp_path, fleet):
    assert fleet(tmp_path, "fleet.csv", CSV, "--mqtt-url", "mqtts://broker.example.vn:8883").returncode == 0
    root = tmp_path / "sd"
    root.mkdir()
    assert cli.main(["provision", "--root", str(root), "--device-file",
                     str(tmp_path / "out/hcm-q1-gate-01/kiosk/device.toml")]) == 0
    cfg = config.load(root / "etc/kiosk/kiosk.toml")
    assert (cfg.device.id, cfg.venue.name, cfg.signals.green_led) == ("gate-01", "Chợ Bến Thành", 17)
    assert cfg.mqtt.password_file == "credential:mqtt_password"
    assert (root / "etc/credstore/kiosk-mqtt/password").read_text() == "1e5\n"
    # The device key the fleet made is the one the kiosk signs with, and the registry holds it.
    installed = signing.load_private_key(str(root / "etc/credstore/kiosk-mqtt/device-key"))
    rows = json.loads((tmp_path / "fleet.registry.json").read_text())["kiosks"]
    row = next(r for r in rows if r["device"] == "gate-01")
    assert row["kid"] == signing.kid_of(installed.public_key()) and row["revoked"] is False
    assert signing.kid_of(signing.public_key_from_pem(row["public_key"].encode())) == row["kid"]


def test_first_boot_files_for_imager_and_cloud_init(tmp_path, fleet):
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
    assert "scripts/provision" in names and "systemd/kiosk.service" in names and "kiosk/config/schema.py" in names
    assert "config/kiosk.example.toml" in names
    assert not any(".venv" in n or "__pycache__" in n or n.startswith(".git") for n in names)


@pytest.mark.skipif(shutil.which("cloud-init") is None, reason="cloud-init not installed")
def test_user_data_passes_cloud_init_schema(tmp_path, fleet):
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
    ("site,device,venue_id,venue_name,venue_qr\ntrust,gate-01,V,N,Q\n", "'trust' is reserved"),
    ("site,device,venue_id,venue_name,venue_qr,mqtt_url\nhcm,g1,V,N,Q,mqtt://broker:99999\n",
     "line 2: the resulting /etc/kiosk/kiosk.toml would be invalid: [mqtt] url: port 99999"),
    ("site,device,venue_id,venue_name,venue_qr,signals.green_led\nhcm,g1,V,N,Q,40\n", "[signals] green_led"),
    ("site,device,venue_id,venue_name,venue_qr,mqtt_username\nhcm,g1,V,N,Q,same\nhcm,g2,V,N,Q,same\n",
     "broker user 'same' is given to more than one kiosk"),
])
def test_bad_fleet_files_are_refused_with_the_row(tmp_path, text, message, fleet):
    r = fleet(tmp_path, "fleet.csv", text)
    assert r.returncode == 2
    assert message in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "out").exists()


def test_every_bad_row_is_named_at_once(tmp_path, fleet):
    text = ("site,device,venue_id,venue_name,venue_qr,mqtt_url,signals.green_led\n"
            "hcm,g1,V,N,Q,mqtt://broker:99999,\n"
            "hcm,g2,V,N,Q,,17\n"
            "hcm,g3,V,N,Q,,40\n")
    r = fleet(tmp_path, "fleet.csv", text)
    assert r.returncode == 2
    assert "line 2:" in r.stderr and "[mqtt] url" in r.stderr
    assert "line 4:" in r.stderr and "[signals] green_led" in r.stderr
    assert "line 3:" not in r.stderr
    assert not (tmp_path / "out").exists() and not (tmp_path / "fleet.registry.json").exists()


def registry_rows(tmp_path: Path) -> list[dict]:
    return json.loads((tmp_path / "fleet.registry.json").read_text())["kiosks"]


def test_registry_keys_are_stable_rotated_and_revoked(tmp_path, fleet):
    assert fleet(tmp_path, "fleet.csv", CSV).returncode == 0
    first = registry_rows(tmp_path)
    assert [(r["site"], r["device"], r["venue_id"], r["revoked"]) for r in first] == [
        ("hcm-q1", "gate-01", "HCM-Q1-000042", False), ("hcm-q1", "gate-02", "000043", False)]
    key_file = tmp_path / "fleet.secrets/hcm-q1-gate-01/device-key.pem"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_file.parent.parent.stat().st_mode) == 0o700
    device = tomllib.loads((tmp_path / "out/hcm-q1-gate-01/kiosk/device.toml").read_text(encoding="utf-8"))
    assert signing.kid_of(signing.private_key_from_pem(device["credentials"]["device_key"].encode()).public_key()) == first[0]["kid"]
    assert "device_key" not in device["device"] and "PRIVATE" not in json.dumps(first)
    # Run again: same keys, same registry.
    assert fleet(tmp_path, "fleet.csv", CSV).returncode == 0
    assert registry_rows(tmp_path) == first
    # Rotate gate-01: a new row with a new kid, the old one revoked.
    r = fleet(tmp_path, "fleet.csv", CSV, "--rotate", "hcm-q1/gate-01")
    assert r.returncode == 0, r.stderr
    rows = registry_rows(tmp_path)
    gate1 = [x for x in rows if x["device"] == "gate-01"]
    assert [x["revoked"] for x in gate1] == [True, False] and gate1[1]["kid"] != gate1[0]["kid"]
    assert f"{first[0]['kid']} revoked" in r.stdout
    # A lost kiosk: every key of it revoked, no card, no broker user.
    r = fleet(tmp_path, "fleet.csv", CSV, "--revoke", "hcm-q1/gate-02")
    assert r.returncode == 0, r.stderr
    gate2 = [x for x in registry_rows(tmp_path) if x["device"] == "gate-02"]
    assert gate2 and all(x["revoked"] for x in gate2)
    assert "hcm-q1-gate-02" not in (tmp_path / "out/broker/passwd").read_text()
    assert "user hcm-q1-gate-02" not in (tmp_path / "out/broker/acl").read_text()
    # Its replacement (same row, no --revoke): a new key, never the revoked one again.
    assert fleet(tmp_path, "fleet.csv", CSV).returncode == 0
    gate2 = [x for x in registry_rows(tmp_path) if x["device"] == "gate-02"]
    assert [x["revoked"] for x in gate2][-1] is False and gate2[-1]["kid"] not in {x["kid"] for x in gate2[:-1]}
    assert "user hcm-q1-gate-02" in (tmp_path / "out/broker/acl").read_text()
    r = fleet(tmp_path, "fleet.csv", CSV, "--revoke", "hcm-q1/nobody")
    assert r.returncode == 2 and "not in the registry" in r.stderr


def test_generated_passwords_are_kept_between_runs(tmp_path, fleet):
    text = "site,device,venue_id,venue_name,venue_qr\nhcm,g1,V,N,Q\n"
    assert fleet(tmp_path, "fleet.csv", text).returncode == 0
    one = tomllib.loads((tmp_path / "out/hcm-g1/kiosk/device.toml").read_text(encoding="utf-8"))
    password = one["credentials"]["mqtt_password"]
    assert len(password) >= 24 and one["mqtt"]["username"] == "hcm-g1"
    assert fleet(tmp_path, "fleet.csv", text).returncode == 0
    again = tomllib.loads((tmp_path / "out/hcm-g1/kiosk/device.toml").read_text(encoding="utf-8"))
    assert again["credentials"]["mqtt_password"] == password
    assert (tmp_path / "out/broker/passwd").read_text().startswith("centre:$7$")


def test_the_script_is_the_same_command(tmp_path):
    src = tmp_path / "fleet.csv"
    src.write_text("site,device,venue_id,venue_name,venue_qr\nhcm,gate 01,V,N,Q\n", encoding="utf-8")
    r = subprocess.run([sys.executable, str(FLEET), str(src), "--out", str(tmp_path / "out")], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 2 and "may only hold" in r.stderr and "Traceback" not in r.stderr


def test_the_authority_key_reaches_every_card_and_later_runs_keep_it(tmp_path, fleet):
    from kiosk.authority import keys as authority_keys

    keys = authority_keys.keygen(tmp_path / "authority-keys")
    public = tmp_path / "authority-keys" / "authority-sign.pub.pem"
    r = fleet(tmp_path, "fleet.csv", CSV, "--authority-key", str(public))
    assert r.returncode == 0, r.stderr
    kid = signing.kid_of(keys.sign.public_key())
    assert f"authority key {kid} in every device file" in r.stdout
    card = tmp_path / "out/hcm-q1-gate-01/kiosk/device.toml"
    pem = tomllib.loads(card.read_text(encoding="utf-8"))["credentials"]["authority_key"]
    assert signing.kid_of(signing.public_key_from_pem(pem.encode())) == kid
    # A second run without the option (a kiosk added, say) still puts the key on every card.
    r = fleet(tmp_path, "fleet.csv", CSV)
    assert r.returncode == 0 and f"authority key {kid} (kept in" in r.stdout
    assert tomllib.loads(card.read_text(encoding="utf-8"))["credentials"]["authority_key"] == pem
    # The card provisions a kiosk whose [tracing] authority_key is that key, and the config checks out.
    root = tmp_path / "sd"
    root.mkdir()
    assert cli.main(["provision", "--root", str(root), "--device-file", str(card)]) == 0
    cfg = config.load(root / "etc/kiosk/kiosk.toml")
    assert cfg.tracing.authority_key == "/etc/kiosk/authority-sign.pub.pem"
    installed = signing.load_public_key(root / "etc/kiosk/authority-sign.pub.pem")
    assert signing.kid_of(installed) == kid
    assert stat.S_IMODE((root / "etc/kiosk/authority-sign.pub.pem").stat().st_mode) == 0o644
    # A new authority key replaces the old one, and the run says which kiosks still trust the old.
    newer = authority_keys.keygen(tmp_path / "newer-keys")
    r = fleet(tmp_path, "fleet.csv", CSV, "--authority-key", str(tmp_path / "newer-keys" / "authority-sign.pub.pem"))
    assert r.returncode == 0 and f"replaces {kid}" in r.stdout
    pem = tomllib.loads(card.read_text(encoding="utf-8"))["credentials"]["authority_key"]
    assert signing.kid_of(signing.public_key_from_pem(pem.encode())) == signing.kid_of(newer.sign.public_key())


@pytest.mark.parametrize("name, content, message", [
    ("authority-sign.pem", None, "is a private key: give the public half"),
    ("junk.pem", "not a key", "not a PEM public key"),
    ("missing.pem", False, "--authority-key: cannot read"),
])
def test_a_bad_authority_key_is_refused_and_the_first_run_stays(tmp_path, fleet, name, content, message):
    from kiosk.authority import keys as authority_keys

    authority_keys.keygen(tmp_path / "authority-keys")
    assert fleet(tmp_path, "fleet.csv", CSV, "--authority-key",
                 str(tmp_path / "authority-keys" / "authority-sign.pub.pem")).returncode == 0
    made = {p: p.read_bytes() for p in (tmp_path / "out").rglob("*") if p.is_file()}
    bad = tmp_path / "authority-keys" / name
    if content:
        bad.write_text(content)
    r = fleet(tmp_path, "fleet.csv", CSV, "--authority-key", str(bad))
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr
    assert {p: p.read_bytes() for p in (tmp_path / "out").rglob("*") if p.is_file()} == made
    private = (tmp_path / "authority-keys" / "authority-sign.pem").read_bytes()
    assert not any(private.strip() in data for data in made.values())


@pytest.mark.parametrize("args, message", [
    (["--tracer-user", "centre"], "--tracer-user 'centre' is the centre's user"),
    (["--tracer-user", "a:b"], "--tracer-user 'a:b': a broker user name"),
    (["--tracer-user", "hcm-q1-gate-01"], "broker user 'hcm-q1-gate-01' is the tracer's"),
])
def test_the_tracer_gets_a_broker_user_of_its_own(tmp_path, fleet, args, message):
    r = fleet(tmp_path, "fleet.csv", CSV, *args)
    assert r.returncode == 2 and message in r.stderr and not (tmp_path / "out").exists()
    r = fleet(tmp_path, "fleet.csv", CSV)
    assert r.returncode == 0
    assert "\nuser tracer\ntopic write checkin/v1/trace/request\n" in (tmp_path / "out/broker/acl").read_text()
    password = (tmp_path / "out/broker/tracer-password").read_text()
    assert stat.S_IMODE((tmp_path / "out/broker/tracer-password").stat().st_mode) == 0o600
    assert fleet(tmp_path, "fleet.csv", CSV).returncode == 0  # kept between runs, like the centre's
    assert (tmp_path / "out/broker/tracer-password").read_text() == password
