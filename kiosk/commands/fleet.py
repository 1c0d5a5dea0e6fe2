"""``kiosk fleet``: a fleet file becomes every kiosk's first-boot files and keys, the fleet registry
and the broker's password file and ACL; see :mod:`kiosk.ops.fleet`."""

from __future__ import annotations

from kiosk.ops.fleet import add_arguments, run

__all__ = ["add_arguments", "run"]
