"""The code formats' names: what a check-in event's ``format`` says and ``[policy] accept_formats`` lists.

Stable like the reasons (the centre counts by them). Each name is one plug-in of the
door's verify stage (:mod:`kiosk.door.verify`), in detection order; ``unknown`` is
what a payload no plug-in claims becomes.
"""

from __future__ import annotations

EU_DCC = "eu-dcc"
HEALTH_DECLARATION = "health-declaration"
PC_COVID = "pc-covid"
CCCD = "cccd"
UNKNOWN = "unknown"

FORMAT_NAMES: tuple[str, ...] = (EU_DCC, HEALTH_DECLARATION, PC_COVID, CCCD, UNKNOWN)
