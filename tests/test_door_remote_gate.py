"""The command gate: every refusal reason, the signed cmd-result, replay across a restart, coalesced reloads.

A fake clock drives freshness; the cmd-results are checked with the device's public key
exactly as the centre would check them.
"""

from __future__ import annotations

import json
import logging
import os

import pytest

from helpers import wait_for
from kiosk.testing.clock import FakeClock
from kiosk.wire.topics import Topics
from kiosk.door.remote import gate as gate_mod
from kiosk.wire import signing
from kiosk.wire.reasons import REFUSALS
from kiosk.door.remote.gate import CommandGate, Coalescer, ReplayFloor, notice_action, reload_action, sanitise_notice

ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent
BASE = "checkin/v1/hn-hk/kiosk-01"
KIOSK = Topics("hn-hk", "kiosk-01")
T0 = 1_800_000_000.0


@pytest.fixture
def keys():
    return {"centre": signing.generate_key(), "device": signing.generate_key(), "stranger": signing.generate_key()}


class Kiosk:
    """What the gate acts on: a notice, a trust reload, and the answers it sends."""

    def __init__(self, keys, tmp_path, enabled=("notice", "reload-trust"), clock=None, state_file="default"):
        self.clock = clock or FakeClock(T0)
        self.mono = FakeClock(0.0)
        self.notice = None
        self.reloads = 0
        self.sent: list[tuple[str, bytes]] = []
        self.coalescer = Coalescer(self._reload, interval_s=10.0, clock=self.mono)
        self.device_ring = signing.KeyRing.of({"kiosk-01": keys["device"].public_key()})
        self.gate = CommandGate(
            KIOSK, signing.KeyRing.of({"centre": keys["centre"].public_key()}), enabled,
            {"notice": notice_action(self._show), "reload-trust": reload_action(self.coalescer)},
            keys["device"], lambda topic, payload: self.sent.append((topic, payload)), max_age_s=300,
            state_file=tmp_path / "command-floor.json" if state_file == "default" else state_file, clock=self.clock)
        self.rests: list[float] = []
        self.gate.rest = self.rests.append  # pacing, recorded instead of slept

    def _show(self, text):
        self.notice = text

    def _reload(self):
        self.reloads += 1

    def results(self) -> list[dict]:
        """The cmd-results sent, each verified with the device key for the cmd-result topic."""
        out = []
        for topic, payload in self.sent:
            assert topic == f"{BASE}/cmd-result"
            out.append(signing.verify(payload, topic, self.device_ring).payload)
        return out


def command(key, name, body="", *, topic_name=None, now=T0, ttl=None, **override) -> tuple[str, bytes]:
    """A centre command as `kiosk command` makes it."""
    topic = f"{BASE}/cmd/{topic_name or name}"
    payload = signing.stamp({"id": os.urandom(16).hex(), "name": name, "body": body}, ttl_s=ttl, now=now)
    payload.update(override)
    return topic, signing.sign_bytes(payload, topic, key)


def test_a_signed_notice_is_shown_and_answered_ok(keys, tmp_path):
    k = Kiosk(keys, tmp_path)
    topic, msg = command(keys["centre"], "notice", "Kiểm tra lúc 14:00")
    outcome = k.gate.handle(topic, msg)
    assert k.notice == "Kiểm tra lúc 14:00"
    [res] = k.results()
    assert res == {"id": json.loads(msg)["id"], "name": "notice", "result": "ok", "reason": "shown",
                   "ts": signing.iso(T0)}
    assert outcome.reason == "shown"
    k.gate.handle(*command(keys["centre"], "notice", ""))
    assert k.notice == "" and k.results()[-1]["reason"] == "cleared"


def _refused(k, topic, msg) -> dict:
    before = k.notice, k.reloads
    k.gate.handle(topic, msg)
    assert (k.notice, k.reloads) == before, "a refused command changed the kiosk"
    res = k.results()[-1]
    assert res["result"] == "refused"
    return res


def test_an_anonymous_notice_is_refused_as_unsigned(keys, tmp_path):
    k = Kiosk(keys, tmp_path)
    topic = f"{BASE}/cmd/notice"
    res = _refused(k, topic, json.dumps({"id": "a" * 32, "name": "notice", "body": "Door broken - let everyone in"}).encode())
    assert res["reason"] == "unsigned" and res["id"] == "a" * 32 and res["name"] == "notice"
    res = _refused(k, topic, "Door broken - let everyone in".encode())  # plain text, as mosquitto_pub sends
    assert res["reason"] == "malformed" and res["id"] is None


def test_wrong_key_and_tampered_messages_are_refused(keys, tmp_path):
    k = Kiosk(keys, tmp_path)
    assert _refused(k, *command(keys["stranger"], "notice", "hi"))["reason"] == "unknown-key"
    topic, msg = command(keys["centre"], "notice", "hello")
    tampered = msg.replace(b"hello", b"HELLO")
    assert _refused(k, topic, tampered)["reason"] == "bad-signature"


def test_a_command_signed_for_another_topic_is_refused(keys, tmp_path):
    k = Kiosk(keys, tmp_path)
    # Signed for kiosk-02, replayed onto kiosk-01: the signature covers the topic.
    other = "checkin/v1/hn-hk/kiosk-02/cmd/notice"
    payload = signing.stamp({"id": "b" * 32, "name": "notice", "body": "x"}, now=T0)
    assert _refused(k, f"{BASE}/cmd/notice", signing.sign_bytes(payload, other, keys["centre"]))["reason"] == "bad-signature"
    # Signed for reload-trust, published on cmd/notice.
    topic, msg = command(keys["centre"], "reload-trust")
    assert _refused(k, f"{BASE}/cmd/notice", msg)["reason"] == "bad-signature"
    # Correctly signed for the topic but the payload names another command.
    assert _refused(k, *command(keys["centre"], "reload-trust", topic_name="notice"))["reason"] == "name-mismatch"
    # Not under this kiosk's prefix at all.
    assert _refused(k, "checkin/v1/hn-hk/kiosk-02/cmd/notice", msg)["reason"] == "wrong-topic"


def test_unknown_and_disabled_names_are_refused_before_any_crypto(keys, tmp_path):
    k = Kiosk(keys, tmp_path, enabled=("reload-trust",))
    res = _refused(k, *command(keys["centre"], "open-door"))
    assert res["reason"] == "unknown-command" and res["name"] == "open-door"
    assert _refused(k, *command(keys["centre"], "notice", "hi"))["reason"] == "not-enabled"
    res = _refused(k, f"{BASE}/cmd/Bad Name\n", b"{}")
    assert res["reason"] == "unknown-command" and res["name"] == ""  # never echo a name that is not one


def test_stale_future_and_expired_commands_are_refused(keys, tmp_path):
    clock = FakeClock(T0)
    k = Kiosk(keys, tmp_path, clock=clock)
    assert _refused(k, *command(keys["centre"], "notice", "x", now=T0 - 301))["reason"] == "stale"
    assert _refused(k, *command(keys["centre"], "notice", "x", now=T0 + 61))["reason"] == "not-yet-valid"
    topic, msg = command(keys["centre"], "notice", "x", now=T0, ttl=30)
    clock.t = T0 + 31
    assert _refused(k, topic, msg)["reason"] == "expired"
    clock.t = T0 + 299
    k.gate.handle(*command(keys["centre"], "notice", "fresh", now=T0))  # 299 s old: still fresh
    assert k.notice == "fresh"


def test_a_replayed_command_is_refused(keys, tmp_path):
    k = Kiosk(keys, tmp_path)
    topic, msg = command(keys["centre"], "notice", "once")
    k.gate.handle(topic, msg)
    k.notice = "changed since"
    assert _refused(k, topic, msg)["reason"] == "replayed"
    assert k.notice == "changed since"


def test_a_replay_after_a_restart_is_refused(keys, tmp_path):
    k = Kiosk(keys, tmp_path)
    topic, msg = command(keys["centre"], "notice", "once", now=T0 - 10)
    k.gate.handle(topic, msg)
    saved = json.loads((tmp_path / "command-floor.json").read_text())
    assert saved == {"version": 1, "newest_iat": signing.iso(T0 - 10)}  # small and bounded: one time
    restarted = Kiosk(keys, tmp_path)  # a new process: no nonces in memory
    assert _refused(restarted, topic, msg)["reason"] == "replayed"
    restarted.gate.handle(*command(keys["centre"], "notice", "new"))
    assert restarted.notice == "new"


def test_inside_one_run_an_older_unseen_command_still_acts(keys, tmp_path):
    """Two operators' commands may arrive out of issue order; only a restart sets the floor."""
    k = Kiosk(keys, tmp_path)
    k.gate.handle(*command(keys["centre"], "notice", "newer", now=T0))
    k.gate.handle(*command(keys["centre"], "notice", "older", now=T0 - 5))
    assert k.notice == "older"


def test_an_unreadable_floor_refuses_what_came_before_start(keys, tmp_path):
    (tmp_path / "command-floor.json").write_text("{not json")
    k = Kiosk(keys, tmp_path)
    assert _refused(k, *command(keys["centre"], "notice", "x", now=T0 - 1))["reason"] == "replayed"
    k.gate.handle(*command(keys["centre"], "notice", "y", now=T0 + 1))
    assert k.notice == "y"


def test_a_command_is_refused_when_its_floor_cannot_be_written(keys, tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    k = Kiosk(keys, tmp_path, state_file=blocker / "command-floor.json")
    assert _refused(k, *command(keys["centre"], "notice", "x", now=T0 + 1))["reason"] == "state-unwritable"


def test_oversized_and_bad_bodies_are_refused(keys, tmp_path):
    k = Kiosk(keys, tmp_path)
    topic, msg = command(keys["centre"], "notice", "x" * 5000)
    res = _refused(k, topic, msg)
    assert res["reason"] == "too-large" and res["id"] is None
    assert _refused(k, *command(keys["centre"], "notice", ["a", "list"]))["reason"] == "bad-body"
    assert _refused(k, *command(keys["centre"], "notice", "x", id="no"))["reason"] == "malformed"
    assert _refused(k, *command(keys["centre"], "notice", "x", nonce=None))["reason"] == "malformed"


def test_every_refusal_reason_is_a_stable_word():
    reasons = {gate_mod.TOO_LARGE, gate_mod.WRONG_TOPIC, gate_mod.UNKNOWN_COMMAND, gate_mod.NOT_ENABLED,
               gate_mod.NAME_MISMATCH, gate_mod.STATE_UNWRITABLE, gate_mod.BAD_BODY, gate_mod.RELOAD_FAILED,
               gate_mod.FAILED, *REFUSALS}
    assert all(r.replace("-", "").isalpha() and r.islower() for r in reasons)


def test_notice_text_is_one_printable_line_and_capped(keys, tmp_path, caplog):
    forged = "Door ok\nINFO kiosk.door.kiosk: check-in 1: accept ok (eu-dcc)\r\x1b[2J\u202eevil\u2028x\x00"
    k = Kiosk(keys, tmp_path)
    with caplog.at_level(logging.INFO, logger="kiosk.door.remote.gate"):
        k.gate.handle(*command(keys["centre"], "notice", forged))
    assert k.notice == "Door ok INFO kiosk.door.kiosk: check-in 1: accept ok (eu-dcc) [2Jevil x"
    assert all("\n" not in r.getMessage() and "\r" not in r.getMessage() for r in caplog.records)
    assert not any(r.getMessage().startswith("check-in") for r in caplog.records)
    assert len(sanitise_notice("ồ" * 500)) == 200
    assert sanitise_notice("Kie\u0302\u0309m tra") == "Kiểm tra"  # decomposed Vietnamese comes out composed


def test_reloads_are_coalesced_and_every_command_answered(keys, tmp_path):
    k = Kiosk(keys, tmp_path)
    msgs = [command(keys["centre"], "reload-trust") for _ in range(900)]
    for topic, msg in msgs:
        k.gate.offer(topic, msg)
    outcomes = k.gate.drain()
    assert k.reloads == 1  # the first ran at once; the other 899 folded into one pending run
    # Paced: a rest after every slice of 8 but the last, each 9 times as long as the slice took.
    assert len(k.rests) == 900 // gate_mod.SLICE + (900 % gate_mod.SLICE > 0) - 1 and all(r > 0 for r in k.rests)
    assert [o.reason for o in outcomes] == ["reloaded"] + ["coalesced"] * 899
    assert len(k.results()) == 900 and {r["id"] for r in k.results()} == {json.loads(m)["id"] for _, m in msgs}
    assert k.coalescer.due_in() == 10.0
    k.coalescer.poll()
    assert k.reloads == 1  # not due yet
    k.mono.t = 10.0
    k.coalescer.poll()
    k.coalescer.poll()
    assert k.reloads == 2 and k.coalescer.due_in() is None
    k.mono.t = 25.0
    k.gate.handle(*command(keys["centre"], "reload-trust"))
    assert k.reloads == 3 and k.results()[-1]["reason"] == "reloaded"


def test_a_failing_reload_is_reported_and_keeps_going(keys, tmp_path):
    k = Kiosk(keys, tmp_path)

    def broken():
        raise ValueError("trust.json: not JSON")

    k.coalescer.action = broken
    res = _refused(k, *command(keys["centre"], "reload-trust"))
    assert res["reason"] == "reload-failed"


def test_a_full_inbox_drops_the_newest_without_blocking(keys, tmp_path):
    k = Kiosk(keys, tmp_path)
    k.gate.inbox_max = 3
    offered = [k.gate.offer(*command(keys["centre"], "notice", str(i))) for i in range(5)]
    assert offered == [True, True, True, False, False] and k.gate.dropped == 2
    k.gate.drain()
    assert k.notice == "2" and len(k.results()) == 3


def test_an_empty_centre_key_refuses_every_command(keys, tmp_path):
    ring = gate_mod.centre_keyring("")
    sent = []
    g = CommandGate(KIOSK, ring, ["notice"], {"notice": notice_action(lambda t: None)}, keys["device"],
                    lambda t, p: sent.append(p), 300, clock=FakeClock(T0))
    assert g.handle(*command(keys["centre"], "notice", "x")).reason == "unknown-key"
    signing.write_public_key(tmp_path / "centre.pub.pem", keys["centre"])
    assert len(gate_mod.centre_keyring("centre.pub.pem", base=tmp_path)) == 1


def test_replay_floor_file_holds_only_the_newest_time(tmp_path):
    floor = ReplayFloor(tmp_path / "f.json")
    for t in (T0, T0 + 5, T0 + 2):
        floor.advance(t)
    assert json.loads((tmp_path / "f.json").read_text())["newest_iat"] == signing.iso(T0 + 5)
    assert ReplayFloor(tmp_path / "f.json").refuses(T0 + 5) and not ReplayFloor(tmp_path / "f.json").refuses(T0 + 6)


def test_offers_schedule_one_drain_per_batch(keys, tmp_path):
    k = Kiosk(keys, tmp_path)
    posted = []
    k.gate.schedule = lambda fn: posted.append(fn) or True
    for i in range(50):
        k.gate.offer(*command(keys["centre"], "notice", str(i)))
    assert len(posted) == 1  # the control thread is asked once, not 50 times
    posted[0]()
    assert k.notice == "49" and len(k.results()) == 50
    k.gate.offer(*command(keys["centre"], "notice", "again"))
    assert len(posted) == 2


def test_a_full_control_queue_is_retried_by_the_next_message(keys, tmp_path):
    k = Kiosk(keys, tmp_path)
    answers = iter([False, True])
    posted = []
    k.gate.schedule = lambda fn: next(answers) and (posted.append(fn) or True)
    k.gate.offer(*command(keys["centre"], "notice", "a"))
    k.gate.offer(*command(keys["centre"], "notice", "b"))
    assert len(posted) == 1
    posted[0]()
    assert k.notice == "b" and len(k.results()) == 2


def test_commands_and_answers_match_their_documented_schemas(keys, tmp_path):
    from jsonschema import Draft202012Validator

    from kiosk.wire.commands import signed as signed_command

    def validator(name):
        schema = json.loads((ROOT / "docs" / "schemas" / f"{name}.schema.json").read_text())
        Draft202012Validator.check_schema(schema)
        return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)

    topic, msg, _ = signed_command("notice", "Kiểm tra lúc 14:00", "hn-hk", "kiosk-01", keys["centre"], expires_in=60)
    validator("command").validate(json.loads(msg))
    now = __import__("time").time()
    k = Kiosk(keys, tmp_path, clock=FakeClock(now))
    k.gate.handle(topic, msg)
    k.gate.handle(f"{BASE}/cmd/notice", b"anonymous")
    k.gate.handle(*command(keys["centre"], "reload-trust", now=now))
    for _, payload in k.sent:
        validator("cmd-result").validate(json.loads(payload))
    assert [r["reason"] for r in k.results()] == ["shown", "malformed", "reloaded"]
    every = set(validator("cmd-result").schema["properties"]["reason"]["enum"])
    assert every >= {getattr(gate_mod, n) for n in dir(gate_mod) if n.isupper() and isinstance(getattr(gate_mod, n), str)
                     and n not in ("OK", "REFUSED", "FLOOR_FILE")} | set(REFUSALS)


def test_a_folded_reload_runs_once_when_due_on_the_posted_thread():
    """remote.ReloadTimer: one timer however many folded requests; the reload runs where it is posted."""
    from kiosk.door.remote.install import ReloadTimer

    ran = []
    coalescer = Coalescer(lambda: ran.append("reload"), interval_s=0.3)
    posted = []
    timer = ReloadTimer(coalescer, lambda fn, name: posted.append(fn) or True)
    assert coalescer.request() == ("ok", "reloaded") and ran == ["reload"]
    for _ in range(100):
        assert coalescer.request() == ("ok", "coalesced")
        timer.arm()
    assert wait_for(lambda: posted)
    assert len(posted) == 1 and ran == ["reload"]  # due: handed to the control thread, not run on the timer's
    posted[0]()
    assert ran == ["reload", "reload"] and not coalescer.pending
    timer.cancel()
