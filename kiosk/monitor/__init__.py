"""The fleet monitor: what the centre sees of every kiosk (``kiosk monitor``).

:mod:`~kiosk.monitor.fleet` is the picture and its hot path,
:mod:`~kiosk.monitor.store` its SQLite file, :mod:`~kiosk.monitor.watch`
the MQTT subscription, :mod:`~kiosk.monitor.report` the JSON and the table.
"""

from kiosk.monitor.fleet import Fleet, KioskState, inspection, totals
from kiosk.monitor.store import FleetStore

__all__ = ["Fleet", "KioskState", "FleetStore", "totals", "inspection"]
