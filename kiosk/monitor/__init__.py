"""The old name of the centre's terminal view; everything lives in :mod:`kiosk.centre` now.

Kept as re-exports so scripts that imported ``kiosk.monitor`` keep working.
"""

from kiosk.centre.queries import Centre, Scope, Settings
from kiosk.centre.store import open_store
from kiosk.centre.watch import IngestWorker

__all__ = ["Centre", "Scope", "Settings", "open_store", "IngestWorker"]
