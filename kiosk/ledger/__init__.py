"""The kiosk's ledger: every check-in, the day's counters and the outbox, in one SQLite file.

See :class:`kiosk.ledger.store.Ledger`. ``record()`` commits before the caller
signals the verdict, so a visitor who saw "accepted" is always counted.
"""

from kiosk.ledger.store import Ledger, LedgerError, OutboxMessage, utc_iso

__all__ = ["Ledger", "LedgerError", "OutboxMessage", "utc_iso"]
