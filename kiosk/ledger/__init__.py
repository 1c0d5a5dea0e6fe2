"""The kiosk's ledger: every check-in, the day's counters, the duplicate window and the outbox, in one SQLite file.

See :class:`kiosk.ledger.store.Ledger`. ``record()`` commits before the caller
signals the verdict, so a visitor who saw "accepted" is always counted.
:class:`kiosk.ledger.keeper.LedgerKeeper` is what the running kiosk holds: it
turns a ledger that cannot write into an out-of-service state, never a crash.
"""

from kiosk.ledger.keeper import LedgerDown, LedgerKeeper
from kiosk.ledger.store import Ledger, LedgerError, OutboxMessage, utc_iso

__all__ = ["Ledger", "LedgerDown", "LedgerError", "LedgerKeeper", "OutboxMessage", "utc_iso"]
