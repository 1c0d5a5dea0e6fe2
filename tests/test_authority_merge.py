"""kiosk.authority.merge: ``kiosk trace import`` takes another machine's answers, each checked again.

"Theirs" is the desk's answer store after its kiosks answered through their real responders (what a
colleague's machine collected); "ours" is a second machine's store with the same keys. A copied answer
is believed only as the broker's message would be: signed by its kiosk's registered key, on the topic
of the request it is filed under, its sealed body opening with our box key.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from datetime import timedelta

import pytest

from kiosk.authority import keys as authority_keys
from kiosk.authority import requests
from kiosk.authority.investigation import Investigation
from kiosk.authority.merge import Taken, take_answers
from kiosk.authority.store import AnswerStore
from kiosk.wire import signing
from kiosk.wire import trace as P

from tracing_desk import AT, answer_all, investigation, open_desk


@pytest.fixture
def desk(tmp_path):
    with open_desk(tmp_path) as d:
        yield d


@pytest.fixture
def ours(tmp_path):
    """Another machine's answer store (the same keys): empty."""
    store = AnswerStore(tmp_path / "ours.sqlite3")
    yield store
    store.close()


def collected(desk) -> AnswerStore:
    """Theirs: the desk's store once every kiosk answered the case request."""
    investigation(desk).accept_batch(answer_all(desk, desk["req"]))
    return desk["store"]


def edit(store: AnswerStore, sql: str, *params) -> None:
    """Change a copied store behind the tool's back, as someone with sqlite3 could."""
    db = sqlite3.connect(store.path)
    try:
        db.execute(sql, params)
        db.commit()
    finally:
        db.close()


def kept(store: AnswerStore, rid: str) -> dict[str, tuple[str, bytes]]:
    return {a.device: (a.outcome, a.message) for a in store.answers(rid)}


def take(desk, ours, theirs, rows=None, box=None) -> Taken:
    return take_answers(ours, theirs, desk["rows"] if rows is None else rows, box or desk["keys"].box,
                        desk["keys"].sign.public_key())


def test_genuine_answers_and_their_request_are_taken_and_give_the_same_list(desk, ours):
    theirs = collected(desk)
    rid = desk["req"]["id"]
    assert take(desk, ours, theirs) == Taken(requests_new=1, answers_new=3, answers_seen=3, not_believed={})
    assert kept(ours, rid) == kept(theirs, rid)  # the kiosks' own signed messages, as they came
    mine = Investigation(ours, ours.request(rid), desk["rows"], desk["keys"])
    assert mine.unreadable == 0 and mine.rows_raw() == investigation(desk).rows_raw()
    assert ours.request(rid).published == theirs.request(rid).published  # it reached the broker there


def test_a_second_import_of_the_same_store_adds_nothing(desk, ours):
    theirs = collected(desk)
    take(desk, ours, theirs)
    before = kept(ours, desk["req"]["id"])
    assert take(desk, ours, theirs) == Taken(requests_new=0, answers_new=0, answers_seen=3, not_believed={})
    assert kept(ours, desk["req"]["id"]) == before
    assert len(ours.all_requests()) == 1


def test_an_edited_answer_is_not_believed_and_counted_by_reason(desk, ours):
    theirs = collected(desk)
    edit(theirs, "UPDATE answers SET message = replace(message, '\"ok\"', '\"OK\"') WHERE device = 'k2'")
    taken = take(desk, ours, theirs)
    assert taken == Taken(requests_new=1, answers_new=2, answers_seen=3, not_believed={"bad-signature": 1})
    assert sorted(kept(ours, desk["req"]["id"])) == ["k1", "k1b"]


def test_an_answer_signed_by_a_key_no_registry_holds_is_not_believed(desk, ours):
    theirs = collected(desk)
    (k2,) = [a for a in theirs.answers(desk["req"]["id"]) if a.device == "k2"]
    body = {k: v for k, v in json.loads(k2.message).items() if k != signing.SIG_FIELD}
    forged = signing.sign_bytes(body, k2.topic, signing.generate_key())  # the same words, an outsider's key
    edit(theirs, "UPDATE answers SET message = ?, signer = ? WHERE device = 'k2'", forged, k2.signer)
    taken = take(desk, ours, theirs)
    assert (taken.answers_new, taken.not_believed) == (2, {"unknown-key": 1})
    assert "k2" not in kept(ours, desk["req"]["id"])


def test_a_kiosk_revoked_in_our_registry_is_not_believed_though_its_answer_is_genuine(desk, ours):
    theirs = collected(desk)
    rows = [dataclasses.replace(r, revoked=True) if r.device == "k1b" else r for r in desk["rows"]]
    edit(theirs, "UPDATE answers SET message = replace(message, '\"ok\"', '\"OK\"') WHERE device = 'k2'")
    taken = take(desk, ours, theirs, rows=rows)
    assert (taken.answers_new, taken.answers_seen) == (1, 3)
    assert taken.not_believed == {"unknown-key": 1, "bad-signature": 1}  # each reason counted on its own
    assert sorted(kept(ours, desk["req"]["id"])) == ["k1"]


def test_an_answer_filed_under_another_request_is_not_believed(desk, ours, tmp_path):
    theirs = collected(desk)
    rid = desk["req"]["id"]
    # a request theirs holds that the kiosks never answered; k2's answer to the case moved under it
    other = requests.place_request(desk["keys"], P.FLEET_TOPIC, AT - timedelta(hours=1), AT, ["V2"])
    theirs.add_request(other, P.FLEET_TOPIC, "mqtt://127.0.0.1:9", "kiosk-trace-y", published=signing.iso())
    edit(theirs, "UPDATE answers SET request_id = ? WHERE device = 'k2'", other["id"])
    taken = take(desk, ours, theirs)
    assert taken == Taken(requests_new=2, answers_new=2, answers_seen=3, not_believed={"malformed": 1})
    assert ours.answers(other["id"]) == [] and sorted(kept(ours, rid)) == ["k1", "k1b"]
    # answers filed under a request the copy does not hold at all are not taken either
    edit(theirs, "DELETE FROM requests WHERE id = ?", other["id"])
    again = AnswerStore(tmp_path / "again.sqlite3")
    try:
        # ...and counted, so "2 new answers of 3" tells the truth
        assert take(desk, again, theirs) == Taken(requests_new=1, answers_new=2, answers_seen=3,
                                                  not_believed={"unknown-request": 1})
        assert again.answers(other["id"]) == []
    finally:
        again.close()


def test_answers_sealed_to_another_box_key_do_not_open_and_are_not_taken(desk, ours, tmp_path):
    theirs = collected(desk)
    elsewhere = authority_keys.keygen(tmp_path / "other-keys")  # not the keys the request was made with
    taken = take(desk, ours, theirs, box=elsewhere.box)
    assert (taken.answers_new, taken.not_believed) == (0, {"undecryptable": 3})
    assert ours.answers(desk["req"]["id"]) == []


def test_a_refusal_kept_here_gives_way_to_their_answer_and_never_the_reverse(desk, ours):
    rid = desk["req"]["id"]
    theirs = collected(desk)  # the kiosks answered the request there first...
    ours.add_request(desk["req"], P.FLEET_TOPIC, "mqtt://127.0.0.1:9", "kiosk-trace-x", published=signing.iso())
    mine = Investigation(ours, ours.request(rid), desk["rows"], desk["keys"])
    again = desk["responders"]["k1"].handle(P.FLEET_TOPIC, json.dumps(desk["req"]).encode())
    assert [s for _, s in mine.accept_batch(again)] == ["new"]  # ...so here k1 said only "replayed"
    assert kept(ours, rid)["k1"][0] == "refused"
    assert take(desk, ours, theirs) == Taken(requests_new=0, answers_new=3, answers_seen=3, not_believed={})
    assert {d: o for d, (o, _) in kept(ours, rid).items()} == {"k1": "answered", "k1b": "answered", "k2": "answered"}
    # the other way round: their refusal never replaces the answer kept here
    assert take_answers(theirs, ours, desk["rows"], desk["keys"].box, desk["keys"].sign.public_key()).answers_new == 0
    assert kept(theirs, rid)["k1"][0] == "answered"


def test_a_case_and_its_second_round_come_together_and_the_investigation_is_whole(desk, ours):
    inv = investigation(desk)
    inv.accept_batch(answer_all(desk, desk["req"]))
    r = inv.make_round(inv.unasked(), 3600)
    desk["store"].mark_published(r.id)
    inv.add_round(desk["store"].request(r.id))
    inv.accept_batch(answer_all(desk, r.body))
    taken = take(desk, ours, desk["store"])
    assert taken == Taken(requests_new=2, answers_new=6, answers_seen=6, not_believed={})
    mine = Investigation(ours, ours.request(desk["req"]["id"]), desk["rows"], desk["keys"])
    assert [x.round for x in mine.rounds] == [2] and mine.unasked() == {}  # asked there: not asked again here
    assert mine.complete() and mine.rows_raw() == inv.rows_raw()


# -- the requests are checked too ---------------------------------------------------------------

def case_with_a_round(desk):
    """The desk's case answered by every kiosk and its genuine second round (asked the side door) answered."""
    inv = investigation(desk)
    inv.accept_batch(answer_all(desk, desk["req"]))
    wanted = inv.unasked()
    r = inv.make_round(wanted, 3600)
    desk["store"].mark_published(r.id)
    inv.add_round(desk["store"].request(r.id))
    inv.accept_batch(answer_all(desk, r.body))
    return inv, r, wanted


def test_a_forged_round_sealed_to_our_box_key_is_not_taken_and_the_real_round_is_still_asked(desk, ours):
    inv = investigation(desk)
    inv.accept_batch(answer_all(desk, desk["req"]))
    theirs = desk["store"]
    wanted = inv.unasked()
    assert wanted  # the side door of the case's venue is still to be asked
    # someone with the copy and the authority's PUBLIC box key: a "round 2" of the real case, signed by an
    # outsider's key, whose asked list (sealed to our box key, as the desk seals it) claims the side door asked
    forger = authority_keys.AuthorityKeys(signing.generate_key(), desk["keys"].box)
    forged = requests.contacts_request(forger, P.FLEET_TOPIC, desk["req"], inv.addressed(), wanted)
    theirs.add_request(forged, P.FLEET_TOPIC, "mqtt://127.0.0.1:9", "kiosk-trace-x", case_request=desk["req"]["id"],
                       round=2, asked=P.seal(wanted, desk["keys"].box.public_key), published=signing.iso())
    taken = take(desk, ours, theirs)
    assert (taken.requests_new, taken.requests_not_believed) == (1, {"unknown-key": 1})
    assert ours.request(forged["id"]) is None
    mine = Investigation(ours, ours.request(desk["req"]["id"]), desk["rows"], desk["keys"])
    assert mine.rounds == [] and mine.unasked() == wanted  # the real second round is still to be sent


def test_an_edited_request_is_not_believed_nor_its_answers(desk, ours):
    theirs = collected(desk)
    rid = desk["req"]["id"]
    edit(theirs, "UPDATE requests SET body = replace(body, '\"margin_minutes\":30.0', '\"margin_minutes\":300.0')"
                 " WHERE id = ?", rid)
    assert theirs.request(rid).body["margin_minutes"] == 300.0
    taken = take(desk, ours, theirs)
    assert taken == Taken(requests_new=0, answers_new=0, answers_seen=3, not_believed={"request-not-believed": 3},
                          requests_not_believed={"bad-signature": 1})
    assert ours.all_requests() == [] and ours.answers(rid) == []


def test_a_request_moved_to_another_topic_is_not_believed(desk, ours):
    theirs = collected(desk)
    edit(theirs, "UPDATE requests SET topic = ?", P.site_topic("hn-hk"))
    taken = take(desk, ours, theirs)
    assert (taken.requests_new, taken.requests_not_believed) == (0, {"bad-signature": 1})


def test_a_genuine_round_filed_under_another_case_is_not_believed(desk, ours):
    inv, r, wanted = case_with_a_round(desk)
    theirs = desk["store"]
    # another genuine case, another window; the first case's round re-filed under it with its asked list
    other = requests.case_request(desk["keys"], P.FLEET_TOPIC, AT - timedelta(days=3), AT - timedelta(days=2),
                                  ["vn-id:001085009999"], desk["rows"], 30)
    theirs.add_request(other, P.FLEET_TOPIC, "mqtt://127.0.0.1:9", "kiosk-trace-z", published=signing.iso())
    edit(theirs, "UPDATE requests SET case_request = ? WHERE id = ?", other["id"], r.id)
    taken = take(desk, ours, theirs)
    assert taken.requests_not_believed == {"wrong-case": 1} and ours.request(r.id) is None
    assert taken.not_believed == {"request-not-believed": 3}
    assert taken.requests_new == 2  # the two cases


def test_round_numbers_and_case_links_must_fit_the_kind(desk, ours):
    inv, r, wanted = case_with_a_round(desk)
    theirs = desk["store"]
    edit(theirs, "UPDATE requests SET round = 1 WHERE id = ?", r.id)  # a round numbered as a case
    assert take(desk, ours, theirs).requests_not_believed == {"wrong-round": 1}
    edit(theirs, "UPDATE requests SET round = 2 WHERE id = ?", r.id)
    edit(theirs, "UPDATE requests SET round = 3, case_request = ? WHERE id = ?", r.id, desk["req"]["id"])
    assert take(desk, ours, theirs).requests_not_believed == {"wrong-round": 1}  # a case filed as a round
    edit(theirs, "UPDATE requests SET round = 1, case_request = NULL WHERE id = ?", desk["req"]["id"])
    edit(theirs, "UPDATE requests SET round = 'two' WHERE id = ?", r.id)  # not even a number: said, not raised
    assert take(desk, ours, theirs).requests_not_believed == {"wrong-round": 1}
    edit(theirs, "UPDATE requests SET round = 2, topic = 7 WHERE id = ?", r.id)
    assert take(desk, ours, theirs).requests_not_believed == {"malformed": 1}


def test_a_round_whose_case_is_neither_here_nor_in_the_copy_is_not_believed(desk, ours):
    inv, r, wanted = case_with_a_round(desk)
    theirs = desk["store"]
    edit(theirs, "DELETE FROM requests WHERE id = ?", desk["req"]["id"])
    taken = take(desk, ours, theirs)
    assert (taken.requests_new, taken.requests_not_believed) == (0, {"unknown-case": 1})
    assert taken.not_believed == {"unknown-request": 3, "request-not-believed": 3}
    assert taken.answers_seen == 6


def test_an_asked_list_naming_kiosks_the_round_did_not_address_is_not_believed(desk, ours):
    inv, r, wanted = case_with_a_round(desk)
    theirs = desk["store"]
    edit(theirs, "UPDATE requests SET asked = ? WHERE id = ?",
         P.seal({"0" * 16: ["2020-01-01T00:00:00Z"]}, desk["keys"].box.public_key), r.id)
    assert take(desk, ours, theirs).requests_not_believed == {"wrong-round": 1}


def test_a_request_signed_with_a_replaced_signing_key_is_unknown(desk, ours, tmp_path):
    theirs = collected(desk)
    new = authority_keys.keygen(tmp_path / "new-keys")
    taken = take_answers(ours, theirs, desk["rows"], desk["keys"].box, new.sign.public_key())
    assert (taken.requests_new, taken.requests_not_believed) == (0, {"unknown-key": 1})
