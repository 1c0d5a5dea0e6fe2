"""Doctor checks of the kiosk's hardware: camera, QR decoding, GPIO, display.

Each uses the same code path as ``kiosk run`` (device.frames.open_source,
kiosk.door.decode.default_decoder, device.signals.open_signals, pygame), imported
only here and only when the check runs.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from pathlib import Path

from kiosk.doctor.finding import FAIL, PASS, WARN, Context, Finding

CAMERA_FRAMES = 5
# Python module -> what provides it on Raspberry Pi OS.
APT_FOR = {"cv2": "python3-opencv (apt)", "numpy": "python3-numpy (apt)", "picamera2": "python3-picamera2 (apt)",
           "pygame": "python3-pygame (apt)", "pyzbar": "python3-pyzbar and libzbar0 (apt)", "zxingcpp": "zxing-cpp (pip)",
           "lgpio": "python3-lgpio (apt)", "segno": "segno (pip)"}


def install_hint(exc: BaseException) -> str | None:
    """What to install for an ImportError, or None for other errors."""
    if isinstance(exc, ImportError):
        name = (exc.name or "").split(".")[0]
        return f"install {APT_FOR.get(name, name or 'the missing library')}; `scripts/provision` installs them all"
    return None
STOP_KIOSK = "stop the kiosk first (`sudo systemctl stop kiosk`), which holds the device while it runs"


def check_camera(ctx: Context) -> Finding:
    """The configured frame source opens and delivers frames."""
    cam = ctx.config.camera
    if cam.source == "none":
        return Finding("camera", WARN, "no camera configured ([camera] source = \"none\"): only code scanners read codes",
                       "set [camera] source = \"picamera2\" (Pi camera) or \"opencv\" (USB webcam) if the kiosk has one")
    try:
        from device import frames
    except Exception as exc:
        return Finding("camera", FAIL, f"frame sources unavailable: {type(exc).__name__}: {exc}",
                       "reinstall the kiosk (scripts/update) so device/frames/ is present")
    result: dict = {}

    def grab() -> None:
        source = None
        try:
            source = frames.open_source(cam.source, str(ctx.config.resolve(cam.path)) if cam.path and cam.source == "folder" else cam.path,
                                        width=cam.width, height=cam.height, fps=cam.fps)
            source.open()
            t0 = time.monotonic()
            got = []
            while len(got) < CAMERA_FRAMES:
                frame = source.read()
                if frame is None:
                    break
                got.append(frame)
            result["frames"] = got
            result["seconds"] = time.monotonic() - t0
        except Exception as exc:  # CameraError, ImportError (picamera2 missing), OpenCV errors
            result["error"] = exc
        finally:
            if source is not None:
                try:
                    source.close()
                except Exception:
                    pass

    worker = threading.Thread(target=grab, name="doctor-camera", daemon=True)
    worker.start()
    worker.join(ctx.camera_timeout)
    advice = ("check the ribbon cable (contacts towards the board on a Pi 4) and `rpicam-hello --list-cameras`"
              if cam.source == "picamera2" else "check the USB cable and `ls /dev/video*`" if cam.source == "opencv"
              else f"check [camera] path = {cam.path!r}")
    if worker.is_alive():
        return Finding("camera", FAIL, f"{cam.source}: no frame within {ctx.camera_timeout:g} s (camera hung?)",
                       f"{advice}; {STOP_KIOSK}")
    if "error" in result:
        exc = result["error"]
        hint = install_hint(exc) or advice
        busy = "busy" in str(exc).lower() or "in use" in str(exc).lower()
        return Finding("camera", FAIL, f"{cam.source}: {exc}", STOP_KIOSK if busy else hint)
    got = result.get("frames", [])
    if not got:
        return Finding("camera", FAIL, f"{cam.source}: opened but delivered no frame", advice)
    shape = got[0].image.shape
    rate = f", {len(got) / result['seconds']:.0f} fps" if result.get("seconds") and len(got) > 1 else ""
    return Finding("camera", PASS, f"{cam.source}: {len(got)} frame(s) of {shape[1]}x{shape[0]}{rate}")


def make_test_code_image(text: str, scale: int = 4):
    """A clean grey image of a QR code holding ``text`` (segno), 4-module quiet zone."""
    import numpy as np
    import segno

    modules = np.array([list(row) for row in segno.make(text, error="m").matrix], dtype=np.uint8)
    modules = np.pad(modules, 4)
    image = np.where(modules > 0, 0, 255).astype(np.uint8)
    return np.repeat(np.repeat(image, scale, axis=0), scale, axis=1)


def check_decode(ctx: Context) -> Finding:
    """A freshly made test QR code decodes through the kiosk's decoder cascade."""
    text = f"KIOSK-DOCTOR-{uuid.uuid4().hex[:12]}"
    try:
        image = make_test_code_image(text)
    except ImportError as exc:
        return Finding("decode", FAIL, f"cannot draw the test code: {exc}", install_hint(exc))
    try:
        from kiosk.door.decode import default_decoder

        decoder = default_decoder()
    except Exception as exc:
        return Finding("decode", FAIL, f"no QR decoder: {type(exc).__name__}: {exc}",
                       "install libzbar0 and python3-pyzbar (apt) and zxing-cpp (pip); reinstall with scripts/update")
    name = decoder.name
    try:
        found = [d.text for d in decoder.decode(image)]
    except Exception as exc:
        return Finding("decode", FAIL, f"{name}: decoding raised {type(exc).__name__}: {exc}",
                       "reinstall the decoder libraries (libzbar0, zxing-cpp)")
    if text not in found:
        return Finding("decode", FAIL, f"{name}: the test code was not read (got {found!r})",
                       "reinstall the decoder libraries (libzbar0, zxing-cpp)")
    return Finding("decode", PASS, f"{name}: test code read")


PIN_NAMES = ("green_led", "red_led", "buzzer", "relay", "button", "status_led")


def check_gpio(ctx: Context) -> Finding:
    """The pin factory works and every configured pin can be claimed (outputs left off)."""
    sig = ctx.config.signals
    pins = {n: getattr(sig, n) for n in PIN_NAMES if getattr(sig, n, None) is not None}
    try:
        from device import signals
    except Exception as exc:
        return Finding("gpio", FAIL, f"signals module unavailable: {type(exc).__name__}: {exc}",
                       "reinstall the kiosk (scripts/update)")
    if not pins:
        return Finding("gpio", WARN, "no GPIO pins configured: verdicts are shown on screen only",
                       "set [signals] green_led, red_led, buzzer (BCM numbers) if the kiosk has lights and a buzzer")
    notes = ""
    status = PASS
    advice = ""
    if sig.pin_factory == "mock":
        factory_name = "mock"
        status, advice = WARN, "[signals] pin_factory = \"mock\" drives no hardware; set it to \"lgpio\" (or \"auto\") on the Pi"
        notes = " (simulated)"
    else:
        factory_name = "lgpio" if sig.pin_factory == "auto" else sig.pin_factory
    try:
        factory = signals.make_pin_factory(factory_name)
    except Exception as exc:
        if sig.pin_factory != "auto":
            return Finding("gpio", FAIL, f"pin factory {factory_name}: {exc}",
                           "install python3-lgpio (apt); check `ls -l /dev/gpiochip*` and that the kiosk user is in group gpio")
        factory = signals.make_pin_factory("mock")
        status, notes = WARN, " (simulated)"
        advice = (f"no GPIO hardware here ({exc}): LEDs, buzzer and relay will not work; on a Pi install python3-lgpio "
                  "and check /dev/gpiochip*")
        factory_name = "mock"
    try:
        opened = signals.open_signals(sig, pin_factory=factory)
        opened.close()
    except Exception as exc:
        return Finding("gpio", FAIL, f"{factory_name}: {exc}",
                       "another program holds the pin, or it is wrong: check the BCM numbers in [signals] and `gpioinfo`")
    finally:
        try:
            factory.close()
        except Exception:
            pass
    listed = ", ".join(f"{n}={p}" for n, p in pins.items())
    return Finding("gpio", status, f"{factory_name}: {listed}{notes}", advice)


def check_display(ctx: Context) -> Finding:
    """pygame can open the display driver the kiosk will use."""
    scr = ctx.config.screen
    if not scr.enabled:
        return Finding("display", PASS, "screen disabled ([screen] enabled = false): headless kiosk")
    driver = os.environ.get("SDL_VIDEODRIVER", "")
    if driver == "kmsdrm" and not any(Path("/dev/dri").glob("card*")):
        return Finding("display", FAIL, "SDL_VIDEODRIVER=kmsdrm but there is no /dev/dri/card*",
                       "enable the KMS driver (dtoverlay=vc4-kms-v3d in /boot/firmware/config.txt) and reboot")
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    try:
        import pygame
    except ImportError as exc:
        return Finding("display", FAIL, f"pygame missing: {exc}", install_hint(exc))
    try:
        pygame.display.init()
        name = pygame.display.get_driver()
        sizes = pygame.display.get_desktop_sizes() if hasattr(pygame.display, "get_desktop_sizes") else []
    except pygame.error as exc:
        return Finding("display", FAIL, f"pygame cannot open the display{f' ({driver})' if driver else ''}: {exc}",
                       f"check the HDMI cable and that no desktop session owns the screen; {STOP_KIOSK}")
    finally:
        pygame.display.quit()
    size = f", {sizes[0][0]}x{sizes[0][1]}" if sizes else ""
    if name in ("dummy", "offscreen"):
        return Finding("display", WARN, f"{name} video driver: nothing is shown on a screen",
                       "on the kiosk run under kiosk.service (SDL_VIDEODRIVER=kmsdrm) or unset SDL_VIDEODRIVER")
    return Finding("display", PASS, f"{name}{size}")
