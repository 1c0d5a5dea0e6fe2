"""The fleet picture: one :class:`KioskState` per device, updated from its MQTT messages.

The hot path is :meth:`Fleet.handle`: split the topic, parse only the JSON
that matters, update plain attributes. Persisting is the store's job, in
batches (see :mod:`kiosk.monitor.store`).

Counts are taken from the retained ``counts`` message, newest ``(day, seq)``
wins, so a message delivered twice or late never changes a figure. Events
are deduplicated by the device sequence number (QoS 1 is at-least-once).
Health keeps the flags the inspection list needs (camera, clock) as
attributes and the last message as its JSON text, parsed only for reports.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Iterable

COUNT_FIELDS = ("accepted", "rejected", "duplicates", "overrides", "unique_visitors", "dropped_events")


@dataclass
class KioskState:
    """What the centre knows about one kiosk."""

    site: str
    device: str
    venue_id: str = ""
    venue_name: str = ""
    online: bool | None = None  # None: no status seen yet
    since: float | None = None  # epoch seconds of the last online/offline change seen
    status_at: float = 0.0
    day: str = ""
    accepted: int = 0
    rejected: int = 0
    duplicates: int = 0
    overrides: int = 0
    unique_visitors: int = 0
    dropped_events: int = 0
    counts_seq: int = -1
    last_seq: int = 0  # highest event sequence number seen
    events_seen: int = 0  # distinct events received (duplicates by seq ignored)
    last_scan: float | None = None  # epoch seconds of the newest event
    events_new: int = field(default=0, repr=False)  # not yet persisted
    camera_ok: bool | None = None  # None: no health seen yet
    camera_since: float | None = None  # epoch seconds of the last camera up/down change seen
    camera_error: str = ""
    clock_synced: bool | None = None
    health_json: str = ""  # the last health message as received
    health_at: float = 0.0  # when it arrived (epoch seconds)
    health_new: bool = field(default=False, repr=False)  # not yet persisted

    @property
    def key(self) -> tuple[str, str]:
        return self.site, self.device

    def scans(self, today: str) -> int:
        """Visitors' scans on ``today`` (accepted, rejected and duplicates; guard overrides are not scans)."""
        return self.accepted + self.rejected + self.duplicates if self.day == today else 0

    def as_dict(self) -> dict:
        d = asdict(self)
        d.pop("events_new")
        d.pop("status_at")
        d.pop("health_at")
        d.pop("health_new")
        d["health"] = json.loads(d.pop("health_json")) if self.health_json else None
        return d


@dataclass
class FleetStats:
    messages: int = 0
    ignored: int = 0
    duplicate_events: int = 0
    bad_payloads: int = 0


class Fleet:
    """Applies kiosk messages to the fleet picture (one thread; the caller locks if needed)."""

    def __init__(self, kiosks: Iterable[KioskState] = ()):
        self.kiosks: dict[tuple[str, str], KioskState] = {k.key: k for k in kiosks}
        self.dirty: set[tuple[str, str]] = set()
        self.stats = FleetStats()

    def handle(self, topic: str, payload: bytes, now: float | None = None) -> bool:
        """Apply one message; False when it changed nothing (not ours, stale, a repeat or malformed)."""
        self.stats.messages += 1
        parts = topic.split("/")
        if len(parts) != 5 or parts[0] != "checkin" or parts[1] != "v1":
            self.stats.ignored += 1
            return False
        key = (parts[2], parts[3])
        leaf = parts[4]
        k = self.kiosks.get(key)
        if k is None:
            if leaf not in ("status", "counts", "events", "info", "health"):
                self.stats.ignored += 1
                return False
            k = self.kiosks[key] = KioskState(parts[2], parts[3])
        try:
            changed = getattr(self, "_on_" + leaf, self._on_other)(k, payload, now)
        except (ValueError, TypeError, KeyError, AttributeError):
            self.stats.bad_payloads += 1
            return False
        if changed:
            self.dirty.add(key)
        return changed

    def _on_other(self, k: KioskState, payload: bytes, now: float | None) -> bool:
        self.stats.ignored += 1  # cmd/... and anything newer than this monitor
        return False

    def _on_status(self, k: KioskState, payload: bytes, now: float | None) -> bool:
        online = payload == b"online"
        if not online and payload != b"offline":
            raise ValueError("status")
        now = time.time() if now is None else now
        k.status_at = now
        if k.online is not online or k.since is None:
            k.online, k.since = online, now
        return True

    def _on_counts(self, k: KioskState, payload: bytes, now: float | None) -> bool:
        c = json.loads(payload)
        day, seq = c["day"], c["seq"]
        if not isinstance(day, str) or not isinstance(seq, int):
            raise ValueError("counts")
        if (day, seq) < (k.day, k.counts_seq):
            self.stats.ignored += 1  # an older snapshot arriving late
            return False
        k.day, k.counts_seq = day, seq
        k.accepted, k.rejected, k.duplicates = int(c["accepted"]), int(c["rejected"]), int(c["duplicates"])
        k.overrides, k.unique_visitors = int(c["overrides"]), int(c["unique_visitors"])
        k.dropped_events = int(c.get("dropped_events", 0))
        if c.get("last_scan"):
            _saw_scan(k, c["last_scan"])
        return True

    def _on_events(self, k: KioskState, payload: bytes, now: float | None) -> bool:
        e = json.loads(payload)
        seq = e["seq"]
        if seq <= k.last_seq:
            self.stats.duplicate_events += 1  # redelivered (QoS 1) or resent after a kiosk restart
            return False
        k.last_seq = seq
        k.events_seen += 1
        k.events_new += 1
        _saw_scan(k, e["time"])
        return True

    def _on_info(self, k: KioskState, payload: bytes, now: float | None) -> bool:
        i = json.loads(payload)
        k.venue_id, k.venue_name = str(i["venue_id"]), str(i.get("venue_name", ""))
        return True

    def _on_health(self, k: KioskState, payload: bytes, now: float | None) -> bool:
        h = json.loads(payload)
        camera_ok, clock = h["camera_ok"], h.get("clock_synced")
        if camera_ok is not True and camera_ok is not False:
            raise ValueError("health")
        now = time.time() if now is None else now
        if k.camera_ok is not camera_ok or k.camera_since is None:
            k.camera_ok, k.camera_since = camera_ok, now
        k.camera_error = "" if camera_ok else str(h.get("camera_error") or "")
        k.clock_synced = clock if clock is True or clock is False else None
        k.health_json = payload.decode("utf-8")
        k.health_at = now
        k.health_new = True
        return True

    def take_dirty(self) -> list[KioskState]:
        """The kiosks changed since the last call (for the store's batch write)."""
        out = [self.kiosks[key] for key in self.dirty]
        self.dirty = set()
        return out


def _saw_scan(k: KioskState, iso_time: str) -> None:
    """Keep the newest scan time (counts and events may arrive in either order)."""
    t = datetime.fromisoformat(iso_time).timestamp()
    if k.last_scan is None or t > k.last_scan:
        k.last_scan = t


def venue_key(k: KioskState) -> str:
    return k.venue_id or f"{k.site}/{k.device}"


def totals(kiosks: Iterable[KioskState], today: str) -> dict:
    """The figures the authority tracks: kiosks online, venues with a kiosk, venues with scans today, scans today."""
    kiosks = list(kiosks)
    venues = {venue_key(k) for k in kiosks}
    scanned = {venue_key(k) for k in kiosks if k.scans(today) > 0}
    return {
        "day": today,
        "kiosks": len(kiosks),
        "kiosks_online": sum(1 for k in kiosks if k.online),
        "kiosks_camera_down": sum(1 for k in kiosks if k.online and k.camera_ok is False),
        "venues": len(venues),
        "venues_with_scans_today": len(scanned),
        "scans_today": sum(k.scans(today) for k in kiosks),
        "accepted_today": sum(k.accepted for k in kiosks if k.day == today),
        "rejected_today": sum(k.rejected for k in kiosks if k.day == today),
        "duplicates_today": sum(k.duplicates for k in kiosks if k.day == today),
        "overrides_today": sum(k.overrides for k in kiosks if k.day == today),
        "dropped_events": sum(k.dropped_events for k in kiosks if k.day == today),
    }


def inspection(kiosks: Iterable[KioskState], today: str, now: float, offline_hours: float) -> list[dict]:
    """Kiosks an inspector should visit, one row per problem (``why``).

    ``offline`` longer than ``offline_hours``; online but ``camera-down`` (its
    health says the camera delivers no frames; ``since`` = when that was first
    seen, ``detail`` = the camera's error); online with ``clock-unsynced``
    (codes' validity depends on the clock); online with ``no-scans-today``.
    """
    out = []
    for k in kiosks:
        if k.online is False and k.since is not None and now - k.since > offline_hours * 3600:
            out.append(_row(k, "offline", k.since))
        elif k.online:
            if k.camera_ok is False:
                out.append(_row(k, "camera-down", k.camera_since, k.camera_error))
            if k.clock_synced is False:
                out.append(_row(k, "clock-unsynced", None))
            if k.scans(today) == 0:
                out.append(_row(k, "no-scans-today", k.since))
    return sorted(out, key=lambda r: (r["why"], r["site"], r["device"]))


def _row(k: KioskState, why: str, since: float | None, detail: str = "") -> dict:
    return {"site": k.site, "device": k.device, "venue_id": k.venue_id, "venue_name": k.venue_name, "why": why,
            "since": since, "detail": detail}


def local_today() -> str:
    return date.today().isoformat()
