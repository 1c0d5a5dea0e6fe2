"""Helpers for the centre's tests: a small signed city, a fleet registry, waiting on conditions."""

from __future__ import annotations

import json
import time
from pathlib import Path

from kiosk.centre.ingest import Ingest
from kiosk.centre.queries import Centre, Settings
from kiosk.centre.registry import FleetRegistry
from kiosk.centre.simulate import City


def wait_for(cond, timeout: float = 10.0, step: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(step)
    return cond()


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
    from kiosk.centre.simulate import seed_history

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
