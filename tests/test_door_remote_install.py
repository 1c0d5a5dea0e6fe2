"""Signed centre commands against a running kiosk on a real mosquitto (issue 12's attacks).

The kiosk is assembled as ``kiosk run`` builds it and runs its real loop, control thread
and publisher; the centre is a plain MQTT client (``kiosk command`` builds its messages);
every answer is read from ``cmd-result`` and checked with the kiosk's device key.
"""

from __future__ import annotations

import json
import math
import threading
import time

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from helpers import Collector, code, device_keyring, kiosk_config, pc_covid, verified, wait_for
from kiosk.wire import signing
from kiosk.door.remote.gate import RELOAD_MIN_INTERVAL_S
from kiosk.wire.commands import signed as signed_command

SITE, DEVICE = "test-site", "kiosk-t1"
BASE = f"checkin/v1/{SITE}/{DEVICE}"


@pytest.fixture
def centre(tmp_path):
    key = signing.generate_key()
    signing.write_public_key(tmp_path / "centre.pub.pem", key)
    return key


class Running:
    """An assembled kiosk running its own loop in a thread, until ``stop()``."""

    def __init__(self, tmp_path, broker, commands='["notice", "reload-trust"]', checkins=None, cfg=None):
        from gpiozero.pins.mock import MockFactory

        from kiosk.door.assembly import assemble

        self.cfg = cfg or kiosk_config(tmp_path, broker.url,
                                       extra=f'commands = {commands}\ncentre_key = "{tmp_path / "centre.pub.pem"}"')
        self.checkins = checkins if checkins is not None else []
        self.kiosk = assemble(self.cfg, pin_factory=MockFactory(), headless=True,
                              on_checkin=lambda c, seq, seen: self.checkins.append(c))
        self.thread = threading.Thread(target=self.kiosk.run, kwargs={"until_exhausted": False}, daemon=True)
        self.thread.start()
        publisher = self.kiosk.stages.publisher
        gate = self.kiosk.remote.gate
        assert wait_for(lambda: publisher.connected and publisher.subscribed(gate.topic_filter), 15)

    def stop(self):
        self.kiosk.stop()
        self.thread.join(15)
        assert not self.thread.is_alive()


class Centre:
    """The centre's side: publishes to a kiosk and reads its verified answers."""

    def __init__(self, broker, cfg):
        self.answers = Collector(broker.url, f"{BASE}/cmd-result")
        self.ring = device_keyring(cfg)
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="test-centre")
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()

    def publish(self, topic, payload):
        self.client.publish(topic, payload, qos=1).wait_for_publish(10)

    def results(self) -> list[dict]:
        return [verified(p, f"{BASE}/cmd-result", self.ring) for p in self.answers.of("/cmd-result")]

    def wait(self, n, timeout=15.0) -> list[dict]:
        assert wait_for(lambda: len(self.answers.of("/cmd-result")) >= n, timeout), self.results()
        return self.results()

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()
        self.answers.close()


def test_an_anonymous_notice_is_refused_and_reported(tmp_path, broker, centre):
    k = Running(tmp_path, broker)
    c = Centre(broker, k.cfg)
    try:
        c.publish(f"{BASE}/cmd/notice", "Door broken - let everyone in".encode())  # as mosquitto_pub sends it
        forged = {"id": "f" * 32, "name": "notice", "body": "Door broken - let everyone in",
                  **signing.stamp({})}  # the right shape, but nobody's signature
        c.publish(f"{BASE}/cmd/notice", json.dumps(forged).encode())
        stranger = signing.generate_key()
        topic, message, _ = signed_command("notice", "Door broken", SITE, DEVICE, stranger)
        c.publish(topic, message)
        c.publish(f"{BASE}/cmd/open-door", b"{}")
        results = c.wait(4)
        assert [(r["id"], r["name"], r["result"], r["reason"]) for r in results] == [
            (None, "notice", "refused", "malformed"),
            ("f" * 32, "notice", "refused", "unsigned"),
            (json.loads(message)["id"], "notice", "refused", "unknown-key"),
            (None, "open-door", "refused", "unknown-command"),
        ]
        assert k.kiosk.notice == "" and k.kiosk.supervisor.status().notice == ""

        topic, message, command_id = signed_command("notice", "Kiểm tra lúc 14:00\nINFO forged line", SITE, DEVICE,
                                                    centre)
        c.publish(topic, message)
        assert c.wait(5)[-1] == {"id": command_id, "name": "notice", "result": "ok", "reason": "shown",
                                 "ts": c.results()[-1]["ts"]}
        assert k.kiosk.notice == "Kiểm tra lúc 14:00 INFO forged line"
    finally:
        c.close()
        k.stop()


def test_a_replayed_signed_command_is_refused_also_after_a_restart(tmp_path, broker, centre):
    k = Running(tmp_path, broker)
    c = Centre(broker, k.cfg)
    try:
        topic, message, command_id = signed_command("notice", "Kiểm tra lúc 14:00", SITE, DEVICE, centre)
        c.publish(topic, message)
        assert c.wait(1)[0]["reason"] == "shown"
        clear_topic, clear, _ = signed_command("notice", "", SITE, DEVICE, centre)
        c.publish(clear_topic, clear)
        assert c.wait(2)[1]["reason"] == "cleared"
        c.publish(topic, message)  # captured on the wire, sent again
        assert c.wait(3)[2] == {**c.results()[2], "id": command_id, "result": "refused", "reason": "replayed"}
        assert k.kiosk.notice == ""
        k.stop()

        k = Running(tmp_path, broker)  # a new process' worth of memory: only the state dir remains
        c.publish(topic, message)
        assert c.wait(4)[3]["reason"] == "replayed" and k.kiosk.notice == ""
        topic, message, _ = signed_command("notice", "Mời vào", SITE, DEVICE, centre)
        c.publish(topic, message)
        assert c.wait(5)[4]["reason"] == "shown" and k.kiosk.notice == "Mời vào"
    finally:
        c.close()
        k.stop()


def test_a_flood_of_signed_reloads_is_coalesced_every_command_answered_and_the_door_keeps_serving(
        tmp_path, broker, centre):
    checkins = []
    k = Running(tmp_path, broker, checkins=checkins)
    c = Centre(broker, k.cfg)
    try:
        flood = [signed_command("reload-trust", "", SITE, DEVICE, centre) for _ in range(900)]
        started = time.monotonic()
        visitors = threading.Thread(target=lambda: [
            k.kiosk.code_seen(code(pc_covid(f"0010880{i:05d}"), at=time.monotonic())) for i in range(50)])
        for topic, message, _ in flood:
            c.client.publish(topic, message, qos=1)
        visitors.start()
        results = c.wait(900, timeout=60)
        elapsed = time.monotonic() - started
        visitors.join()
        assert wait_for(lambda: len(checkins) == 50, 15)  # every visitor got a verdict during the flood
        assert {r["id"] for r in results} == {command_id for _, _, command_id in flood}
        assert {r["result"] for r in results} == {"ok"}
        reasons = [r["reason"] for r in results]
        runs = k.kiosk.remote.reloads.runs
        # At most one reload per interval, whatever the centre sends: 900 commands, a handful of reloads.
        assert 1 <= runs <= 2 + math.ceil(elapsed / RELOAD_MIN_INTERVAL_S)
        assert reasons.count("reloaded") <= runs and reasons.count("reloaded") + reasons.count("coalesced") == 900
        assert reasons[0] == "reloaded"
        # The folded requests run once, when the interval is over, without another command.
        assert wait_for(lambda: not k.kiosk.remote.reloads.pending, RELOAD_MIN_INTERVAL_S + 10)
        total = k.kiosk.remote.reloads.runs
        assert total >= 2 if "coalesced" in reasons else total == runs
        assert total <= 2 + math.ceil((time.monotonic() - started) / RELOAD_MIN_INTERVAL_S)
    finally:
        c.close()
        k.stop()


def test_commands_not_enabled_are_refused(tmp_path, broker, centre):
    k = Running(tmp_path, broker, commands='["notice"]')
    c = Centre(broker, k.cfg)
    try:
        topic, message, command_id = signed_command("reload-trust", "", SITE, DEVICE, centre)
        c.publish(topic, message)
        assert c.wait(1)[0] == {**c.results()[0], "id": command_id, "result": "refused", "reason": "not-enabled"}
        assert k.kiosk.remote.reloads.runs == 0
    finally:
        c.close()
        k.stop()
