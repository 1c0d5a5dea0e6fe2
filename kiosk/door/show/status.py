"""What the guard's status bar shows: one immutable snapshot, replaced as a whole."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class KioskStatus:
    """Figures for the guard's status bar.

    ``None`` means "not known / not used": ``mqtt_connected=None`` hides the
    MQTT item (publishing disabled), ``clock_synced=None`` lets the screen
    ask the system itself (:func:`device.clock.clock_synced`),
    ``trust_age_days=None`` hides the trust-list item. ``ledger_ok=False``
    turns the screen into "out of service" (visitors are sent to the guard);
    ``degraded`` holds the health words of the health contract
    (``ledger-down``, ``camera-down``, ``display-down``, ``gpio-mock``,
    ``trust-stale``, ``clock-unsynced``), shown to the guard in plain words.
    """

    accepted: int = 0
    rejected: int = 0
    camera_fps: float = 0.0
    camera_ok: bool = True
    mqtt_connected: bool | None = None
    clock_synced: bool | None = None
    trust_age_days: float | None = None
    notice: str = ""
    ledger_ok: bool = True  # False: the ledger cannot write; the screen shows "out of service"
    degraded: tuple[str, ...] = ()  # health words shown to the guard (see the health contract)
