"""The authority's side without a broker: the answer store, the second round, the F1 rows and files."""

from __future__ import annotations

import csv
import json
import sqlite3
import stat
from datetime import timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from kiosk.wire import signing
from kiosk.authority import f1, rounds
from kiosk.authority import keys as authority_keys
from kiosk.authority import registry as registry_mod
from kiosk.authority import requests
from kiosk.authority.collect import KioskAnswer
from kiosk.authority.store import AnswerStore, NewAnswer, path_for
from kiosk.cli import main
from kiosk.wire import trace as P

from tracing_desk import AT, CASE, NEAR, SIDE, VENUE, answer_all, investigation, open_desk
from tracing_fleet import VN, read_f1


@pytest.fixture
def desk(tmp_path):
    """Three kiosks (two entrances of V1, one at V2), the authority's keys and store, a case request answered."""
    with open_desk(tmp_path) as d:
        yield d


def test_the_same_answer_twice_is_one_row_and_a_refusal_gives_way_to_a_real_answer(desk):
    inv = investigation(desk)
    messages = answer_all(desk, desk["req"])
    assert [s for _, s in inv.accept_batch(messages)] == ["new", "new", "new"]
    assert [s for _, s in inv.accept_batch(messages)] == ["known", "known", "known"]  # a redelivery
    assert len(desk["store"].answers(desk["req"]["id"])) == 3
    # the kiosk's "replayed" refusal of a copy of the request never replaces its answer
    replayed = desk["responders"]["k1"].handle(P.FLEET_TOPIC, json.dumps(desk["req"]).encode())
    assert json.loads(replayed[0][1])["reason"] == "replayed"
    assert [s for _, s in inv.accept_batch(replayed)] == ["known"]
    assert {a.outcome for a in desk["store"].answers(desk["req"]["id"])} == {"answered"}
    # ...but a refusal kept first is replaced by the real answer
    store = desk["store"]
    fake = NewAnswer("f" * 32, "s", "d", "refused", "unavailable", "t", "kid", "topic", b"{}")
    assert store.add_answers([fake]) == ["new"]
    assert store.add_answers([NewAnswer("f" * 32, "s", "d", "answered", "ok", "t", "kid", "topic", b"{}")]) == ["upgraded"]


def test_a_batch_that_cannot_be_kept_keeps_nothing(desk, monkeypatch):
    inv = investigation(desk)
    messages = answer_all(desk, desk["req"])
    original = desk["store"]._db

    class Failing:
        """A connection whose third insert fails (a full disk): the whole batch must roll back."""

        def __init__(self):
            self.inserts = 0

        def execute(self, sql, *args):
            if sql.startswith("INSERT INTO answers"):
                self.inserts += 1
                if self.inserts == 3:
                    raise sqlite3.OperationalError("database or disk is full")
            return original.execute(sql, *args)

        def __getattr__(self, name):
            return getattr(original, name)

    monkeypatch.setattr(desk["store"], "_db", Failing())
    with pytest.raises(sqlite3.OperationalError):
        inv.accept_batch(messages)
    monkeypatch.setattr(desk["store"], "_db", original)
    assert desk["store"].answers(desk["req"]["id"]) == []
    assert all(not c.answers for c in inv.all_collectors())  # nor believed in memory: acknowledged to nobody


def test_the_store_holds_no_visitor_in_clear_and_is_the_tracers_alone(desk):
    inv = investigation(desk)
    inv.accept_batch(answer_all(desk, desk["req"]))
    path = desk["store"].path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    desk["store"]._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    raw = path.read_bytes()
    for person in (CASE, NEAR, SIDE):
        for secret in (person.name, person.id_number, person.phone):
            assert secret.encode() not in raw
    # and everything comes back from it: a new investigation on the same store builds the same list
    again = investigation(desk)
    assert again.rows_raw() == inv.rows_raw() and len(again.rows_raw()) == 2


def test_the_second_round_asks_the_other_entrance_about_the_cases_check_ins(desk):
    inv = investigation(desk)
    inv.accept_batch(answer_all(desk, desk["req"]))
    kid = {k.device: k.kid for k in desk["rows"]}
    assert inv.unasked() == {kid["k1b"]: [signing.iso(AT.astimezone(timezone.utc))]}
    r = inv.make_round(inv.unasked(), 3600)
    desk["store"].mark_published(r.id)
    inv.add_round(desk["store"].request(r.id))
    assert inv.unasked() == {}  # asked once, never again
    assert r.round == 2 and r.kind == "contacts" and r.case_request == desk["req"]["id"]
    # the store keeps what was asked only sealed to the authority's own key
    assert signing.iso(AT.astimezone(timezone.utc)) not in (r.asked or "")
    inv.accept_batch(answer_all(desk, r.body))
    rows = inv.rows_raw()
    assert [(x["role"], x["name"], sorted(x["kiosks"]), x["minutes"]) for x in rows] == [
        ("case", CASE.name, ["hn-hk/k1"], None),
        ("contact", SIDE.name, ["hn-hk/k1b"], -0.3),
        # the side door keeps names only: with no ID number to match, NEAR's two check-ins stay two rows
        ("contact", NEAR.name, ["hn-hk/k1b"], 9.0),
        ("contact", NEAR.name, ["hn-hk/k1"], 10.0)]
    table = f1.table(rows, VN)
    assert table[1]["missing"] == "no phone, ID number, birth date: hn-hk/k1b does not keep them " \
                                  "(visit_log_fields = name)"
    assert (table[1]["together"], table[1]["minutes_apart"]) == ("12:00 (within a minute of the case)", 0)
    assert inv.complete()


def test_a_round_that_never_reached_the_broker_is_asked_again(desk):
    inv = investigation(desk)
    inv.accept_batch(answer_all(desk, desk["req"]))
    pending = inv.unasked()
    inv.make_round(pending, 3600)  # kept, but the collect died before the broker took it
    again = investigation(desk)
    assert again.unasked() == pending and again.rounds == []


def test_rounds_pick_other_entrances_only():
    visits = [rounds.CaseVisit("V1", "2021-09-14T03:00:00.000Z", ("s", "a")),
              rounds.CaseVisit("V1", "2021-09-15T03:00:00.000Z", ("s", "b")),
              rounds.CaseVisit("V2", "2021-09-14T05:00:00.000Z", ("s", "c"))]
    key = signing.generate_key().public_key()
    kiosks = [registry_mod.RegisteredKiosk("s", d, v, f"kid-{d}", key) for d, v in
              (("a", "V1"), ("b", "V1"), ("b2", "V1"), ("c", "V2"), ("d", "V3"))]
    venue_of = rounds.venues_of(kiosks)
    wanted = rounds.windows(visits, kiosks, venue_of)
    assert wanted == {"kid-a": {"2021-09-15T03:00:00.000Z"}, "kid-b": {"2021-09-14T03:00:00.000Z"},
                      "kid-b2": {"2021-09-14T03:00:00.000Z", "2021-09-15T03:00:00.000Z"}}
    assert rounds.unasked(wanted, [{"kid-b2": ["2021-09-14T03:00:00.000Z"]}, {"kid-a": list(wanted["kid-a"])}]) == {
        "kid-b": ["2021-09-14T03:00:00.000Z"], "kid-b2": ["2021-09-15T03:00:00.000Z"]}


def test_contacts_round_entries_are_all_one_length_and_the_kiosk_answers_them(desk):
    visits = {desk["rows"][1].kid: [signing.iso(AT.astimezone(timezone.utc))]}
    req = requests.contacts_request(desk["keys"], P.FLEET_TOPIC, desk["req"], desk["rows"], visits)
    assert len({len(v) for v in req["case"].values()}) == 1 and set(req["case"]) == {k.kid for k in desk["rows"]}
    answers = {}
    for topic, data in answer_all(desk, req):
        msg = json.loads(data)
        answers[msg["device"]] = P.unseal(msg["sealed"], desk["keys"].box)
    assert {d: (a["kind"], a["in_scope"], len(a["records"])) for d, a in answers.items()} == {
        "k1": ("contacts", False, 0), "k1b": ("contacts", True, 2), "k2": ("contacts", False, 0)}
    side = answers["k1b"]
    assert [(r["role"], r["name"], r["overlap_minutes"]) for r in side["records"]] == [
        ("contact", SIDE.name, -0.3), ("contact", NEAR.name, 9.0)]
    assert side["fields"] == ["name"] and "phone" not in side["records"][0]


def test_contacts_rounds_are_refused_like_any_request(desk):
    visits = {desk["rows"][1].kid: [signing.iso(AT.astimezone(timezone.utc))]}
    req = requests.contacts_request(desk["keys"], P.FLEET_TOPIC, desk["req"], desk["rows"], visits)
    side = desk["responders"]["k1b"]

    def reason(payload):
        (_, data), = side.handle(P.FLEET_TOPIC, json.dumps(payload).encode())
        return json.loads(data)["reason"]

    assert reason({k: v for k, v in req.items() if k != "sig"}) == "unsigned"
    forged = signing.sign({k: v for k, v in req.items() if k != "sig"}, P.FLEET_TOPIC, signing.generate_key())
    assert reason(forged) == "unknown-key"
    assert reason(req) == "ok"
    assert reason(req) == "replayed"
    # an entry padded with anything but zeros is not ours
    entry = P.unseal(req["case"][desk["rows"][1].kid], P.box_private_key(desk["kiosks"][1].key))
    assert entry["visits"]
    with pytest.raises(Exception):
        import nacl.public
        import zlib

        data = zlib.compress(json.dumps(entry).encode()) + b"junk"
        P.unseal(P.b64(nacl.public.SealedBox(desk["keys"].box.public_key).encrypt(data)), desk["keys"].box)


# -- the F1 rows as the tracer reads them ------------------------------------------

def answer(records, fields=None, device="k1") -> KioskAnswer:
    return KioskAnswer("hn-hk", device, "answered", "ok", "", venue=VENUE, in_scope=True, records=records,
                       fields=fields)


def contact(minutes: float, **personal) -> dict:
    case = AT.astimezone(timezone.utc)
    return {"role": "contact", "time": signing.iso(case + timedelta(minutes=minutes)), "pseudonym": "ab" * 32,
            "case_time": signing.iso(case), "overlap_minutes": round(minutes, 1), "format": "cccd",
            "verdict": "accept", **personal}


@pytest.mark.parametrize("minutes,text,apart", [
    (-32, "11:28-12:00 (32 min before the case)", 32),
    (-0.02, "12:00 (within a minute of the case)", 0),
    (0.4, "12:00 (within a minute of the case)", 0),
    (10, "12:00-12:10 (10 min after the case)", 10),
])
def test_times_are_local_readable_and_never_minus_zero(minutes, text, apart):
    (row,) = f1.table(f1.merge([answer([contact(minutes, name="A")])]), VN)
    assert (row["together"], row["minutes_apart"]) == (text, apart)
    assert row["case_visit_time"] == AT.strftime("%Y-%m-%d 12:00")
    # the same rows for a tracer in another zone
    (row,) = f1.table(f1.merge([answer([contact(minutes, name="A")])]), ZoneInfo("UTC"))
    assert row["case_visit_time"].endswith("05:00")


@pytest.mark.parametrize("fields,personal,fmt,note", [
    (["name", "phone", "id_number", "birth_date"], {"name": "A", "id_number": "1", "birth_date": "2"}, "cccd",
     "no phone: a CCCD chip-card code carries none"),
    ([], {}, "pc-covid", "no name, phone, ID number, birth date: hn-hk/k1 keeps only pseudonyms (visit_log_fields = [])"),
    (["name"], {"name": "A"}, "pc-covid",
     "no phone, ID number, birth date: hn-hk/k1 does not keep them (visit_log_fields = name)"),
    (None, {"name": "A", "phone": "0", "id_number": "1"}, "cccd", "no birth date: not in hn-hk/k1's answer"),
    (["name", "phone", "id_number", "birth_date"], {"name": "A", "phone": "0", "id_number": "1", "birth_date": "2"},
     "pc-covid", ""),
])
def test_each_row_says_which_details_are_missing_and_why(fields, personal, fmt, note):
    (row,) = f1.table(f1.merge([answer([{**contact(5, **personal), "format": fmt}], fields)]), VN)
    assert row["missing"] == note


def test_a_detail_one_kiosk_lacks_comes_from_the_other():
    a = answer([contact(5, name="A", id_number="1")], ["name", "id_number"], "k1")
    b = answer([contact(6, name="A", id_number="1", phone="0912")], ["name", "id_number", "phone"], "k1b")
    (row,) = f1.table(f1.merge([a, b]), VN)
    assert (row["phone"], row["kiosks"], row["missing"].split(":")[0]) == ("0912", "hn-hk/k1, hn-hk/k1b",
                                                                         "no birth date")


def test_files_are_replaced_whole_and_never_by_fewer_rows(desk, capsys):
    inv = investigation(desk)
    inv.accept_batch(answer_all(desk, desk["req"]))
    out = desk["tmp"] / "f1"
    args = ["trace", "collect", "--request", desk["req"]["id"][:8], "--keys", str(desk["tmp"] / "authority"),
            "--registry", str(desk["tmp"] / "registry.json"), "--wait", "0", "--tz", "Asia/Ho_Chi_Minh",
            "--out", str(out)]
    assert main(args) == 1  # the second round was not asked yet: still to do
    rows = read_f1(f"{out}.csv")
    assert len(rows) == 2 and stat.S_IMODE((desk["tmp"] / "f1.csv").stat().st_mode) == 0o600
    assert "1 kiosk at venues the case visited not asked yet" in capsys.readouterr().err
    assert not list(desk["tmp"].glob(".f1.*"))  # no temporary file left behind
    # a longer list on disk (say another machine's) is kept, and the tracer is told
    with open(f"{out}.csv", "a", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows([list(rows[0].values())] * 3)
    before = (desk["tmp"] / "f1.csv").read_bytes()
    assert main(args) == 1
    assert (desk["tmp"] / "f1.csv").read_bytes() == before
    assert "kept " in capsys.readouterr().err
    # a file that is not our list (edited into something else) is never overwritten
    (desk["tmp"] / "f1.csv").write_bytes(b"\xff\xfe not csv \x00")
    assert main(args) == 1 and (desk["tmp"] / "f1.csv").read_bytes() == b"\xff\xfe not csv \x00"


def test_import_verifies_every_answer_again(desk, tmp_path, capsys):
    inv = investigation(desk)
    inv.accept_batch(answer_all(desk, desk["req"]))
    # a colleague's copy in which someone changed an answer
    copy = tmp_path / "copy.sqlite3"
    desk["store"]._db.execute(f"VACUUM INTO '{copy}'")
    db = sqlite3.connect(copy)
    db.execute("UPDATE answers SET message = replace(message, '\"ok\"', '\"OK\"') WHERE device = 'k2'")
    db.commit()
    db.close()
    other = tmp_path / "other"
    other.mkdir()
    for name in (authority_keys.SIGN, authority_keys.BOX):
        (other / name).write_bytes((desk["tmp"] / "authority" / name).read_bytes())
    assert main(["trace", "import", "--keys", str(other), "--registry", str(desk["tmp"] / "registry.json"),
                 str(copy)]) == 1
    out = capsys.readouterr().out
    assert "1 new request, 2 new answers of 3" in out and "1 answer not believed (bad-signature: 1)" in out
    assert "{" not in out  # counts in words, never a Python dict
    theirs = AnswerStore(path_for(other))
    try:
        assert sorted(a.device for a in theirs.answers(desk["req"]["id"])) == ["k1", "k1b"]
    finally:
        theirs.close()


def test_an_answer_to_a_round_this_store_does_not_know_is_left_for_the_machine_that_does(desk):
    inv = investigation(desk)
    visits = {desk["rows"][1].kid: [signing.iso(AT.astimezone(timezone.utc))]}
    elsewhere = requests.contacts_request(desk["keys"], P.FLEET_TOPIC, desk["req"], desk["rows"], visits)
    out = inv.accept_batch(answer_all(desk, elsewhere)[:1] + [("checkin/v1/trace/x/y/z", b"junk")])
    assert [state for _, state in out] == ["unknown-request", "not-believed"]
    assert desk["store"].answers(elsewhere["id"]) == []


def test_an_unreachable_broker_is_said_and_the_list_still_built_from_the_store(desk, capsys, monkeypatch):
    from kiosk.authority import session

    monkeypatch.setattr(session, "CONNECT_TIMEOUT_S", 0.5)
    investigation(desk).accept_batch(answer_all(desk, desk["req"]))
    out = desk["tmp"] / "f1"
    assert main(["trace", "collect", "--request", desk["req"]["id"], "--keys", str(desk["tmp"] / "authority"),
                 "--registry", str(desk["tmp"] / "registry.json"), "--broker", "mqtt://127.0.0.1:9", "--wait", "600",
                 "--out", str(out)]) == 1
    assert "could not reach the broker at mqtt://127.0.0.1:9" in capsys.readouterr().err
    assert len(read_f1(f"{out}.csv")) == 2


def test_a_name_made_to_look_like_a_formula_stays_text(tmp_path):
    """A PC-Covid code is unsigned: anyone can print one whose name is a spreadsheet formula."""
    from openpyxl import load_workbook

    evil = "=HYPERLINK(\"http://evil.example\",\"call me\")"
    rows = f1.table(f1.merge([answer([contact(5, name=evil, phone="+84912345678", id_number="1")],
                                     ["name", "phone", "id_number"])]), VN)
    f1.write_csv(rows, tmp_path / "f1.csv", "Asia/Ho_Chi_Minh")
    f1.write_xlsx(rows, [], tmp_path / "f1.xlsx", "Asia/Ho_Chi_Minh")
    (row,) = read_f1(tmp_path / "f1.csv")
    assert row["name"] == "'" + evil and row["phone"] == "'+84912345678"
    cell = load_workbook(tmp_path / "f1.xlsx")["F1"]["B2"]
    assert (cell.value, cell.data_type) == (evil, "s")
