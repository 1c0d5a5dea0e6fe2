"""Payload builders for the topic contract (docs/mqtt.md, docs/schemas/*.json).

No personal data ever goes into a payload: events carry the verdict, the
reason and the code format; counts are totals; info describes the device.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import platform
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from kiosk import __version__
from kiosk.ledger import utc_iso

ONLINE = b"online"
OFFLINE = b"offline"


def encode(payload: dict) -> bytes:
    """Compact JSON, UTF-8 (venue names are Vietnamese)."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


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


def info_payload(venue, extra: dict | None = None) -> dict:
    """The retained ``info`` message: software, venue and device facts."""
    info: dict[str, Any] = {
        "version": __version__,
        "venue_id": venue.id,
        "venue_name": venue.name,
        "venue_qr_sha256": sha256_hex(venue.qr_content or ""),
        "hardware": hardware_model(),
        "config_sha256": "",
        "ts": utc_iso(datetime.now(timezone.utc)),
    }
    info.update(extra or {})
    return info


def info_from_config(cfg) -> dict:
    """The ``info`` extras the pipeline passes to the publisher."""
    return {"config_sha256": config_hash(cfg)}
