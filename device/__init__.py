"""Hardware layer: camera frames, code scanners, signals and the display, behind small interfaces.

The hardware layer knows nothing of the application, so it has its own
exception root: :class:`DeviceError`. As in gpiozero's ``exc.py`` every
subclass also inherits the builtin it stands for (an absent camera is an
``OSError``, a missing driver library a ``RuntimeError``), so callers may
catch either. The ``kiosk`` command prints any of them as one line.
"""


class DeviceError(Exception):
    """Root of the hardware layer's errors. ``str()`` is the message for the guard or the installer."""

    exit_code = 1


class DeviceValueError(DeviceError, ValueError):
    """A hardware setting that cannot work (an odd picamera2 size, an unknown source): exit 2."""

    exit_code = 2
