"""Contact tracing end to end on a real broker: the authority's tool, five kiosks, everything the broker carried.

Four kiosks keep a visit log with known visits (two of them at the two entrances
of venue V1); a fifth has its log off. A case (CCCD 001085001234) visited V1 by
its main door and V3. The authority asks by case and by place with ``kiosk trace
request`` / ``kiosk trace collect`` and reads the F1 CSV; collects are run twice,
killed and resumed, and run from a second machine.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from openpyxl import load_workbook

from kiosk.wire import signing
from kiosk.authority import keys as authority_keys
from kiosk.door.decide.checkin import Checkin
from kiosk.cli import main
from kiosk.wire import trace as P

from tracing_fleet import (VN, Capture, FakeKiosk, Gate, Person, read_f1, serve, stored_answers, wait_until,
                           write_registry)

CASE = Person("Trần Thị Bình", "001085001234", "1985-03-04", "0911000001")
A = Person("Nguyễn Văn An", "001090000001", "1990-01-01", "0911000002")
B = Person("Lê Thị Cúc", "001090000002", "1990-01-02", "0911000003")
C = Person("Phạm Văn Dũng", "001090000003", "1990-01-03", "0911000004")
D = Person("Hoàng Thị Em", "001090000004", "1990-01-04", "0911000005")
E = Person("Vũ Văn Phúc", "001090000005", "1990-01-05", "0911000006")
F = Person("Đặng Thị Giang", "001090000006", "1990-01-06", "0911000007")
G = Person("Bùi Văn Hải", "001090000007", "1990-01-07", "0911000008")
H = Person("Đỗ Thị Hoa", "001090000008", "1990-01-08", "0911000009")
I = Person("Ngô Văn Ích", "001090000009", "1990-01-09", "0911000010")  # noqa: E741 - the tenth visitor
J = Person("Dương Thị Kim", "001090000010", "1990-01-10", "0911000011")
EVERYONE = (CASE, A, B, C, D, E, F, G, H, I, J)

# Three days ago, 10:00 in Hanoi: inside the 21-day retention whatever day the test runs.
DAY = (datetime.now(VN) - timedelta(days=3)).replace(hour=10, minute=0, second=0, microsecond=0)
DAY2 = DAY + timedelta(days=1, hours=5)  # 15:00 the next day
M = timedelta(minutes=1)


def venue(id, name, district, ward):
    return {"id": id, "name": name, "address": f"{name}, {ward}, {district}, Hà Nội", "district": district,
            "ward": ward}


V1 = venue("V1", "Nhà sách Tràng Tiền", "Quận Hoàn Kiếm", "Phường Tràng Tiền")


def declaration_visit(kiosk: FakeKiosk, at) -> None:
    """A visitor with a signed health declaration: the code carries no name, phone, ID or birth date."""
    kiosk.ledger.record(Checkin(id=uuid.uuid4().hex, at=at, verdict="accept", reason="ok",
                                format="health-declaration", valid=True, signed=True,
                                pseudonym=kiosk.pseudonyms.of("hd:0011223344556677:subject-1"), holder=None,
                                captured_at=0.0, source="camera"))


@pytest.fixture
def fleet(tmp_path, broker):
    """Five kiosks with their visits (two at the entrances of V1), answering on the broker; keys; a capture of #."""
    yield from _fleet(tmp_path, broker, gated=False)


@pytest.fixture
def gated_fleet(tmp_path, broker):
    """The same fleet, but the side door (k1b) holds every request until the test opens its gate."""
    yield from _fleet(tmp_path, broker, gated=True)


def _fleet(tmp_path, broker, gated: bool):
    capture = Capture(broker.port)
    k1 = FakeKiosk("hn-hk", "k1", V1, tmp_path / "k1")
    k1b = FakeKiosk("hn-hk", "k1b", V1, tmp_path / "k1b")  # the bookshop's side door
    k2 = FakeKiosk("hn-hk", "k2", venue("V2", "Chợ Đồng Xuân", "Quận Hoàn Kiếm", "Phường Đồng Xuân"), tmp_path / "k2")
    k3 = FakeKiosk("hn-bd", "k3", venue("V3", "Lotte Center", "Quận Ba Đình", "Phường Cống Vị"), tmp_path / "k3")
    k4 = FakeKiosk("hn-bd", "k4", venue("V4", "Bảo tàng", "Quận Ba Đình", "Phường Điện Biên"), tmp_path / "k4",
                   visit_log=False)
    k1.visit(CASE, DAY)
    k1.visit(A, DAY - 25 * M)   # within 30 minutes before the case
    k1.visit(B, DAY + 29 * M)   # within 30 minutes after
    k1.visit(C, DAY - 40 * M)   # too early
    k1.visit(D, DAY + 45 * M)   # too late
    k1.visit(E, DAY + 5 * M, verdict="reject")  # not let in
    declaration_visit(k1, DAY + 3 * M)  # a contact nobody can phone: the list says why
    k1b.visit(I, DAY + 10 * M)  # came in by the side door: only the second round finds them
    k1b.visit(A, DAY - 24 * M)  # A used both doors: one row, both kiosks
    k1b.visit(J, DAY + 40 * M)  # too late
    k2.visit(F, DAY)            # same time, another venue
    k2.visit(H, DAY - 3 * timedelta(hours=1))
    k3.visit(CASE, DAY2)
    k3.visit(G, DAY2 + 30 * M)  # exactly on the margin
    k3.visit(A, DAY2 - 10 * M)  # A again, at another venue
    k3.visit(H, DAY2 - 60 * M)  # too early
    k4.visit(F, DAY)            # log off: nothing is kept
    keys_dir = tmp_path / "authority"
    assert main(["trace", "keygen", str(keys_dir)]) == 0
    ring = signing.KeyRing.load([keys_dir / authority_keys.SIGN_PUB], owner="health-authority")
    kiosks = [k1, k1b, k2, k3, k4]
    services = [serve(k, broker.port, ring, gate=gated and k is k1b) for k in kiosks]
    registry = write_registry(tmp_path / "registry.json", kiosks)
    yield {"kiosks": kiosks, "services": services, "keys": keys_dir, "registry": registry, "capture": capture,
           "broker": broker, "tmp": tmp_path, "gate": services[1][0].responder if gated else None}
    for service, telemetry in services:
        if gated and isinstance(service.responder, Gate):
            service.responder.open.set()
        service.stop()
        telemetry.close()
    capture.close()
    for k in kiosks:
        k.ledger.close()


def request(fleet, *extra) -> dict:
    out = fleet["tmp"] / f"request-{len(list(fleet['tmp'].glob('request-*')))}.json"
    assert main(["trace", "request", "--keys", str(fleet["keys"]), "--broker", fleet["broker"].url,
                 "--registry", str(fleet["registry"]), "--out", str(out), *extra]) == 0
    return {"file": out, **json.loads(out.read_text())}


def collect_args(fleet, req, keys=None, wait=30, prefix=None) -> list[str]:
    prefix = prefix or fleet["tmp"] / f"f1-{req['request']['id']}"
    return ["trace", "collect", "--request", str(req["file"]), "--keys", str(keys or fleet["keys"]),
            "--registry", str(fleet["registry"]), "--wait", str(wait), "--tz", "Asia/Ho_Chi_Minh",
            "--out", str(prefix)]


def collect(fleet, req, expect_rc=0, **kw) -> list[dict]:
    args = collect_args(fleet, req, **kw)
    assert main(args) == expect_rc
    return read_f1(f"{args[-1]}.csv")


def hm(t: datetime) -> str:
    return t.astimezone(VN).strftime("%Y-%m-%d %H:%M")


def window(start: datetime, end: datetime) -> list[str]:
    return ["--from", start.astimezone(VN).isoformat(timespec="minutes"), "--to", end.astimezone(VN).isoformat(timespec="minutes")]


def assert_nothing_personal(capture: Capture) -> None:
    carried = b"\n".join(t.encode() + b" " + p for t, p in capture.messages)
    assert carried, "the capture saw nothing"
    for person in EVERYONE:
        for secret in (person.name, person.id_number, person.phone, person.birth_date):
            assert secret.encode() not in carried, f"{secret!r} crossed the broker in clear"
    assert b"vn-id:" not in carried  # not even the case's normalized identity
    assert b"hd:" not in carried


def case_rows(fleet, **kw) -> tuple[dict, list[dict]]:
    req = request(fleet, "--case-id-number", CASE.id_number, "--margin", "30",
                  *window(DAY - timedelta(days=2), DAY2 + timedelta(hours=3)))
    return req, collect(fleet, req, **kw)


EXPECTED_CASE = {("case", CASE.name, "V1"), ("case", CASE.name, "V3"),
                 ("contact", A.name, "V1"), ("contact", B.name, "V1"), ("contact", "", "V1"),
                 ("contact", I.name, "V1"), ("contact", G.name, "V3"), ("contact", A.name, "V3")}


def test_case_request_finds_every_contact_at_every_entrance_in_one_list(fleet):
    req, rows = case_rows(fleet)
    got = {(r["role"], r["name"], r["venue_id"]) for r in rows}
    assert got == EXPECTED_CASE
    assert len(rows) == len(EXPECTED_CASE)  # A at both doors of V1 is one row
    # the case's visits first, then the contacts in time order
    assert [r["role"] for r in rows[:2]] == ["case", "case"]
    a_v1 = next(r for r in rows if r["name"] == A.name and r["venue_id"] == "V1")
    # the closest of A's two check-ins (side door, 24 min before), in the tracer's time zone, readable
    assert a_v1["visit_time"] == hm(DAY - 24 * M) and a_v1["case_visit_time"] == hm(DAY)
    assert a_v1["together"] == "09:36-10:00 (24 min before the case)" and a_v1["minutes_apart"] == "24"
    assert a_v1["kiosks"] == "hn-hk/k1, hn-hk/k1b"
    assert (a_v1["id_number"], a_v1["phone"], a_v1["birth_date"]) == (A.id_number, A.phone, A.birth_date)
    assert a_v1["missing"] == ""
    assert a_v1["address"] == "Nhà sách Tràng Tiền, Phường Tràng Tiền, Quận Hoàn Kiếm, Hà Nội"
    side = next(r for r in rows if r["name"] == I.name)
    assert (side["kiosks"], side["together"], side["phone"]) == ("hn-hk/k1b", "10:00-10:10 (10 min after the case)",
                                                                 I.phone)
    g = next(r for r in rows if r["name"] == G.name)
    assert g["together"] == "15:00-15:30 (30 min after the case)"
    declared = next(r for r in rows if r["role"] == "contact" and not r["name"])
    # k1 keeps the four contact fields but not subject_id: the list says that is why the person cannot be reached
    assert declared["missing"] == ("no name, phone, ID number, birth date: a health declaration code carries none; "
                                   "no declaration subject: hn-hk/k1 does not keep it "
                                   "(visit_log_fields = name, birth_date, id_number, phone)")
    assert declared["subject_id"] == ""
    assert declared["pseudonym"] and declared["format"] == "health-declaration"
    assert all("-0" not in r["minutes_apart"] and "." not in r["minutes_apart"] for r in rows)
    # every kiosk answered both rounds, the log-off one with a refusal
    wb = load_workbook(f"{fleet['tmp']}/f1-{req['request']['id']}.xlsx")
    outcomes = {(r[0].split(" ")[0], r[1]): (r[2], r[3]) for r in wb["Kiosks"].iter_rows(min_row=2, values_only=True)}
    # (the round's padding entries, kiosks asked about nothing, are not listed)
    assert outcomes == {("case", "hn-hk/k1"): ("answered", "ok"), ("case", "hn-hk/k1b"): ("answered", "ok"),
                        ("case", "hn-hk/k2"): ("answered", "ok"), ("case", "hn-bd/k3"): ("answered", "ok"),
                        ("case", "hn-bd/k4"): ("refused", "log-off"), ("round", "hn-hk/k1b"): ("answered", "ok")}
    assert [c.value for c in wb["F1"][1]][:3] == ["role (case / contact / visit)", "name", "phone"]
    assert_nothing_personal(fleet["capture"])


def test_the_second_round_is_signed_sealed_and_addressed_like_the_first(fleet):
    req, _ = case_rows(fleet)
    capture = fleet["capture"]
    published = [json.loads(p) for t, p in capture.on(P.FLEET_TOPIC)]
    first, second = published
    assert first["id"] == req["request"]["id"] and (first["kind"], second["kind"]) == ("case", "contacts")
    keys = authority_keys.load(fleet["keys"])
    for msg in published:  # both signed with the authority's key, bound to the topic
        signing.verify(json.dumps(msg).encode(), P.FLEET_TOPIC, signing.KeyRing.of({"a": keys.sign.public_key()}))
    # every kiosk the case request addressed gets an entry of one and the same length: the broker cannot
    # tell which venue, kiosk or time the round is about
    assert set(second["case"]) == set(first["case"])
    assert len({len(v) for v in second["case"].values()}) == 1
    assert (second["from"], second["to"]) == (first["from"], first["to"])
    # only the side door's entry holds a time; each opens only with its own kiosk's key
    opened = {}
    for k in fleet["kiosks"]:
        kid = signing.kid_of(k.key.public_key())
        opened[k.device] = P.unseal(second["case"][kid], P.box_private_key(k.key))
    assert {d: len(e["visits"]) for d, e in opened.items()} == {"k1": 0, "k1b": 1, "k2": 0, "k3": 0, "k4": 0}
    assert_nothing_personal(capture)


def test_a_second_collect_keeps_every_row_and_says_nothing_is_new(fleet, capsys):
    req, rows = case_rows(fleet)
    capsys.readouterr()
    prefix = fleet["tmp"] / f"f1-{req['request']['id']}"
    before = (Path(f"{prefix}.csv").read_bytes(), len(rows))
    again = collect(fleet, req)
    out = capsys.readouterr().out
    assert again == rows and len(again) == before[1]
    assert "0 new answers" in out and f"{len(rows)} rows (0 new)" in out
    assert Path(f"{prefix}.csv").read_bytes() == before[0]
    # a place request's list survives a second collect too
    req = request(fleet, "--venue", "V1", "--venue", "V2", *window(DAY - 30 * M, DAY + 30 * M))
    first = collect(fleet, req)
    assert len(first) == 7 and collect(fleet, req) == first


def test_another_machine_with_the_keys_but_not_the_store_never_shrinks_the_list(fleet, capsys):
    req, rows = case_rows(fleet)
    other = fleet["tmp"] / "other-desk"
    other.mkdir()
    for name in (authority_keys.SIGN, authority_keys.SIGN_PUB, authority_keys.BOX, authority_keys.BOX_PUB):
        shutil.copy2(fleet["keys"] / name, other / name)
    capsys.readouterr()
    # the broker already handed every answer to the first machine: this one has nothing, so the files stay
    assert main(collect_args(fleet, req, keys=other, wait=2)) == 1
    err = capsys.readouterr().err
    assert f"({len(rows)} rows)" in err and "kiosk trace import" in err
    assert read_f1(fleet["tmp"] / f"f1-{req['request']['id']}.csv") == rows
    # with the first machine's store imported (every answer verified again), the same list
    assert main(["trace", "import", "--keys", str(other), "--registry", str(fleet["registry"]),
                 str(fleet["keys"] / "trace-answers.sqlite3")]) == 0
    assert "new answers" in capsys.readouterr().out
    assert collect(fleet, req, keys=other, wait=0) == rows


def test_a_collect_killed_in_the_middle_and_run_again_keeps_every_row(gated_fleet, capsys):
    fleet = gated_fleet
    req = request(fleet, "--case-id-number", CASE.id_number, "--margin", "30",
                  *window(DAY - timedelta(days=2), DAY2 + timedelta(hours=3)))
    rid = req["request"]["id"]
    gate = fleet["gate"]
    proc = run_collect(fleet, req)
    try:
        # the four kiosks that answer at once are kept while the side door still thinks
        want = {(rid, "hn-hk", "k1"), (rid, "hn-hk", "k2"), (rid, "hn-bd", "k3"), (rid, "hn-bd", "k4")}
        wait_until(lambda: {a[:3] for a in stored_answers(fleet["keys"])} >= want, 30, "four answers kept")
        assert gate.waiting.is_set()
        # meanwhile a second collect of the same request on this machine is refused (it would take the session)
        assert main(collect_args(fleet, req, wait=5)) == 1
        assert "another kiosk trace collect of this request is running" in capsys.readouterr().err
    finally:
        proc.kill()  # SIGKILL: no clean-up, no list written
        proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert not (fleet["tmp"] / f"f1-{rid}.csv").exists()
    gate.open.set()  # the side door answers while nobody collects: the broker queues it in the session
    wait_until(lambda: any(a.request_id == rid for a in gate.responder.archive.audit_log()), 30, "the side door's answer")
    rows = collect(fleet, req)
    assert {(r["role"], r["name"], r["venue_id"]) for r in rows} == EXPECTED_CASE
    kept = stored_answers(fleet["keys"])
    assert len(kept) == len({a[:3] for a in kept})  # each kiosk once per round
    assert sorted(a[1:] for a in kept if a[0] == rid) == [("hn-bd", "k3", "answered"), ("hn-bd", "k4", "refused"),
                                                         ("hn-hk", "k1", "answered"), ("hn-hk", "k1b", "answered"),
                                                         ("hn-hk", "k2", "answered")]
    assert ("hn-hk", "k1b", "answered") in [a[1:] for a in kept if a[0] != rid]  # the second round's
    assert_nothing_personal(fleet["capture"])


def run_collect(fleet, req, *extra) -> subprocess.Popen:
    """``kiosk trace collect`` as its own process (to be killed or interrupted like a tracer's)."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    return subprocess.Popen([sys.executable, "-m", "kiosk", *collect_args(fleet, req, wait=120), *extra], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_an_incomplete_fleet_still_gets_its_second_round_and_ctrl_c_writes_the_list(fleet):
    service, telemetry = fleet["services"][3]  # k3 (Lotte Center) is offline
    service.stop()
    telemetry.close()
    req = request(fleet, "--case-id-number", CASE.id_number, *window(DAY - timedelta(days=2), DAY2 + timedelta(hours=3)))
    proc = run_collect(fleet, req, "--settle", "0")
    try:
        # the side door's answer to the second round is kept although k3 never answered the first
        wait_until(lambda: sum(a[0] != req["request"]["id"] and a[2] == "k1b" for a in stored_answers(fleet["keys"])),
                   30, "the second round's answer")
        proc.send_signal(signal.SIGINT)  # the tracer presses Ctrl-C: the list is written from what was kept
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    rows = read_f1(fleet["tmp"] / f"f1-{req['request']['id']}.csv")
    assert {(r["role"], r["name"], r["venue_id"]) for r in rows} == {
        ("case", CASE.name, "V1"), ("contact", A.name, "V1"), ("contact", B.name, "V1"), ("contact", "", "V1"),
        ("contact", I.name, "V1")}
    assert "1 still silent: hn-bd/k3" in out
    assert "round 2: asked 1 kiosk at V1" in err


def test_place_request_returns_exactly_the_visits_in_the_window(fleet):
    req = request(fleet, "--venue", "V1", "--venue", "V2", *window(DAY - timedelta(minutes=30), DAY + timedelta(minutes=30)))
    rows = collect(fleet, req)
    got = sorted((r["venue_id"], r["name"]) for r in rows)
    assert got == sorted([("V1", CASE.name), ("V1", A.name), ("V1", A.name), ("V1", B.name), ("V1", ""),
                          ("V1", I.name), ("V2", F.name)])
    assert {r["role"] for r in rows} == {"visit"}
    # by district: the window of the whole morning in Quận Hoàn Kiếm, the three kiosks there
    req = request(fleet, "--district", "quận hoàn kiếm", *window(DAY - timedelta(hours=4), DAY + timedelta(hours=1)))
    rows = collect(fleet, req)
    assert sorted(r["name"] for r in rows) == sorted([CASE.name, A.name, A.name, B.name, C.name, D.name, F.name,
                                                      H.name, I.name, J.name, ""])
    # by ward: only the market
    req = request(fleet, "--district", "Quận Hoàn Kiếm", "--ward", "Phường Đồng Xuân",
                  *window(DAY - timedelta(hours=4), DAY + timedelta(hours=1)))
    assert sorted(r["name"] for r in collect(fleet, req)) == sorted([F.name, H.name])
    assert_nothing_personal(fleet["capture"])


def answers_to(capture: Capture, rid: str, n: int) -> dict[str, dict]:
    prefix = f"checkin/v1/trace/{rid}/"
    wait_until(lambda: len(capture.on(prefix)) >= n, what=f"{n} answers to {rid}")
    return {t[len(prefix):]: json.loads(p) for t, p in capture.on(prefix)}


def test_unsigned_replayed_and_expired_requests_get_nothing_but_a_refusal(fleet):
    capture = fleet["capture"]
    keys = authority_keys.load(fleet["keys"])
    now = time.time()
    base = {"v": 1, "kind": "place", "venues": ["V1", "V2", "V3"], "from": signing.iso(now - 30 * 86400),
            "to": signing.iso(now), "verdicts": ["accept"], "reply_key": P.b64(bytes(keys.box.public_key))}

    unsigned = signing.stamp({**base, "id": "a" * 32}, ttl_s=3600)
    capture.publish(P.FLEET_TOPIC, json.dumps(unsigned).encode())
    for who, ans in answers_to(capture, "a" * 32, 5).items():
        assert (ans["outcome"], ans["reason"]) == ("refused", "unsigned") and "sealed" not in ans, who

    expired = signing.sign(signing.stamp({**base, "id": "b" * 32}, ttl_s=60, now=now - 3600), P.FLEET_TOPIC, keys.sign)
    capture.publish(P.FLEET_TOPIC, json.dumps(expired).encode())
    for who, ans in answers_to(capture, "b" * 32, 5).items():
        assert (ans["outcome"], ans["reason"]) == ("refused", "expired") and "sealed" not in ans, who

    forged = signing.sign(signing.stamp({**base, "id": "c" * 32}, ttl_s=3600), P.FLEET_TOPIC, signing.generate_key())
    capture.publish(P.FLEET_TOPIC, json.dumps(forged).encode())
    assert {a["reason"] for a in answers_to(capture, "c" * 32, 5).values()} == {"unknown-key"}

    good = signing.sign(signing.stamp({**base, "id": "d" * 32}, ttl_s=3600), P.FLEET_TOPIC, keys.sign)
    data = json.dumps(good).encode()
    capture.publish(P.FLEET_TOPIC, data)
    first = answers_to(capture, "d" * 32, 5)
    assert {w: a["reason"] for w, a in first.items()} == {"hn-hk/k1": "ok", "hn-hk/k1b": "ok", "hn-hk/k2": "ok",
                                                          "hn-bd/k3": "ok", "hn-bd/k4": "log-off"}
    capture.publish(P.FLEET_TOPIC, data)  # the same bytes again
    wait_until(lambda: len(capture.on(f"checkin/v1/trace/{'d' * 32}/")) >= 10, what="answers to the replay")
    replies = [json.loads(p) for _, p in capture.on(f"checkin/v1/trace/{'d' * 32}/")[5:]]
    assert {(r["outcome"], r["reason"]) for r in replies} == {("refused", "replayed")}
    assert all("sealed" not in r for r in replies)

    # every request is in each kiosk's audit and counted
    for service, _ in fleet["services"]:
        stats = service.stats()
        log = service.responder.archive.audit_log()
        assert [(e.request_id, e.outcome, e.reason) for e in log][:3] == [
            ("a" * 32, "refused", "unsigned"), ("b" * 32, "refused", "expired"), ("c" * 32, "refused", "unknown-key")]
        assert stats["refused"] == 4 + (service.responder.site == "hn-bd" and service.responder.device == "k4")
        assert stats["answered"] == (0 if service.responder.device == "k4" else 1)
        assert stats["refused_by_reason"]["replayed"] == 1
    assert_nothing_personal(capture)


def test_a_collect_killed_while_a_flood_of_answers_is_being_kept_loses_none(broker, tmp_path):
    """150 kiosks' answers wait in the session; the collect is killed as soon as it has kept some, then run again."""
    keys_dir = tmp_path / "authority"
    keys = authority_keys.keygen(keys_dir)
    kiosk_keys = [signing.generate_key() for _ in range(150)]
    rows = [{"site": "hn-hk", "device": f"k{i:03d}", "venue_id": "V1", "kid": signing.kid_of(k.public_key()),
             "public_key": signing.public_pem(k).decode(), "revoked": False} for i, k in enumerate(kiosk_keys)]
    registry = tmp_path / "registry.json"
    registry.write_text(json.dumps({"version": 1, "kiosks": rows}))
    req_file = tmp_path / "request.json"
    assert main(["trace", "request", "--keys", str(keys_dir), "--broker", broker.url, "--registry", str(registry),
                 "--venue", "V1", "--from", "2021-09-14T08:00", "--to", "2021-09-14T12:00", "--out", str(req_file)]) == 0
    rid = json.loads(req_file.read_text())["request"]["id"]
    capture = Capture(broker.port)
    try:
        for i, (row, key) in enumerate(zip(rows, kiosk_keys)):
            topic = P.answer_topic(rid, row["site"], row["device"])
            record = {"role": "visit", "time": f"2021-09-14T02:{i % 60:02d}:00.000Z", "venue_id": "V1",
                      "pseudonym": f"{i:064x}", "verdict": "accept", "format": "cccd", "name": f"Khách {i}",
                      "id_number": f"0010900{i:05d}"}
            body = {"request": rid, "site": row["site"], "device": row["device"], "kind": "place",
                    "venue": {"id": "V1"}, "fields": ["name", "id_number"], "in_scope": True, "records": [record]}
            msg = {"v": 1, "request": rid, "site": row["site"], "device": row["device"], "outcome": "answered",
                   "reason": "ok", "ts": signing.iso(), "sealed": P.seal(body, keys.box.public_key)}
            capture.publish(topic, signing.sign_bytes(msg, topic, key))
    finally:
        capture.close()
    fleet = {"tmp": tmp_path, "keys": keys_dir, "registry": registry}
    req = {"file": req_file, "request": {"id": rid}}
    proc = run_collect(fleet, req)
    try:
        wait_until(lambda: len(stored_answers(keys_dir)) >= 1, 30, "the first answers kept")
    finally:
        proc.kill()
        proc.communicate(timeout=30)
    kept_at_kill = len(stored_answers(keys_dir))  # usually part of the flood: where the kill fell
    rows_f1 = collect(fleet, req)
    kept = stored_answers(keys_dir)
    assert len(kept) == len({a[:3] for a in kept}) == 150, kept_at_kill
    assert sorted(r["id_number"] for r in rows_f1) == sorted(f"0010900{i:05d}" for i in range(150))
