"""kiosk doctor: real mosquitto (with passwords and an ACL), real decoders, real files."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import Broker, free_port

from kiosk import cli
from kiosk.doctor import FAIL, PASS, WARN, Context, run_checks, system
from kiosk.config import load


def write_config(tmp: Path, url: str, **extra: str) -> Path:
    state = tmp / "state"
    state.mkdir(exist_ok=True)
    sections = {
        "device": f'site = "hcm-q1"\nid = "gate-01"\nstate_dir = "{state}"',
        "venue": 'id = "V1"\nname = "Chợ Bến Thành"\nqr_content = "https://qr.example/V1"',
        "camera": 'source = "none"',
        "signals": 'pin_factory = "mock"\ngreen_led = 17\nred_led = 27\nbuzzer = 22',
        "mqtt": f'url = "{url}"',
    }
    for name, body in extra.items():
        sections[name] = sections.get(name, "") + "\n" + body
    p = tmp / "kiosk.toml"
    p.write_text("".join(f"[{k}]\n{v}\n\n" for k, v in sections.items()), encoding="utf-8")
    return p


def by_check(findings):
    return {f.check: f for f in findings}


def doctor(capsys, *argv) -> tuple[int, str]:
    rc = cli.main(["doctor", *argv])
    return rc, capsys.readouterr().out


def test_good_config_against_a_real_broker_passes(tmp_path, broker, capsys):
    cfg = write_config(tmp_path, broker.url)
    rc, out = doctor(capsys, "--config", str(cfg), "--timeout", "3")
    assert rc == 0, out
    assert "PASS  broker" in out and "QoS 1 acknowledged" in out
    assert "checkin/v1/hcm-q1/gate-01/status" in out
    assert "FAIL" not in out


def test_unreachable_broker_fails_with_advice_and_exit_1(tmp_path, capsys):
    cfg = write_config(tmp_path, f"mqtt://127.0.0.1:{free_port()}")
    rc, out = doctor(capsys, "--config", str(cfg), "--timeout", "2", "--only", "broker")
    assert rc == 1
    line = next(l for l in out.splitlines() if l.startswith("FAIL  broker"))
    assert "cannot reach" in line
    assert "-> check the network" in out


def test_json_output_is_valid_and_complete(tmp_path, broker, capsys):
    cfg = write_config(tmp_path, broker.url)
    rc, out = doctor(capsys, "--config", str(cfg), "--json", "--timeout", "3")
    doc = json.loads(out)
    assert doc["ok"] is True and rc == 0
    names = [c["check"] for c in doc["checks"]]
    assert names == ["config", "camera", "decode", "gpio", "display", "broker", "clock", "trust", "disk", "ledger"]
    for c in doc["checks"]:
        assert c["status"] in (PASS, WARN, FAIL)
        assert c["status"] == PASS or c["advice"], c  # every warning or failure says what to do
    assert by_check_json(doc)["camera"]["status"] == WARN  # source = none


def by_check_json(doc):
    return {c["check"]: c for c in doc["checks"]}


def test_invalid_config_is_one_fail_line_not_a_traceback(tmp_path, capsys):
    bad = tmp_path / "kiosk.toml"
    bad.write_text('[device]\nsite = "s"\nid = "d"\n[venue]\nid = "v"\nname = "n"\nqr_content = "q"\n[signals]\ngrean_led = 5\n')
    rc, out = doctor(capsys, "--config", str(bad), "--json")
    doc = json.loads(out)
    assert rc == 1 and doc["ok"] is False
    assert doc["checks"][0]["status"] == FAIL and "grean_led" in doc["checks"][0]["message"]


@pytest.fixture
def secured_broker(tmp_path_factory):
    """mosquitto with a password file and an ACL: gate-01 may publish only under its own topics."""
    tmp = tmp_path_factory.mktemp("secured")
    passwd = tmp / "passwd"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(passwd), "gate-01", "right-password"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    subprocess.run(["mosquitto_passwd", "-b", str(passwd), "gate-02", "other-password"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    acl = tmp / "acl"
    acl.write_text("user gate-01\ntopic write checkin/v1/hcm-q1/gate-01/#\n\nuser gate-02\ntopic write checkin/v1/hcm-q1/gate-02/#\n")
    port = free_port()
    conf = tmp / "mosquitto.conf"
    # mosquitto started as root drops to user "mosquitto", which cannot read pytest's private tmp.
    user = "user root\n" if os.geteuid() == 0 else ""
    conf.write_text(f"{user}listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {passwd}\nacl_file {acl}\n")
    b = Broker(port=port, conf=conf)
    b.start()
    yield b
    b.stop()


@pytest.mark.skipif(shutil.which("mosquitto_passwd") is None, reason="mosquitto_passwd (mosquitto package) not installed")
@pytest.mark.parametrize("user, password, expect", [
    ("gate-01", "right-password", "published"),
    ("gate-01", "wrong-password", "refused the connection"),
    ("gate-02", "other-password", "refused publishing"),  # valid login, but the ACL is another kiosk's
])
def test_credentials_and_acl_are_really_checked(tmp_path, secured_broker, user, password, expect):
    pw = tmp_path / "pw"
    pw.write_text(password + "\n")
    cfg = write_config(tmp_path, secured_broker.url)
    text = cfg.read_text().replace("[mqtt]\n", f'[mqtt]\nusername = "{user}"\npassword_file = "{pw}"\n')
    cfg.write_text(text)
    f = by_check(run_checks(cfg, only=["broker"], broker_timeout=3))["broker"]
    assert expect in f.message, f
    assert f.status == (PASS if expect == "published" else FAIL)
    if f.status == FAIL:
        assert "password" in f.advice or "ACL" in f.advice
    assert password not in f.message and password not in f.advice  # secrets never shown


def test_credential_reference_resolves_from_the_credstore_outside_systemd(tmp_path, secured_broker, monkeypatch):
    store = tmp_path / "credstore"
    store.mkdir()
    (store / "password").write_text("right-password\n")
    monkeypatch.setattr("kiosk.doctor.broker.CREDSTORE", str(store))
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    cfg = write_config(tmp_path, secured_broker.url)
    cfg.write_text(cfg.read_text().replace("[mqtt]\n", '[mqtt]\nusername = "gate-01"\npassword_file = "credential:mqtt_password"\n'))
    f = by_check(run_checks(cfg, only=["broker"], broker_timeout=3))["broker"]
    assert f.status == PASS, f
    assert "CREDENTIALS_DIRECTORY" not in os.environ  # restored after the check


def test_camera_folder_source_delivers_frames_and_missing_folder_fails(tmp_path, testdata):
    folder = testdata / "photos" / "qrcode-1"
    cfg = write_config(tmp_path, "mqtt://127.0.0.1:1883", camera=f'source = "folder"\npath = "{folder}"')
    cfg.write_text(cfg.read_text().replace('source = "none"\n', ""))
    f = by_check(run_checks(cfg, only=["camera"]))["camera"]
    assert f.status == PASS and "frame" in f.message
    cfg.write_text(cfg.read_text().replace(str(folder), str(tmp_path / "no-such-folder")))
    f = by_check(run_checks(cfg, only=["camera"]))["camera"]
    assert f.status == FAIL and f.advice


def test_decode_check_reads_a_generated_code(tmp_path):
    cfg = write_config(tmp_path, "mqtt://127.0.0.1:1883")
    f = by_check(run_checks(cfg, only=["decode"]))["decode"]
    assert f.status == PASS, f


def test_decode_check_fails_cleanly_without_a_decoder(tmp_path, monkeypatch):
    import kiosk.door.decode

    def broken():
        raise ImportError("no module named zxingcpp")

    monkeypatch.setattr(kiosk.door.decode, "default_decoder", broken)
    cfg = write_config(tmp_path, "mqtt://127.0.0.1:1883")
    f = by_check(run_checks(cfg, only=["decode"]))["decode"]
    assert f.status == FAIL and "zxingcpp" in f.message and "libzbar0" in f.advice


def test_gpio_mock_factory_claims_the_pins_but_warns_they_are_simulated(tmp_path):
    cfg = write_config(tmp_path, "mqtt://127.0.0.1:1883")
    f = by_check(run_checks(cfg, only=["gpio"]))["gpio"]
    assert f.status == WARN and "green_led=17" in f.message  # mock factory: works, but says it is simulated
    assert "lgpio" in f.advice


@pytest.mark.skipif(Path("/dev/gpiochip0").exists(), reason="this machine has real GPIO")
def test_gpio_explicit_lgpio_without_hardware_fails(tmp_path):
    cfg = write_config(tmp_path, "mqtt://127.0.0.1:1883")
    cfg.write_text(cfg.read_text().replace('pin_factory = "mock"', 'pin_factory = "lgpio"'))
    f = by_check(run_checks(cfg, only=["gpio"]))["gpio"]
    assert f.status == FAIL and "python3-lgpio" in f.advice


def test_clock_states(tmp_path):
    ctx = Context(load(write_config(tmp_path, "mqtt://127.0.0.1:1883")), tmp_path / "kiosk.toml")
    now = dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc)
    assert system.check_clock(ctx, now=now, state=0).status == PASS
    assert system.check_clock(ctx, now=now, state=system.TIME_ERROR).status == WARN
    assert system.check_clock(ctx, now=now, state=None).status == WARN
    off = system.check_clock(ctx, now=dt.datetime(1970, 1, 1, 0, 5, tzinfo=dt.timezone.utc), state=0)
    assert off.status == FAIL and "timedatectl" in off.advice
    assert system.clock_state() in (None, 0, 1, 2, 3, 4, 5)  # the real kernel answer


def _signer_pem(folder: Path) -> Path:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test DSC"), x509.NameAttribute(NameOID.COUNTRY_NAME, "VN")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=365))
            .sign(key, hashes.SHA256()))
    folder.mkdir()
    p = folder / "dsc.pem"
    p.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return p


def test_trust_list_present_fresh_and_stale(tmp_path):
    pem = _signer_pem(tmp_path / "trust")
    cfg = write_config(tmp_path, "mqtt://127.0.0.1:1883", trust=f'paths = ["{tmp_path / "trust"}"]\nmax_age_days = 30')
    f = by_check(run_checks(cfg, only=["trust"]))["trust"]
    assert f.status == PASS and "1 signer" in f.message, f
    old = (dt.datetime.now() - dt.timedelta(days=90)).timestamp()
    os.utime(pem, (old, old))
    f = by_check(run_checks(cfg, only=["trust"]))["trust"]
    assert f.status == WARN and "days old" in f.message and "update the trust list" in f.advice, f


def test_ledger_not_writable_fails_with_advice(tmp_path):
    if os.geteuid() == 0:
        # root writes through permission bits: make the folder a file's child instead.
        cfg = write_config(tmp_path, "mqtt://127.0.0.1:1883")
        cfg.write_text(cfg.read_text().replace(str(tmp_path / "state"), str(tmp_path / "kiosk.toml" / "state")))
    else:
        cfg = write_config(tmp_path, "mqtt://127.0.0.1:1883")
        (tmp_path / "state").chmod(0o500)
    f = by_check(run_checks(cfg, only=["ledger"]))["ledger"]
    assert f.status == FAIL and f.advice


def test_existing_ledger_is_integrity_checked(tmp_path):
    import sqlite3

    cfg = write_config(tmp_path, "mqtt://127.0.0.1:1883")
    db = sqlite3.connect(tmp_path / "state" / "ledger.sqlite3")
    db.execute("CREATE TABLE t (x)")
    db.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(100)])
    db.commit()
    db.close()
    f = by_check(run_checks(cfg, only=["ledger"]))["ledger"]
    assert f.status == PASS and "intact" in f.message
    (tmp_path / "state" / "ledger.sqlite3").write_bytes(b"not a database" * 100)
    f = by_check(run_checks(cfg, only=["ledger"]))["ledger"]
    assert f.status == FAIL


def test_doctor_command_line_runs_as_a_process(tmp_path):
    cfg = write_config(tmp_path, f"mqtt://127.0.0.1:{free_port()}")
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy"}
    r = subprocess.run([sys.executable, "-m", "kiosk", "doctor", "--config", str(cfg), "--json", "--timeout", "1"],
                       capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 1
    doc = json.loads(r.stdout)
    assert by_check_json(doc)["broker"]["status"] == FAIL
    assert "Traceback" not in r.stderr


def test_missing_library_names_the_package_to_install(tmp_path, monkeypatch):
    from kiosk.doctor import hardware

    def no_numpy(text, scale=4):
        raise ModuleNotFoundError("No module named 'numpy'", name="numpy")

    monkeypatch.setattr(hardware, "make_test_code_image", no_numpy)
    cfg = write_config(tmp_path, "mqtt://127.0.0.1:1883")
    f = by_check(run_checks(cfg, only=["decode"]))["decode"]
    assert f.status == FAIL and "python3-numpy (apt)" in f.advice
