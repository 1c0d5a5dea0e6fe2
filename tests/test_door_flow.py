"""The check-in flow with real stages (verifier, SQLite ledger, mock GPIO pins): the door, the guard's
override window, contained stage failures, the out-of-service ledger, the bounded intake.

Time is the injected clock: nothing here sleeps.
"""

from __future__ import annotations

import logging
import threading

import pytest
from gpiozero.pins.mock import MockFactory

from helpers import code, kiosk_config, pc_covid, signed_dcc, wait_for
from kiosk.testing.clock import FakeClock
from kiosk.wire import reasons
from kiosk.door.assembly import assemble
from kiosk.testing.visitors import samples

RELAY, RED, GREEN = 23, 27, 17


def relay_pulses(pins) -> int:
    return sum(1 for st in pins.pin(RELAY).states[1:] if st.state)


@pytest.fixture
def make(tmp_path):
    """make(policy="", extra="", **kw) -> (kiosk, pins, clock); the kiosks are shut down after the test."""
    made = []

    def build(policy: str = "", extra: str = "enabled = false", headless=True, **kw):
        pins, clock = MockFactory(), FakeClock()
        cfg = kiosk_config(tmp_path, policy=policy, extra=extra, **kw)
        k = assemble(cfg, pin_factory=pins, headless=headless, clock=clock)
        made.append(k)
        return k, pins, clock

    yield build
    for k in made:
        k.shutdown()


def counts(k) -> dict:
    return k.stages.ledger.counts()


# -- the door --------------------------------------------------------------------------------

def test_door_opens_only_for_a_verified_code_by_default(make):
    k, pins, _ = make()
    unsigned = k.flow.handle(code(pc_covid()))
    assert unsigned.verdict == "accept" and not unsigned.signed and not unsigned.opens_door
    assert relay_pulses(pins) == 0, "invented text never opens the door"
    assert counts(k)["accepted"] == 1, "the unsigned visitor is checked in and counted"
    signed = k.flow.handle(code(signed_dcc()))
    assert signed.opens_door and relay_pulses(pins) == 1


def test_forged_cccd_text_does_not_pulse_the_relay(make):
    k, pins, _ = make()
    k.flow.handle(code("079123456789|Nguyen Van Gia|01/01/1923|CCCD|FAKE-0001|"))
    assert relay_pulses(pins) == 0


def test_a_venue_may_open_the_door_for_unsigned_codes(make):
    k, pins, _ = make(policy="unsigned_opens_door = true")
    assert k.flow.handle(code(pc_covid())).opens_door
    assert relay_pulses(pins) == 1


# -- the guard's override --------------------------------------------------------------------

def expired_declaration() -> str:
    return next(s.payload for s in samples() if s.reason == reasons.EXPIRED)


def test_override_lets_the_rejected_visitor_in_within_the_window(make):
    k, pins, clock = make()
    k.flow.handle(code(expired_declaration()))
    clock.advance(59)
    assert k.flow.override()
    assert relay_pulses(pins) == 1
    c = counts(k)
    assert (c["rejected"], c["overrides"], c["accepted"]) == (1, 1, 0)
    assert not k.flow.override(), "one press, one visitor"


def test_override_after_the_window_does_nothing(make):
    k, pins, clock = make(policy="override_window_seconds = 30")
    k.flow.handle(code(expired_declaration()))
    clock.advance(31)
    assert not k.flow.override()
    assert relay_pulses(pins) == 0 and counts(k)["overrides"] == 0


def test_override_refers_only_to_the_latest_verdict(make):
    k, pins, clock = make()
    k.flow.handle(code(expired_declaration()))
    k.flow.handle(code(signed_dcc()))  # a later visitor was let in: the press no longer means the rejected one
    assert not k.flow.override()
    assert relay_pulses(pins) == 1 and counts(k)["overrides"] == 0


def test_a_refused_duplicate_can_be_overridden(make):
    k, pins, clock = make(policy="duplicates_accepted = false")
    dcc = signed_dcc()
    k.flow.handle(code(dcc))
    again = k.flow.handle(code(dcc))
    assert again.duplicate and again.verdict == "reject" and relay_pulses(pins) == 1
    assert wait_for(lambda: not pins.pin(RELAY).state), "the first visitor's pulse is over"
    assert k.flow.override()
    assert relay_pulses(pins) == 2 and counts(k)["overrides"] == 1


def test_the_button_goes_through_the_intake_first(make):
    k, pins, clock = make()
    k.flow.handle(code(expired_declaration()))
    pins.pin(24).drive_low()  # gpiozero Button: pull-up, pressed = low
    pins.pin(24).drive_high()
    k.intake.camera(code(signed_dcc()))  # queued behind the press: the press is handled first
    stop = threading.Timer(0, k.stop)
    k.flow.on_checkin = lambda *a: stop.start()
    k.run(until_exhausted=False)
    assert counts(k)["overrides"] == 1


# -- nothing a visitor shows stops the kiosk -----------------------------------------------------

def test_a_signed_name_with_nul_is_contained_and_the_next_visitor_served(make, caplog):
    k, pins, clock = make(headless=False, screen='enabled = true\nsize = "800x480"\nshow_name = "full"')
    screen = k.stages.screen
    assert hasattr(screen, "screen"), "a real (contained) screen on SDL's dummy driver"
    caplog.set_level(logging.ERROR)
    bad = k.flow.handle(code(signed_dcc(family="Tr\x00n")))
    assert bad.verdict == "accept" and "\x00" in bad.holder.name
    assert screen.tick() is True  # pygame refuses a NUL in text: contained, the loop goes on
    assert len([r for r in caplog.records if bad.id in r.getMessage()]) <= 1, "logged once at most"
    nxt = k.flow.handle(code(pc_covid()))
    assert nxt.verdict == "accept" and screen.tick() is True
    assert counts(k)["accepted"] == 2


def test_a_screen_that_cannot_draw_a_check_in_is_logged_once_with_its_id(caplog):
    from kiosk.door.stages import ContainedScreen

    class Picky:
        display = None
        shown = None

        def show_checkin(self, c):
            self.shown = c

        def tick(self):
            if self.shown is not None:
                raise ValueError("A null character was found in the text")
            return True

    screen = ContainedScreen(Picky())
    caplog.set_level(logging.ERROR)
    bad = type("C", (), {"id": "c0ffee"})()
    screen.show_checkin(bad)
    assert screen.tick() and screen.tick() and screen.tick()
    assert [r.getMessage() for r in caplog.records if "c0ffee" in r.getMessage()].__len__() == 1
    assert screen.screen.shown is None, "back to the idle screen"


def test_a_failing_stage_is_logged_once_and_the_next_visitor_served(make, caplog):
    k, pins, _ = make()

    def broken(**kw):
        raise RuntimeError("relay driver gone")

    k.stages.signals.accept = broken
    caplog.set_level(logging.ERROR)
    first = k.flow.handle(code(signed_dcc()))
    assert first is not None and counts(k)["accepted"] == 1, "recorded before the signal"
    assert sum(first.id in r.getMessage() for r in caplog.records) == 1
    assert k.flow.handle(code(pc_covid())) is not None and counts(k)["accepted"] == 2


# -- the ledger out of service ---------------------------------------------------------------------

def test_a_corrupt_ledger_at_start_is_out_of_service_then_serves_again(tmp_path, make):
    state = tmp_path / "state"
    state.mkdir()
    (state / "ledger.sqlite3").write_bytes(b"this is not a database" * 100)
    k, pins, clock = make()  # no traceback, no crash loop
    k.supervisor.tick()
    assert not k.stages.ledger.ok
    health = k.supervisor.last_health
    assert health["ledger_ok"] is False and "ledger-down" in health["degraded"]
    assert k.supervisor.last_status.ledger_ok is False  # the screen shows "out of service"
    assert pins.pin(RED).state, "red LED steadily on"
    assert k.flow.handle(code(signed_dcc())) is None and relay_pulses(pins) == 0
    (state / "ledger.sqlite3").unlink()  # the operator moved the broken file away
    clock.advance(60)
    k.supervisor.tick()
    assert k.stages.ledger.ok and k.supervisor.last_health["ledger_ok"] is True
    assert not pins.pin(RED).state
    assert k.flow.handle(code(signed_dcc())).opens_door and counts(k)["accepted"] == 1


def test_a_full_disk_stops_check_ins_visibly_and_they_resume(make):
    k, pins, clock = make()
    k.flow.handle(code(pc_covid("001088000001")))
    db = k.stages.ledger.ledger._db
    (pages,) = db.execute("PRAGMA page_count").fetchone()
    db.execute(f"PRAGMA max_page_count = {pages}")  # SQLite's own "database or disk is full"
    served = [k.flow.handle(code(pc_covid(f"0010880{i:05d}"))) for i in range(2, 60)]
    assert None in served, "a check-in that cannot be written is not signalled as accepted"
    assert not k.stages.ledger.ok
    k.supervisor.tick()
    assert k.supervisor.last_health["ledger_ok"] is False and pins.pin(RED).state
    clock.advance(1)
    k.supervisor.tick()
    assert not k.stages.ledger.ok, "still full: retried with backoff"
    db.execute("PRAGMA max_page_count = 1073741823")  # space again
    clock.advance(60)
    k.supervisor.tick()
    assert k.stages.ledger.ok
    before = counts(k)["accepted"]
    assert k.flow.handle(code(pc_covid("001088099999"))) is not None
    assert counts(k)["accepted"] == before + 1


# -- bounded intake ------------------------------------------------------------------------------

def test_camera_codes_are_dropped_when_the_intake_is_full_and_counted(make):
    k, _, _ = make(camera='source = "none"\nintake_max = 4')
    accepted = [k.intake.camera(code(f"x{i}")) for i in range(10)]
    assert accepted == [True] * 4 + [False] * 6
    k.supervisor.refresh()
    assert k.supervisor.last_health["intake_dropped"] == 6


def test_scanner_lines_are_never_dropped(make):
    k, _, _ = make(camera='source = "none"\nintake_max = 1')
    lines = [code(f"line-{i}", source="serial") for i in range(100)]
    producer = threading.Thread(target=lambda: [k.intake.scanner(line) for line in lines])
    producer.start()
    got = []
    assert wait_for(lambda: got.append(k.intake.get(0.05)) or len([g for g in got if g]) == 100)
    producer.join(5)
    assert [g.text for g in got if g] == [line.text for line in lines]


# -- publishing off, notices --------------------------------------------------------------------

def test_with_mqtt_disabled_the_outbox_does_not_grow(make):
    k, _, _ = make(extra="enabled = false")
    for i in range(20):
        k.flow.handle(code(pc_covid(f"0010881{i:05d}")))
    assert k.stages.ledger.outbox_size() == 0 and counts(k)["accepted"] == 20


def test_a_notice_is_one_clean_line_and_capped(make, caplog, tmp_path):
    """A signed notice goes through the command gate on the control thread (kiosk.door.remote.install)."""
    from kiosk.wire import signing
    from kiosk.wire.commands import signed as signed_command

    centre = signing.generate_key()
    signing.write_public_key(tmp_path / "centre.pub.pem", centre)
    k, _, _ = make(extra=f'enabled = false\ncommands = ["notice"]\ncentre_key = "{tmp_path / "centre.pub.pem"}"')
    caplog.set_level(logging.INFO)
    topic, message, _ = signed_command("notice", "Kiểm tra\nlúc 14:00\x00\x1b[31m\u202e" + "x" * 500, "test-site",
                                       "kiosk-t1", centre)
    k.remote.gate.offer(topic, message)
    assert k.control.run_pending() == 1
    assert k.notice.startswith("Kiểm tra lúc 14:00") and len(k.notice) == 200
    assert all(ch.isprintable() for ch in k.notice)
    assert "\x1b" not in caplog.text and "\x00" not in caplog.text
    k.remote.gate.offer(topic, b"x" * 5000)  # too long: refused, the notice stays
    assert k.control.run_pending() == 1 and len(k.notice) == 200