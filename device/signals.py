"""Signals: the verdict LEDs, the buzzer, the door relay, the guard's button and the status LED.

Every pattern runs in the background (a :class:`ThreadPlayer` thread per
device, as gpiozero's own ``blink()`` does), so a call returns at once and never
holds up the pipeline. A new pattern cancels the one in progress on its device,
and the other verdict LED is switched off. The door relay is the exception: a
reject never cuts short the pulse that is letting the previous visitor through.
The player is the one seam through which pins are written: tests pass one that
moves on a clock they control (kiosk.testing.signals.ClockedPlayer), so a
pattern's timing is exact, not a race.

Patterns (``beep`` = ``[signals] beep_seconds``, ``led`` = ``led_seconds``):

============  ========================  ==========================  ============
pattern       LED                       buzzer                      relay
============  ========================  ==========================  ============
accept        green on for ``led``      one short beep              one pulse
accept, shut  green on for ``led``      one short beep              --
reject        red on for ``led``        three short beeps           --
duplicate     green blinks for ``led``  two short beeps             one pulse
dup. refused  red blinks for ``led``    two short beeps             --
override      green on for ``led``      one long beep (4 x beep)    one pulse
============  ========================  ==========================  ============

"accept, shut" is a check-in the venue counts but does not open the door for
(an unsigned code: the guard checks the ID card), see ``accept(open_door=False)``.

The status LED flashes briefly every two seconds while the kiosk is healthy
(a heartbeat: the firmware is alive) and blinks fast when the camera or the
broker is down (``set_health(False)``). Out of service (the ledger cannot
write, ``set_in_service(False)``): the red LED stays on and the status LED
blinks fast until service resumes; verdict patterns are not played meanwhile.

``mock`` is True when ``pin_factory = "auto"`` fell back to mock pins on a
machine where real ones were expected: a degraded state the kiosk reports.

This module knows nothing of check-ins: the pipeline calls the pattern that
fits its verdict, after the ledger has committed it.
"""

from __future__ import annotations

import logging
import threading
from itertools import repeat
from typing import Any, Callable, Iterable, Iterator, Protocol

log = logging.getLogger(__name__)

HEARTBEAT = (0.08, 1.92)  # on, off seconds: a short flash every 2 s
UNHEALTHY = (0.25, 0.25)  # fast, even blinking: look at the screen
DUPLICATE_BLINK = 0.25  # green LED on/off period half for a duplicate
LONG_BEEP_FACTOR = 4


# A pattern: (value, seconds) steps, each value held for its seconds before the next.
Steps = Iterable[tuple[bool, float]]


def blink_steps(on_time: float, off_time: float, n: int | None) -> Iterator[tuple[bool, float]]:
    """On for ``on_time``, off for ``off_time``, ``n`` times (for ever when None): gpiozero's ``blink``."""
    for _ in repeat(None) if n is None else range(n):
        yield True, on_time
        yield False, off_time


class Output(Protocol):
    """What a player drives: gpiozero's LED, Buzzer and DigitalOutputDevice."""

    @property
    def value(self) -> Any: ...

    def on(self) -> None: ...

    def off(self) -> None: ...


class Player(Protocol):
    """Writes the outputs: plays a pattern on one in the background, or sets it steadily."""

    def play(self, device: Output, steps: Steps) -> None:
        """Cancel the pattern in progress on ``device`` and play ``steps`` on it."""

    def set(self, device: Output, value: bool) -> None:
        """Cancel the pattern in progress on ``device`` and hold it at ``value``."""

    def close(self) -> None:
        """Cancel every pattern in progress (the outputs keep their state)."""


def _write(device: Output, value: bool) -> None:
    device.on() if value else device.off()


class ThreadPlayer:
    """Each device's pattern in a thread of its own, waiting on an event so a cancel ends it at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[int, tuple[threading.Thread, threading.Event]] = {}

    def play(self, device: Output, steps: Steps) -> None:
        self._cancel(device)
        stopping = threading.Event()
        thread = threading.Thread(target=self._run, args=(device, steps, stopping), name="signals-pattern", daemon=True)
        with self._lock:  # started under the lock, so a cancel never joins a thread not yet started
            self._running[id(device)] = (thread, stopping)
            thread.start()

    def set(self, device: Output, value: bool) -> None:
        self._cancel(device)
        _write(device, value)

    def close(self) -> None:
        with self._lock:
            devices = list(self._running)
        for key in devices:
            self._cancel_key(key)

    @staticmethod
    def _run(device: Output, steps: Steps, stopping: threading.Event) -> None:
        for value, seconds in steps:
            _write(device, value)
            if stopping.wait(seconds):
                return

    def _cancel(self, device: Output) -> None:
        self._cancel_key(id(device))

    def _cancel_key(self, key: int) -> None:
        with self._lock:
            entry = self._running.pop(key, None)
        if entry is not None:
            thread, stopping = entry
            stopping.set()
            if thread is not threading.current_thread():
                thread.join()


class SignalsError(RuntimeError):
    """The configured pin factory or a pin could not be opened."""


def _lgpio_factory():
    """The Pi's pin factory (lgpio works on every Pi with the modern GPIO character device)."""
    from gpiozero.pins.lgpio import LGPIOFactory

    return LGPIOFactory()


def _named_factory(name: str):
    if name == "mock":
        from gpiozero.pins.mock import MockFactory

        return MockFactory()
    if name == "lgpio":
        return _lgpio_factory()
    if name == "rpigpio":
        from gpiozero.pins.rpigpio import RPiGPIOFactory

        return RPiGPIOFactory()
    if name == "native":
        from gpiozero.pins.native import NativeFactory

        return NativeFactory()
    raise SignalsError(f"unknown pin factory {name!r}")


def make_pin_factory(name: str = "auto"):
    """The gpiozero pin factory for ``[signals] pin_factory``.

    ``auto`` tries lgpio and falls back to gpiozero's MockFactory with a
    WARNING (so a kiosk without GPIO still runs, and says so); an explicit
    name that fails raises :class:`SignalsError` with the reason.
    """
    if name == "auto":
        try:
            return _lgpio_factory()
        except Exception as exc:  # ImportError off the Pi, lgpio.error without /dev/gpiochip*
            log.warning("GPIO not available (lgpio: %s); LEDs, buzzer, relay and button are SIMULATED "
                        "(mock pins). Set [signals] pin_factory = \"mock\" to silence this on a machine without GPIO.",
                        exc)
            return _named_factory("mock")
    try:
        return _named_factory(name)
    except SignalsError:
        raise
    except Exception as exc:
        raise SignalsError(f"[signals] pin_factory {name!r} cannot be used here: {exc}") from exc


class Signals:
    """The kiosk's lights, sound and door. All methods return immediately.

    ``on_override`` is called (from gpiozero's thread) when the guard presses
    the override button; the pipeline sets it, records the override and then
    calls :meth:`override` for the feedback. ``player`` writes the outputs
    (a :class:`ThreadPlayer` unless a test passes its own).
    """

    def __init__(self, *, green=None, red=None, buzzer=None, relay=None, button=None, status=None,
                 led_seconds: float = 2.0, beep_seconds: float = 0.12, relay_seconds: float = 1.0,
                 player: Player | None = None):
        self._player: Player = player if player is not None else ThreadPlayer()
        self.green, self.red, self.buzzer, self.relay = green, red, buzzer, relay
        self.button, self.status = button, status
        self.led_seconds, self.beep_seconds, self.relay_seconds = led_seconds, beep_seconds, relay_seconds
        self.on_override: Callable[[], None] | None = None
        self.mock = False  # open_signals sets it when "auto" fell back to mock pins
        self._lock = threading.Lock()  # verdicts come from one loop, the button from gpiozero's thread
        self._healthy: bool | None = None
        self._in_service = True
        self._closed = False
        if button is not None:
            button.when_pressed = self._button_pressed
        self.set_health(True)

    # -- verdict patterns --------------------------------------------------
    def accept(self, open_door: bool = True) -> None:
        """Green light, one short beep, and a door pulse unless ``open_door`` is False."""
        self._play(lit=self.green, dark=self.red, led=(self.led_seconds, 0, 1),
                   beep=(self.beep_seconds, self.beep_seconds, 1), door=open_door)

    def reject(self) -> None:
        """Red light, three short beeps, door stays shut."""
        self._play(lit=self.red, dark=self.green, led=(self.led_seconds, 0, 1),
                   beep=(self.beep_seconds, self.beep_seconds, 3), door=False)

    def duplicate(self, admitted: bool = True, open_door: bool | None = None) -> None:
        """Already checked in: two short beeps and a blinking LED.

        ``admitted`` (the venue lets people already counted through, the
        default): green blinks and the door opens (unless ``open_door`` is
        False: an unsigned code). Otherwise red blinks and the door stays shut.
        """
        blinks = max(1, round(self.led_seconds / (2 * DUPLICATE_BLINK)))
        lit, dark = (self.green, self.red) if admitted else (self.red, self.green)
        self._play(lit=lit, dark=dark, led=(DUPLICATE_BLINK, DUPLICATE_BLINK, blinks),
                   beep=(self.beep_seconds, self.beep_seconds, 2), door=admitted if open_door is None else open_door)

    def override(self) -> None:
        """The guard let a rejected visitor in: green light, one long beep, door pulse."""
        self._play(lit=self.green, dark=self.red, led=(self.led_seconds, 0, 1),
                   beep=(self.beep_seconds * LONG_BEEP_FACTOR, self.beep_seconds, 1), door=True)

    def _play(self, *, lit, dark, led: tuple, beep: tuple, door: bool) -> None:
        with self._lock:
            if self._closed or not self._in_service:
                return
            if dark is not None:
                self._player.set(dark, False)  # cancels the other LED's pattern in progress
            if lit is not None:
                self._player.play(lit, blink_steps(*led))
            if self.buzzer is not None:
                self._player.play(self.buzzer, blink_steps(*beep))
            # A reject never cuts a door pulse short: the previous visitor may still be walking through.
            if self.relay is not None and door:
                self._player.play(self.relay, blink_steps(self.relay_seconds, 0, 1))

    # -- health --------------------------------------------------------------
    def set_health(self, ok: bool) -> None:
        """Status LED: heartbeat when ``ok``, fast blinking otherwise. Cheap to call every second."""
        ok = bool(ok)
        with self._lock:
            if self._closed or ok == self._healthy:
                return  # restarting the blink on every call would break the rhythm
            if self._healthy is not None:
                log.log(logging.INFO if ok else logging.WARNING, "kiosk health: %s", "ok" if ok else "DEGRADED")
            self._healthy = ok
            if self.status is not None:
                on, off = HEARTBEAT if ok and self._in_service else UNHEALTHY
                self._player.play(self.status, blink_steps(on, off, None))

    @property
    def healthy(self) -> bool:
        return bool(self._healthy)

    def set_in_service(self, ok: bool) -> None:
        """Out of service (False): red LED steadily on, status LED fast, no verdict patterns; True resumes."""
        ok = bool(ok)
        with self._lock:
            if self._closed or ok == self._in_service:
                return
            self._in_service = ok
            for dev in (self.green, self.buzzer):
                if dev is not None:
                    self._player.set(dev, False)
            if self.red is not None:
                self._player.set(self.red, not ok)
            if self.status is not None:
                on, off = HEARTBEAT if ok and self._healthy else UNHEALTHY
                self._player.play(self.status, blink_steps(on, off, None))

    @property
    def in_service(self) -> bool:
        return self._in_service

    # -- guard button ----------------------------------------------------------
    def _button_pressed(self) -> None:
        callback = self.on_override
        if callback is None:
            log.warning("guard button pressed, but nothing handles overrides")
            return
        try:
            callback()
        except Exception:  # an exception here would die silently in gpiozero's thread
            log.exception("override handler failed")

    # -- life cycle --------------------------------------------------------------
    def close(self) -> None:
        """Everything off and every pin released. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._player.close()
        for dev in (self.button, self.green, self.red, self.buzzer, self.relay, self.status):
            if dev is not None:
                try:
                    dev.close()
                except Exception as exc:  # closing must go on for the others
                    log.debug("closing %r: %s", dev, exc)

    def __enter__(self) -> "Signals":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_signals(config: Any, pin_factory=None, player: Player | None = None) -> Signals:
    """Build :class:`Signals` from a ``[signals]``-like config (unset pins are left out).

    ``pin_factory`` replaces the configured one (tests and the demo pass a
    ``MockFactory``); ``player`` the thread player (tests pass a clocked one).
    """
    from gpiozero import LED, Button, Buzzer, DigitalOutputDevice

    pins = {name: getattr(config, name, None) for name in ("green_led", "red_led", "buzzer", "relay", "button", "status_led")}
    timing = dict(led_seconds=config.led_seconds, beep_seconds=config.beep_seconds, relay_seconds=config.relay_seconds,
                  player=player)
    if all(p is None for p in pins.values()):
        log.info("no signal pins configured: verdicts are shown on screen only")
        return Signals(**timing)
    factory = pin_factory if pin_factory is not None else make_pin_factory(getattr(config, "pin_factory", "auto"))
    from gpiozero.pins.mock import MockFactory

    # Mock pins the operator did not ask for: LEDs, buzzer and door do nothing at this entrance.
    fell_back = pin_factory is None and getattr(config, "pin_factory", "auto") == "auto" and isinstance(factory, MockFactory)
    opened: list = []

    def make(cls, pin, **kw):
        if pin is None:
            return None
        try:
            dev = cls(pin, pin_factory=factory, **kw)
        except Exception as exc:
            for d in opened:
                d.close()
            raise SignalsError(f"cannot open GPIO {pin} for {cls.__name__}: {exc}") from exc
        opened.append(dev)
        return dev

    relay_active_high = getattr(config, "relay_active_high", True)
    signals = Signals(
        green=make(LED, pins["green_led"]),
        red=make(LED, pins["red_led"]),
        buzzer=make(Buzzer, pins["buzzer"]),
        relay=make(DigitalOutputDevice, pins["relay"], active_high=relay_active_high, initial_value=False),
        # A push button to ground, the Pi's internal pull-up, 50 ms debounce.
        button=make(Button, pins["button"], pull_up=True, bounce_time=0.05),
        status=make(LED, pins["status_led"]),
        **timing,
    )
    signals.mock = fell_back
    return signals
