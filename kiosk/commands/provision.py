"""``kiosk provision``: a fresh Raspberry Pi (or a directory tree) becomes a kiosk; see :mod:`kiosk.ops.provision`."""

from __future__ import annotations

from kiosk.ops.provision import add_arguments, run

__all__ = ["add_arguments", "run"]
