"""kiosk provision (kiosk/ops/provision.py) applied to a directory tree (--root), as it is on a fresh SD card.

Called in-process through the CLI; one test runs scripts/provision, the thin wrapper a
fresh Pi uses before any venv exists.
"""

from __future__ import annotations

import stat
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from kiosk import cli, config
from kiosk.wire import signing

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "provision"
PASSWORD = "pw-Zx81-do-not-print"

DEVICE_ARGS = ["--site", "hcm-q1", "--device-id", "gate-01", "--venue-id", "HCM-Q1-000042",
               "--venue-name", "Chợ Bến Thành", "--venue-address", "Lê Lợi, Quận 1",
               "--venue-qr", "https://qr.tokhaiyte.vn/venue/HCM-Q1-000042",
               "--mqtt-url", "mqtts://broker.example.vn:8883", "--mqtt-username", "hcm-q1-gate-01"]


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def provision(capsys):
    def run(root: Path, *args: str) -> Result:
        rc = cli.main(["provision", "--root", str(root), *args])
        out = capsys.readouterr()
        return Result(rc, out.out, out.err)
    return run


@pytest.fixture
def password_file(tmp_path) -> Path:
    p = tmp_path / "password.txt"
    p.write_text(PASSWORD + "\n")
    return p


@pytest.fixture
def client_pair(tmp_path) -> str:
    """A [credentials] table with a real CA, client certificate and its key (the preflight loads them)."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gate-02")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    return "\n".join(f"{k} = {config.toml_value(v)}" for k, v in
                     (("mqtt_client_key", key_pem), ("mqtt_client_cert", cert_pem), ("mqtt_ca", cert_pem))) + "\n"


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


def test_fresh_tree_becomes_a_kiosk(tree, password_file, provision):
    r = provision(tree, *DEVICE_ARGS, "--mqtt-password-file", str(password_file))
    assert r.returncode == 0, r.stderr
    cfg_path = tree / "etc/kiosk/kiosk.toml"
    data = tomllib.loads(cfg_path.read_text(encoding="utf-8"))
    assert data["device"] == {"site": "hcm-q1", "id": "gate-01", "key_file": "credential:mqtt_device-key"}
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
    # The root updater for the centre's signed update command, its path unit enabled.
    for name in ("kiosk-update.service", "kiosk-update.path"):
        assert (tree / "etc/systemd/system" / name).read_bytes() == (ROOT / "systemd" / name).read_bytes()
    path_wants = tree / "etc/systemd/system/multi-user.target.wants/kiosk-update.path"
    assert str(path_wants.readlink()) == "/etc/systemd/system/kiosk-update.path"
    # What a tree cannot do is still shown.
    for skipped in ("apt-get install", "python3-picamera2", "useradd --system", "--system-site-packages", "systemctl daemon-reload"):
        assert skipped in r.stdout, skipped


def test_second_run_changes_nothing_and_says_so(tree, password_file, provision):
    args = (*DEVICE_ARGS, "--mqtt-password-file", str(password_file))
    assert provision(tree, *args).returncode == 0
    before = snapshot(tree)
    r = provision(tree, *args)
    assert r.returncode == 0, r.stderr
    assert "nothing to change" in r.stdout
    assert snapshot(tree) == before


def test_dry_run_prints_every_action_and_writes_nothing(tree, password_file, provision):
    r = provision(tree, *DEVICE_ARGS, "--mqtt-password-file", str(password_file), "--dry-run")
    assert r.returncode == 0, r.stderr
    assert list(tree.iterdir()) == []
    for action in ("would write /etc/kiosk/kiosk.toml", "would write /etc/credstore/kiosk-mqtt/password",
                   "would write /etc/systemd/system/kiosk.service", "would link /etc/systemd/system/multi-user.target.wants/kiosk.service",
                   "apt-get install"):
        assert action in r.stdout, action
    assert "would be made" in r.stdout


def test_changed_venue_updates_only_the_config_and_keeps_the_previous(tree, password_file, provision):
    assert provision(tree, *DEVICE_ARGS, "--mqtt-password-file", str(password_file)).returncode == 0
    args = [a if a != "Chợ Bến Thành" else "Chợ Bình Tây" for a in DEVICE_ARGS]
    r = provision(tree, *args, "--mqtt-password-file", str(password_file))
    assert r.returncode == 0, r.stderr
    changed = [l for l in r.stdout.splitlines() if l.startswith(("write", "update", "create", "link"))]
    assert changed == ["update /etc/kiosk/kiosk.toml (0640)"]
    assert "Chợ Bình Tây" in (tree / "etc/kiosk/kiosk.toml").read_text(encoding="utf-8")
    assert "Chợ Bến Thành" in (tree / "etc/kiosk/kiosk.toml.previous").read_text(encoding="utf-8")


def test_device_file_with_pins_tls_and_credentials(tree, tmp_path, provision, client_pair):
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
''' + client_pair, encoding="utf-8")
    r = provision(tree, "--device-file", str(device))
    assert r.returncode == 0, r.stderr
    data = tomllib.loads((tree / "etc/kiosk/kiosk.toml").read_text(encoding="utf-8"))
    assert data["signals"]["green_led"] == 17 and data["signals"]["buzzer"] == 22
    assert data["mqtt"]["key_file"] == "credential:mqtt_client-key"
    assert data["mqtt"]["ca_file"] == "/etc/kiosk/mqtt-ca.crt" and data["mqtt"]["cert_file"] == "/etc/kiosk/mqtt-client.crt"
    assert (tree / "etc/kiosk/mqtt-ca.crt").read_text().startswith("-----BEGIN CERTIFICATE-----\n")
    key = tree / "etc/credstore/kiosk-mqtt/client-key"
    assert mode(key) == 0o600 and "PRIVATE KEY" in key.read_text()
    assert "device-file-secret" not in r.stdout


def test_options_override_the_device_file(tree, tmp_path, provision):
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
def test_bad_input_is_refused_before_anything_is_written(tree, args, message, provision):
    r = provision(tree, *args)
    assert r.returncode == 2
    assert message in r.stderr
    assert "Traceback" not in r.stderr
    assert list(tree.iterdir()) == []


def test_unknown_credential_key_is_refused(tree, tmp_path, provision):
    device = tmp_path / "d.toml"
    device.write_text('[device]\nsite = "s"\nid = "d"\n[venue]\nid = "v"\nname = "n"\nqr_content = "q"\n'
                      '[credentials]\nmqtt_pasword = "x"\n', encoding="utf-8")
    r = provision(tree, "--device-file", str(device))
    assert r.returncode == 2 and "mqtt_pasword" in r.stderr


def test_render_config_edits_lines_and_round_trips_awkward_text():
    from kiosk.ops.provision import render_config

    template = (ROOT / "config" / "kiosk.example.toml").read_text(encoding="utf-8")
    name = 'Nhà "Văn hoá" \\ Quận 1\ttầng 2'
    text = render_config(template, {"venue": {"name": name}, "signals": {"relay": 5}, "newsect": {"k": [1, 2]}})
    data = tomllib.loads(text)
    assert data["venue"]["name"] == name and data["signals"]["relay"] == 5 and data["newsect"]["k"] == [1, 2]
    assert text.count("\n") >= template.count("\n")  # comments kept


def test_device_key_is_made_once_as_a_credential_and_never_in_the_config(tree, password_file, provision):
    args = (*DEVICE_ARGS, "--mqtt-password-file", str(password_file))
    r = provision(tree, *args)
    assert r.returncode == 0, r.stderr
    key_file = tree / "etc/credstore/kiosk-mqtt/device-key"
    assert mode(key_file) == 0o600
    key = signing.load_private_key(str(key_file))
    public = signing.load_public_key(tree / "etc/kiosk/device-key.pub.pem")
    assert signing.kid_of(public) == signing.kid_of(key.public_key())
    assert f"kid {signing.kid_of(public)}" in r.stdout
    cfg_text = (tree / "etc/kiosk/kiosk.toml").read_text(encoding="utf-8")
    assert "PRIVATE KEY" not in cfg_text and "PRIVATE KEY" not in r.stdout + r.stderr
    # A second run keeps the key: the fleet registry stays right.
    before = key_file.read_bytes()
    assert provision(tree, *args).returncode == 0
    assert key_file.read_bytes() == before


def test_a_given_device_key_is_installed_and_a_bad_one_refused(tree, tmp_path, password_file, provision):
    good = tmp_path / "k.pem"
    key = signing.generate_key()
    signing.write_private_key(good, key)
    r = provision(tree, *DEVICE_ARGS, "--mqtt-password-file", str(password_file), "--device-key-file", str(good))
    assert r.returncode == 0, r.stderr
    assert (tree / "etc/credstore/kiosk-mqtt/device-key").read_bytes() == good.read_bytes()
    bad = tmp_path / "bad.pem"
    bad.write_text("-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n")
    other = tmp_path / "other"
    other.mkdir()
    r = provision(other, *DEVICE_ARGS, "--device-key-file", str(bad))
    assert r.returncode == 2 and "device key" in r.stderr and "Traceback" not in r.stderr
    assert list(other.iterdir()) == []


def test_resulting_config_goes_through_the_preflight(tree, provision):
    """What the kiosk's preflight refuses (a URL with credentials, port 99999) is refused before writing."""
    for url, words in (("mqtt://user:pw@broker:1883", "holds credentials"), ("mqtt://broker:99999", "port 99999")):
        args = [a if a != "mqtts://broker.example.vn:8883" else url for a in DEVICE_ARGS]
        r = provision(tree, *args)
        assert r.returncode == 2 and "[mqtt] url" in r.stderr and words in r.stderr, r.stderr
        assert list(tree.iterdir()) == []


def test_the_script_is_the_same_command(tree):
    r = subprocess.run([sys.executable, str(SCRIPT), "--root", str(tree), *DEVICE_ARGS, "--dry-run"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "would write /etc/kiosk/kiosk.toml" in r.stdout and list(tree.iterdir()) == []
    r = subprocess.run([sys.executable, str(SCRIPT), "--root", str(tree), "--site", "s"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 2 and "[venue] id" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("codename, zbar, absent", [
    ("bookworm", {"libzbar0", "python3-pyzbar"}, {"libzbar0t64"}),
    ("trixie", {"libzbar0t64"}, {"libzbar0", "python3-pyzbar"}),  # 64-bit time_t rename; pyzbar from pip
    ("forky", {"libzbar0t64"}, {"libzbar0", "python3-pyzbar"}),   # newer than trixie: trixie's names
])
def test_apt_packages_follow_the_release(tree, password_file, provision, codename, zbar, absent):
    from kiosk.ops.provision import apt_packages, os_codename

    (tree / "etc").mkdir()
    (tree / "etc/os-release").write_text(f'PRETTY_NAME="Debian GNU/Linux"\nVERSION_CODENAME={codename}\n')
    assert os_codename(tree) == codename
    packages = set(apt_packages(codename))
    assert zbar <= packages and not packages & absent
    assert {"python3-opencv", "python3-numpy", "python3-pygame", "python3-picamera2"} <= packages
    r = provision(tree, *DEVICE_ARGS, "--mqtt-password-file", str(password_file), "--dry-run")
    line = next(ln for ln in r.stdout.splitlines() if "apt-get install" in ln)
    assert all(p in line.split() for p in zbar) and not any(p in line.split() for p in absent)
    assert f"(for {codename})" in line


def test_the_authority_key_by_hand_is_installed_and_its_private_half_refused(tree, tmp_path, password_file, provision):
    """`kiosk provision --authority-key-file`: the public key becomes [tracing] authority_key; the signing key never
    reaches a kiosk."""
    authority = signing.generate_key()
    public, private = tmp_path / "authority-sign.pub.pem", tmp_path / "authority-sign.pem"
    signing.write_public_key(public, authority)
    signing.write_private_key(private, authority)
    other = tmp_path / "other"
    other.mkdir()
    r = provision(other, *DEVICE_ARGS, "--mqtt-password-file", str(password_file), "--authority-key-file", str(private))
    assert r.returncode == 2 and "is a private key" in r.stderr and "Traceback" not in r.stderr
    assert list(other.iterdir()) == []
    r = provision(tree, *DEVICE_ARGS, "--mqtt-password-file", str(password_file), "--authority-key-file", str(public))
    assert r.returncode == 0, r.stderr
    cfg = config.load(tree / "etc/kiosk/kiosk.toml")
    assert cfg.tracing.authority_key == "/etc/kiosk/authority-sign.pub.pem"
    installed = tree / "etc/kiosk/authority-sign.pub.pem"
    assert installed.read_bytes() == public.read_bytes() and mode(installed) == 0o644
    # a second run with the same key changes nothing
    r = provision(tree, *DEVICE_ARGS, "--mqtt-password-file", str(password_file), "--authority-key-file", str(public))
    assert r.returncode == 0 and "nothing to change" in r.stdout
