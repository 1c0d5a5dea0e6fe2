"""Signals on gpiozero's MockFactory: the pin timelines a visitor sees and hears.

The patterns play on a clock the test controls (kiosk.testing.signals.ClockedPlayer): the
order of the pin states is read from gpiozero's MockPin, the time between them from the
player's clock, so the durations are exact and no test sleeps or races a thread.
"""

from __future__ import annotations

import logging
import threading
import time
from types import SimpleNamespace

import pytest
from gpiozero import LED
from gpiozero.pins.mock import MockFactory

from device import signals as signals_mod
from device.signals import SignalsError, ThreadPlayer, open_signals
from kiosk.testing.signals import ClockedPlayer

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
def player():
    return ClockedPlayer()


@pytest.fixture
def sig(factory, player):
    s = open_signals(make_config(), pin_factory=factory, player=player)
    yield s
    s.close()


class Watch:
    """The pins a test looks at, from the moment it starts looking (the clock's time then)."""

    def __init__(self, factory, player, *numbers):
        self.player = player
        self.pins = [factory.pin(n) for n in numbers]
        for p in self.pins:
            p.clear_states()
        self.since = player.clock()

    def __iter__(self):
        return iter(self.pins)

    def timeline(self, pin, expected, ongoing=False):
        """Exactly these transitions, each this long (seconds) after the previous one.

        The states (and their order) are the MockPin's; the times are when the player
        changed the pin. ``ongoing`` patterns (the status LED) are compared on their first
        transitions.
        """
        states = [s.state for s in pin.states]
        times = [self.since] + [c.at for c in self.player.changes if c.device.pin is pin and c.at >= self.since]
        assert len(times) == len(states), (pin.states, times)  # the player wrote every change the pin saw
        if ongoing:
            states, times = states[:len(expected)], times[:len(expected)]
        assert states == [e[1] for e in expected], pin.states
        deltas = [0.0] + [b - a for a, b in zip(times, times[1:])]
        assert deltas == pytest.approx([e[0] for e in expected], abs=1e-9), (pin.states, times)


def watch(factory, player, *numbers):
    return Watch(factory, player, *numbers)


def beeps(n, on=BEEP_S, off=BEEP_S):
    out = [(0, False)]
    for i in range(n):
        out += [(0 if i == 0 else off, True), (on, False)]
    return out


def test_accept_is_green_one_beep_and_a_door_pulse(factory, player, sig):
    w = watch(factory, player, GREEN, RED, BUZZER, RELAY)
    green, red, buzzer, relay = w
    sig.accept()
    player.advance(LED_S + 0.15)
    w.timeline(green, [(0, False), (0, True), (LED_S, False)])
    w.timeline(buzzer, beeps(1))
    w.timeline(relay, [(0, False), (0, True), (RELAY_S, False)])
    w.timeline(red, [(0, False)])
    assert player.playing == 0  # every pattern ran its course


def test_reject_is_red_three_beeps_and_no_door(factory, player, sig):
    w = watch(factory, player, GREEN, RED, BUZZER, RELAY)
    green, red, buzzer, relay = w
    sig.reject()
    player.advance(LED_S + 0.3)
    w.timeline(red, [(0, False), (0, True), (LED_S, False)])
    w.timeline(buzzer, beeps(3))
    w.timeline(green, [(0, False)])
    w.timeline(relay, [(0, False)])


def test_duplicate_blinks_green_with_two_beeps(factory, player):
    s = open_signals(make_config(led_seconds=1.0), pin_factory=factory, player=player)
    try:
        w = watch(factory, player, GREEN, RED, BUZZER, RELAY)
        green, red, buzzer, relay = w
        s.duplicate()
        player.advance(1.15)
        period = signals_mod.DUPLICATE_BLINK
        w.timeline(green, [(0, False), (0, True), (period, False), (period, True), (period, False)])
        w.timeline(buzzer, beeps(2))
        w.timeline(relay, [(0, False), (0, True), (RELAY_S, False)])
        w.timeline(red, [(0, False)])
    finally:
        s.close()


def test_refused_duplicate_blinks_red_and_keeps_the_door_shut(factory, player):
    s = open_signals(make_config(led_seconds=1.0), pin_factory=factory, player=player)
    try:
        w = watch(factory, player, GREEN, RED, BUZZER, RELAY)
        green, red, buzzer, relay = w
        s.duplicate(admitted=False)
        player.advance(1.15)
        period = signals_mod.DUPLICATE_BLINK
        w.timeline(red, [(0, False), (0, True), (period, False), (period, True), (period, False)])
        w.timeline(buzzer, beeps(2))
        w.timeline(relay, [(0, False)])
        w.timeline(green, [(0, False)])
    finally:
        s.close()


def test_guard_button_calls_the_override_handler_once_per_press(factory, sig):
    pressed = threading.Event()
    calls = []
    sig.on_override = lambda: (calls.append(time.monotonic()), pressed.set())
    button = factory.pin(BUTTON)
    button.drive_low()  # pressed: the button pulls the pin to ground
    assert pressed.wait(1.0)
    button.drive_high()  # released: gpiozero calls the handlers in the thread that moved the pin, so nothing is pending
    assert len(calls) == 1


def test_override_pattern_is_one_long_beep_green_and_door(factory, player, sig):
    w = watch(factory, player, GREEN, RED, BUZZER, RELAY)
    green, red, buzzer, relay = w
    sig.override()
    player.advance(max(LED_S, 4 * BEEP_S) + 0.15)
    w.timeline(buzzer, [(0, False), (0, True), (signals_mod.LONG_BEEP_FACTOR * BEEP_S, False)])
    w.timeline(green, [(0, False), (0, True), (LED_S, False)])
    w.timeline(relay, [(0, False), (0, True), (RELAY_S, False)])


def test_button_with_a_failing_handler_is_logged_not_fatal(factory, sig, caplog):
    def boom():
        raise RuntimeError("pipeline gone")

    sig.on_override = boom
    with caplog.at_level(logging.ERROR, logger="device.signals"):
        factory.pin(BUTTON).drive_low()  # the handler runs (and fails) before drive_low returns
    assert "override handler failed" in caplog.text


def test_a_new_verdict_cancels_the_pattern_in_progress(factory, player, sig):
    w = watch(factory, player, GREEN, RED, BUZZER, RELAY)
    green, red, buzzer, relay = w
    sig.accept()
    dt = 0.25  # inside the pause after accept's beep, well before its LED and door end
    player.advance(dt)
    sig.reject()
    player.advance(LED_S + 0.3)  # reject's three beeps run 0.75 s after it, its LED 0.6 s
    # green cut short when the reject came; red then runs its full course
    w.timeline(green, [(0, False), (0, True), (dt, False)])
    w.timeline(red, [(0, False), (dt, True), (LED_S, False)])
    # accept's one beep, then reject's three starting at the reject
    w.timeline(buzzer, [(0, False), (0, True), (BEEP_S, False), (dt - BEEP_S, True), (BEEP_S, False), (BEEP_S, True),
                        (BEEP_S, False), (BEEP_S, True), (BEEP_S, False)])
    # the door pulse that lets the first visitor through is not cut short by the reject
    w.timeline(relay, [(0, False), (0, True), (RELAY_S, False)])


def test_verdict_calls_return_at_once(factory):
    """With the kiosk's own thread player: a verdict cancels the running patterns and returns."""
    sig = open_signals(make_config(), pin_factory=factory)
    start = time.monotonic()
    for _ in range(20):
        sig.accept()
        sig.reject()
        sig.duplicate()
    # Waiting for the patterns would take 60 x >= 0.3 s; cancelling threads under load takes far less.
    assert time.monotonic() - start < 3.0
    sig.close()


def test_the_thread_player_plays_each_step_in_order_and_a_cancel_ends_a_wait_at_once(factory):
    led = LED(GREEN, pin_factory=factory)
    pin = factory.pin(GREEN)
    pin.clear_states()
    done = threading.Event()

    def steps():
        yield from signals_mod.blink_steps(0, 0, 3)
        done.set()

    tp = ThreadPlayer()
    tp.play(led, steps())
    assert done.wait(5)
    assert [s.state for s in pin.states] == [False, True, False, True, False, True, False]
    started = time.monotonic()
    tp.play(led, signals_mod.blink_steps(3600, 0, 1))  # an hour on, unless cancelled
    tp.set(led, False)  # cancels it: the thread's wait ends now, not in an hour
    assert time.monotonic() - started < 3.0 and pin.state is False
    tp.close()
    led.close()


def test_active_low_relay_pulses_low(factory, player):
    s = open_signals(make_config(relay_active_high=False), pin_factory=factory, player=player)
    try:
        assert factory.pin(RELAY).state is True  # door shut: an active-low board idles high
        w = watch(factory, player, RELAY)
        relay, = w
        s.accept()
        player.advance(RELAY_S + 0.1)
        w.timeline(relay, [(0, True), (0, False), (RELAY_S, True)])
    finally:
        s.close()


def test_status_led_heartbeat_then_fast_blink_when_unhealthy(factory, player):
    w = watch(factory, player, STATUS)  # before the signals open: the heartbeat starts with them
    status, = w
    s = open_signals(make_config(status_led=STATUS), pin_factory=factory, player=player)
    try:
        on, off = signals_mod.HEARTBEAT
        player.advance(on + off + 1.0)
        # from the pin's opening (an output starts low): a short flash, then a long pause, and again
        w.timeline(status, [(0, False), (0, True), (on, False), (off, True), (on, False)], ongoing=True)
        w = watch(factory, player, STATUS)
        s.set_health(False)
        player.advance(0.6)
        s.set_health(False)  # the same health again must not restart the rhythm (it is on now: a restart shows)
        player.advance(1.2)
        on, off = signals_mod.UNHEALTHY
        w.timeline(status, [(0, False), (0, True), (on, False), (off, True), (on, False), (off, True), (on, False),
                            (off, True), (on, False)], ongoing=True)
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
    s = open_signals(cfg.signals, pin_factory=factory, player=ClockedPlayer())
    try:
        s.reject()
        assert factory.pin(6).state is True and factory.pin(19).state is True  # red lit, active-low door idle high
    finally:
        s.close()
