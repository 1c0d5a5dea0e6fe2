"""kiosk.authority.summary: what ``kiosk trace collect`` writes and says once it stops collecting.

The investigations are real (the desk's kiosks answer through their responders, the answers are
kept in the desk's store); ``report`` writes the F1 files and returns the exit code and the lines for
standard output (what the tracer reads) and standard error (what went wrong or needs doing).
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from openpyxl import load_workbook

from kiosk.authority import f1, requests
from kiosk.authority import keys as authority_keys
from kiosk.authority.investigation import Investigation
from kiosk.authority.session import SessionResult
from kiosk.authority.store import AnswerStore
from kiosk.authority.summary import plural, report
from kiosk.wire import signing
from kiosk.wire import trace as P

from tracing_desk import AT, answer_all, investigation, open_desk
from tracing_fleet import VN, read_f1

ZONE = "Asia/Ho_Chi_Minh"
BROKER = "mqtt://broker.example:1883"


@pytest.fixture
def desk(tmp_path):
    with open_desk(tmp_path) as d:
        yield d


def say(desk, inv, new_answers=0, session=None, before=frozenset(), raw=None, keys_dir="authority"):
    """``report`` as ``kiosk trace collect`` calls it, the list written to tmp/f1.csv and tmp/f1.xlsx."""
    return report(inv, inv.main, inv.rows_raw() if raw is None else raw, set(before), new_answers, session, VN, ZONE,
                  prefix=str(desk["tmp"] / "f1"), keys_dir=keys_dir, broker=BROKER)


def files(desk):
    return desk["tmp"] / "f1.csv", desk["tmp"] / "f1.xlsx"


def xlsx_rows(path) -> int:
    wb = load_workbook(path, read_only=True)
    try:
        return wb["F1"].max_row - 1
    finally:
        wb.close()


def case_answered(desk) -> Investigation:
    """The case request answered by all three kiosks, and its second round by the side door: nothing left to do."""
    inv = investigation(desk)
    inv.accept_batch(answer_all(desk, desk["req"]))
    r = inv.make_round(inv.unasked(), 3600)
    desk["store"].mark_published(r.id)
    inv.add_round(desk["store"].request(r.id))
    inv.accept_batch(answer_all(desk, r.body))
    assert inv.complete()
    return inv


def place_request(desk) -> Investigation:
    """Who was at V1 around the case's visit: a place request kept in the desk's store, not yet answered."""
    req = requests.place_request(desk["keys"], P.FLEET_TOPIC, AT - timedelta(hours=1), AT + timedelta(hours=1), ["V1"])
    desk["store"].add_request(req, P.FLEET_TOPIC, "mqtt://127.0.0.1:9", "kiosk-trace-p", published=signing.iso())
    return Investigation(desk["store"], desk["store"].request(req["id"]), desk["rows"], desk["keys"])


def test_every_kiosk_answered_is_exit_0_and_standard_output_says_what_is_new(desk):
    inv = case_answered(desk)
    rid = desk["req"]["id"]
    done = say(desk, inv, new_answers=4)
    csv_path, xlsx_path = files(desk)
    assert done.rc == 0 and done.err == []
    assert done.out == ["4 new answers, 1 new check-in of the case, 3 new contacts",
                        f"case request {rid[:8]}: 3 of 3 kiosks answered",
                        "round 2 (other entrances): 1 of 1 kiosk answered",
                        f"4 rows (4 new) in {csv_path} and {xlsx_path}"]
    # the files say the same rows: the case first, then the contacts
    assert [r["role"] for r in read_f1(csv_path)] == ["case", "contact", "contact", "contact"]
    assert xlsx_rows(xlsx_path) == 4
    kiosks = [r[:3] for r in load_workbook(xlsx_path)["Kiosks"].iter_rows(min_row=2, values_only=True)]
    assert kiosks == [(f"case request {rid[:8]}", "hn-hk/k1", "answered"),
                      (f"case request {rid[:8]}", "hn-hk/k1b", "answered"),
                      (f"case request {rid[:8]}", "hn-hk/k2", "answered"),
                      ("round 2 (other entrances)", "hn-hk/k1b", "answered")]


def test_a_second_collect_with_nothing_new_says_so_and_writes_the_same_rows(desk):
    inv = case_answered(desk)
    say(desk, inv, new_answers=4)
    csv_path, xlsx_path = files(desk)
    first = read_f1(csv_path)
    before = {f1.row_key(r) for r in inv.rows_raw()}
    done = say(desk, investigation(desk), new_answers=0, before=before)  # a collect run again: the store's rows
    assert done.rc == 0 and done.err == []
    assert done.out[0] == "0 new answers"
    assert done.out[-1] == f"4 rows (0 new) in {csv_path} and {xlsx_path}"
    assert read_f1(csv_path) == first  # as many rows as on disk: replaced, never kept


def test_a_silent_kiosk_is_named_and_the_exit_is_1(desk):
    inv = place_request(desk)
    k1, k1b, k2 = answer_all(desk, inv.main.body)
    inv.accept_batch([k1, k1b])  # the market's kiosk (k2) never answers
    done = say(desk, inv, new_answers=2, session=SessionResult(connected=True))
    assert done.rc == 1 and done.err == []
    assert done.out[:2] == ["2 new answers, 4 new visits",
                            f"place request {inv.main.id[:8]}: 2 of 3 kiosks answered; 1 still silent: hn-hk/k2"]
    assert len(read_f1(files(desk)[0])) == 4  # the list holds what came: written all the same
    # when it answers, the request is done
    inv.accept_batch([k2])
    done = say(desk, inv, new_answers=1, session=SessionResult(connected=True),
               before={f1.row_key(r) for r in inv.rows_raw()})
    assert done.rc == 0 and done.out[:2] == ["1 new answer", f"place request {inv.main.id[:8]}: 3 of 3 kiosks answered"]


def test_check_ins_of_the_case_not_yet_asked_at_other_entrances_are_work_left(desk):
    inv = investigation(desk)
    inv.accept_batch(answer_all(desk, desk["req"]))  # everyone answered, but the side door was not asked yet
    done = say(desk, inv, new_answers=3)
    assert done.rc == 1
    assert done.out[1] == f"case request {desk['req']['id'][:8]}: 3 of 3 kiosks answered"
    assert done.err == ["1 kiosk at venues the case visited not asked yet (run collect again to ask them)"]


def test_ctrl_c_is_exit_130_and_the_list_is_still_written(desk):
    inv = place_request(desk)
    inv.accept_batch(answer_all(desk, inv.main.body)[:2])
    done = say(desk, inv, new_answers=2, session=SessionResult(connected=True, interrupted=True))
    assert done.rc == 130  # silent kiosks or not
    assert "1 still silent: hn-hk/k2" in done.out[1]
    assert len(read_f1(files(desk)[0])) == 4 and xlsx_rows(files(desk)[1]) == 4
    # interrupted while the broker was unreachable: still 130, and the broker still named
    done = say(desk, inv, session=SessionResult(connected=False, interrupted=True))
    assert done.rc == 130 and f"could not reach the broker at {BROKER}" in done.err[0]


@pytest.mark.parametrize("session, said", [
    (SessionResult(connected=True, error="cannot keep answers in store: disk full"),
     "cannot keep answers in store: disk full"),
    (SessionResult(connected=True, taken_over=True),
     "another collect of this request took the broker session over (another officer's machine?): stopped here. "
     "What it receives stays in its answer store: bring it here with kiosk trace import"),
    (SessionResult(connected=False),
     f"could not reach the broker at {BROKER}: the list holds only the answers kept before"),
])
def test_broker_trouble_is_said_on_standard_error_and_is_exit_1_though_everyone_answered(desk, session, said):
    inv = case_answered(desk)
    done = say(desk, inv, session=session)
    assert done.rc == 1 and done.err == [said]
    assert done.out[-1].startswith("4 rows (4 new) in ")  # the list from what the store holds


def test_a_longer_list_is_never_replaced_by_a_shorter_one_and_the_tracer_is_told(desk, tmp_path):
    inv = case_answered(desk)
    say(desk, inv, new_answers=4)
    csv_path, xlsx_path = files(desk)
    kept = (csv_path.read_bytes(), xlsx_path.read_bytes())
    # another machine with the same keys but an empty store: it knows the request and no answer
    other = AnswerStore(tmp_path / "other.sqlite3")
    try:
        other.add_request(desk["req"], P.FLEET_TOPIC, "mqtt://127.0.0.1:9", "kiosk-trace-x", published=signing.iso())
        there = Investigation(other, other.request(desk["req"]["id"]), desk["rows"], desk["keys"])
        done = say(desk, there, session=SessionResult(connected=True))
    finally:
        other.close()
    assert (csv_path.read_bytes(), xlsx_path.read_bytes()) == kept
    assert done.rc == 1
    assert done.err == [f"kept {csv_path} (4 rows) and {xlsx_path} (4 rows): the answers kept on this machine give "
                        "only 0 rows. Were they collected on another machine? Bring its answer store here with kiosk "
                        "trace import, then run collect again"]
    assert not any(" rows (" in line for line in done.out)  # no file was written: none is announced


def test_each_file_is_judged_on_its_own_rows(desk):
    inv = case_answered(desk)
    say(desk, inv, new_answers=4)
    csv_path, xlsx_path = files(desk)
    rows = read_f1(csv_path)
    with open(csv_path, "a", encoding="utf-8", newline="") as f:  # the CSV has grown elsewhere: 7 rows
        import csv

        csv.writer(f).writerows([list(rows[0].values())] * 3)
    longer = csv_path.read_bytes()
    xlsx_path.unlink()
    done = say(desk, inv)
    assert csv_path.read_bytes() == longer and xlsx_rows(xlsx_path) == 4
    assert done.rc == 1 and done.err[0].startswith(f"kept {csv_path} (7 rows): the answers kept on this machine "
                                                   "give only 4 rows.")
    assert done.out[-1] == f"4 rows (4 new) in {xlsx_path}"


def test_a_file_that_is_not_a_list_this_tool_wrote_is_kept_as_it_is(desk):
    inv = case_answered(desk)
    csv_path, xlsx_path = files(desk)
    csv_path.write_bytes(b"\xff\xfe edited \x00")
    xlsx_path.write_bytes(b"not a workbook")
    done = say(desk, inv, new_answers=4)
    assert csv_path.read_bytes() == b"\xff\xfe edited \x00" and xlsx_path.read_bytes() == b"not a workbook"
    assert done.rc == 1  # though every kiosk answered
    assert done.err == [f"kept {p} as it is: it is not an F1 list this tool can read (edited?); write elsewhere with "
                        "--out" for p in (csv_path, xlsx_path)]
    assert not any(" rows (" in line for line in done.out)


def test_refusals_are_counted_by_reason_and_messages_not_believed_are_said(desk):
    inv = investigation(desk)
    market = desk["responders"]["k2"]
    market.handle(P.FLEET_TOPIC, json.dumps(desk["req"]).encode())  # the market's kiosk saw the request before:
    k1, k1b, replayed = answer_all(desk, desk["req"])                # its answer now is a refusal
    topic, message = k1
    forged = (topic, message.replace(b'"ok"', b'"OK"'))
    inv.accept_batch([forged, k1, k1b, replayed])
    done = say(desk, inv, new_answers=3)
    label = f"case request {desk['req']['id'][:8]}"
    assert done.out[1] == f"{label}: 3 of 3 kiosks answered (refused: 1 replayed)"
    # said in words like every other count, never as a Python dict
    assert done.err[0] == f"messages not believed on {label}: bad-signature: 1"


def test_kept_answers_that_no_longer_open_are_counted(desk, tmp_path):
    messages = answer_all(desk, desk["req"])
    investigation(desk).accept_batch(messages[:1])
    replaced = authority_keys.keygen(tmp_path / "new-keys")  # the box key was replaced since
    inv = Investigation(desk["store"], desk["store"].request(desk["req"]["id"]), desk["rows"], replaced)
    done = say(desk, inv, keys_dir="new-keys")
    assert done.rc == 1
    assert "1 kept answer does not open with new-keys's box key (were the keys replaced?)" in done.err
    investigation(desk).accept_batch(messages[1:])
    inv = Investigation(desk["store"], desk["store"].request(desk["req"]["id"]), desk["rows"], replaced)
    assert "3 kept answers do not open with new-keys's box key (were the keys replaced?)" in say(
        desk, inv, keys_dir="new-keys").err


def test_one_is_singular_and_every_other_count_plural(desk):
    assert [plural(n, "kiosk") for n in (0, 1, 2)] == ["0 kiosks", "1 kiosk", "2 kiosks"]
    inv = case_answered(desk)
    raw = inv.rows_raw()
    contacts = [r for r in raw if r["role"] == "contact"]
    # only one contact is new: "1 new contact", and no word about the case's check-in
    before = {f1.row_key(r) for r in raw if r is not contacts[0]}
    assert say(desk, inv, new_answers=1, before=before).out[0] == "1 new answer, 1 new contact"
    before = {f1.row_key(r) for r in raw if r["role"] == "contact"}
    assert say(desk, inv, new_answers=2, before=before).out[0] == "2 new answers, 1 new check-in of the case"
    place = place_request(desk)
    place.accept_batch(answer_all(desk, place.main.body))
    raw = place.rows_raw()
    assert say(desk, place, before={f1.row_key(r) for r in raw[1:]}).out[0] == "0 new answers, 1 new visit"
