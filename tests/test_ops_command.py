"""kiosk.ops.command: the centre's command key, the keys a kiosk's answer must verify with, the exchange.

The exchange runs on a real mosquitto (a free port, started per test). The kiosk is either the real
command gate (:class:`helpers.GateResponder`) or a scripted kiosk that answers a command with the
messages a test chooses (garbage, another command's answer, a forgery) before or instead of the real one.
"""

from __future__ import annotations

import getpass
import shutil
import stat
import subprocess
import threading
from pathlib import Path
from types import SimpleNamespace

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from conftest import Broker, free_port
from helpers import Collector, GateResponder, wait_for
from kiosk.ops.command import AnswerKeysError, answer_keys, make_centre_key, public_path, send
from kiosk.wire import registry, signing
from kiosk.wire.commands import signed
from kiosk.wire.topics import cmd_result_of

SITE, DEVICE = "hn-hk", "kiosk-01"


# -- the key -------------------------------------------------------------------------

def test_the_public_key_is_named_after_the_private_one():
    assert public_path(Path("/etc/centre/centre-key.pem")) == Path("/etc/centre/centre-key.pub.pem")
    assert public_path(Path("keys/centre")) == Path("keys/centre.pub.pem")


def test_a_new_command_key_is_ours_alone_and_its_kid_names_the_public_half(tmp_path):
    private, public = tmp_path / "centre-key.pem", tmp_path / "centre-key.pub.pem"
    kid = make_centre_key(private, public)
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert kid == signing.kid_of(signing.load_public_key(public))
    assert kid == signing.kid_of(signing.load_private_key(str(private)).public_key())
    assert make_centre_key(tmp_path / "again.pem", tmp_path / "again.pub.pem") != kid  # a new key each time
    (tmp_path / "a-file").write_text("")  # a folder that cannot be made: the OSError reaches the caller
    with pytest.raises(OSError):
        make_centre_key(tmp_path / "a-file" / "k.pem", tmp_path / "a-file" / "k.pub.pem")


# -- the keys an answer must verify with ----------------------------------------------

def write_registry(path: Path, *entries) -> str:
    path.write_text(registry.dumps(list(entries)))
    return str(path)


def test_no_key_and_no_registry_leave_the_answer_unchecked():
    assert answer_keys(SITE, DEVICE, None, None) is None
    assert answer_keys(SITE, DEVICE, "", "") is None


def test_the_kiosk_key_file_and_every_active_registered_key_of_that_kiosk_check_the_answer(tmp_path):
    device, old, new, revoked, neighbour = (signing.generate_key() for _ in range(5))
    signing.write_public_key(tmp_path / "device-key.pub.pem", device)
    ring = answer_keys(SITE, DEVICE, str(tmp_path / "device-key.pub.pem"), None)
    assert set(ring_kids(ring)) == {signing.kid_of(device.public_key())}
    gone = registry.entry_for(SITE, DEVICE, "V-1", revoked.public_key())
    gone.revoked = True
    path = write_registry(tmp_path / "fleet.registry.json",
                          registry.entry_for(SITE, DEVICE, "V-1", old.public_key()),  # a key rotation: both sign
                          registry.entry_for(SITE, DEVICE, "V-1", new.public_key()), gone,
                          registry.entry_for(SITE, "kiosk-02", "V-1", neighbour.public_key()))
    ring = answer_keys(SITE, DEVICE, None, path)
    assert set(ring_kids(ring)) == {signing.kid_of(k.public_key()) for k in (old, new)}
    ring = answer_keys(SITE, DEVICE, str(tmp_path / "device-key.pub.pem"), path)
    assert set(ring_kids(ring)) == {signing.kid_of(k.public_key()) for k in (device, old, new)}


def ring_kids(ring: signing.KeyRing) -> list[str]:
    return [k.kid for k in ring]


def test_a_registry_that_cannot_check_the_answer_is_refused_with_its_name(tmp_path):
    with pytest.raises(AnswerKeysError, match=r"^--registry: no such file .*missing\.json$"):
        answer_keys(SITE, DEVICE, None, str(tmp_path / "missing.json"))
    gone = registry.entry_for(SITE, DEVICE, "V-1", signing.generate_key().public_key())
    gone.revoked = True
    other = registry.entry_for(SITE, "kiosk-02", "V-1", signing.generate_key().public_key())
    path = write_registry(tmp_path / "fleet.registry.json", gone, other)
    with pytest.raises(AnswerKeysError, match=f"fleet.registry.json: no active key for {SITE}/{DEVICE}$"):
        answer_keys(SITE, DEVICE, None, path)


def test_a_kiosk_key_file_that_is_not_a_key_is_a_signing_key_error(tmp_path):
    (tmp_path / "device-key.pub.pem").write_text("not a key")
    with pytest.raises(signing.SigningKeyError, match="device-key.pub.pem"):
        answer_keys(SITE, DEVICE, str(tmp_path / "device-key.pub.pem"), None)


# -- the exchange ---------------------------------------------------------------------

@pytest.fixture
def centre():
    return signing.generate_key()


@pytest.fixture
def device():
    return signing.generate_key()


def command(centre, text="Kiểm tra lúc 14:00"):
    return signed("notice", text, SITE, DEVICE, centre)


def ring_of(key) -> signing.KeyRing:
    return signing.KeyRing.of({f"{SITE}/{DEVICE}": key.public_key()})


def answer(command_id: str, topic: str, key, reason="shown") -> bytes:
    """A kiosk's answer on ``cmd-result`` to ``command_id``, signed with ``key``."""
    return signing.sign_bytes({"id": command_id, "name": "notice", "result": "ok", "reason": reason,
                               "ts": signing.iso()}, cmd_result_of(topic), key)


class ScriptedKiosk:
    """Subscribed to the kiosk's commands; answers each with the messages ``replies(payload)`` gives, in order."""

    def __init__(self, broker, topic: str, replies):
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="scripted-kiosk")
        ready = threading.Event()
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda *a: ready.set()
        self.client.on_message = lambda c, u, m: [c.publish(cmd_result_of(m.topic), r, qos=1)
                                                  for r in replies(m.payload)]
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()
        assert ready.wait(10)

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def test_a_command_sent_without_waiting_reaches_the_kiosk_topic_once_and_is_not_retained(broker, centre):
    topic, message, command_id = command(centre)
    seen = Collector(broker.url)
    try:
        outcome = send(broker.url, None, topic, message, command_id, wait=0, timeout=5, ring=None)
        assert (outcome.stage, outcome.address, outcome.result) == ("sent", broker.url, None)
        assert wait_for(lambda: seen.of("/cmd/notice"))
        assert seen.messages == [(topic, message, False)]
    finally:
        seen.close()
    # a kiosk that connects later gets nothing: the broker kept no copy (a marker shows the retained would be past)
    late = Collector(broker.url, topic="checkin/#")
    try:
        late.client.publish(f"checkin/v1/{SITE}/{DEVICE}/marker", b"m", qos=1)
        assert wait_for(lambda: late.of("/marker"))
        assert late.of("/cmd/notice") == []
    finally:
        late.close()


def test_the_kiosks_answer_checked_with_its_key_is_returned_without_its_signature(broker, centre, device, tmp_path):
    kiosk = GateResponder(broker, centre.public_key(), device, tmp_path)
    try:
        topic, message, command_id = command(centre)
        outcome = send(broker.url, None, topic, message, command_id, wait=10, timeout=5, ring=ring_of(device))
        assert outcome.stage == "answered" and outcome.forged == ""
        result = outcome.result
        assert (result["id"], result["name"], result["result"], result["reason"]) == (command_id, "notice", "ok",
                                                                                      "shown")
        assert signing.SIG_FIELD not in result
        assert kiosk.notices == ["Kiểm tra lúc 14:00"]
    finally:
        kiosk.close()


def test_an_answer_signed_by_another_key_is_not_believed_and_its_reason_kept(broker, centre, device, tmp_path):
    kiosk = GateResponder(broker, centre.public_key(), device, tmp_path)
    try:
        topic, message, command_id = command(centre)
        outcome = send(broker.url, None, topic, message, command_id, wait=1, timeout=5,
                       ring=ring_of(signing.generate_key()))
        assert (outcome.stage, outcome.forged, outcome.result) == ("unanswered", "unknown-key", None)
        assert kiosk.notices == ["Kiểm tra lúc 14:00"]  # it reached the kiosk: only its answer was doubted
    finally:
        kiosk.close()


def test_garbage_and_other_commands_answers_are_passed_over(broker, centre, device):
    topic, message, command_id = command(centre)
    outsider = signing.generate_key()
    kiosk = ScriptedKiosk(broker, topic, lambda payload: [
        b"not json", answer("f" * 32, topic, device),            # another command's genuine answer
        answer(command_id, topic, outsider),                      # this command's, forged
        answer(command_id, topic, device, reason="cleared")])     # this command's, genuine
    try:
        outcome = send(broker.url, None, topic, message, command_id, wait=10, timeout=5, ring=ring_of(device))
        assert outcome.stage == "answered"
        assert (outcome.result["id"], outcome.result["reason"]) == (command_id, "cleared")
    finally:
        kiosk.close()


def test_only_a_forgery_is_unanswered_and_says_why(broker, centre, device):
    topic, message, command_id = command(centre)
    kiosk = ScriptedKiosk(broker, topic, lambda payload: [b"\xff garbage", answer("f" * 32, topic, device),
                                                          answer(command_id, topic, signing.generate_key())])
    try:
        outcome = send(broker.url, None, topic, message, command_id, wait=1, timeout=5, ring=ring_of(device))
        assert (outcome.stage, outcome.forged) == ("unanswered", "unknown-key")
    finally:
        kiosk.close()


def test_without_keys_any_answer_to_the_command_is_taken_unchecked(broker, centre):
    topic, message, command_id = command(centre)
    kiosk = ScriptedKiosk(broker, topic, lambda payload: [answer(command_id, topic, signing.generate_key())])
    try:
        outcome = send(broker.url, None, topic, message, command_id, wait=10, timeout=5, ring=None)
        assert outcome.stage == "answered" and outcome.result["id"] == command_id
    finally:
        kiosk.close()


def test_no_broker_listening_is_unreachable_after_the_timeout(centre):
    topic, message, command_id = command(centre)
    url = f"mqtt://127.0.0.1:{free_port()}"  # nothing listens there
    outcome = send(url, None, topic, message, command_id, wait=0, timeout=0.5, ring=None)
    assert (outcome.stage, outcome.address, outcome.why) == ("unreachable", url, "no answer")


@pytest.fixture
def login_broker(tmp_path):
    """mosquitto that lets in only ``centre`` with its password (from a password file mosquitto_passwd wrote)."""
    passwd = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
    subprocess.run([passwd, "-b", "-c", str(tmp_path / "passwd"), "centre", "s3cret"], check=True,
                   capture_output=True)
    (tmp_path / "centre.password").write_text("s3cret\n")
    port = free_port()
    conf = tmp_path / "login.conf"
    conf.write_text(f"per_listener_settings false\nallow_anonymous false\npassword_file {tmp_path / 'passwd'}\n"
                    f"listener {port} 127.0.0.1\nuser {getpass.getuser()}\n")
    b = Broker(port=port, conf=conf)
    b.start()
    yield b
    b.stop()


def test_the_broker_settings_log_in_and_a_refused_login_is_unreachable_with_the_brokers_reason(login_broker, centre,
                                                                                               tmp_path):
    topic, message, command_id = command(centre)
    refused = send(login_broker.url, None, topic, message, command_id, wait=0, timeout=5, ring=None)
    assert (refused.stage, refused.why) == ("unreachable", "Not authorized")
    settings = SimpleNamespace(username="centre", password_file=str(tmp_path / "centre.password"), ca_file="",
                               cert_file="", key_file="", reconnect_min_seconds=0.5, reconnect_max_seconds=10.0)
    assert send(login_broker.url, settings, topic, message, command_id, wait=0, timeout=5, ring=None).stage == "sent"


def test_a_url_that_is_not_a_broker_is_raised_before_anything_is_sent(centre):
    topic, message, command_id = command(centre)
    with pytest.raises(ValueError, match="not a broker URL"):
        send("http://broker.example", None, topic, message, command_id, wait=0, timeout=5, ring=None)


def test_a_connection_dropped_between_subscribing_and_publishing_is_unacknowledged_not_a_traceback(broker, centre):
    topic, message, command_id = command(centre)

    def cut(client):  # the broker goes away after it confirmed the subscription, before the command is sent
        broker.stop()
        assert wait_for(lambda: not client.is_connected())

    outcome = send(broker.url, None, topic, message, command_id, wait=5, timeout=5, ring=None, before_publish=cut)
    assert (outcome.stage, outcome.address, outcome.result) == ("unacknowledged", broker.url, None)
    assert outcome.why == "the connection to the broker dropped before the command was sent"


def test_the_command_tool_says_a_dropped_connection_in_one_line(broker, centre, capsys, monkeypatch):
    from kiosk.commands import command as command_tool
    from kiosk.ops import command as ops_command

    real = ops_command.send

    def cut_send(*a, **kw):
        return real(*a, **kw, before_publish=lambda client: (broker.stop(),
                                                             wait_for(lambda: not client.is_connected())))

    monkeypatch.setattr(ops_command, "send", cut_send)
    topic, message, command_id = command(centre)
    args = SimpleNamespace(broker=broker.url, wait=5.0, timeout=5.0, name="notice", site=SITE, device=DEVICE)
    assert command_tool._send(None, args, topic, message, command_id, None) == 1
    err = capsys.readouterr().err
    assert err == (f"kiosk command: the broker at {broker.url} did not acknowledge the command (the connection to "
                   "the broker dropped before the command was sent)\n")


@pytest.fixture
def no_read_broker(tmp_path):
    """mosquitto whose dynamic-security plugin refuses every subscription (SUBACK 0x80) but lets anyone publish.

    (mosquitto's acl_file grants every subscription and filters at delivery: it cannot make a SUBACK fail.)
    """
    # Debian's mosquitto package ships the plugin (scripts/setup installs mosquitto), under the machine's triplet.
    found = sorted(Path("/usr/lib").glob("*/mosquitto_dynamic_security.so"))
    assert found, "mosquitto's dynamic security plugin is missing: run scripts/setup (apt's mosquitto ships it)"
    plugin = found[0]
    (tmp_path / "dynsec.json").write_text(
        '{"defaultACLAccess": {"publishClientSend": true, "publishClientReceive": true, "subscribe": false, '
        '"unsubscribe": true}, "clients": [], "groups": [], "roles": []}')
    port = free_port()
    conf = tmp_path / "dynsec.conf"
    conf.write_text(f"per_listener_settings false\nallow_anonymous true\nplugin {plugin}\n"
                    f"plugin_opt_config_file {tmp_path / 'dynsec.json'}\n"
                    f"listener {port} 127.0.0.1\nuser {getpass.getuser()}\n")
    b = Broker(port=port, conf=conf)
    b.start()
    yield b
    b.stop()


def test_a_refused_answer_subscription_is_said_as_such_and_the_command_not_sent(no_read_broker, centre, capsys):
    topic, message, command_id = command(centre)
    outcome = send(no_read_broker.url, None, topic, message, command_id, wait=2, timeout=5, ring=None)
    assert (outcome.stage, outcome.why, outcome.result) == ("unsubscribed", "Unspecified error", None)
    from kiosk.commands import command as command_tool

    args = SimpleNamespace(broker=no_read_broker.url, wait=2.0, timeout=5.0, name="notice", site=SITE, device=DEVICE)
    assert command_tool._send(None, args, topic, message, command_id, None) == 1
    assert capsys.readouterr().err == (f"kiosk command: the broker at {no_read_broker.url} refused the cmd-result "
                                       "subscription (Unspecified error): the command was not sent\n")
