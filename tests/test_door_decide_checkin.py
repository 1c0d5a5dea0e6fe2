"""Decide stage: verdicts, pseudonyms and the duplicate window."""

from __future__ import annotations

import hashlib

from kiosk.testing.clock import FakeClock
from kiosk.wire import reasons
from kiosk.door.decide.checkin import ACCEPT, REJECT, CheckinDesk, DuplicateWindow
from kiosk.door.verify import CodeCheck, Holder


class TableVerifier:
    """Answers from a table: payload -> CodeCheck (the real plug-ins are tested in test_codes_*)."""

    def __init__(self, table):
        self.table = table

    def check(self, payload, at=None):
        return self.table[payload]


class FormatPolicy:
    def decide(self, check, now):
        return (ACCEPT, check.reason) if check.valid else (REJECT, check.reason)


def pseudonymize(identity: str) -> str:
    return hashlib.sha256(b"k" + identity.encode()).hexdigest()


ANNA_PC = CodeCheck("pc-covid", True, reasons.OK, identity="vn-id:001088012345", holder=Holder(name="Nguyễn Văn An"))
ANNA_CCCD = CodeCheck("cccd", True, reasons.OK, identity="vn-id:001088012345", holder=Holder(name="Nguyễn Văn An"))
BINH = CodeCheck("eu-dcc", True, reasons.OK, signed=True, identity="dcc:TRAN<THI<BINH:1988-03-14")
FORGED = CodeCheck("eu-dcc", False, reasons.SIGNATURE_INVALID, identity="dcc:NGUYEN<VAN<AN:1988-02-01")


def desk(window_s=1800.0, **kw):
    clock = FakeClock()
    table = {"anna-pc": ANNA_PC, "anna-cccd": ANNA_CCCD, "binh": BINH, "forged": FORGED}
    return CheckinDesk(TableVerifier(table), FormatPolicy(), pseudonymize, duplicate_window_s=window_s, clock=clock.utc,
                       **kw), clock


def test_accepted_visitor_gets_a_pseudonym_not_the_raw_id():
    d, _ = desk()
    c = d.admit("binh", captured_at=1.0)
    assert c.verdict == ACCEPT and c.reason == reasons.OK and not c.duplicate
    assert c.pseudonym and "BINH" not in c.pseudonym and len(c.pseudonym) == 64
    assert c.signed and c.format == "eu-dcc"


def test_same_person_with_another_code_is_a_duplicate():
    d, _ = desk()
    first = d.admit("anna-pc", captured_at=1.0)
    second = d.admit("anna-cccd", captured_at=2.0)
    assert first.reason == reasons.OK
    assert second.duplicate and second.reason == reasons.DUPLICATE and second.verdict == ACCEPT
    assert second.pseudonym == first.pseudonym


def test_duplicate_window_expires():
    d, clock = desk(window_s=60)
    d.admit("binh", captured_at=0)
    clock.t += 59
    assert d.admit("binh", captured_at=0).duplicate
    clock.t += 61  # the window counts from the admitted visit, not from the duplicate
    assert not d.admit("binh", captured_at=0).duplicate


def test_venue_can_turn_duplicates_away():
    d, _ = desk(duplicates_accepted=False)
    d.admit("binh", captured_at=0)
    again = d.admit("binh", captured_at=0)
    assert again.verdict == REJECT and again.reason == reasons.DUPLICATE


def test_rejected_code_does_not_open_the_window():
    """A forged code in someone's name must not make their real code a 'duplicate'."""
    d, _ = desk()
    forged = d.admit("forged", captured_at=0)
    assert forged.verdict == REJECT and forged.reason == reasons.SIGNATURE_INVALID and not forged.duplicate


def test_window_memory_is_bounded():
    w = DuplicateWindow(seconds=1e9, max_entries=100)
    for i in range(1000):
        w.seen_recently(f"p{i}", now=float(i))
    assert len(w._seen) == 100
    assert w.seen_recently("p999", now=1000.0)
