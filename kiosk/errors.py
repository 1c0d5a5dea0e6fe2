"""One exception root for everything the kiosk raises on purpose.

As in gpiozero's ``exc.py``, each subclass also inherits the builtin it stands
for (a configuration problem is a ``ValueError``, a ledger that cannot write is
an ``OSError``), so callers may catch either the kiosk's class or the builtin.
The ``kiosk`` command prints any :class:`KioskError` as one line and exits with
the class's ``exit_code``; a traceback means a bug, never a user's mistake.

``device/`` has its own root (:class:`device.DeviceError`) because the hardware
layer knows nothing of the application; :mod:`kiosk.cli` treats both alike.
"""

from __future__ import annotations


class KioskError(Exception):
    """Root of the kiosk's own errors. ``str()`` is the message for the operator."""

    exit_code = 1


class KioskValueError(KioskError, ValueError):
    """Bad input the operator can fix (a file, a key, an argument): exit 2."""

    exit_code = 2


class KioskOSError(KioskError, OSError):
    """A resource the kiosk needs is not usable right now (disk, device, broker): exit 1."""

    exit_code = 1


class SignatureRefused(KioskValueError):
    """A signed message (command, telemetry, trust bundle, trace request) that must not be believed.

    ``reason`` is a stable word (see :mod:`kiosk.wire.signing`) for logs, ``cmd-result`` and counters.
    """

    exit_code = 1

    def __init__(self, reason: str, detail: str = ""):
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)
