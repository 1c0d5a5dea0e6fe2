"""Signals on gpiozero's MockFactory: the pin timelines a visitor sees and hears."""

from __future__ import annotations

import logging
import os
import threading
import time
from types import SimpleNamespace

import pytest
from gpiozero import LED
from gpiozero.pins.mock import MockFactory

from device import signals as signals_mod
from device.signals import SignalsError, open_signals

GREEN, RED, BUZZER, RELAY, BUTTON, STATUS = 17, 27, 22, 23, 24, 25
LED_S, BEEP_S, RELAY_S = 0.6, 0.15, 0.35


def make_config(**over):
    base = dict(pin_factory="mock", green_led=GREEN, red_led=RED, buzzer=BUZZER, relay=RELAY, button=BUTTON,
                status_led=None, led_seconds=LED_S, beep_seconds=BEEP_S, relay_seconds=RELAY_S, relay_active_high=True)
    base.update(over)
    return SimpleNamespace(**base)


@pytest.fixture
def factory():
    f = MockFactory()
    yield f
    f.reset()


@pytest.fixture
def sig(factory):
    s = open_signals(make_config(), pin_factory=factory)
    yield s
    s.close()


def pins(factory, *numbers):
    found = [factory.pin(n) for n in numbers]
    for p in found:
        p.clear_states()
    return found


# gpiozero's own assert_states_and_times allows 50 ms; these tests share the CPU with the rest of the
# suite, so a thread may wake a little later. Patterns differ by far more than this. Slow emulated
# runs (the Pi stack under qemu) can widen it: KIOSK_TIMING_TOLERANCE=0.3.
TOLERANCE = float(os.environ.get("KIOSK_TIMING_TOLERANCE", "0.1"))


def timeline(pin, expected, ongoing=False):
    """Exactly these transitions, each this long (seconds) after the previous one.

    Waits (bounded) for a pattern still running on a busy machine before comparing;
    ``ongoing`` patterns (the status LED) are compared on their first transitions.
    """
    deadline = time.monotonic() + 5
    while len(pin.states) < len(expected) and time.monotonic() < deadline:
        time.sleep(0.02)
    states = list(pin.states)[:len(expected)] if ongoing else list(pin.states)
    assert [s.state for s in states] == [e[1] for e in expected], pin.states
    for actual, (delta, _) in zip(states, expected):
        assert actual.timestamp == pytest.approx(delta, abs=TOLERANCE), pin.states


def beeps(n, on=BEEP_S, off=BEEP_S):
    out = [(0, False)]
    for i in range(n):
        out += [(0 if i == 0 else off, True), (on, False)]
    return out


def test_accept_is_green_one_beep_and_a_door_pulse(factory, sig):
    green, red, buzzer, relay = pins(factory, GREEN, RED, BUZZER, RELAY)
    sig.accept()
    time.sleep(LED_S + 0.15)
    timeline(green, [(0, False), (0, True), (LED_S, False)])
    timeline(buzzer, beeps(1))
    timeline(relay, [(0, False), (0, True), (RELAY_S, False)])
    timeline(red, [(0, False)])


def test_reject_is_red_three_beeps_and_no_door(factory, sig):
    green, red, buzzer, relay = pins(factory, GREEN, RED, BUZZER, RELAY)
    sig.reject()
    time.sleep(LED_S + 0.3)
    timeline(red, [(0, False), (0, True), (LED_S, False)])
    timeline(buzzer, beeps(3))
    timeline(green, [(0, False)])
    timeline(relay, [(0, False)])


def test_duplicate_blinks_green_with_two_beeps(factory):
    s = open_signals(make_config(led_seconds=1.0), pin_factory=factory)
    try:
        green, red, buzzer, relay = pins(factory, GREEN, RED, BUZZER, RELAY)
        s.duplicate()
        time.sleep(1.15)
        period = signals_mod.DUPLICATE_BLINK
        timeline(green, [(0, False), (0, True), (period, False), (period, True), (period, False)])
        timeline(buzzer, beeps(2))
        timeline(relay, [(0, False), (0, True), (RELAY_S, False)])
        timeline(red, [(0, False)])
    finally:
        s.close()


def test_refused_duplicate_blinks_red_and_keeps_the_door_shut(factory):
    s = open_signals(make_config(led_seconds=1.0), pin_factory=factory)
    try:
        green, red, buzzer, relay = pins(factory, GREEN, RED, BUZZER, RELAY)
        s.duplicate(admitted=False)
        time.sleep(1.15)
        period = signals_mod.DUPLICATE_BLINK
        timeline(red, [(0, False), (0, True), (period, False), (period, True), (period, False)])
        timeline(buzzer, beeps(2))
        timeline(relay, [(0, False)])
        timeline(green, [(0, False)])
    finally:
        s.close()


def test_guard_button_calls_the_override_handler_once_per_press(factory, sig):
    pressed = threading.Event()
    calls = []
    sig.on_override = lambda: (calls.append(time.monotonic()), pressed.set())
    button = factory.pin(BUTTON)
    button.drive_low()  # pressed: the button pulls the pin to ground
    assert pressed.wait(1.0)
    button.drive_high()
    time.sleep(0.1)
    assert len(calls) == 1


def test_override_pattern_is_one_long_beep_green_and_door(factory, sig):
    green, red, buzzer, relay = pins(factory, GREEN, RED, BUZZER, RELAY)
    sig.override()
    time.sleep(max(LED_S, 4 * BEEP_S) + 0.15)
    timeline(buzzer, [(0, False), (0, True), (signals_mod.LONG_BEEP_FACTOR * BEEP_S, False)])
    timeline(green, [(0, False), (0, True), (LED_S, False)])
    timeline(relay, [(0, False), (0, True), (RELAY_S, False)])


def test_button_with_a_failing_handler_is_logged_not_fatal(factory, sig, caplog):
    def boom():
        raise RuntimeError("pipeline gone")

    sig.on_override = boom
    with caplog.at_level(logging.ERROR, logger="device.signals"):
        factory.pin(BUTTON).drive_low()
        deadline = time.monotonic() + 3
        while "override handler failed" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.02)
    assert "override handler failed" in caplog.text


def test_a_new_verdict_cancels_the_pattern_in_progress(factory, sig):
    green, red, buzzer, relay = pins(factory, GREEN, RED, BUZZER, RELAY)
    t0 = time.monotonic()
    sig.accept()
    time.sleep(0.25)  # inside the pause after accept's beep, well before its LED and door end
    dt = time.monotonic() - t0
    sig.reject()
    time.sleep(LED_S)
    # green cut short when the reject came; red then runs its full course
    timeline(green, [(0, False), (0, True), (dt, False)])
    timeline(red, [(0, False), (dt, True), (LED_S, False)])
    # accept's one beep, then reject's three starting at the reject
    timeline(buzzer, [(0, False), (0, True), (BEEP_S, False), (dt - BEEP_S, True), (BEEP_S, False), (BEEP_S, True),
                      (BEEP_S, False), (BEEP_S, True), (BEEP_S, False)])
    # the door pulse that lets the first visitor through is not cut short by the reject
    timeline(relay, [(0, False), (0, True), (RELAY_S, False)])


def test_verdict_calls_return_at_once(sig):
    start = time.monotonic()
    for _ in range(20):
        sig.accept()
        sig.reject()
        sig.duplicate()
    # Waiting for the patterns would take 60 x >= 0.3 s; cancelling threads under load takes far less.
    assert time.monotonic() - start < 3.0


def test_active_low_relay_pulses_low(factory):
    s = open_signals(make_config(relay_active_high=False), pin_factory=factory)
    try:
        relay = factory.pin(RELAY)
        assert relay.state is True  # door shut: an active-low board idles high
        relay.clear_states()
        s.accept()
        time.sleep(RELAY_S + 0.1)
        timeline(relay, [(0, True), (0, False), (RELAY_S, True)])
    finally:
        s.close()


def test_status_led_heartbeat_then_fast_blink_when_unhealthy(factory):
    s = open_signals(make_config(status_led=STATUS), pin_factory=factory)
    try:
        status = factory.pin(STATUS)
        on, off = signals_mod.HEARTBEAT
        timeline(status, [(0, False), (0, True), (on, False)], ongoing=True)  # a short flash, then a long pause
        status.clear_states()
        s.set_health(False)
        time.sleep(0.6)
        s.set_health(False)  # the same health again must not restart the rhythm
        on, off = signals_mod.UNHEALTHY
        timeline(status, [(0, False), (0, True), (on, False), (off, True), (on, False)], ongoing=True)
        assert not s.healthy
    finally:
        s.close()


def test_close_releases_every_pin(factory):
    s = open_signals(make_config(status_led=STATUS), pin_factory=factory)
    s.close()
    s.close()  # idempotent
    s.accept()  # after close: ignored, no error
    for n in (GREEN, RED, BUZZER, RELAY, BUTTON, STATUS):
        LED(n, pin_factory=factory).close()  # would raise GPIOPinInUse if still held


def test_no_pins_configured_still_works():
    s = open_signals(make_config(green_led=None, red_led=None, buzzer=None, relay=None, button=None))
    s.accept()
    s.reject()
    s.duplicate()
    s.override()
    s.set_health(False)
    s.close()


def test_auto_falls_back_to_mock_pins_with_a_warning(monkeypatch, caplog):
    def no_gpio():
        raise ImportError("No module named 'lgpio'")

    monkeypatch.setattr(signals_mod, "_lgpio_factory", no_gpio)
    with caplog.at_level(logging.WARNING, logger="device.signals"):
        f = signals_mod.make_pin_factory("auto")
    assert isinstance(f, MockFactory)
    assert "SIMULATED" in caplog.text and "lgpio" in caplog.text


def test_explicit_mock_is_quiet(caplog):
    with caplog.at_level(logging.WARNING, logger="device.signals"):
        assert isinstance(signals_mod.make_pin_factory("mock"), MockFactory)
    assert caplog.text == ""


def test_explicit_lgpio_that_fails_says_why(monkeypatch):
    def no_chip():
        raise OSError("can not open gpiochip")

    monkeypatch.setattr(signals_mod, "_lgpio_factory", no_chip)
    with pytest.raises(SignalsError, match="lgpio.*gpiochip"):
        signals_mod.make_pin_factory("lgpio")


def test_open_signals_from_the_real_config_section(factory):
    from kiosk.config import parse

    cfg = parse('[device]\nsite="s"\nid="d"\n[venue]\nid="v"\nname="n"\nqr_content="q"\n'
                '[signals]\npin_factory="mock"\ngreen_led=5\nred_led=6\nbuzzer=13\nrelay=19\nrelay_active_high=false\n')
    s = open_signals(cfg.signals, pin_factory=factory)
    try:
        s.reject()
        time.sleep(0.05)
        assert factory.pin(6).state is True and factory.pin(19).state is True  # red lit, active-low door idle high
    finally:
        s.close()
