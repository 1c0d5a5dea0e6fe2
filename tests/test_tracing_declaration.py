"""Contacts who checked in with a signed health declaration: reachable through its issuer when the venue keeps
``subject_id`` (a real HD1 code verified by the kiosk, its visit log, a case request, ``kiosk trace collect``)."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from kiosk.authority import f1, requests
from kiosk.authority import keys as authority_keys
from kiosk.authority import registry as registry_mod
from kiosk.authority.collect import KioskAnswer
from kiosk.authority.investigation import Investigation
from kiosk.authority.store import AnswerStore, path_for
from kiosk.cli import main
from kiosk.door.decide.checkin import Checkin
from kiosk.door.verify.base import VerifyContext
from kiosk.door.verify.declaration import HealthDeclaration
from kiosk.issuing.declaration import IssuerKey, issue
from kiosk.trust.store import TrustStore
from kiosk.wire import signing
from kiosk.wire import trace as P

from tracing_fleet import ALL_FIELDS, VN, FakeKiosk, Person, read_f1, write_registry

CASE = Person("Trần Thị Bình", "001085001234", "1985-03-04", "0911000001")
AT = (datetime.now(VN) - timedelta(days=2)).replace(hour=12, minute=0, second=0, microsecond=0)
VENUE = {"id": "V1", "name": "Nhà sách", "address": "1 Tràng Tiền", "district": "Quận Hoàn Kiếm",
         "ward": "Phường Tràng Tiền"}


@pytest.fixture(scope="module")
def issuer():
    return IssuerKey.generate("Ed25519", not_before=AT - timedelta(days=30))


def declaration_visit(kiosk: FakeKiosk, issuer: IssuerKey, subject: str, at) -> None:
    """What the kiosk does with a scanned HD1 code: verify it, then record the check-in with its holder."""
    code = issue(issuer, status="green", declared_at=at - timedelta(hours=1), valid_until=at + timedelta(hours=23),
                 declaration_id=uuid.uuid4().hex[:16], subject_id=subject)
    check = HealthDeclaration().check(code, VerifyContext(now=at, trust=TrustStore.from_certificates(
        [issuer.certificate])))
    assert check.valid, check.detail
    kiosk.ledger.record(Checkin(id=uuid.uuid4().hex, at=at, verdict="accept", reason="ok", format=check.format,
                                valid=True, signed=True, pseudonym=kiosk.pseudonyms.of(check.identity),
                                holder=check.holder, captured_at=0.0, source="camera"))


def test_a_declaration_contact_carries_its_subject_and_issuer_into_the_f1_list(tmp_path, issuer):
    keys = authority_keys.keygen(tmp_path / "authority")
    ring = signing.KeyRing.of({"health-authority": keys.sign.public_key()})
    door = FakeKiosk("hn-hk", "k1", VENUE, tmp_path / "k1", fields=(*ALL_FIELDS, "subject_id"))
    door.visit(CASE, AT)
    declaration_visit(door, issuer, "subj-7f3a9c21", AT + timedelta(minutes=12))
    rows = registry_mod.load(write_registry(tmp_path / "registry.json", [door]))
    responder = door.responder(ring)
    store = AnswerStore(path_for(tmp_path / "authority"))
    try:
        req = requests.case_request(keys, P.FLEET_TOPIC, AT - timedelta(days=1), AT + timedelta(days=1),
                                    [CASE.identity], rows, 30)
        store.add_request(req, P.FLEET_TOPIC, "mqtt://127.0.0.1:9", "kiosk-trace-x", published=signing.iso())
        Investigation(store, store.request(req["id"]), rows, keys).accept_batch(
            responder.handle(P.FLEET_TOPIC, json.dumps(req).encode()))
    finally:
        store.close()
        responder.close()
        door.ledger.close()
    out = tmp_path / "f1"
    assert main(["trace", "collect", "--request", req["id"], "--keys", str(tmp_path / "authority"),
                 "--registry", str(tmp_path / "registry.json"), "--wait", "0", "--tz", "Asia/Ho_Chi_Minh",
                 "--out", str(out)]) == 0
    case, contact = read_f1(f"{out}.csv")
    assert (case["role"], case["id_number"], case["subject_id"]) == ("case", CASE.id_number, "")
    assert contact["role"] == "contact" and contact["format"] == "health-declaration"
    assert (contact["subject_id"], contact["subject_issuer"]) == ("subj-7f3a9c21", issuer.kid.hex())
    assert contact["missing"] == ("no name, phone, ID number, birth date: a health declaration code carries none; "
                                  "reach them through the declaration's issuer "
                                  "(declaration subject and issuer columns)")


def test_the_subject_is_not_kept_unless_the_venue_allows_it(tmp_path, issuer):
    """Off by default: a kiosk keeping every other field still keeps no declaration subject, and the list says so."""
    door = FakeKiosk("hn-hk", "k1", VENUE, tmp_path / "k1")  # name, birth_date, id_number, phone
    declaration_visit(door, issuer, "subj-secret-42", AT)
    try:
        (visit,) = door.ledger.visits(AT - timedelta(minutes=1), AT + timedelta(minutes=1))
        assert (visit["subject_id"], visit["subject_issuer"]) == (None, None)
    finally:
        door.ledger.close()
    assert not any(b"subj-secret-42" in p.read_bytes() for p in (tmp_path / "k1").glob("ledger.sqlite3*"))
    record = {"role": "contact", "time": signing.iso(AT.astimezone(timezone.utc)), "pseudonym": "ab" * 32,
              "case_time": signing.iso(AT.astimezone(timezone.utc)), "overlap_minutes": 0.0,
              "format": "health-declaration", "verdict": "accept"}
    answer = KioskAnswer("hn-hk", "k1", "answered", "ok", "", venue=VENUE, in_scope=True, records=[record],
                         fields=list(ALL_FIELDS))
    (row,) = f1.table(f1.merge([answer]), VN)
    assert row["missing"] == ("no name, phone, ID number, birth date: a health declaration code carries none; "
                              "no declaration subject: hn-hk/k1 does not keep it "
                              "(visit_log_fields = name, birth_date, id_number, phone)")


def test_one_subject_seen_at_two_entrances_is_one_person():
    def seen(device, minutes):
        t = AT.astimezone(timezone.utc)
        return KioskAnswer("hn-hk", device, "answered", "ok", "", venue=VENUE, in_scope=True, fields=["subject_id"],
                           records=[{"role": "contact", "time": signing.iso(t + timedelta(minutes=minutes)),
                                     "pseudonym": device * 8, "case_time": signing.iso(t),
                                     "overlap_minutes": float(minutes), "format": "health-declaration",
                                     "verdict": "accept", "subject_id": "s-1", "subject_issuer": "0a" * 8}])
    (row,) = f1.table(f1.merge([seen("k1", 5), seen("k1b", 7)]), VN)
    assert (row["subject_id"], row["kiosks"], row["minutes_apart"]) == ("s-1", "hn-hk/k1, hn-hk/k1b", 5)
