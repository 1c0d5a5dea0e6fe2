"""The simulated campaign (``kiosk simulate --campaign``, kiosk/testing/campaign.py): its visits are recorded
once however often it runs (SQLite and PostgreSQL), and its options record into the store they name.
"""

from __future__ import annotations

import time

import pytest

from campaign_desk import city_store, team  # noqa: F401 (a fixture)
from centre_pg import pg_url, postgres_server  # noqa: F401
from kiosk.centre import campaigns, inspection_report, visits
from kiosk.centre.accounts import Accounts
from kiosk.centre.queries import Centre, Settings
from kiosk.centre.store import open_store


def test_a_simulated_campaign_records_its_visits_once(city_store):
    from kiosk.testing import campaign

    store, city = city_store
    centre = Centre(store, Settings(grace_hour=0))
    districts, covers = team(city)
    accounts = Accounts({})
    for name, ds in covers.items():
        accounts.add(name, "pw-long-enough", role="inspector", districts=ds)
    now = time.time()
    first = campaign.run(centre, accounts, "Tháng 12", days=5, sample_share=0.3, venues=city.venues, now=now)
    again = campaign.run(centre, accounts, "Tháng 12", days=5, sample_share=0.3, venues=city.venues, now=now)
    assert first["created"] and first["visits"] > 0 and not again["created"] and again["visits"] == 0
    report = inspection_report.report(store, [first["campaign_id"]])["total"]
    assert report["visited"] == first["visits"]
    assert sum(report[o] for o in visits.OUTCOMES) == report["visited"]


def test_kiosk_simulate_campaign_options_record_into_the_given_store(tmp_path):
    import argparse

    from kiosk.testing import campaign
    from kiosk.testing.city import City

    city = City.build(80, 0.3, districts=2, seed=4, offline=3)
    districts = sorted({v.district for v in city.venues})
    accounts = Accounts({}, str(tmp_path / "accounts.json"))
    accounts.add("lan", "pw-long-enough", role="inspector", districts=districts)
    accounts.save()
    p = argparse.ArgumentParser()
    campaign.add_arguments(p)
    args = p.parse_args(["--campaign", "Tháng 12", "--campaign-store", str(tmp_path / "c.sqlite3"),
                         "--campaign-accounts", str(tmp_path / "accounts.json")])
    args.seed = 1
    done = campaign.from_args(args, city)
    assert done["created"] and done["visits"] >= 0
    store = open_store(tmp_path / "c.sqlite3")
    try:
        plan = campaigns.plan(store, done["campaign_id"])
        offline = {k.venue.venue_id for k in city.kiosks if k.condition == "offline"}
        assert offline <= {r["venue_id"] for r in plan} and {r["inspector"] for r in plan} == {"lan"}
    finally:
        store.close()
    with pytest.raises(campaigns.CampaignError, match="--campaign needs --campaign-store"):
        campaign.from_args(p.parse_args(["--campaign", "x"]), city)
