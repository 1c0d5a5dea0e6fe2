"""Contact tracing end to end on a real broker: the authority's tool, four kiosks, everything the broker carried.

Three kiosks keep a visit log with known visits; a fourth has its log off. A case
(CCCD 001085001234) visited venues V1 and V3. The authority asks by case and by
place with ``kiosk trace request`` / ``kiosk trace collect`` and reads the F1 CSV.
"""

from __future__ import annotations

import csv
import json
import time
from datetime import datetime, timedelta, timezone

import pytest
from openpyxl import load_workbook

from kiosk.wire import signing
from kiosk.authority import keys as authority_keys
from kiosk.cli import main
from kiosk.tracing import protocol as P

from tracing_fleet import VN, Capture, FakeKiosk, Person, serve, wait_until, write_registry

CASE = Person("Trần Thị Bình", "001085001234", "1985-03-04", "0911000001")
A = Person("Nguyễn Văn An", "001090000001", "1990-01-01", "0911000002")
B = Person("Lê Thị Cúc", "001090000002", "1990-01-02", "0911000003")
C = Person("Phạm Văn Dũng", "001090000003", "1990-01-03", "0911000004")
D = Person("Hoàng Thị Em", "001090000004", "1990-01-04", "0911000005")
E = Person("Vũ Văn Phúc", "001090000005", "1990-01-05", "0911000006")
F = Person("Đặng Thị Giang", "001090000006", "1990-01-06", "0911000007")
G = Person("Bùi Văn Hải", "001090000007", "1990-01-07", "0911000008")
H = Person("Đỗ Thị Hoa", "001090000008", "1990-01-08", "0911000009")
EVERYONE = (CASE, A, B, C, D, E, F, G, H)

# Three days ago, 10:00 in Hanoi: inside the 21-day retention whatever day the test runs.
DAY = (datetime.now(VN) - timedelta(days=3)).replace(hour=10, minute=0, second=0, microsecond=0)
DAY2 = DAY + timedelta(days=1, hours=5)  # 15:00 the next day


def venue(id, name, district, ward):
    return {"id": id, "name": name, "address": f"{name}, {ward}, {district}, Hà Nội", "district": district,
            "ward": ward}


@pytest.fixture
def fleet(tmp_path, broker):
    """Four kiosks with their visits, each answering behind its own paho client; the authority's keys; a capture of #."""
    capture = Capture(broker.port)
    k1 = FakeKiosk("hn-hk", "k1", venue("V1", "Nhà sách Tràng Tiền", "Quận Hoàn Kiếm", "Phường Tràng Tiền"), tmp_path / "k1")
    k2 = FakeKiosk("hn-hk", "k2", venue("V2", "Chợ Đồng Xuân", "Quận Hoàn Kiếm", "Phường Đồng Xuân"), tmp_path / "k2")
    k3 = FakeKiosk("hn-bd", "k3", venue("V3", "Lotte Center", "Quận Ba Đình", "Phường Cống Vị"), tmp_path / "k3")
    k4 = FakeKiosk("hn-bd", "k4", venue("V4", "Bảo tàng", "Quận Ba Đình", "Phường Điện Biên"), tmp_path / "k4",
                   visit_log=False)
    m = timedelta(minutes=1)
    k1.visit(CASE, DAY)
    k1.visit(A, DAY - 25 * m)   # within 30 minutes before the case
    k1.visit(B, DAY + 29 * m)   # within 30 minutes after
    k1.visit(C, DAY - 40 * m)   # too early
    k1.visit(D, DAY + 45 * m)   # too late
    k1.visit(E, DAY + 5 * m, verdict="reject")  # not let in
    k2.visit(F, DAY)            # same time, another venue
    k2.visit(H, DAY - 3 * timedelta(hours=1))
    k3.visit(CASE, DAY2)
    k3.visit(G, DAY2 + 30 * m)  # exactly on the margin
    k3.visit(A, DAY2 - 10 * m)  # A again, at another venue
    k3.visit(H, DAY2 - 60 * m)  # too early
    k4.visit(F, DAY)            # log off: nothing is kept
    keys_dir = tmp_path / "authority"
    assert main(["trace", "keygen", str(keys_dir)]) == 0
    ring = signing.KeyRing.load([keys_dir / authority_keys.SIGN_PUB], owner="health-authority")
    kiosks = [k1, k2, k3, k4]
    services = [serve(k, broker.port, ring) for k in kiosks]
    registry = write_registry(tmp_path / "registry.json", kiosks)
    yield {"kiosks": kiosks, "services": services, "keys": keys_dir, "registry": registry, "capture": capture,
           "broker": broker, "tmp": tmp_path}
    for service, telemetry in services:
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


def collect(fleet, req, expect_rc=0) -> list[dict]:
    prefix = fleet["tmp"] / f"f1-{req['request']['id']}"
    rc = main(["trace", "collect", "--request", str(req["file"]), "--keys", str(fleet["keys"]),
               "--registry", str(fleet["registry"]), "--wait", "30", "--out", str(prefix)])
    assert rc == expect_rc
    with open(f"{prefix}.csv", encoding="utf-8-sig") as f:
        return list(csv.DictReader(f))


def local(t: datetime) -> str:
    return t.astimezone(VN).isoformat(timespec="milliseconds")


def window(start: datetime, end: datetime) -> list[str]:
    return ["--from", start.astimezone(VN).isoformat(timespec="minutes"), "--to", end.astimezone(VN).isoformat(timespec="minutes")]


def assert_nothing_personal(capture: Capture) -> None:
    carried = b"\n".join(t.encode() + b" " + p for t, p in capture.messages)
    assert carried, "the capture saw nothing"
    for person in EVERYONE:
        for secret in (person.name, person.id_number, person.phone, person.birth_date):
            assert secret.encode() not in carried, f"{secret!r} crossed the broker in clear"
    assert b"vn-id:" not in carried  # not even the case's normalized identity


def test_case_request_returns_exactly_the_co_present_visitors_merged(fleet):
    req = request(fleet, "--case-id-number", CASE.id_number, "--margin", "30",
                  *window(DAY - timedelta(days=2), DAY2 + timedelta(hours=3)))
    rows = collect(fleet, req)
    got = {(r["role (case / contact / visit)"], r["name"], r["venue_id"]) for r in rows}
    assert got == {("case", CASE.name, "V1"), ("case", CASE.name, "V3"),
                   ("contact", A.name, "V1"), ("contact", B.name, "V1"),
                   ("contact", G.name, "V3"), ("contact", A.name, "V3")}
    # the case's visits first, then the contacts in time order
    assert [r["role (case / contact / visit)"] for r in rows[:2]] == ["case", "case"]
    a_v1 = next(r for r in rows if r["name"] == A.name and r["venue_id"] == "V1")
    assert a_v1["time of visit (local)"] == local(DAY - timedelta(minutes=25))
    assert a_v1["case's visit (local)"] == local(DAY)
    assert float(a_v1["minutes from the case's check-in"]) == -25.0
    assert (a_v1["id_number"], a_v1["phone"], a_v1["birth_date"]) == (A.id_number, A.phone, A.birth_date)
    assert a_v1["address"] == "Nhà sách Tràng Tiền, Phường Tràng Tiền, Quận Hoàn Kiếm, Hà Nội"
    assert a_v1["kiosks"] == "hn-hk/k1"
    g = next(r for r in rows if r["name"] == G.name)
    assert float(g["minutes from the case's check-in"]) == 30.0
    # the log-off kiosk answered too (a refusal), so nobody is missing
    wb = load_workbook(f"{fleet['tmp']}/f1-{req['request']['id']}.xlsx")
    outcomes = {r[0]: (r[1], r[2]) for r in wb["Kiosks"].iter_rows(min_row=2, values_only=True)}
    assert outcomes == {"hn-hk/k1": ("answered", "ok"), "hn-hk/k2": ("answered", "ok"),
                        "hn-bd/k3": ("answered", "ok"), "hn-bd/k4": ("refused", "log-off")}
    assert [c.value for c in wb["F1"][1]][:3] == ["role (case / contact / visit)", "name", "birth_date"]
    assert_nothing_personal(fleet["capture"])


def test_place_request_returns_exactly_the_visits_in_the_window(fleet):
    req = request(fleet, "--venue", "V1", "--venue", "V2", *window(DAY - timedelta(minutes=30), DAY + timedelta(minutes=30)))
    rows = collect(fleet, req)
    got = sorted((r["venue_id"], r["name"]) for r in rows)
    assert got == sorted([("V1", CASE.name), ("V1", A.name), ("V1", B.name), ("V2", F.name)])
    assert {r["role (case / contact / visit)"] for r in rows} == {"visit"}
    # by district: the window of the whole morning in Quận Hoàn Kiếm, both kiosks there
    req = request(fleet, "--district", "quận hoàn kiếm", *window(DAY - timedelta(hours=4), DAY + timedelta(hours=1)))
    rows = collect(fleet, req)
    assert sorted(r["name"] for r in rows) == sorted([CASE.name, A.name, B.name, C.name, D.name, F.name, H.name])
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
    for who, ans in answers_to(capture, "a" * 32, 4).items():
        assert (ans["outcome"], ans["reason"]) == ("refused", "unsigned") and "sealed" not in ans, who

    expired = signing.sign(signing.stamp({**base, "id": "b" * 32}, ttl_s=60, now=now - 3600), P.FLEET_TOPIC, keys.sign)
    capture.publish(P.FLEET_TOPIC, json.dumps(expired).encode())
    for who, ans in answers_to(capture, "b" * 32, 4).items():
        assert (ans["outcome"], ans["reason"]) == ("refused", "expired") and "sealed" not in ans, who

    forged = signing.sign(signing.stamp({**base, "id": "c" * 32}, ttl_s=3600), P.FLEET_TOPIC, signing.generate_key())
    capture.publish(P.FLEET_TOPIC, json.dumps(forged).encode())
    assert {a["reason"] for a in answers_to(capture, "c" * 32, 4).values()} == {"unknown-key"}

    good = signing.sign(signing.stamp({**base, "id": "d" * 32}, ttl_s=3600), P.FLEET_TOPIC, keys.sign)
    data = json.dumps(good).encode()
    capture.publish(P.FLEET_TOPIC, data)
    first = answers_to(capture, "d" * 32, 4)
    assert {w: a["reason"] for w, a in first.items()} == {"hn-hk/k1": "ok", "hn-hk/k2": "ok", "hn-bd/k3": "ok",
                                                          "hn-bd/k4": "log-off"}
    capture.publish(P.FLEET_TOPIC, data)  # the same bytes again
    wait_until(lambda: len(capture.on(f"checkin/v1/trace/{'d' * 32}/")) >= 8, what="answers to the replay")
    replies = [json.loads(p) for _, p in capture.on(f"checkin/v1/trace/{'d' * 32}/")[4:]]
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
