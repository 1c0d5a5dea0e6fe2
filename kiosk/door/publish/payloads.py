"""Payload builders for the topic contract (docs/mqtt.md, docs/schemas/*.json).

This module owns the wire format: the ledger records domain events and day
figures, and these functions render them (``event_payload``,
``counts_payload``), as they do ``info`` and ``health``. Every payload is
then signed with the device key by the publisher (contract v1.1).

No personal data ever goes into a payload: events carry the verdict, the
reason and the code format; counts are totals; info describes the device;
health carries only the documented machine figures.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import platform
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from kiosk import __version__
from kiosk.door.record import utc_iso

ONLINE = b"online"
OFFLINE = b"offline"


def encode(payload: dict) -> bytes:
    """Compact JSON, UTF-8 (venue names are Vietnamese)."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def utc_iso_now() -> str:
    return utc_iso(datetime.now(timezone.utc))


def hardware_model() -> str:
    """The board (``Raspberry Pi 4 Model B Rev 1.5``), or the machine type elsewhere."""
    try:
        return Path("/proc/device-tree/model").read_bytes().rstrip(b"\0").decode("ascii", "replace")
    except OSError:
        return f"{platform.system()} {platform.machine()}".strip()


def config_hash(cfg) -> str:
    """SHA-256 of the validated config (all keys, defaults included): tells which settings a kiosk runs."""
    data = dataclasses.asdict(cfg)
    data.pop("source_path", None)
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode("utf-8")).hexdigest()


VENUE_PLACE_FIELDS = ("address", "province", "district", "ward", "province_code", "district_code", "ward_code")


def info_payload(venue, extra: dict | None = None) -> dict:
    """The retained ``info`` message: software, venue (with its place) and device facts."""
    info: dict[str, Any] = {
        "version": __version__,
        "venue_id": venue.id,
        "venue_name": venue.name,
        **{f: str(getattr(venue, f, "") or "") for f in VENUE_PLACE_FIELDS},
        "venue_qr_sha256": sha256_hex(venue.qr_content or ""),
        "kid": "",
        "hardware": hardware_model(),
        "config_sha256": "",
        "ts": utc_iso(datetime.now(timezone.utc)),
    }
    info.update(extra or {})
    return info


MAX_CAMERA_ERROR = 200  # characters: enough for "cannot open /dev/video0: ...", bounded for the broker


def _number(value, digits: int) -> float | None:
    """``value`` rounded and at least 0, or None when missing or not a finite number (JSON has no NaN)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, round(x, digits)) if math.isfinite(x) else None


def _flag(value) -> bool | None:
    return None if value is None else bool(value)


EVENT_FIELDS = ("id", "seq", "time", "verdict", "reason", "format")
COUNTS_FIELDS = ("day", "accepted", "rejected", "duplicates", "overrides", "by_reason", "by_format",
                 "unique_visitors", "hourly", "dropped_events", "last_scan", "seq")


def event_payload(message) -> dict:
    """The ``events`` message for one outbox row (:class:`kiosk.door.record.OutboxMessage`).

    The ledger keeps the domain event (``at``, ``signed``, ``duplicate``, ...);
    the wire carries the documented fields only. Rows written by older
    software (``time`` instead of ``at``) render the same.
    """
    event = json.loads(message.payload)
    return {"id": event["id"], "seq": int(event.get("seq", message.seq)), "time": event.get("at") or event.get("time"),
            "verdict": event["verdict"], "reason": event["reason"], "format": event["format"]}


def counts_payload(counts: dict, now: datetime | None = None) -> dict:
    """The retained ``counts`` message from the ledger's day figures (:meth:`Ledger.counts`)."""
    out = {k: counts[k] for k in COUNTS_FIELDS if k in counts}
    out["ts"] = utc_iso(now or datetime.now(timezone.utc))
    return out


DEGRADED_WORDS = ("ledger-down", "camera-down", "display-down", "gpio-mock", "trust-stale", "clock-unsynced")


def _int(value) -> int | None:
    return None if value is None or isinstance(value, bool) else int(value) if isinstance(value, int) else None


def health_payload(health: dict, outbox: int, now: datetime | None = None) -> dict:
    """The retained ``health`` message from the pipeline's health dict (``Telemetry.set_health``).

    Only the documented keys are copied (anything else the pipeline adds stays
    on the kiosk); figures are rounded to what a dashboard shows.
    """
    return {
        "camera_ok": bool(health.get("camera_ok", False)),
        "camera_error": str(health.get("camera_error") or "")[:MAX_CAMERA_ERROR],
        "capture_fps": _number(health.get("capture_fps"), 1) or 0.0,
        "decode_fps": _number(health.get("decode_fps"), 1) or 0.0,
        "verdict_latency_p95_ms": _number(health.get("verdict_latency_p95_ms"), 1),
        "clock_synced": _flag(health.get("clock_synced")),
        "trust_age_days": _number(health.get("trust_age_days"), 2),
        "uptime_s": int(_number(health.get("uptime_s"), 0) or 0),
        "outbox": int(outbox),
        "display_ok": bool(health.get("display_ok", True)),
        "ledger_ok": bool(health.get("ledger_ok", True)),
        "gpio_mock": bool(health.get("gpio_mock", False)),
        "degraded": [w for w in DEGRADED_WORDS if w in set(health.get("degraded") or ())],
        "intake_dropped": int(_number(health.get("intake_dropped"), 0) or 0),
        "trust_version": _int(health.get("trust_version")),
        "trust_age_hours": _number(health.get("trust_age_hours"), 2),
        "trust_stale": bool(health.get("trust_stale", False)),
        "trace_answered": int(_number(health.get("trace_answered"), 0) or 0),
        "trace_refused": int(_number(health.get("trace_refused"), 0) or 0),
        "ts": utc_iso(now or datetime.now(timezone.utc)),
    }
