"""Configuration: the operator's typo stops start-up with a message naming the key and line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kiosk import config

ROOT = Path(__file__).resolve().parent.parent

MINIMAL = """\
[device]
site = "hn"
id = "k1"

[venue]
id = "V1"
name = "Quán Phở"
qr_content = "venue-qr"
"""


def kiosk(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kiosk", *args], capture_output=True, text=True, cwd=cwd, timeout=60)


def error_of(text: str, tmp_path: Path) -> str:
    with pytest.raises(config.ConfigError) as exc:
        config.parse(text, str(tmp_path / "kiosk.toml"))
    return str(exc.value)


def preflight_error_of(text: str, tmp_path: Path) -> str:
    """What the config points at (files, keys) is the preflight's: the first error's line."""
    from kiosk.config import preflight

    report = preflight.check_text(text, str(tmp_path / "kiosk.toml"), host=False)
    assert report.errors, "expected an error"
    return str(report.errors[0])


def test_minimal_config_gets_documented_defaults():
    cfg = config.parse(MINIMAL)
    assert cfg.venue.name == "Quán Phở"
    assert cfg.policy.duplicate_window_minutes == 30
    assert cfg.ledger.visit_log is False  # private by default
    assert cfg.ledger.retention_days == 21


def test_typo_names_key_and_line(tmp_path):
    msg = error_of(MINIMAL + "\n[signals]\ngreen_led = 17\ngrean_led = 18\n", tmp_path)
    assert "[signals] grean_led" in msg and "unknown key" in msg
    assert "kiosk.toml:12:" in msg


@pytest.mark.parametrize(
    "extra, key, words",
    [
        ('[camera]\nwidth = "wide"\n', "[camera] width", "expected an integer"),
        ("[screen]\nfullscreen = 1\n", "[screen] fullscreen", "true or false"),
        ('[signals]\npin_factory = "magic"\n', "[signals] pin_factory", "must be one of"),
        ("[signals]\ngreen_led = 40\n", "[signals] green_led", "0..27"),
        ('[mqtt]\nurl = "http://broker"\n', "[mqtt] url", "expected form"),
        ('[policy]\naccept_formats = ["eu-dcc", "yellow-card"]\n', "[policy] accept_formats", "unknown format"),
        ('[ledger]\nvisit_log_fields = ["name", "religion"]\n', "[ledger] visit_log_fields", "unknown name 'religion'"),
        ('[frobnicate]\nx = 1\n', "[frobnicate]", "unknown section"),
    ],
)
def test_bad_values_are_named(tmp_path, extra, key, words):
    msg = error_of(MINIMAL + "\n" + extra, tmp_path)
    assert key in msg and words in msg


def test_missing_required_value(tmp_path):
    msg = error_of(MINIMAL.replace('qr_content = "venue-qr"\n', ""), tmp_path)
    assert "[venue] qr_content" in msg and "required" in msg


def test_missing_section(tmp_path):
    msg = error_of('[device]\nsite = "a"\nid = "b"\n', tmp_path)
    assert "[venue]" in msg


def test_two_devices_on_one_pin(tmp_path):
    msg = error_of(MINIMAL + "\n[signals]\ngreen_led = 17\nbuzzer = 17\n", tmp_path)
    assert "[signals] buzzer" in msg and "GPIO 17" in msg and "green_led" in msg


def test_unreadable_trust_file(tmp_path):
    msg = preflight_error_of(MINIMAL + '\n[trust]\npaths = ["no-such-signer.pem"]\n', tmp_path)
    assert "[trust] paths" in msg and "no-such-signer.pem" in msg


def test_invalid_toml_names_line(tmp_path):
    msg = error_of(MINIMAL + "\n[camera]\nwidth = \n", tmp_path)
    assert "not valid TOML" in msg and ":11:" in msg


def test_paths_resolve_against_config_folder(tmp_path):
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "issuer.crt.pem").write_bytes((ROOT / "config/demo-keys/declaration-issuer.crt.pem").read_bytes())
    f = tmp_path / "kiosk.toml"
    f.write_text(MINIMAL + '\n[trust]\npaths = ["keys"]\n')
    cfg = config.load(f)
    assert cfg.resolve("keys") == tmp_path / "keys"
    assert cfg.ledger_path == Path("/var/lib/kiosk/ledger.sqlite3")


def test_shipped_configs_are_valid():
    for name in ("kiosk.example.toml", "demo.toml"):
        config.load(ROOT / "config" / name)


def test_every_schema_problem_is_reported_at_once(tmp_path):
    with pytest.raises(config.ConfigError) as exc:
        config.parse(MINIMAL + '\n[camera]\nwidth = "wide"\nfps = 0\n[screen]\nsize = "00x00"\nverdict_secs = 1\n',
                     str(tmp_path / "kiosk.toml"))
    keys = [p.key for p in exc.value.problems]
    assert keys == ["[camera] width", "[camera] fps", "[screen] verdict_secs", "[screen] size"]
    assert "and 3 more problems" in str(exc.value)


def test_path_and_required_keys_come_from_the_schema():
    assert ("mqtt", "ca_file") in config.path_keys() and ("trust", "paths") in config.path_keys()
    assert ("venue", "name") not in config.path_keys()
    assert config.required_keys() == [("device", "site"), ("device", "id"), ("venue", "id"), ("venue", "name"),
                                      ("venue", "qr_content")]


def test_toml_writer_round_trips_awkward_text():
    import tomllib

    name = 'Nhà "Văn hoá" \\ Quận 1\ttầng 2\nline'
    text = config.dump_toml({"venue": {"name": name, "list": ["a", 'b"']}, "signals": {"relay": 5, "on": True}})
    assert tomllib.loads(text) == {"venue": {"name": name, "list": ["a", 'b"']}, "signals": {"relay": 5, "on": True}}


def test_example_documents_every_key():
    """config/kiosk.example.toml is exactly what the schema documents (regenerate with `kiosk config example`)."""
    shipped = (ROOT / "config" / "kiosk.example.toml").read_text(encoding="utf-8")
    assert shipped == config.example_toml(), "run: kiosk config example > config/kiosk.example.toml"
    for section, key, _default, help_ in config.describe():
        assert help_, f"[{section}] {key} has no help text"
        assert f"{key} =" in shipped


def test_config_check_command(tmp_path):
    good = kiosk("config", "check", "config/demo.toml")
    assert good.returncode == 0 and "ok" in good.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text(MINIMAL + "\n[screen]\nverdict_secs = 2\n")
    result = kiosk("config", "check", str(bad))
    assert result.returncode == 2
    assert "[screen] verdict_secs" in result.stderr and "bad.toml:11" in result.stderr
    assert "Traceback" not in result.stderr


def test_config_check_missing_file():
    result = kiosk("config", "check", "/nonexistent/kiosk.toml")
    assert result.returncode == 2 and "cannot read" in result.stderr


def test_garbage_trust_file_is_named(tmp_path):
    (tmp_path / "signer.pem").write_text("this is not a certificate\n")
    msg = preflight_error_of(MINIMAL + '\n[trust]\npaths = ["signer.pem"]\n', tmp_path)
    assert "[trust] paths" in msg and "signer.pem" in msg and ":11:" in msg


def test_bad_revocation_file_is_named(tmp_path):
    (tmp_path / "revoked.txt").write_text("not-a-sha256\n")
    msg = preflight_error_of(MINIMAL + '\n[policy]\nrevoked_file = "revoked.txt"\n', tmp_path)
    assert "[policy] revoked_file" in msg and "revoked.txt" in msg
