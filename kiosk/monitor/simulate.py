"""A fleet of simulated kiosks publishing the real topic contract (for load tests and demos).

Each simulated kiosk keeps its own counters the way the ledger does (a
duplicate is never a second accepted visitor) and publishes, like a real one:
retained ``status``/``info``/``counts``/``health`` at start, an ``events`` message and a
fresh retained ``counts`` per check-in, and its final counts at the end.
Kiosks are spread over a few connections, since one TCP connection per
simulated kiosk would measure the operating system rather than the monitor.
"""

from __future__ import annotations

import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone

import paho.mqtt.client as mqtt

from kiosk.ledger import utc_iso
from kiosk.publish.connection import make_client
from kiosk.publish.payloads import ONLINE, OFFLINE, encode, sha256_hex
from kiosk.publish.topics import Topics

_REJECT_REASONS = ("expired", "signature-invalid", "policy:test-too-old", "policy:status", "unknown-format")
_FORMATS = ("eu-dcc", "health-declaration", "pc-covid", "cccd")


@dataclass
class SimKiosk:
    topics: Topics
    venue_id: str
    seq: int = 0
    accepted: int = 0
    rejected: int = 0
    duplicates: int = 0
    by_reason: dict = field(default_factory=dict)
    by_format: dict = field(default_factory=dict)
    hourly: list = field(default_factory=lambda: [0] * 24)
    visitors: set = field(default_factory=set)
    last_scan: str | None = None

    def check_in(self, rng: random.Random, now: datetime) -> dict:
        """One visitor: 85% accepted, 5% duplicates, 10% rejected with a realistic reason."""
        self.seq += 1
        self.last_scan = utc_iso(now)
        r = rng.random()
        fmt = rng.choice(_FORMATS)
        if r < 0.85:
            verdict, reason = "accept", "ok"
            self.accepted += 1
            self.hourly[now.astimezone().hour] += 1
            self.visitors.add(rng.randrange(10_000))
        elif r < 0.90:
            verdict, reason = "accept", "duplicate"
            self.duplicates += 1
        else:
            verdict, reason = "reject", rng.choice(_REJECT_REASONS)
            self.rejected += 1
        self.by_reason[reason] = self.by_reason.get(reason, 0) + 1
        self.by_format[fmt] = self.by_format.get(fmt, 0) + 1
        return {"id": uuid.uuid4().hex, "seq": self.seq, "time": utc_iso(now), "verdict": verdict, "reason": reason,
                "format": fmt}

    def counts(self, now: datetime) -> dict:
        return {"day": now.astimezone().date().isoformat(), "accepted": self.accepted, "rejected": self.rejected,
                "duplicates": self.duplicates, "overrides": 0, "by_reason": self.by_reason, "by_format": self.by_format,
                "unique_visitors": len(self.visitors), "hourly": self.hourly, "dropped_events": 0,
                "last_scan": self.last_scan, "seq": self.seq,
                "ts": utc_iso(now)}

    def health(self, now: datetime, camera_ok: bool = True) -> dict:
        """A health message of a kiosk whose camera works (or, ``camera_ok=False``, was unplugged)."""
        return {"camera_ok": camera_ok, "camera_error": "" if camera_ok else "camera disappeared: /dev/video0",
                "capture_fps": 30.0 if camera_ok else 0.0, "decode_fps": 29.4 if camera_ok else 0.0,
                "verdict_latency_p95_ms": 41.5 if self.seq else None, "clock_synced": True, "trust_age_days": 1.25,
                "uptime_s": 3600, "outbox": 0, "ts": utc_iso(now)}

    def info(self) -> dict:
        return {"version": "sim", "venue_id": self.venue_id, "venue_name": f"Simulated venue {self.venue_id}",
                "venue_qr_sha256": sha256_hex(self.venue_id), "hardware": "simulator", "config_sha256": "",
                "ts": utc_iso(datetime.now(timezone.utc))}


class FleetSimulator:
    """``kiosks`` simulated kiosks over ``connections`` MQTT connections."""

    def __init__(self, url: str, kiosks: int, connections: int = 0, sites: int = 0, qos: int = 1, seed: int = 1,
                 prefix: str = "sim", mqtt_config=None, camera_down: int = 0):
        self.rng = random.Random(seed)
        sites = sites or max(1, kiosks // 100)
        self.kiosks = [SimKiosk(Topics(f"{prefix}{i % sites:03d}", f"k{i:06d}"), f"{prefix.upper()}-V{i:06d}")
                       for i in range(kiosks)]
        self.qos = qos
        self.camera_down = camera_down  # the first ``camera_down`` kiosks report a dead camera
        n = max(1, min(connections or 8, kiosks))
        self.clients = []
        for c in range(n):
            client, address = make_client(f"{prefix}-fleet-{c}-{uuid.uuid4().hex[:6]}", url, mqtt_config)
            client.max_inflight_messages_set(1000)
            self.clients.append((client, address))
        self.messages = 0

    def _client(self, i: int) -> mqtt.Client:
        return self.clients[i % len(self.clients)][0]

    def _publish(self, i: int, topic: str, payload: bytes, retain: bool, qos: int | None = None):
        self.messages += 1
        return self._client(i).publish(topic, payload, qos=self.qos if qos is None else qos, retain=retain)

    def connect(self, timeout: float = 10.0) -> None:
        """Connect every connection (raises ConnectionError when the broker is unreachable)."""
        for client, address in self.clients:
            client.connect_async(address.host, address.port, keepalive=60)
            client.loop_start()
        deadline = time.monotonic() + timeout
        while not all(c.is_connected() for c, _ in self.clients):
            if time.monotonic() > deadline:
                self.close()
                raise ConnectionError("cannot reach the broker")
            time.sleep(0.02)

    def announce(self) -> None:
        """Retained status, info, counts and health of every kiosk, as a real kiosk sends on connect."""
        now = datetime.now(timezone.utc)
        for i, k in enumerate(self.kiosks):
            self._publish(i, k.topics.status, ONLINE, True, qos=1)
            self._publish(i, k.topics.info, encode(k.info()), True, qos=1)
            self._publish(i, k.topics.counts, encode(k.counts(now)), True, qos=1)
            self._publish(i, k.topics.health, encode(k.health(now, camera_ok=i >= self.camera_down)), True, qos=1)

    def run(self, rate: float, duration: float, counts_every: int = 1) -> int:
        """Check visitors in at ``rate`` per second across the fleet (0 = as fast as possible); returns how many."""
        done = 0
        start = time.monotonic()
        end = start + duration
        while True:
            now_m = time.monotonic()
            if now_m >= end:
                break
            due = int((now_m - start) * rate) if rate > 0 else done + 200
            if due <= done:
                time.sleep(min(0.005, end - now_m))
                continue
            now = datetime.now(timezone.utc)
            for _ in range(due - done):
                i = self.rng.randrange(len(self.kiosks))
                k = self.kiosks[i]
                self._publish(i, k.topics.events, encode(k.check_in(self.rng, now)), False)
                if k.seq % counts_every == 0:
                    self._publish(i, k.topics.counts, encode(k.counts(now)), True)
            done = due
        return done

    def finish(self, offline: int = 0, timeout: float = 30.0) -> None:
        """Final retained counts for every kiosk; the last ``offline`` kiosks say offline; wait for the broker."""
        now = datetime.now(timezone.utc)
        last = []
        for i, k in enumerate(self.kiosks):
            last.append(self._publish(i, k.topics.counts, encode(k.counts(now)), True, qos=1))
        for i, k in enumerate(self.kiosks[len(self.kiosks) - offline:] if offline else []):
            last.append(self._publish(len(self.kiosks) - offline + i, k.topics.status, OFFLINE, True, qos=1))
        deadline = time.monotonic() + timeout
        for info in last:
            info.wait_for_publish(max(0.01, deadline - time.monotonic()))

    def totals(self) -> dict:
        return {"kiosks": len(self.kiosks), "checkins": sum(k.seq for k in self.kiosks),
                "accepted": sum(k.accepted for k in self.kiosks), "rejected": sum(k.rejected for k in self.kiosks),
                "duplicates": sum(k.duplicates for k in self.kiosks), "messages": self.messages}

    def close(self) -> None:
        for client, _ in self.clients:
            client.disconnect()
            client.loop_stop()
