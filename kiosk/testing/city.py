"""A simulated city: venues across Hanoi's real districts and wards, a share with kiosks that sign like real ones.

Each simulated kiosk has its own Ed25519 key and publishes the real signed contract
(BRIEF contracts 1 and 7): retained ``status`` (unsigned last will), signed ``info``,
``counts`` and ``health``, a signed ``events`` message and fresh ``counts`` per check-in.
The city writes the matching venue registry CSV and fleet registry JSON, so a centre
started with them believes these kiosks and nobody else.

Conditions an inspector must see: kiosks offline (for days: their retained health
carries the kiosk's own old time), silent (online by their last will, no signed
message for an hour), camera down, display down; scans follow a daily curve.
Kiosks are spread over a few connections: one TCP connection per simulated kiosk
would measure the operating system rather than the centre.
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

from kiosk.centre.admin_units import DEFAULT_PROVINCE, admin_units
from kiosk.centre.registry import Venue, write_venues
from kiosk.wire.signing import generate_key, kid_of, public_pem, sign_bytes
from kiosk.wire.signing import iso as utc_iso
from kiosk.wire.topics import Topics

_REJECT_REASONS = ("expired", "signature-invalid", "policy:test-too-old", "policy:status", "unknown-format")
_FORMATS = ("eu-dcc", "health-declaration", "pc-covid", "cccd")
# Share of a day's scans per local hour: a morning peak, lunch, an evening peak (2021 venue traffic).
DAY_CURVE = (0, 0, 0, 0, 0, 1, 3, 7, 9, 8, 7, 8, 9, 7, 6, 6, 7, 9, 10, 8, 5, 3, 1, 0)


def qr_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass
class SimKiosk:
    """One simulated kiosk: its key, its venue and the counters its ledger would keep."""

    site: str
    device: str
    venue: Venue
    key: object = field(repr=False, default=None)
    condition: str = ""  # "", "offline", "silent", "camera-down", "display-down"
    seq: int = 0
    day: str = ""
    accepted: int = 0
    rejected: int = 0
    duplicates: int = 0
    hourly: list = field(default_factory=lambda: [0] * 24)
    visitors: set = field(default_factory=set)
    last_scan: str | None = None
    shows_qr: str = ""  # what its screen shows (the registry's code unless told otherwise)
    version: str = "sim"  # the software version its info reports

    def __post_init__(self):
        if self.key is None:
            self.key = generate_key()

    def topic(self, leaf: str) -> str:
        """One of the kiosk's telemetry topics (``leaf`` in :data:`kiosk.wire.topics.LEAVES`), as a kiosk names it."""
        return f"{Topics(self.site, self.device).base}/{leaf}"

    def signed(self, leaf: str, payload: dict) -> bytes:
        return sign_bytes(payload, self.topic(leaf), self.key)

    def check_in(self, rng: random.Random, t: datetime, day: str, hour: int) -> dict:
        """One visitor: 85% accepted, 5% duplicates, 10% rejected with a realistic reason."""
        self.seq += 1
        self.day = day
        self.last_scan = utc_iso(t)
        self.hourly[hour] += 1
        r = rng.random()
        if r < 0.85:
            verdict, reason = "accept", "ok"
            self.accepted += 1
            self.visitors.add(rng.randrange(10_000))
        elif r < 0.90:
            verdict, reason = "accept", "duplicate"
            self.duplicates += 1
        else:
            verdict, reason = "reject", rng.choice(_REJECT_REASONS)
            self.rejected += 1
        return {"id": uuid.uuid4().hex, "seq": self.seq, "time": utc_iso(t), "verdict": verdict, "reason": reason,
                "format": rng.choice(_FORMATS)}

    @property
    def scans(self) -> int:
        return self.accepted + self.rejected + self.duplicates

    def counts(self, day: str, ts: float) -> dict:
        return {"day": day, "accepted": self.accepted, "rejected": self.rejected, "duplicates": self.duplicates,
                "overrides": 0, "by_reason": {}, "by_format": {}, "unique_visitors": len(self.visitors),
                "hourly": list(self.hourly), "dropped_events": 0, "last_scan": self.last_scan, "seq": self.seq,
                "ts": utc_iso(ts)}

    def past_counts(self, rng: random.Random, day: str, tz: str, scans_per_day: int) -> tuple[dict, float]:
        """A past day's last counts message as the kiosk sent it that evening (its ``ts`` at 21:30 local): the
        day's scans spread over the daily curve up to 20:00; the kiosk's lifetime ``seq`` moves on."""
        scans = max(0, int(rng.gauss(scans_per_day, scans_per_day / 3))) if rng.random() > 0.1 else 0
        hourly = [0] * 24
        for _ in range(scans):
            hourly[curve_hour(rng, 20)] += 1
        acc, rej = int(scans * 0.85), int(scans * 0.1)
        self.seq += scans
        d = datetime.fromisoformat(day).replace(hour=21, minute=30, tzinfo=ZoneInfo(tz))
        ts = d.timestamp()
        return ({"day": day, "accepted": acc, "rejected": rej, "duplicates": scans - acc - rej, "overrides": 0,
                 "by_reason": {}, "by_format": {}, "unique_visitors": acc, "hourly": hourly, "dropped_events": 0,
                 "last_scan": utc_iso(d.replace(hour=20).timestamp()) if scans else None, "seq": self.seq,
                 "ts": utc_iso(ts)}, ts)

    def health(self, ts: float) -> dict:
        camera_ok = self.condition != "camera-down"
        display_ok = self.condition != "display-down"
        degraded = [w for w, bad in (("camera-down", not camera_ok), ("display-down", not display_ok)) if bad]
        return {"camera_ok": camera_ok, "camera_error": "" if camera_ok else "camera disappeared: /dev/video0",
                "capture_fps": 30.0 if camera_ok else 0.0, "decode_fps": 29.4 if camera_ok else 0.0,
                "verdict_latency_p95_ms": 41.5, "clock_synced": True, "trust_age_days": 1.25, "uptime_s": 3600,
                "outbox": 0, "display_ok": display_ok, "ledger_ok": True, "gpio_mock": False, "degraded": degraded,
                "intake_dropped": 0, "trust_version": 7, "trust_age_hours": 30.0, "trust_stale": False,
                "ts": utc_iso(ts)}

    def info(self, ts: float) -> dict:
        v = self.venue
        return {"version": self.version, "venue_id": v.venue_id, "venue_name": v.name,
                "venue_qr_sha256": self.shows_qr or v.venue_qr_sha256, "hardware": "simulator", "config_sha256": "",
                "address": v.address, "province": v.province, "district": v.district, "ward": v.ward,
                "province_code": v.province_code, "district_code": v.district_code, "ward_code": v.ward_code,
                "kid": kid_of(self.key.public_key()), "ts": utc_iso(ts)}


@dataclass
class City:
    """Venues (all with a code), the kiosks of some of them, and what is wrong with a few."""

    venues: list[Venue]
    kiosks: list[SimKiosk]
    timezone: str = "Asia/Ho_Chi_Minh"

    @classmethod
    def build(cls, venues: int, kiosk_share: float = 0.2, seed: int = 1, districts: int = 0, offline: int = 0,
              silent: int = 0, camera_down: int = 0, display_down: int = 0, prefix: str = "hn",
              admin: str | Path | None = None, keys: bool = True, province: str = DEFAULT_PROVINCE,
              key_seed: int | None = None) -> "City":
        """``venues`` venues spread over the city's wards (the first ``districts`` districts, 0 = all).

        ``key_seed``: the kiosks' keys follow from it (``kiosk simulate``: the same city from the same
        ``--seed`` in another run, so a demo's registry written by one run believes the next); None: random.
        """
        rng = random.Random(seed)
        units = admin_units(admin, province)
        if districts:
            keep = sorted({u["district_code"] for u in units})[:districts]
            units = [u for u in units if u["district_code"] in keep]
        streets = ("Trần Hưng Đạo", "Lê Duẩn", "Nguyễn Trãi", "Kim Mã", "Láng Hạ", "Giải Phóng", "Hoàng Quốc Việt",
                   "Phạm Văn Đồng", "Xã Đàn", "Tôn Đức Thắng")
        kinds = ("Quán cà phê", "Cửa hàng", "Nhà hàng", "Siêu thị", "Hiệu thuốc", "Chợ", "Trường", "Văn phòng")
        out_venues, out_kiosks = [], []
        n_kiosks = round(venues * kiosk_share)
        with_kiosk = set(rng.sample(range(venues), n_kiosks)) if n_kiosks < venues else set(range(venues))
        for i in range(venues):
            u = units[i % len(units)]
            vid = f"{prefix.upper()}-{u['ward_code']}-{i:06d}"
            v = Venue(vid, f"{kinds[i % len(kinds)]} {i}", f"{1 + i % 300} {streets[i % len(streets)]}, {u['ward']}",
                      u["province"], u["district"], u["ward"], u["province_code"], u["district_code"],
                      u["ward_code"], qr_hash(f"venue:{vid}"))
            out_venues.append(v)
            if i in with_kiosk:
                site, device = f"{prefix}-{u['district_code']}", f"k{i:06d}"
                key = None
                if keys:
                    key = _seeded_key(key_seed, site, device) if key_seed is not None else generate_key()
                k = SimKiosk(site, device, v, key=key)
                out_kiosks.append(k)
        order = list(range(len(out_kiosks)))
        rng.shuffle(order)
        for cond, n in (("offline", offline), ("silent", silent), ("camera-down", camera_down),
                        ("display-down", display_down)):
            for _ in range(min(n, len(order))):
                out_kiosks[order.pop()].condition = cond
        return cls(out_venues, out_kiosks)

    def registry(self) -> dict:
        """The fleet registry (BRIEF contract 2) of the city's kiosks."""
        return {"version": 1, "kiosks": [
            {"site": k.site, "device": k.device, "venue_id": k.venue.venue_id, "kid": kid_of(k.key.public_key()),
             "public_key": public_pem(k.key).decode(), "revoked": False} for k in self.kiosks]}

    def write(self, registry_path: str | Path | None = None, venues_path: str | Path | None = None) -> None:
        if registry_path:
            p = Path(registry_path)
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(json.dumps(self.registry(), indent=1), encoding="utf-8")
        if venues_path:
            write_venues(venues_path, self.venues)

    def local_now(self) -> datetime:
        return datetime.now(ZoneInfo(self.timezone))


def _seeded_key(seed: int, site: str, device: str):
    """A simulated kiosk's key from the simulation's seed (a demo's only: anyone knowing the seed has it)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return Ed25519PrivateKey.from_private_bytes(hashlib.sha256(f"kiosk-simulate:{seed}:{site}/{device}".encode())
                                                .digest())


def curve_hour(rng: random.Random, upto: int) -> int:
    """A local hour drawn from the daily curve, no later than ``upto`` (scans so far today)."""
    weights = [w if h <= upto else 0 for h, w in enumerate(DAY_CURVE)]
    if not any(weights):
        return upto
    return rng.choices(range(24), weights)[0]


class CitySimulator:
    """Publishes a :class:`City` over ``connections`` MQTT connections (the real signed contract)."""

    def __init__(self, url: str, city: City, connections: int = 8, qos: int = 1, seed: int = 1, mqtt_config=None,
                 client_prefix: str = "sim"):
        from kiosk.wire.broker import make_client

        self.city = city
        self.rng = random.Random(seed)
        self.qos = qos
        n = max(1, min(connections, len(city.kiosks) or 1))
        self.clients = []
        for c in range(n):
            client, address = make_client(f"{client_prefix}-city-{c}-{uuid.uuid4().hex[:6]}", url, mqtt_config)
            client.max_inflight_messages_set(1000)
            self.clients.append((client, address))
        self.messages = 0
        self._last = []
        self.clock = time.time  # the kiosks' clocks (a test may set them back: a city announced ten minutes ago)

    def _publish(self, i: int, topic: str, payload: bytes, retain: bool, qos: int | None = None):
        self.messages += 1
        info = self.clients[i % len(self.clients)][0].publish(topic, payload, qos=self.qos if qos is None else qos,
                                                               retain=retain)
        return info

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
        """What each kiosk has retained on the broker: offline ones from days ago, silent ones from an hour ago."""
        now = self.clock()
        today = self.city.local_now().date().isoformat()
        for i, k in enumerate(self.city.kiosks):
            if k.condition == "offline":
                then = now - (2 + i % 5) * 86400 - 3600  # went offline days ago (its own clock says when)
                day = datetime.fromtimestamp(then, ZoneInfo(self.city.timezone)).date().isoformat()
                self._publish(i, k.topic("info"), k.signed("info", k.info(then)), True, 1)
                self._publish(i, k.topic("health"), k.signed("health", k.health(then)), True, 1)
                self._publish(i, k.topic("counts"), k.signed("counts", k.counts(day, then)), True, 1)
                self._publish(i, k.topic("status"), b"offline", True, 1)
                continue
            ts = now - 3600 if k.condition == "silent" else now
            # a silent kiosk's last counts are of its own day then (yesterday, in the first hour after midnight)
            day = today if ts == now else datetime.fromtimestamp(ts, ZoneInfo(self.city.timezone)).date().isoformat()
            self._publish(i, k.topic("status"), b"online", True, 1)
            self._publish(i, k.topic("info"), k.signed("info", k.info(ts)), True, 1)
            self._publish(i, k.topic("health"), k.signed("health", k.health(ts)), True, 1)
            self._publish(i, k.topic("counts"), k.signed("counts", k.counts(day, ts)), True, 1)

    def seed_history(self, days: int, scans_per_day: int = 40) -> int:
        """The last ``days`` days' counts, as each kiosk signed them on the evening of each day (not retained:
        the broker keeps today's), through the centre's own ingest: the figures, the rollup and the charts get
        a month of history the centre believes. Offline kiosks have none after the day they went offline.
        Returns the messages sent; call before :meth:`announce` (the kiosks' ``seq`` grows with the days)."""
        today = self.city.local_now().date()
        now = self.clock()
        sent = []
        for i, k in enumerate(self.city.kiosks):
            gone = now - (2 + i % 5) * 86400 - 3600 if k.condition == "offline" else now
            for back in range(days, 0, -1):
                day = (today - timedelta(days=back)).isoformat()
                payload, ts = k.past_counts(self.rng, day, self.city.timezone, scans_per_day)
                if ts >= gone:
                    continue
                sent.append(self._publish(i, k.topic("counts"), k.signed("counts", payload), False, 1))
        for info in sent:
            info.wait_for_publish(10)
        return len(sent)

    def send_health(self) -> int:
        """Every kiosk that is on (not offline, not silent) signs its health now, as a real one does every
        minute: without it the centre calls a kiosk silent after ``--stale-minutes``."""
        now = self.clock()
        sent = []
        for i, k in enumerate(self.city.kiosks):
            if k.condition in ("offline", "silent"):
                continue
            sent.append(self._publish(i, k.topic("health"), k.signed("health", k.health(now)), True, 1))
        for info in sent:  # on the broker before the run goes on (or the simulator disconnects)
            info.wait_for_publish(10)
        return len(sent)

    def active(self) -> list[int]:
        return [i for i, k in enumerate(self.city.kiosks) if k.condition not in ("offline", "silent")]

    def check_in(self, i: int, counts: bool = True) -> None:
        k = self.city.kiosks[i]
        local = self.city.local_now()
        hour = curve_hour(self.rng, local.hour)
        # never in the future: a visitor of an hour not begun is "now" (and counted in this hour, as a kiosk would)
        t = min(local.replace(hour=hour, minute=self.rng.randrange(60), second=self.rng.randrange(60)), local)
        day = local.date().isoformat()
        self._publish(i, k.topic("events"), k.signed("events", k.check_in(self.rng, t, day, t.hour)), False)
        if counts:
            self._publish(i, k.topic("counts"), k.signed("counts", k.counts(day, time.time())), True)

    def run(self, rate: float, duration: float, counts_every: int = 1, checkins: int | None = None,
            health_every: float = 60.0, curve: bool = False, stop: threading.Event | None = None) -> int:
        """Visitors at ``rate`` a second across the active kiosks (0 = as fast as possible) for ``duration`` s
        (``float("inf")``: until ``stop`` is set), or exactly ``checkins`` of them; returns how many.

        When it starts and every ``health_every`` seconds after, each kiosk that is on signs its health (0:
        never). ``curve``: the rate follows the day's curve (:data:`DAY_CURVE`, ``rate`` at the busiest hour;
        none at night)."""
        active = self.active()
        if not active:
            return 0
        done = 0
        start = time.monotonic()
        end = start + duration
        next_health = start if health_every > 0 else float("inf")  # a round when the run starts, then every N s
        owed = 0.0
        last = start
        while True:
            now_m = time.monotonic()
            if now_m >= next_health:
                self.send_health()
                next_health = now_m + health_every
            if checkins is not None and done >= checkins:
                break
            if (checkins is None and now_m >= end) or (stop is not None and stop.is_set()):
                break
            if curve and rate > 0:
                owed += (now_m - last) * rate * DAY_CURVE[self.city.local_now().hour] / max(DAY_CURVE)
                last = now_m
                due = done + int(owed)
                owed -= int(owed)
            else:
                due = int((now_m - start) * rate) if rate > 0 else done + 200
            if checkins is not None:
                due = min(checkins, due if rate > 0 else done + 200)
            if due <= done:
                time.sleep(0.005)
                continue
            for _ in range(due - done):
                i = self.rng.choice(active)
                self.check_in(i, counts=self.city.kiosks[i].seq % counts_every == 0)
            done = due
        return done

    def finish(self, timeout: float = 30.0) -> None:
        """Final retained counts of every active kiosk; wait until the broker has them all."""
        today = self.city.local_now().date().isoformat()
        last = []
        for i in self.active():
            k = self.city.kiosks[i]
            last.append(self._publish(i, k.topic("counts"), k.signed("counts", k.counts(today, time.time())), True, 1))
        deadline = time.monotonic() + timeout
        for info in last:
            info.wait_for_publish(max(0.01, deadline - time.monotonic()))

    def totals(self) -> dict:
        ks = self.city.kiosks
        return {"venues": len(self.city.venues), "kiosks": len(ks), "checkins": sum(k.scans for k in ks),
                "accepted": sum(k.accepted for k in ks), "rejected": sum(k.rejected for k in ks),
                "duplicates": sum(k.duplicates for k in ks), "messages": self.messages,
                "venues_with_scans": len({k.venue.venue_id for k in ks if k.scans})}

    def close(self) -> None:
        for client, _ in self.clients:
            client.disconnect()
            client.loop_stop()


def seed_history(store, city: City, days: int, seed: int = 1, scans_per_day: int = 40) -> int:
    """Past days' figures straight into a store (what the centre would have recorded); returns rows."""
    from kiosk.centre.ingest import Batch

    rng = random.Random(seed)
    today = city.local_now().date()
    n = 0
    for back in range(days, 0, -1):
        day = (today - timedelta(days=back)).isoformat()
        batch = Batch()
        for k in city.kiosks:
            scans = max(0, int(rng.gauss(scans_per_day, scans_per_day / 3))) if rng.random() > 0.15 else 0
            acc, rej = int(scans * 0.85), int(scans * 0.1)
            batch.daily[(k.site, k.device, day)] = (k.site, k.device, day, k.venue.venue_id, acc, rej,
                                                    scans - acc - rej, 0, acc, 0, scans, None, 0.0)
        n += store.write(batch)
    return n
