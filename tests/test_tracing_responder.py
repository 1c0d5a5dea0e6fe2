"""The kiosk's trace responder as a pure function, and the authority's collector, without a broker."""

from __future__ import annotations

import json
import stat
import time
from datetime import datetime, timedelta, timezone

import pytest

from kiosk.wire import signing
from kiosk.authority import keys as authority_keys
from kiosk.authority import registry as registry_mod
from kiosk.authority import requests
from kiosk.authority.collect import Collector
from kiosk.cli import main
from kiosk.wire import trace as P
from kiosk.door.tracing.responder import RefusalBudget
from kiosk.door.assembly import open_ledger
from kiosk.testing.clock import FakeClock

from tracing_fleet import VN, FakeKiosk, Person, write_registry

CASE = Person("Trần Thị Bình", "001085001234", "1985-03-04", "0911000001")
NEAR = Person("Nguyễn Văn An", "001090000001", "1990-01-01", "0911000002")
FAR = Person("Lê Thị Cúc", "001090000002", "1990-01-02", "0911000003")
AT = (datetime.now(VN) - timedelta(days=2)).replace(hour=12, minute=0, second=0, microsecond=0)
VENUE = {"id": "V1", "name": "Nhà sách", "address": "1 Tràng Tiền", "district": "Quận Hoàn Kiếm",
         "ward": "Phường Tràng Tiền", "district_code": "002", "ward_code": "00070"}


@pytest.fixture
def world(tmp_path):
    keys = authority_keys.keygen(tmp_path / "authority")
    ring = signing.KeyRing.of({"health-authority": keys.sign.public_key()})
    kiosk = FakeKiosk("hn-hk", "k1", VENUE, tmp_path / "k1")
    kiosk.visit(CASE, AT)
    kiosk.visit(NEAR, AT + timedelta(minutes=10))
    kiosk.visit(FAR, AT + timedelta(minutes=50))
    responder = kiosk.responder(ring)
    rows = registry_mod.load(write_registry(tmp_path / "registry.json", [kiosk]))
    yield {"keys": keys, "kiosk": kiosk, "responder": responder, "rows": rows, "ring": ring}
    responder.close()
    kiosk.ledger.close()


def place(world, topic=P.FLEET_TOPIC, **kw):
    args = dict(venues=["V1"]) | kw
    return requests.place_request(world["keys"], topic, AT - timedelta(hours=1), AT + timedelta(hours=1), **args)


def case(world, margin=15.0, topic=P.FLEET_TOPIC, kiosks=None):
    return requests.case_request(world["keys"], topic, AT - timedelta(days=1), AT + timedelta(days=1),
                                 [CASE.identity], kiosks or world["rows"], margin)


def ask(world, req, topic=P.FLEET_TOPIC):
    replies = world["responder"].handle(topic, json.dumps(req).encode())
    assert len(replies) == 1
    out_topic, data = replies[0]
    assert out_topic == f"checkin/v1/trace/{req['id']}/hn-hk/k1"
    msg = signing.verify(data, out_topic, signing.KeyRing.of({"k1": world["kiosk"].key.public_key()})).payload
    if msg["outcome"] == P.ANSWERED:
        msg["body"] = P.unseal(msg["sealed"], world["keys"].box)
    return msg


def test_case_request_finds_the_case_by_its_own_pseudonym_and_the_margin(world):
    msg = ask(world, case(world, margin=15))
    body = msg["body"]
    assert [(r["role"], r["name"]) for r in body["records"]] == [("case", CASE.name), ("contact", NEAR.name)]
    assert body["records"][1]["overlap_minutes"] == 10.0
    assert body["venue"]["address"] == "1 Tràng Tiền" and body["in_scope"] is True
    msg = ask(world, case(world, margin=60))
    assert [r["name"] for r in msg["body"]["records"]] == [CASE.name, NEAR.name, FAR.name]


def test_a_case_unknown_here_gets_an_answer_with_no_records(world):
    req = requests.case_request(world["keys"], P.FLEET_TOPIC, AT - timedelta(days=1), AT + timedelta(days=1),
                                ["vn-id:079099999999"], world["rows"])
    assert ask(world, req)["body"]["records"] == []


@pytest.mark.parametrize("kw,expected", [
    ({"venues": ["V9"]}, False),
    ({"venues": [], "district": "quận  hoàn kiếm"}, True),
    ({"venues": [], "district": "002", "ward": "00070"}, True),
    ({"venues": [], "district": "Quận Hoàn Kiếm", "ward": "Phường Hàng Bạc"}, False),
    ({"venues": [], "ward": "Phường Tràng Tiền"}, True),
    ({"venues": [], "district": "Quận Ba Đình"}, False),
])
def test_place_scope_by_venue_district_or_ward(world, kw, expected):
    body = ask(world, place(world, **kw))["body"]
    assert body["in_scope"] is expected
    assert len(body["records"]) == (3 if expected else 0)


def test_rejected_visitors_only_when_asked(world):
    world["kiosk"].visit(FAR, AT + timedelta(minutes=5), verdict="reject")
    assert len(ask(world, place(world))["body"]["records"]) == 3
    assert len(ask(world, place(world, include_rejected=True))["body"]["records"]) == 4


def refusal(world, payload, topic=P.FLEET_TOPIC):
    replies = world["responder"].handle(topic, payload if isinstance(payload, bytes) else json.dumps(payload).encode())
    if not replies:
        return None
    (t, data), = replies
    msg = signing.verify(data, t, signing.KeyRing.of({"k1": world["kiosk"].key.public_key()})).payload
    assert msg["outcome"] == P.REFUSED and "sealed" not in msg
    return msg["reason"]


def test_refusals_in_order_each_with_its_reason(world):
    keys = world["keys"]
    good = place(world)
    assert refusal(world, {k: v for k, v in good.items() if k != "sig"}) == "unsigned"
    assert refusal(world, {**good, "venues": ["V2"]}) == "bad-signature"  # tampered after signing
    assert refusal(world, place(world, topic=P.site_topic("hn-hk"))) == "bad-signature"  # moved to another topic
    other = signing.sign({k: v for k, v in good.items() if k != "sig"}, P.FLEET_TOPIC, signing.generate_key())
    assert refusal(world, other) == "unknown-key"
    stale = signing.sign(signing.stamp({**_body(good), "id": "1" * 32}, ttl_s=10 * 86400, now=time.time() - 2 * 86400),
                         P.FLEET_TOPIC, keys.sign)
    assert refusal(world, stale) == "stale"
    future = signing.sign(signing.stamp({**_body(good), "id": "2" * 32}, ttl_s=3600, now=time.time() + 3600),
                          P.FLEET_TOPIC, keys.sign)
    assert refusal(world, future) == "not-yet-valid"
    no_exp = signing.sign({**_body(good), "id": "3" * 32, "iat": signing.iso(), "nonce": signing.new_nonce()},
                          P.FLEET_TOPIC, keys.sign)
    assert refusal(world, no_exp) == "malformed"
    assert refusal(world, b"\xff not json") is None  # no id to answer on: counted and audited only
    assert world["responder"].stats()["replies_suppressed"] == 1


def _body(signed: dict) -> dict:
    return {k: v for k, v in signed.items() if k not in ("sig", "iat", "exp", "nonce")}


def test_replay_is_refused_even_after_a_restart(world):
    req = place(world)
    assert ask(world, req)["outcome"] == P.ANSWERED
    assert refusal(world, req) == "replayed"
    restarted = world["kiosk"].responder(world["ring"])  # fresh memory, same ledger
    try:
        replies = restarted.handle(P.FLEET_TOPIC, json.dumps(req).encode())
        assert json.loads(replies[0][1])["reason"] == "replayed"
    finally:
        restarted.close()


def test_case_entry_for_another_kiosk_or_that_does_not_open(world, tmp_path):
    other = FakeKiosk("hn-hk", "k2", VENUE, tmp_path / "k2")
    rows = registry_mod.load(write_registry(tmp_path / "r2.json", [other]))
    assert refusal(world, case(world, kiosks=rows)) == "not-addressed"
    req = case(world)
    body = _body(req) | {"id": "4" * 32}
    body["case"] = {world["responder"].kid: P.seal({"request": "4" * 32, "identities": ["x"]},
                                                   P.box_public_key(other.key.public_key()))}
    assert refusal(world, signing.sign(signing.stamp(body, ttl_s=600), P.FLEET_TOPIC, world["keys"].sign)) == "undecryptable"
    other.ledger.close()


def test_log_off_kiosk_refuses_every_signed_request(world, tmp_path):
    off = FakeKiosk("hn-hk", "k1", VENUE, tmp_path / "off", visit_log=False)
    responder = off.responder(world["ring"])
    try:
        (t, data), = responder.handle(P.FLEET_TOPIC, json.dumps(place(world)).encode())
        assert json.loads(data)["reason"] == "log-off" and "sealed" not in json.loads(data)
        assert [e.reason for e in responder.archive.audit_log()] == ["log-off"]
    finally:
        responder.close()
        off.ledger.close()


def test_no_authority_key_refuses_everything(world):
    responder = world["kiosk"].responder(signing.KeyRing())
    try:
        (t, data), = responder.handle(P.FLEET_TOPIC, json.dumps(place(world)).encode())
        assert json.loads(data)["reason"] == "unknown-key"
    finally:
        responder.close()


def test_other_topics_are_ignored_and_site_topic_is_answered(world):
    assert world["responder"].handle("checkin/v1/hn-bd/trace/request", json.dumps(place(world)).encode()) == []
    req = place(world, topic=P.site_topic("hn-hk"))
    assert ask(world, req, topic=P.site_topic("hn-hk"))["outcome"] == P.ANSWERED


def test_refusals_of_junk_are_rate_limited_but_all_audited(world, tmp_path):
    clock = FakeClock(0.0)
    responder = world["kiosk"].responder(world["ring"], budget=RefusalBudget(burst=3, every_s=10, clock=clock))
    try:
        junk = [json.dumps({"id": f"{i:032x}", "v": 1}).encode() for i in range(10)]
        sent = sum(len(responder.handle(P.FLEET_TOPIC, j)) for j in junk)
        assert sent == 3
        clock.advance(10.0)
        assert len(responder.handle(P.FLEET_TOPIC, junk[0])) == 1
        assert responder.stats()["replies_suppressed"] == 7
        assert len(responder.archive.audit_log()) == 11
        # a real request still gets its answer
        assert json.loads(responder.handle(P.FLEET_TOPIC, json.dumps(place(world)).encode())[0][1])["outcome"] == "answered"
    finally:
        responder.close()


def test_audit_and_stats_hold_no_personal_data(world):
    ask(world, case(world))
    entry, = world["responder"].archive.audit_log()
    assert (entry.outcome, entry.kind, entry.records, entry.verified) == ("answered", "case", 2, True)
    assert entry.signer == world["keys"].kid
    assert world["responder"].stats()["answered"] == 1
    text = json.dumps(world["responder"].stats()) + repr(entry)
    assert CASE.id_number not in text and CASE.name not in text


# -- the authority's side -------------------------------------------------------

def test_collector_believes_only_the_registered_key_of_the_kiosk_the_topic_names(world, tmp_path):
    req = place(world)
    replies = world["responder"].handle(P.FLEET_TOPIC, json.dumps(req).encode())
    col = Collector(req, P.FLEET_TOPIC, world["rows"], world["keys"].box)
    topic, data = replies[0]
    # the same answer moved to another kiosk's topic, or signed by an unregistered key
    assert col.accept(topic.replace("/k1", "/k2"), data) is None
    impostor = signing.sign_bytes(json.loads(data), topic, signing.generate_key())
    assert col.accept(topic, impostor) is None
    assert col.missing() == [("hn-hk", "k1")]
    assert col.accept(topic, data).outcome == "answered"
    assert col.accept(topic, data) is not None  # a redelivery changes nothing
    assert col.complete() and len(col.f1()) == 3
    assert col.rejected == {"unknown-key": 2}


def test_collector_merges_duplicates_across_kiosks(world, tmp_path):
    twin = FakeKiosk("hn-hk", "k1b", VENUE, tmp_path / "twin")  # a second entrance of the same venue
    twin.visit(NEAR, AT + timedelta(minutes=12))  # NEAR checked in at both doors
    twin.visit(CASE, AT + timedelta(minutes=1))
    rows = registry_mod.load(write_registry(tmp_path / "both.json", [world["kiosk"], twin]))
    req = case(world, kiosks=rows)
    col = Collector(req, P.FLEET_TOPIC, rows, world["keys"].box)
    r2 = twin.responder(world["ring"])
    try:
        for responder in (world["responder"], r2):
            for t, data in responder.handle(P.FLEET_TOPIC, json.dumps(req).encode()):
                col.accept(t, data)
    finally:
        r2.close()
        twin.ledger.close()
    f1 = col.f1()
    contacts = [r for r in f1 if r["role"] == "contact"]
    # NEAR overlapped the case's check-in at each door: one row per case visit, each naming its kiosk
    assert {(r["name"], r["minutes"], ", ".join(sorted(r["kiosks"]))) for r in contacts} == {
        (NEAR.name, 10.0, "hn-hk/k1"), (NEAR.name, 11.0, "hn-hk/k1b")}
    assert [r["role"] for r in f1].count("case") == 2


def test_keygen_writes_private_keys_owner_only_and_refuses_to_overwrite(tmp_path, capsys):
    d = tmp_path / "keys"
    assert main(["trace", "keygen", str(d)]) == 0
    for name in (authority_keys.SIGN, authority_keys.BOX):
        assert stat.S_IMODE((d / name).stat().st_mode) == 0o600
    assert main(["trace", "keygen", str(d)]) == 2
    err = capsys.readouterr().err
    assert "exists already" in err and "Traceback" not in err
    assert authority_keys.load(d).kid == signing.kid_of(signing.load_public_key(d / authority_keys.SIGN_PUB))


@pytest.mark.parametrize("args,msg", [
    (["--case-id-number", "12ab"], "not a 12-digit CCCD"),
    (["--venue", "V1", "--case-id-number", "001085001234"], "by place or by case"),
    ([], "name --venue, --district or --ward"),
    (["--venue", "V1", "--from", "2021-13-01"], "expected a local date-time"),
    (["--case-id-number", "001085001234", "--no-registry"], "needs --registry"),
])
def test_request_bad_input_is_one_line(tmp_path, capsys, args, msg):
    authority_keys.keygen(tmp_path / "k")
    rows = tmp_path / "registry.json"
    rows.write_text('{"version": 1, "kiosks": []}')
    base = ["trace", "request", "--keys", str(tmp_path / "k"), "--broker", "mqtt://127.0.0.1:9", "--from", "2021-09-01"]
    if "--no-registry" in args:
        args = [a for a in args if a != "--no-registry"]
    else:
        base += ["--registry", str(rows)]
    assert main(base + args) == 2
    err = capsys.readouterr().err
    assert msg in err and "Traceback" not in err


def test_bad_registry_names_the_file(tmp_path, capsys):
    authority_keys.keygen(tmp_path / "k")
    bad = tmp_path / "registry.json"
    bad.write_text('{"version": 1, "kiosks": [{"site": "s", "device": "d", "public_key": "nope"}]}')
    assert main(["trace", "request", "--keys", str(tmp_path / "k"), "--broker", "mqtt://127.0.0.1:9",
                 "--from", "2021-09-01", "--registry", str(bad), "--case-id-number", "001085001234"]) == 2
    err = capsys.readouterr().err
    assert "registry.json: kiosks[0]" in err and "Traceback" not in err


def test_case_identity_from_the_case_code_matches_the_kiosk(tmp_path):
    code = tmp_path / "case.txt"
    code.write_text("001185001234|012345678|Trần Thị Bình|04031985|Nữ|Hà Nội|01012021")
    assert requests.identity_of_code(code.read_text()) == requests.identity_of_id_number("001185001234")
    with pytest.raises(requests.RequestError, match="no identity"):
        requests.identity_of_code("not a code at all")


def test_firmware_side_never_imports_the_authority_tool():
    import subprocess
    import sys

    code = ("import sys, kiosk.door.tracing, kiosk.door.tracing.service, kiosk.door.record; "
            "print([m for m in sys.modules if m.startswith(('kiosk.authority', 'openpyxl'))])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_responder_from_config(tmp_path):
    from kiosk.config import load
    from kiosk.door.tracing import responder_from_config

    keys = authority_keys.keygen(tmp_path / "authority")
    device_key = signing.generate_key()
    signing.write_private_key(tmp_path / "state" / "device-key.pem", device_key)
    cfg_path = tmp_path / "kiosk.toml"
    cfg_path.write_text(
        f'[device]\nsite="hn-hk"\nid="k9"\nstate_dir="{tmp_path}/state"\n'
        '[venue]\nid="V9"\nname="Nhà hát"\nqr_content="q"\ndistrict="Quận Hoàn Kiếm"\nward="Phường Tràng Tiền"\n'
        '[ledger]\nvisit_log=true\nvisit_log_fields=["name", "phone"]\n'
        f'[tracing]\nauthority_key="{tmp_path}/authority/{authority_keys.SIGN_PUB}"\n')
    cfg = load(cfg_path)
    open_ledger(cfg).close()
    responder = responder_from_config(cfg)
    try:
        assert responder.topics == (P.FLEET_TOPIC, "checkin/v1/hn-hk/trace/request")
        req = requests.place_request(keys, P.FLEET_TOPIC, AT - timedelta(hours=1), AT, district="Quận Hoàn Kiếm")
        (topic, data), = responder.handle(P.FLEET_TOPIC, json.dumps(req).encode())
        msg = signing.verify(data, topic, signing.KeyRing.of({"k9": device_key.public_key()})).payload
        body = P.unseal(msg["sealed"], keys.box)
        assert body["in_scope"] is True and body["venue"]["name"] == "Nhà hát" and body["records"] == []
    finally:
        responder.close()
