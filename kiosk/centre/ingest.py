"""Ingest: kiosk messages in, verified rows out (the first stage of the centre: ingest -> store -> statistics).

Every ``counts``, ``info``, ``health`` and ``events`` message must verify with its own
kiosk's key from the fleet registry (:func:`kiosk.signing.verify`, topic-bound), or it
changes nothing: it is counted as refused, per topic and reason. ``status`` is the
kiosk's unsigned last will, so it is only a hint (offline / online), believed for a
registered kiosk and never for facts such as how long it has been offline.

What survives goes into a :class:`Batch`, coalesced per kiosk (and day): the newest
counts by ``(day, seq)``, the newest info and health by the kiosk's own signed ``ts``.
The store writes a batch with idempotent upserts, so a message delivered twice, late,
or to two workers of one shared subscription never changes a figure twice.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from datetime import datetime

from kiosk.centre.registry import FleetRegistry
from kiosk.errors import SignatureRefused
from kiosk.signing import MALFORMED, verify

# Centre-side refusal reasons, beside kiosk.signing's (unsigned, unknown-key, bad-signature, malformed).
UNKNOWN_KIOSK = "unknown-kiosk"  # site/device not in the fleet registry
REVOKED = "revoked"  # signed with a key the registry marks revoked (a lost kiosk)
WRONG_KIOSK = "wrong-kiosk"  # a valid signature, but by another kiosk's key
NOT_KIOSK_TOPIC = "not-a-kiosk-topic"
SIGNED_LEAVES = ("counts", "info", "health", "events")
MAX_REFUSED_TOPICS = 10_000  # distinct (topic, reason) counters kept in memory between flushes
MAX_SEQ = 2 ** 53  # JSON's safe integers
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}\Z")
COUNT_FIELDS = ("accepted", "rejected", "duplicates", "overrides", "unique_visitors", "dropped_events")


def epoch(text) -> float:
    """Epoch seconds of an ISO 8601 time (``...Z`` or with an offset); ValueError otherwise."""
    if not isinstance(text, str) or len(text) > 40:
        raise ValueError("time")
    t = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    if t.tzinfo is None:
        raise ValueError("time without a zone")
    return t.timestamp()


def _count(value) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < MAX_SEQ:
        raise ValueError("count")
    return value


def _flag(value) -> int | None:
    return None if value is None else int(bool(value)) if isinstance(value, bool) else None


@dataclass
class Batch:
    """Rows waiting for the store, coalesced so each key appears once (an upsert per key per batch)."""

    info: dict = field(default_factory=dict)
    status: dict = field(default_factory=dict)
    health: dict = field(default_factory=dict)
    seen: dict = field(default_factory=dict)  # (site, device) -> [last_ts, last_seq, last_scan]
    daily: dict = field(default_factory=dict)  # (site, device, day) -> row
    hourly: dict = field(default_factory=dict)
    refused: dict = field(default_factory=dict)  # (topic, reason) -> [n, last_at]
    messages: int = 0

    def __len__(self) -> int:
        return (len(self.info) + len(self.status) + len(self.health) + len(self.seen) + len(self.daily)
                + len(self.refused))


@dataclass
class IngestStats:
    messages: int = 0
    applied: int = 0
    refused: int = 0
    ignored: int = 0  # verified but superseded, or a leaf the centre does not read (cmd-result, ...)


class Ingest:
    """Verifies kiosk messages against the fleet registry and collects the accepted ones in a batch.

    One thread calls :meth:`handle` (paho's network thread); :meth:`take` swaps the batch out
    under the caller's lock.
    """

    def __init__(self, registry: FleetRegistry, verify_signatures: bool = True):
        self.registry = registry
        self.verify_signatures = verify_signatures  # False only in the benchmark's "without verification" row
        self.batch = Batch()
        self.stats = IngestStats()

    def take(self) -> Batch:
        b, self.batch = self.batch, Batch()
        return b

    def refuse(self, topic: str, reason: str, now: float) -> bool:
        self.stats.refused += 1
        key = (topic, reason)
        r = self.batch.refused.get(key)
        if r is None:
            if len(self.batch.refused) >= MAX_REFUSED_TOPICS:  # a flood of invented topics stays bounded
                key = ("(other topics)", reason)
                r = self.batch.refused.get(key)
            if r is None:
                r = self.batch.refused[key] = [0, now]
        r[0] += 1
        r[1] = now
        return False

    def handle(self, topic: str, payload: bytes, now: float | None = None) -> bool:
        """Apply one message to the batch; False when it changes nothing (refused, stale, or not read)."""
        now = time.time() if now is None else now
        self.stats.messages += 1
        self.batch.messages += 1
        parts = topic.split("/")
        if len(parts) < 5 or parts[0] != "checkin" or parts[1] != "v1":
            self.stats.ignored += 1
            return False
        site, device, leaf = parts[2], parts[3], "/".join(parts[4:])
        kiosk = self.registry.kiosk(site, device)
        if leaf == "status":
            if kiosk is None:
                return self.refuse(topic, UNKNOWN_KIOSK, now)
            if payload not in (b"online", b"offline"):
                return self.refuse(topic, MALFORMED, now)
            self.batch.status[(site, device)] = (site, device, payload.decode(), now)
            self.stats.applied += 1
            return True
        if leaf not in SIGNED_LEAVES:
            self.stats.ignored += 1  # cmd/..., cmd-result, trace answers: not figures
            return False
        if kiosk is None:
            return self.refuse(topic, UNKNOWN_KIOSK, now)
        try:
            if self.verify_signatures:
                v = verify(payload, topic, self.registry.keys)
                if v.signer.owner != kiosk.owner:
                    return self.refuse(topic, WRONG_KIOSK, now)
                body = v.payload
            else:
                body = json.loads(payload)
                body.pop("sig", None)
        except SignatureRefused as exc:
            reason = exc.reason
            if reason == "unknown-key":
                sig = _sig_kid(payload)
                if sig in self.registry.revoked_kids:
                    reason = REVOKED
            return self.refuse(topic, reason, now)
        except ValueError:
            return self.refuse(topic, MALFORMED, now)
        try:
            getattr(self, "_" + leaf)(site, device, kiosk.venue_id, body, now)
        except (ValueError, TypeError, KeyError, AttributeError):
            return self.refuse(topic, MALFORMED, now)  # signed by the kiosk, but not the contract
        self.stats.applied += 1
        return True

    def _heard(self, site: str, device: str, ts: float, seq: int = 0, scan: float | None = None) -> None:
        s = self.batch.seen.get((site, device))
        if s is None:
            self.batch.seen[(site, device)] = [ts, seq, scan]
            return
        s[0] = max(s[0], ts)
        s[1] = max(s[1], seq)
        if scan is not None and (s[2] is None or scan > s[2]):
            s[2] = scan

    def _counts(self, site, device, venue_id, c: dict, now: float) -> None:
        day, seq = c["day"], _count(c["seq"])
        if not isinstance(day, str) or not _DAY.match(day):
            raise ValueError("day")
        figures = [_count(c.get(f, 0)) for f in COUNT_FIELDS]
        ts = epoch(c["ts"]) if c.get("ts") else now
        scan = epoch(c["last_scan"]) if c.get("last_scan") else None
        key = (site, device, day)
        old = self.batch.daily.get(key)
        if old is None or seq > old[10]:
            self.batch.daily[key] = (site, device, day, venue_id, *figures, seq, scan, ts)
            hourly = c.get("hourly")
            if isinstance(hourly, list) and len(hourly) == 24:
                self.batch.hourly[key] = (site, device, day, seq, *(_count(h) for h in hourly))
        self._heard(site, device, ts, 0, scan)

    def _events(self, site, device, venue_id, e: dict, now: float) -> None:
        seq = _count(e["seq"])
        t = epoch(e["time"])
        self._heard(site, device, t, seq, t)

    def _info(self, site, device, venue_id, i: dict, now: float) -> None:
        ts = epoch(i["ts"]) if i.get("ts") else now
        old = self.batch.info.get((site, device))
        if old is not None and old[-1] > ts:
            return
        text = [str(i.get(f) or "")[:200] for f in ("venue_id", "venue_name", "address", "province", "district",
                                                  "ward", "province_code", "district_code", "ward_code",
                                                  "venue_qr_sha256", "kid", "version")]
        self.batch.info[(site, device)] = (site, device, venue_id or text[0], *text, ts)
        self._heard(site, device, ts)

    def _health(self, site, device, venue_id, h: dict, now: float) -> None:
        camera_ok = h["camera_ok"]
        if not isinstance(camera_ok, bool):
            raise ValueError("camera_ok")
        ts = epoch(h["ts"])
        old = self.batch.health.get((site, device))
        if old is not None and old[-1] > ts:
            return
        degraded = h.get("degraded") or []
        if not isinstance(degraded, list):
            raise ValueError("degraded")
        age = h.get("trust_age_hours")
        self.batch.health[(site, device)] = (
            site, device, int(camera_ok), str(h.get("camera_error") or "")[:200], _flag(h.get("display_ok")),
            _flag(h.get("clock_synced")), _flag(h.get("trust_stale")),
            float(age) if isinstance(age, (int, float)) and not isinstance(age, bool) else None,
            ",".join(str(w)[:32] for w in degraded[:16]), json.dumps(h, ensure_ascii=False)[:4000], ts)
        self._heard(site, device, ts)


def _sig_kid(payload: bytes) -> str:
    try:
        return str(json.loads(payload)["sig"]["kid"])
    except (ValueError, KeyError, TypeError):
        return ""
