"""Decide: one verified code -> one :class:`~kiosk.door.decide.checkin.Checkin` (verdict, reason, pseudonym, door)."""
