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
