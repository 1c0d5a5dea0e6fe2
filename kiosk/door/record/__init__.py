"""The kiosk's ledger: every check-in, the day's counters, the duplicate window and the outbox, in one SQLite file.

See :class:`kiosk.door.record.store.Ledger`. ``record()`` commits before the caller
signals the verdict, so a visitor who saw "accepted" is always counted.
:class:`kiosk.door.record.keeper.LedgerKeeper` is what the running kiosk holds: it
turns a ledger that cannot write into an out-of-service state, never a crash.
"""

from kiosk.door.record.keeper import LedgerDown, LedgerKeeper
from kiosk.door.record.store import Ledger, LedgerError, OutboxMessage, utc_iso

__all__ = ["Ledger", "LedgerDown", "LedgerError", "LedgerKeeper", "OutboxMessage", "utc_iso"]
