"""A small simulated city with the registry's kinds and places, on SQLite and on PostgreSQL, and a team of three
inspectors over its districts: what the campaigns' tests and the simulated campaign's tests start from."""

from __future__ import annotations

import pytest

from centre_helpers import seeded_city
from kiosk.centre.store import open_store
from kiosk.centre.venue_places import load_places
from kiosk.testing.campaign import places_of


@pytest.fixture(params=["sqlite", "postgres"])
def city_store(request, tmp_path):
    url = tmp_path / "c.sqlite3" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    store = open_store(url)
    city = seeded_city(store, venues=60, history_days=3)
    load_places(store, places_of(city.venues))
    yield store, city
    store.close()


def team(city) -> tuple[list[str], dict[str, tuple[str, ...]]]:
    """The city's districts, and the districts each inspector covers."""
    districts = sorted({v.district for v in city.venues})
    # a1 covers the first two districts, a2 the first, a3 the last: several districts per inspector work
    return districts, {"a1": tuple(districts[:2]), "a2": (districts[0],), "a3": (districts[-1],)}
