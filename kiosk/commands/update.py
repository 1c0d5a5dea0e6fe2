"""``kiosk update``: install a new release and switch to it, rolling back when it is not ready; see :mod:`kiosk.ops.update`."""

from __future__ import annotations

from kiosk.ops.update import add_arguments, run

__all__ = ["add_arguments", "run"]
