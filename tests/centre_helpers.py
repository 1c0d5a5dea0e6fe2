"""Helpers for the centre's tests: a small signed city, a fleet registry, waiting on conditions."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from pathlib import Path

from helpers import wait_for  # noqa: F401  (the one poll of the tests; the centre's tests import it from here)
from kiosk.centre.ingest import Ingest
from kiosk.centre.queries import Centre, Settings
from kiosk.centre.registry import FleetRegistry
from kiosk.testing.city import City


def small_city(venues: int = 12, share: float = 0.5, **kw) -> City:
    return City.build(venues, share, districts=2, seed=kw.pop("seed", 3), **kw)


def write_city(city: City, tmp: Path) -> tuple[Path, Path]:
    reg, ven = tmp / "fleet.json", tmp / "venues.csv"
    city.write(reg, ven)
    return reg, ven


def registry_of(city: City) -> FleetRegistry:
    return FleetRegistry.from_json(json.loads(json.dumps(city.registry())))


def centre_over(store, city: City, venues: bool = True, **settings) -> tuple[Centre, Ingest]:
    reg = registry_of(city)
    store.load_fleet(reg)
    if venues:
        store.import_venues(city.venues)
    return Centre(store, Settings(**settings)), Ingest(reg)


class LiveServer:
    """The dashboard app served by a real uvicorn in a thread, on a free port."""

    def __init__(self, app):
        import socket
        import threading

        import uvicorn

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        # proxy_headers=False as `kiosk centre` runs it: the peer is the client unless --trusted-proxy.
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    access_log=False, lifespan="off", proxy_headers=False))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        assert wait_for(lambda: self.server.started, 10), "uvicorn did not start"
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


class Browser:
    """A minimal HTTP client with cookies (urllib): logs in, fetches pages and JSON, keeps status codes."""

    def __init__(self, base: str):
        import http.cookiejar
        import urllib.request

        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def request(self, path: str, data: dict | None = None) -> tuple[int, str, dict]:
        import urllib.error
        import urllib.parse
        import urllib.request

        body = urllib.parse.urlencode(data).encode() if data is not None else None
        req = urllib.request.Request(self.base + urllib.parse.quote(path, safe="/?&=%"), data=body)
        try:
            with self.opener.open(req, timeout=30) as r:
                return r.status, r.read().decode("utf-8"), dict(r.headers)
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode("utf-8"), dict(e.headers)

    def csrf(self, page: str = "/login") -> str:
        """The CSRF token of the forms on ``page`` (the login form's before a session, else the session's)."""
        import re

        found = re.search(r'name="csrf" value="([^"]+)"', self.request(page)[1])
        assert found, f"no CSRF token on {page}"
        return found.group(1)

    def login(self, name: str, password: str) -> int:
        return self.request("/login", {"name": name, "password": password, "next": "", "csrf": self.csrf()})[0]

    def post(self, path: str, data: dict | None = None, page: str = "/inspection") -> tuple[int, str, dict]:
        """A form of the dashboard's pages (logout, language) with the token ``page`` carries."""
        return self.request(path, {**(data or {}), "csrf": self.csrf(page)})

    def json(self, path: str):
        status, text, _ = self.request(path)
        return status, (json.loads(text) if text.startswith(("{", "[")) else text)


def seeded_city(store, venues: int = 60, share: float = 0.5, history_days: int = 30, seed: int = 5):
    """A small city with kiosks in every condition, today's scans and 30 days of history in ``store``."""
    import random as _random

    city = City.build(venues, share, districts=3, seed=seed, offline=2, silent=1, camera_down=1, display_down=1)
    reg = registry_of(city)
    store.load_fleet(reg)
    store.import_venues(city.venues)
    ingest = Ingest(reg)
    now = time.time()
    local = city.local_now()
    day = local.date().isoformat()
    announce_city(ingest, city, now)
    rng = _random.Random(seed)
    active = [k for k in city.kiosks if not k.condition]
    for _ in range(300):
        k = rng.choice(active[:-3])
        ingest.handle(k.topic("events"), k.signed("events", k.check_in(rng, local, day, local.hour)))
        ingest.handle(k.topic("counts"), k.signed("counts", k.counts(day, time.time())))
    store.write(ingest.take())
    from kiosk.testing.city import seed_history

    seed_history(store, city, history_days, scans_per_day=20)
    return city


def announce_city(ingest, city, now: float) -> None:
    """Every simulated kiosk's status, info and health as the centre would get them: offline ones
    last heard three days ago, silent ones an hour ago, the rest now."""
    for k in city.kiosks:
        if k.condition == "offline":
            then = now - 3 * 86400
            ingest.handle(k.topic("health"), k.signed("health", k.health(then)))
            ingest.handle(k.topic("info"), k.signed("info", k.info(then)))
            ingest.handle(k.topic("status"), b"offline")
            continue
        ts = now - 3600 if k.condition == "silent" else now
        ingest.handle(k.topic("status"), b"online")
        ingest.handle(k.topic("info"), k.signed("info", k.info(ts)))
        ingest.handle(k.topic("health"), k.signed("health", k.health(ts)))


# -- a store holding whatever an earlier centre (or a hand in the database) may have put there (issue 19.3) ----

BIGINT_MAX, BIGINT_MIN = 2 ** 63 - 1, -(2 ** 63)
ODD_TEXTS = ("\u202eevil right-to-left", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 🏥 bệnh viện", "Quận\u0301 Ba\u0300 Đình", "a" * 10_000,
             "=HYPERLINK(\"http://evil.example\")", "+cmd|' /C calc'!A0", "\x1b[2J\x1b[31mred", "")


def extreme_values(dialect: str) -> dict:
    """What each column kind may hold in a store of ``dialect`` (``sqlite`` or ``postgres``).

    PostgreSQL: BIGINT extremes, NaN and infinities in double precision columns, no NUL in text. SQLite
    keeps whatever it is given: also NUL characters, text where a number belongs and bytes where text does.
    """
    nan = float("nan")
    times = [1e300, -1e300, 253402300800.0 + 86400, 253402300799.0, -62135596801.0, 0.0, float("inf"),
             float("-inf"), 1.7976931348623157e308, -1.7976931348623157e308]
    ints = [BIGINT_MAX, BIGINT_MIN, 2 ** 53, -1, 0]
    texts = list(ODD_TEXTS)
    if dialect == "sqlite":
        times += ["NaN", "abc", b"\x00\xff"]  # SQLite stores a float NaN as NULL: NaN-like text instead
        ints += [1e308, -1e308, "NaN", "12abc", 2.5]
        texts += ["nul\x00inside", b"\xff\xfe bytes", 7, 1e308]
    else:
        times += [nan]
    flags = [2 ** 31 - 1, -(2 ** 31), -1, 2, 1, 0]  # PostgreSQL's INTEGER is 32 bits
    if dialect == "sqlite":
        flags += ints
    return {"time": times, "int": ints, "flag": flags, "text": texts}


def write_extremes(store, city) -> list[str]:
    """Rows with extreme values in every table for every kiosk of ``city`` (each kiosk its own mix), a few
    kiosks and venues of their own, written straight into ``store``; returns the venue ids written."""
    from kiosk.centre.store import DERIVED, TABLES, columns

    x = extreme_values(store.dialect)
    today = city.local_now().date().isoformat()
    days = [today, "9999-12-31", "0000-00-00", "x\u202e", (city.local_now().date() - timedelta(days=1)).isoformat()]

    def pick(kind: str, i: int):
        values = x[kind]
        return values[i % len(values)]

    def put(table: str, row: dict) -> None:
        cols = [*columns(table), *(c.split()[0] for c in DERIVED.get(table, ()))]
        keys = [c for c in cols if c in row]
        store.execute(f"INSERT INTO {table} ({', '.join(keys)}) VALUES ({', '.join('?' for _ in keys)})",
                      [row[c] for c in keys])

    def value(table: str, col: str, i: int):
        decl = next(c for c in TABLES[table] + DERIVED.get(table, ()) if c.split()[0] == col)
        kind = "int" if "BIGINT" in decl else "flag" if "INTEGER" in decl else "time" if "DOUBLE" in decl else "text"
        return pick(kind, i * 7 + len(col))

    venue_ids = []
    for i in range(12):  # venues of their own, odd in every column, registered or not
        vid = f"X-{i}-{pick('text', i)[:20] if isinstance(pick('text', i), str) else i}"
        row = {c: value("venues", c, i) for c in columns("venues") if c not in ("venue_id", "registered")}
        put("venues", {**row, "venue_id": vid, "registered": (0, 1, BIGINT_MAX)[i % 3] if store.dialect == "sqlite"
                       else i % 2, "last_scan_day": days[i % len(days)]})
        venue_ids.append(vid)
    n = 0
    for i, k in enumerate(city.kiosks):
        key = {"site": k.site, "device": k.device}
        for table in ("kiosk_info", "kiosk_status", "kiosk_health", "kiosk_seen", "kiosk_implausible"):
            put(table, {**{c: value(table, c, i + n) for c in columns(table)}, **key})
            n += 1
        for d, day in enumerate(days):
            put("daily", {**{c: value("daily", c, i + d) for c in columns("daily")}, **key, "day": day,
                          "venue_id": k.venue.venue_id})
            put("hourly", {**{c: value("hourly", c, i + d + h) for h, c in enumerate(columns("hourly"))}, **key,
                           "day": day})
    for i in range(10):
        put("refused", {"topic": f"checkin/v1/{i}/{pick('text', i)}", "reason": pick("text", i + 1),
                        "n": pick("int", i), "last_at": pick("time", i)})
        put("fleet", {"site": f"odd-{i}", "device": str(pick("text", i))[:50], "venue_id": venue_ids[i],
                      "kid": "0" * 16, "revoked": 0})
        put("kiosk_seen", {"site": f"odd-{i}", "device": str(pick("text", i))[:50], "last_ts": pick("time", i),
                           "last_seq": pick("int", i), "last_scan": pick("time", i + 3)})
    return venue_ids


def assert_answer_contract(answer, path: str = "") -> None:
    """The query layer's contract (kiosk/centre/queries.py): JSON without NaN, figures ints within 0..2**53-1,
    times ISO 8601 UTC strings or None, shares (``scan_share``) floats in 0..1 or None, no other numbers."""
    from datetime import datetime

    if isinstance(answer, dict):
        for k, v in answer.items():
            assert isinstance(k, str), path
            if k in ("since", "last_scan", "last_heard", "last_at", "generated") and v is not None:
                assert isinstance(v, str) and v.endswith("Z"), (path, k, v)
                datetime.fromisoformat(v.replace("Z", "+00:00"))
            elif k == "scan_share" and v is not None:  # a share of venues, 0..1
                assert type(v) is float and 0 <= v <= 1, (path, k, v)
            else:
                assert_answer_contract(v, f"{path}.{k}")
    elif isinstance(answer, (list, tuple)):
        for i, v in enumerate(answer):
            assert_answer_contract(v, f"{path}[{i}]")
    elif isinstance(answer, bool) or answer is None or isinstance(answer, str):
        pass
    else:
        assert type(answer) is int and 0 <= answer <= 2 ** 53 - 1, (path, answer)
