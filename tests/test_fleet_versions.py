"""The fleet's software (issue 23.5a) and ``kiosk monitor`` without a venue registry (issue 23.6).

Versions come from each kiosk's signed info as the ingest stores it: the query layer is
checked on a store filled through the real ingest, the monitor through the command line
against a real broker.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from centre_helpers import announce_city, centre_over, small_city, write_city
from kiosk.centre.report import report, table
from kiosk.centre.store import open_store
from kiosk.centre.versions import UNKNOWN, fleet_versions, is_behind, newest, newest_run_by_quorum, version_key
from kiosk.testing.city import CitySimulator

ROOT = Path(__file__).resolve().parent.parent


def test_versions_order_as_people_read_them():
    ordered = ["0.1.0", "0.1.1", "0.2.0rc1", "0.2.0", "0.9.2", "0.10.0", "1.0.0.dev3", "1.0", "1.0.1"]
    assert sorted(reversed(ordered), key=version_key) == ordered
    assert version_key("1.0") == version_key("1.0.0")
    assert newest(["0.9.2", UNKNOWN, "0.10.0", None]) == "0.10.0"
    assert newest([UNKNOWN]) is None
    assert is_behind("0.9.2", "0.10.0") and not is_behind("0.10.0", "0.10.0")
    assert not is_behind(UNKNOWN, "0.10.0") and not is_behind("0.1.0", None)


def test_one_kiosk_claiming_a_newer_version_does_not_make_the_fleet_behind():
    # A version is what a kiosk signs: a stolen kiosk's "99.0" is one claim, not the fleet's target.
    assert newest_run_by_quorum(["0.2.0", "0.2.0", "0.1.0", "99.0", UNKNOWN]) == "0.2.0"
    assert newest_run_by_quorum(["0.3.0", "0.3.0", "0.2.0"]) == "0.3.0"  # a canary of two sets it
    assert newest_run_by_quorum(["0.3.0"]) == "0.3.0" and newest_run_by_quorum([UNKNOWN]) is None
    store = open_store()
    city, centre = _city_on_versions(store)
    thief, silent = city.kiosks[0], city.kiosks[-1]
    thief.version = "99.0"
    city.kiosks.remove(silent)
    _, ingest = centre_over(store, city)
    announce_city(ingest, city, time.time() + 1)
    store.write(ingest.take())
    v = fleet_versions(centre)
    assert v["newest_seen"] == "99.0" and v["current"] == "0.2.0"
    old = {(k.site, k.device) for k in city.kiosks if k.version == "0.1.0"}
    assert {(k["site"], k["device"]) for k in v["behind"]} == old and old
    store.close()


def _city_on_versions(store):
    """Twenty venues with kiosks in two districts; kiosks run 0.2.0, 0.1.0 or have sent no info."""
    city = small_city(venues=20, share=1.0, seed=4)
    centre, ingest = centre_over(store, city)
    for i, k in enumerate(city.kiosks):
        k.version = "0.1.0" if i % 3 == 0 else "0.2.0"
    silent = city.kiosks[-1]
    city.kiosks.remove(silent)  # never announces itself: its version is unknown
    announce_city(ingest, city, time.time())
    store.write(ingest.take())
    city.kiosks.append(silent)
    return city, centre


def test_which_version_each_kiosk_runs_per_district_and_for_the_city():
    store = open_store()
    city, centre = _city_on_versions(store)
    v = fleet_versions(centre)
    announced = city.kiosks[:-1]
    old = [k for k in announced if k.version == "0.1.0"]
    assert v["current"] == "0.2.0" and not v["current_given"] and v["newest_seen"] == "0.2.0"
    assert v["totals"]["kiosks"] == len(city.kiosks)
    assert v["totals"]["versions"] == {"0.2.0": len(announced) - len(old), "0.1.0": len(old), UNKNOWN: 1}
    assert list(v["totals"]["versions"]) == ["0.2.0", "0.1.0", UNKNOWN]  # newest first, unknown last
    assert v["totals"]["behind"] == len(old) and v["totals"]["unknown"] == 1
    assert {(k["site"], k["device"]) for k in v["behind"]} == {(k.site, k.device) for k in old}
    # Per district: the same kiosks, filed by their venue's district.
    for d in v["districts"]:
        here = [k for k in city.kiosks if k.venue.district == d["name"]]
        assert d["kiosks"] == len(here)
        assert d["behind"] == sum(k in old for k in here)
    assert sum(d["kiosks"] for d in v["districts"]) == len(city.kiosks)
    assert len(v["districts"]) == 2
    unknown = next(k for k in v["kiosks"] if k["device"] == city.kiosks[-1].device)
    assert unknown["version"] == UNKNOWN and not unknown["behind"] and unknown["info_at"] is None

    # Against a version the operator names: everyone who runs an older one is behind.
    given = fleet_versions(centre, current="0.3.0")
    assert given["current"] == "0.3.0" and given["current_given"]
    assert given["totals"]["behind"] == len(announced)
    # One district only.
    name = v["districts"][0]["name"]
    from kiosk.centre.queries import Scope

    one = fleet_versions(centre, Scope(district=name))
    assert [d["name"] for d in one["districts"]] == [name]
    assert one["totals"] == {k: v for k, v in v["districts"][0].items() if k != "name"}
    store.close()


def test_monitor_report_and_table_show_the_software():
    store = open_store()
    city, centre = _city_on_versions(store)
    rep = report(centre, current_version="0.2.0")
    assert rep["versions"]["totals"]["behind"] == sum(k.version == "0.1.0" for k in city.kiosks[:-1])
    text = table(rep, time.time(), width=120, max_rows=50)
    spread = rep["versions"]["totals"]["versions"]
    assert f"Software: 0.2.0 on {spread['0.2.0']}, 0.1.0 on {spread['0.1.0']}, unknown on 1; " \
           f"{rep['versions']['totals']['behind']} behind 0.2.0 (given)" in text
    behind = rep["versions"]["behind"][0]
    assert f"behind: {behind['site']}/{behind['device']} runs 0.1.0" in text
    store.close()


def cli(*args, timeout=60):
    return subprocess.run([sys.executable, "-m", "kiosk", *args], capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT)


@pytest.fixture
def announced_city(broker, tmp_path):
    city = small_city(venues=10, share=0.6, seed=8)
    for i, k in enumerate(city.kiosks):
        k.version = "0.9.2" if i == 0 else "0.10.0"
    reg, ven = write_city(city, tmp_path)
    sim = CitySimulator(broker.url, city, connections=2)
    sim.connect()
    sim.announce()
    sim.run(0, 0, checkins=30)
    sim.finish()
    sim.close()
    return city, reg, ven


def test_monitor_without_the_venue_registry_says_so_instead_of_misleading_figures(broker, announced_city):
    city, reg, ven = announced_city
    args = ("monitor", "--broker", broker.url, "--registry", str(reg), "--once", "--settle", "0.5")
    out = cli(*args)
    assert out.returncode == 0, out.stderr
    assert "No venue registry (--venues CSV)" in out.stdout
    assert "with a code" not in out.stdout and "unknown-venue" not in out.stdout
    assert f"{len(city.kiosks)}/{len(city.kiosks)} kiosks online" in out.stdout
    # The software line against the newest version seen: the one kiosk on 0.9.2 is behind.
    first = city.kiosks[0]
    assert f"Software: 0.10.0 on {len(city.kiosks) - 1}, 0.9.2 on 1; 1 behind 0.10.0 (newest on 2+ kiosks)" in out.stdout
    assert f"behind: {first.site}/{first.device} runs 0.9.2" in out.stdout

    rep = json.loads(cli(*args, "--json").stdout)
    assert rep["venue_registry"] == {"loaded": False, "venues": 0}
    assert rep["totals"]["venues_with_code"] is None and rep["totals"]["venues_with_scans"] is None
    assert all(d["venues_with_code"] is None for d in rep["districts"])
    assert not [r for r in rep["inspection"] if r["why"] == "unknown-venue"]
    assert rep["totals"]["scans"] == sum(k.scans for k in city.kiosks)
    assert [(k["device"], k["version"]) for k in rep["versions"]["behind"]] == [(first.device, "0.9.2")]

    # With the registry: the venue figures are back, and a given current version counts everyone behind it.
    with_venues = json.loads(cli(*args, "--json", "--venues", str(ven), "--current-version", "0.11").stdout)
    assert with_venues["venue_registry"] == {"loaded": True, "venues": len(city.venues)}
    assert with_venues["totals"]["venues_with_code"] == len(city.venues)
    assert with_venues["versions"]["totals"]["behind"] == len(city.kiosks)
    text = cli(*args, "--venues", str(ven)).stdout
    assert f"of {len(city.venues)} with a code" in text and "No venue registry" not in text


def test_any_stored_version_orders_without_error():
    """A version is whatever a registered kiosk signed: a huge number or control characters change nothing."""
    odd = ["9" * 6000, "\x1b[2J1.0", "", "1.0\x00", "v" * 500]
    assert newest(odd + ["0.2.0"]) in odd + ["0.2.0"]
    assert sorted(odd, key=version_key)  # orders, never raises
