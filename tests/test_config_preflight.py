"""`kiosk config check` equals start-up: for every broken config, check and `kiosk run` say the same.

Each variant is a config (and the files it names) broken in one way an installer
breaks them. Both commands run as processes, as an operator runs them: the check
must exit 2 naming the key, and `kiosk run` must refuse to start with exactly the
same error lines and exit 2, before touching any hardware. A config that passes
(also one with warnings only) must start: `kiosk run` reaches "running" in its log
(headless, no camera, the broker a free port where nothing listens) and is then
stopped with SIGTERM.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest

from conftest import free_port
from kiosk.config import preflight
from kiosk.wire import signing

ROOT = Path(__file__).resolve().parent.parent
DEMO_SIGNER = ROOT / "config" / "demo-keys" / "declaration-issuer.crt.pem"


def base_sections(tmp: Path) -> dict[str, dict[str, str]]:
    """A config that starts: TOML values as text, by section."""
    return {
        "device": {"site": '"hn"', "id": '"k1"', "state_dir": f'"{tmp / "state"}"'},
        "venue": {"id": '"V1"', "name": '"Quán Phở"', "qr_content": '"venue-qr"'},
        "camera": {"source": '"none"'},
        "signals": {"pin_factory": '"mock"'},
        "mqtt": {"url": f'"mqtt://127.0.0.1:{free_port()}"'},
    }


def render(sections: dict[str, dict[str, str]]) -> str:
    return "".join(f"[{name}]\n" + "".join(f"{k} = {v}\n" for k, v in body.items()) + "\n"
                   for name, body in sections.items())


@dataclass
class Variant:
    name: str
    key: str  # the key both commands must name ("" for the file itself)
    change: Callable[[Path, dict], None]  # edits the sections, may write files into the folder
    words: str = ""  # also in the message
    raw: str | None = None  # replaces the whole config text
    needs: Callable[[], bool] = field(default=lambda: True)


def setv(section: str, key: str, value: str) -> Callable[[Path, dict], None]:
    def change(tmp: Path, s: dict) -> None:
        s.setdefault(section, {})[key] = value.replace("TMP", str(tmp))
    return change


def both(*changes: Callable[[Path, dict], None]) -> Callable[[Path, dict], None]:
    def change(tmp: Path, s: dict) -> None:
        for c in changes:
            c(tmp, s)
    return change


def write(name: str, data: bytes | str) -> Callable[[Path, dict], None]:
    def change(tmp: Path, s: dict) -> None:
        p = tmp / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data.encode() if isinstance(data, str) else data)
    return change


def fifo(name: str) -> Callable[[Path, dict], None]:
    return lambda tmp, s: os.mkfifo(tmp / name)


def folder(name: str) -> Callable[[Path, dict], None]:
    return lambda tmp, s: (tmp / name).mkdir(parents=True, exist_ok=True)


def absent(module: str) -> Callable[[], bool]:
    return lambda: importlib.util.find_spec(module) is None


def tls_pair(tmp: Path) -> tuple[Path, Path]:
    """A self-signed certificate and an unrelated key: each loads, together they do not."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key, other = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kiosk")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + dt.timedelta(days=9)).sign(key, hashes.SHA256()))
    (tmp / "client.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp / "other.key").write_bytes(other.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                        serialization.NoEncryption()))
    return tmp / "client.crt", tmp / "other.key"


def mismatched_client_pair(tmp: Path, s: dict) -> None:
    cert, key = tls_pair(tmp)
    s["mqtt"].update(url=s["mqtt"]["url"].replace("mqtt://", "mqtts://"), cert_file=f'"{cert}"', key_file=f'"{key}"')


def ec_public_key(tmp: Path, s: dict) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    pub = ec.generate_private_key(ec.SECP256R1()).public_key()
    (tmp / "centre.pub.pem").write_bytes(pub.public_bytes(serialization.Encoding.PEM,
                                                          serialization.PublicFormat.SubjectPublicKeyInfo))
    s["mqtt"]["centre_key"] = f'"{tmp / "centre.pub.pem"}"'


VARIANTS = [
    # the broker URL
    Variant("port 99999", "[mqtt] url", setv("mqtt", "url", '"mqtt://127.0.0.1:99999"'), "port 99999"),
    Variant("port 0", "[mqtt] url", setv("mqtt", "url", '"mqtt://127.0.0.1:0"'), "port 0"),
    Variant("empty host", "[mqtt] url", setv("mqtt", "url", '"mqtt://:1883"'), "no host"),
    Variant("credentials in the URL", "[mqtt] url", setv("mqtt", "url", '"mqtt://kiosk:secret@127.0.0.1:1"'), "credentials"),
    Variant("not a broker URL", "[mqtt] url", setv("mqtt", "url", '"http://broker"')),
    # credentials
    Variant("empty password file", "[mqtt] password_file",
            both(write("pw", "\n"), setv("mqtt", "username", '"k1"'), setv("mqtt", "password_file", '"pw"')), "empty"),
    Variant("missing password file", "[mqtt] password_file",
            both(setv("mqtt", "username", '"k1"'), setv("mqtt", "password_file", '"no-such-pw"')), "no such file"),
    Variant("credential without systemd", "[mqtt] password_file",
            both(setv("mqtt", "username", '"k1"'), setv("mqtt", "password_file", '"credential:mqtt_password"')),
            "CREDENTIALS_DIRECTORY"),
    Variant("password file is a FIFO", "[mqtt] password_file",
            both(fifo("pw"), setv("mqtt", "username", '"k1"'), setv("mqtt", "password_file", '"pw"')), "not a regular file"),
    # TLS
    Variant("client certificate without its key", "[mqtt] cert_file",
            both(lambda t, s: tls_pair(t), setv("mqtt", "cert_file", '"client.crt"')), "needs its key"),
    Variant("garbage CA file", "[mqtt] ca_file", both(write("ca.pem", "not a certificate\n"), setv("mqtt", "ca_file", '"ca.pem"'))),
    Variant("CA file is a device", "[mqtt] ca_file", setv("mqtt", "ca_file", '"/dev/zero"'), "not a regular file"),
    Variant("certificate and key do not match", "[mqtt] cert_file", mismatched_client_pair, "does not load"),
    # keys
    Variant("4-byte pseudonym key", "[ledger] pseudonym_key_file",
            both(write("pseudonym.key", "deadbeef\n"), setv("ledger", "pseudonym_key_file", '"pseudonym.key"')), "shorter"),
    Variant("pseudonym key is a folder", "[ledger] pseudonym_key_file",
            both(folder("pk"), setv("ledger", "pseudonym_key_file", '"pk"'))),
    Variant("device key missing", "[device] key_file", setv("device", "key_file", '"no-such-key.pem"'), "no such file"),
    Variant("device key garbage", "[device] key_file",
            both(write("device.pem", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
                 setv("device", "key_file", '"device.pem"'))),
    Variant("device key in state_dir garbage", "[device] key_file", write("state/device-key.pem", "garbage")),
    Variant("centre key garbage", "[mqtt] centre_key",
            both(write("centre.pem", "garbage"), setv("mqtt", "centre_key", '"centre.pem"')), "not a PEM public key"),
    Variant("centre key not Ed25519", "[mqtt] centre_key", ec_public_key, "not an Ed25519"),
    Variant("trust authority key missing", "[trust] authority_key", setv("trust", "authority_key", '"authority.pem"')),
    Variant("tracing authority key is a FIFO", "[tracing] authority_key",
            both(fifo("auth.pem"), setv("tracing", "authority_key", '"auth.pem"')), "not a regular file"),
    Variant("bundle without authority key", "[trust] bundle",
            both(write("bundle.json", "{}"), setv("trust", "bundle", '"bundle.json"')), "authority_key"),
    # trust lists and revocation
    Variant("missing signer file", "[trust] paths", setv("trust", "paths", '["no-such-signer.pem"]')),
    Variant("garbage signer file", "[trust] paths", both(write("signer.pem", "nope\n"), setv("trust", "paths", '["signer.pem"]'))),
    Variant("signer file is a FIFO", "[trust] paths", both(fifo("signer.pem"), setv("trust", "paths", '["signer.pem"]'))),
    Variant("bad revocation file", "[policy] revoked_file",
            both(write("revoked.txt", "not-a-sha256\n"), setv("policy", "revoked_file", '"revoked.txt"'))),
    # state
    Variant("state_dir is a file", "[device] state_dir", both(write("statefile", "x"), setv("device", "state_dir", '"TMP/statefile"')),
            "is a file"),
    Variant("state_dir cannot be written", "[device] state_dir", setv("device", "state_dir", '"/proc/kiosk-state"')),
    Variant("state_dir under a file", "[device] state_dir",
            both(write("statefile", "x"), setv("device", "state_dir", '"TMP/statefile/state"')), "cannot be created"),
    Variant("ledger path is a folder", "[ledger] path", both(folder("ledgerdir"), setv("ledger", "path", '"ledgerdir"'))),
    # hardware named that is not here
    Variant("lgpio absent", "[signals] pin_factory", setv("signals", "pin_factory", '"lgpio"'), needs=absent("lgpio")),
    Variant("camera folder missing", "[camera] path",
            both(setv("camera", "source", '"folder"'), setv("camera", "path", '"no-such-folder"')), "no such folder"),
    Variant("camera folder empty", "[camera] path",
            both(folder("frames"), setv("camera", "source", '"folder"'), setv("camera", "path", '"frames"')), "no images"),
    Variant("camera folder not named", "[camera] path", setv("camera", "source", '"folder"')),
    Variant("video file missing", "[camera] path",
            both(setv("camera", "source", '"opencv"'), setv("camera", "path", '"no-such-video.mp4"')), "no such video"),
    Variant("picamera2 odd width", "[camera] width",
            both(setv("camera", "source", '"picamera2"'), setv("camera", "width", "641")), "even"),
    Variant("HID scanner without evdev", "[scanner] hid_device", setv("scanner", "hid_device", '"/dev/input/event0"'),
            needs=absent("evdev")),
    Variant("audio folder missing", "[audio] directory",
            both(setv("audio", "enabled", "true"), setv("audio", "directory", '"no-such-audio"'))),
    Variant("font missing", "[screen] font", setv("screen", "font", '"no-such-font.ttf"')),
    # the schema
    Variant("unknown command name", "[mqtt] commands", setv("mqtt", "commands", '["reload-trust", "open-door"]'), "open-door"),
    Variant("screen size 00x00", "[screen] size", setv("screen", "size", '"00x00"')),
    Variant("screen size not WxH", "[screen] size", setv("screen", "size", '"big"')),
    Variant("typo in a key", "[screen] verdict_secs", setv("screen", "verdict_secs", "2"), "unknown key"),
    Variant("unknown section", "[frobnicate]", setv("frobnicate", "x", "1")),
    Variant("width not a number", "[camera] width", setv("camera", "width", '"wide"')),
    Variant("pin out of range", "[signals] green_led", setv("signals", "green_led", "40"), "0..27"),
    Variant("two devices on one pin", "[signals] buzzer", both(setv("signals", "green_led", "17"), setv("signals", "buzzer", "17"))),
    Variant("unknown code format", "[policy] accept_formats", setv("policy", "accept_formats", '["eu-dcc", "yellow-card"]')),
    Variant("unknown visit log field", "[ledger] visit_log_fields", setv("ledger", "visit_log_fields", '["religion"]')),
    Variant("required value missing", "[venue] qr_content", lambda t, s: s["venue"].pop("qr_content")),
    Variant("not TOML", "", lambda t, s: None, "not valid TOML", raw="[device]\nsite = \n"),
]


@dataclass
class Outcome:
    check_rc: int
    check_err: str
    run_rc: int
    run_err: str

    @staticmethod
    def errors(text: str) -> list[str]:
        return [line for line in text.splitlines() if line.startswith("error: ")]


def environment(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "CREDENTIALS_DIRECTORY"}
    env.update(KIOSK_CREDSTORE=str(tmp / "no-credstore"), KIOSK_LOG="1", SDL_VIDEODRIVER="dummy", SDL_AUDIODRIVER="dummy")
    return env


def check_and_run(path: Path, env: dict[str, str]) -> Outcome:
    kiosk = [sys.executable, "-m", "kiosk"]
    check = subprocess.run([*kiosk, "config", "check", str(path)], capture_output=True, text=True, env=env, timeout=60)
    run = subprocess.run([*kiosk, "run", "--config", str(path), "--headless"], capture_output=True, text=True, env=env,
                         timeout=60)
    return Outcome(check.returncode, check.stderr, run.returncode, run.stderr)


def make(tmp: Path, variant: Variant) -> Path:
    tmp.mkdir(parents=True)
    sections = base_sections(tmp)
    variant.change(tmp, sections)
    path = tmp / "kiosk.toml"
    path.write_text(variant.raw if variant.raw is not None else render(sections), encoding="utf-8")
    return path


def test_at_least_forty_broken_configs_check_and_run_agree_and_name_the_key(tmp_path):
    variants = [v for v in VARIANTS if v.needs()]
    assert len(variants) >= 40
    env = environment(tmp_path)
    paths = [make(tmp_path / f"v{i:02d}", v) for i, v in enumerate(variants)]
    with ThreadPoolExecutor(max_workers=3) as pool:
        outcomes = list(pool.map(lambda p: check_and_run(p, env), paths))
    failures = []
    for v, path, o in zip(variants, paths, outcomes):
        errors = Outcome.errors(o.check_err)
        why = []
        if o.check_rc != 2 or o.run_rc != 2:
            why.append(f"exit codes: check {o.check_rc}, run {o.run_rc}")
        if errors != Outcome.errors(o.run_err):
            why.append(f"disagree:\n  check {errors}\n  run   {Outcome.errors(o.run_err)}")
        named = [e for e in errors if (v.key + ":" if v.key else str(path)) in e and v.words in e]
        if not named:
            why.append(f"no error names {v.key or 'the file'} with {v.words!r}: {errors}")
        if "Traceback" in o.check_err + o.run_err:
            why.append("traceback")
        if "running" in o.run_err:
            why.append("run started")
        if why:
            failures.append(f"{v.name}: " + "; ".join(why))
    assert not failures, "\n".join(failures)
    if os.environ.get("KIOSK_SHOW_PREFLIGHT"):
        for v, o in zip(variants, outcomes):
            print(f"{v.name}: {Outcome.errors(o.check_err)}")


def test_every_error_is_reported_at_once(tmp_path):
    sections = base_sections(tmp_path)
    sections["mqtt"]["url"] = '"mqtt://127.0.0.1:99999"'
    sections["screen"] = {"size": '"00x00"'}
    sections["camera"] = {"source": '"folder"', "path": '"nowhere"'}
    sections["ledger"] = {"pseudonym_key_file": '"pk"'}
    (tmp_path / "pk").write_text("0011\n")
    path = tmp_path / "kiosk.toml"
    path.write_text(render(sections), encoding="utf-8")
    o = check_and_run(path, environment(tmp_path))
    keys = ["[mqtt] url", "[screen] size", "[camera] path", "[ledger] pseudonym_key_file"]
    errors = Outcome.errors(o.check_err)
    assert all(any(k in e for e in errors) for k in keys), errors
    assert errors == Outcome.errors(o.run_err) and o.check_rc == o.run_rc == 2
    # Each names file and line.
    url_line = next(e for e in errors if "[mqtt] url" in e)
    number = path.read_text().splitlines().index('url = "mqtt://127.0.0.1:99999"') + 1
    assert url_line.startswith(f"error: {path}:{number}: ")


def start_until_running(path: Path, env: dict[str, str]) -> str:
    """`kiosk run` until it logs "running", then SIGTERM; its log."""
    proc = subprocess.Popen([sys.executable, "-m", "kiosk", "run", "--config", str(path), "--headless"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    lines: list[str] = []
    running = threading.Event()

    def read() -> None:
        for line in proc.stderr:
            lines.append(line)
            if " running" in line:
                running.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert running.wait(60), "".join(lines)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        reader.join(5)
    return "".join(lines)


def test_a_config_that_passes_starts(tmp_path):
    sections = base_sections(tmp_path)
    path = tmp_path / "kiosk.toml"
    path.write_text(render(sections), encoding="utf-8")
    env = environment(tmp_path)
    check = subprocess.run([sys.executable, "-m", "kiosk", "config", "check", str(path)], capture_output=True,
                           text=True, env=env, timeout=60)
    assert check.returncode == 0 and "ok" in check.stdout, check.stderr
    log = start_until_running(path, env)
    assert "Traceback" not in log


def test_warnings_do_not_stop_the_kiosk_and_are_the_same_in_both(tmp_path):
    """A scanner that is not plugged in yet and a password over plain mqtt://: warned, and the kiosk starts."""
    sections = base_sections(tmp_path)
    (tmp_path / "pw").write_text("secret\n")
    sections["mqtt"].update(username='"k1"', password_file='"pw"')
    sections["scanner"] = {"serial_port": '"/dev/ttyACM-not-plugged-in"'}
    path = tmp_path / "kiosk.toml"
    path.write_text(render(sections), encoding="utf-8")
    env = environment(tmp_path)
    check = subprocess.run([sys.executable, "-m", "kiosk", "config", "check", str(path)], capture_output=True,
                           text=True, env=env, timeout=60)
    assert check.returncode == 0, check.stderr
    assert "warning:" in check.stderr and "[mqtt] url" in check.stderr and "plain mqtt://" in check.stderr
    assert "[scanner] serial_port" in check.stderr and "plugged in" in check.stderr
    assert "secret" not in check.stderr + check.stdout
    log = start_until_running(path, env)
    assert "plain mqtt://" in log and "[scanner] serial_port" in log and "secret" not in log


def test_doctor_warns_about_a_password_over_plain_mqtt(tmp_path, broker, capsys):
    from kiosk import cli

    sections = base_sections(tmp_path)
    (tmp_path / "pw").write_text("secret\n")
    sections["mqtt"].update(url=f'"{broker.url}"', username='"k1"', password_file='"pw"')
    path = tmp_path / "kiosk.toml"
    path.write_text(render(sections), encoding="utf-8")
    rc = cli.main(["doctor", "--config", str(path), "--only", "broker"])
    out = capsys.readouterr().out
    assert rc == 0
    line = next(line for line in out.splitlines() if line.startswith("WARN  config"))
    assert "plain mqtt://" in line and "[mqtt] url" in line


def test_demo_config_checks_ok_and_points_at_no_real_broker():
    r = subprocess.run([sys.executable, "-m", "kiosk", "config", "check", str(ROOT / "config" / "demo.toml")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "ok" in r.stdout, r.stderr
    from urllib.parse import urlsplit

    from kiosk import config

    assert urlsplit(config.load(ROOT / "config" / "demo.toml").mqtt.url).port not in (None, 1883)


def test_a_good_key_set_passes(tmp_path):
    """Real Ed25519 keys, a CA that loads and a trust folder: no error, in-process."""
    key = signing.generate_key()
    signing.write_private_key(tmp_path / "device.pem", key)
    for name in ("centre", "authority", "health"):
        signing.write_public_key(tmp_path / f"{name}.pub.pem", signing.generate_key())
    cert, _ = tls_pair(tmp_path)
    sections = base_sections(tmp_path)
    sections["device"]["key_file"] = '"device.pem"'
    sections["trust"] = {"paths": f'["{DEMO_SIGNER}"]', "authority_key": '"authority.pub.pem"'}
    sections["mqtt"].update(centre_key='"centre.pub.pem"', ca_file=f'"{cert}"', commands='["notice"]',
                            url=sections["mqtt"]["url"].replace("mqtt://", "mqtts://"))
    sections["tracing"] = {"authority_key": '"health.pub.pem"'}
    path = tmp_path / "kiosk.toml"
    path.write_text(render(sections), encoding="utf-8")
    report = preflight.check_file(path)
    assert report.ok, report.lines()
    assert report.warnings == []
    (tmp_path / "device.pem").chmod(0o644)
    report = preflight.check_file(path)
    assert report.ok and any("chmod 600" in str(w) for w in report.warnings)
