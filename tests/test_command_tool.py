"""``kiosk command``: the centre's key, and signed commands over a real mosquitto.

The kiosk side here is the real :class:`kiosk.door.remote.gate.CommandGate` behind a plain paho
client (the running kiosk's wiring is tested in tests/test_door_remote_install.py).
"""

from __future__ import annotations

import json
import stat
import subprocess
import sys

import pytest

from helpers import GateResponder, wait_for
from kiosk.wire import signing

ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent


def kiosk_cli(*args, timeout=60):
    return subprocess.run([sys.executable, "-m", "kiosk", "command", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT)


@pytest.fixture
def centre_key(tmp_path):
    r = kiosk_cli("keygen", "--out", tmp_path / "centre-key.pem")
    assert r.returncode == 0, r.stderr
    return tmp_path / "centre-key.pem"


def test_keygen_writes_a_private_key_only_we_can_read_and_its_public_half(tmp_path, centre_key):
    assert stat.S_IMODE(centre_key.stat().st_mode) == 0o600
    public = signing.load_public_key(tmp_path / "centre-key.pub.pem")
    assert signing.kid_of(public) == signing.kid_of(signing.load_private_key(str(centre_key)).public_key())
    again = kiosk_cli("keygen", "--out", centre_key)
    assert again.returncode == 2 and "exists" in again.stderr and "Traceback" not in again.stderr


@pytest.mark.parametrize("args, message", [
    (["notice", "hi"], "needs --key, --broker, --site, --device"),
    (["keygen"], "keygen needs --out"),
    (["--key", "nope.pem", "--broker", "mqtt://127.0.0.1:9", "--site", "s", "--device", "d", "notice"], "nope.pem"),
    (["--key", "k.pem", "--broker", "mqtt://127.0.0.1:9", "--site", "s/x", "--device", "d", "notice"], "--site"),
    (["--key", "k.pem", "--broker", "mqtt://127.0.0.1:9", "--site", "s", "--device", "d", "Open Door"], "not a command name"),
    (["--key", "k.pem", "--broker", "http://x", "--site", "s", "--device", "d", "notice"], "not a broker URL"),
])
def test_bad_use_is_one_line_and_exit_2(tmp_path, args, message):
    r = kiosk_cli(*args)
    assert r.returncode == 2, r.stderr
    assert message in r.stderr and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_a_key_file_that_is_not_a_key_is_named(tmp_path):
    bad = tmp_path / "centre-key.pem"
    bad.write_text("not a key")
    r = kiosk_cli("--key", bad, "--broker", "mqtt://127.0.0.1:9", "--site", "s", "--device", "d", "notice")
    assert r.returncode == 2 and "centre-key.pem" in r.stderr and "Traceback" not in r.stderr


def test_an_unreachable_broker_is_one_line_and_exit_1(centre_key):
    r = kiosk_cli("--key", centre_key, "--broker", "mqtt://127.0.0.1:9", "--site", "s", "--device", "d",
                  "--timeout", "2", "notice", "x")
    assert r.returncode == 1 and "cannot reach the broker" in r.stderr and "Traceback" not in r.stderr


def test_a_signed_notice_reaches_the_gate_and_its_answer_is_printed(tmp_path, broker, centre_key):
    device_key = signing.generate_key()
    signing.write_public_key(tmp_path / "device-key.pub.pem", device_key)
    kiosk = GateResponder(broker, signing.load_public_key(tmp_path / "centre-key.pub.pem"), device_key, tmp_path)
    try:
        common = ["--key", centre_key, "--broker", broker.url, "--site", "hn-hk", "--device", "kiosk-01"]
        r = kiosk_cli(*common, "--wait", 10, "--kiosk-key", tmp_path / "device-key.pub.pem", "notice", "Kiểm tra lúc 14:00")
        assert r.returncode == 0, r.stderr
        answer = json.loads(r.stdout)
        assert answer["result"] == "ok" and answer["reason"] == "shown" and answer["name"] == "notice"
        assert len(answer["id"]) == 32 and kiosk.notices == ["Kiểm tra lúc 14:00"] and r.stderr == ""

        r = kiosk_cli(*common, "--wait", 10, "reload-trust")  # not enabled on this kiosk
        assert r.returncode == 1 and json.loads(r.stdout)["reason"] == "not-enabled"
        assert "signature was not checked" in r.stderr

        # An answer signed by someone else is not believed.
        signing.write_public_key(tmp_path / "other.pub.pem", signing.generate_key())
        r = kiosk_cli(*common, "--wait", 3, "--kiosk-key", tmp_path / "other.pub.pem", "notice", "x")
        assert r.returncode == 1 and "failed its signature check: unknown-key" in r.stderr

        # The fleet registry's row for the kiosk checks the answer; a revoked row does not.
        from kiosk.wire import registry

        row = registry.entry_for("hn-hk", "kiosk-01", "HN-HK-000123", device_key.public_key())
        (tmp_path / "fleet.registry.json").write_text(registry.dumps([row]))
        r = kiosk_cli(*common, "--wait", 10, "--registry", tmp_path / "fleet.registry.json", "notice", "Mời vào")
        assert r.returncode == 0 and json.loads(r.stdout)["reason"] == "shown" and r.stderr == ""
        row.revoked = True
        (tmp_path / "fleet.registry.json").write_text(registry.dumps([row]))
        r = kiosk_cli(*common, "--wait", 10, "--registry", tmp_path / "fleet.registry.json", "notice", "x")
        assert r.returncode == 2 and "no active key for hn-hk/kiosk-01" in r.stderr

        r = kiosk_cli(*common, "notice", "")  # no --wait: sent, acknowledged by the broker
        assert r.returncode == 0 and r.stdout.startswith("sent notice ")
        assert wait_for(lambda: kiosk.notices[-1:] == [""])
    finally:
        kiosk.close()


def test_no_answer_is_reported_after_the_wait(broker, centre_key):
    r = kiosk_cli("--key", centre_key, "--broker", broker.url, "--site", "hn-hk", "--device", "nobody",
                  "--wait", 1, "notice", "x")
    assert r.returncode == 1 and "no answer from hn-hk/nobody within 1 s" in r.stderr
