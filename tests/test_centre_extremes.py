"""Issue 19.3: whatever is stored, every query answers, and ``kiosk monitor`` prints.

The store is written straight (as an earlier centre, or a hand in the database, may have left it):
BIGINT extremes, NaN and infinities, times from before year 1 to after 9999, odd Unicode, NUL
characters and, in SQLite, text where numbers belong. Every ``Centre`` query is called and its answer
held to the query layer's contract (kiosk/centre/queries.py), on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kiosk.centre.queries import INSPECTION_KINDS, Centre, Scope, Settings
from kiosk.centre.report import report, table
from kiosk.centre.store import open_store
from centre_helpers import assert_answer_contract, registry_of, small_city, write_city, write_extremes
from centre_pg import pg_url, postgres_server  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(params=["sqlite", "postgres"])
def store(request, tmp_path):
    s = open_store(tmp_path / "centre.sqlite3") if request.param == "sqlite" else open_store(
        request.getfixturevalue("pg_url"))
    yield s
    s.close()


def every_answer(centre: Centre, venue_ids: list[str]) -> list:
    """Every query of the query layer, over every district, venue and kind there is (and a few that are not)."""
    districts = centre.districts()
    odd = ["", "\x00", "Quận\x00 1", "\u202e"]
    out = [centre.overview(), centre.kiosks(), centre.history(), centre.history(days=10 ** 9),
           centre.history(days=-3), centre.hourly(), centre.inspection(), centre.inspection(limit=3, offset=10 ** 21),
           centre.inspection(limit=10 ** 21, offset=-5), list(centre.inspection_rows()), centre.refused(),
           centre.refused(limit=10 ** 30), centre.daily_report(), districts, centre.venues_with_code()]
    for d in [*districts, *odd]:
        scope = Scope(district=d)
        out += [centre.district(d), centre.venues(scope), centre.inspection(scope), centre.history(scope),
                centre.hourly(scope), centre.kiosks(scope), centre.overview(scope), centre.daily_report(scope),
                centre.venues_with_code(scope), list(centre.inspection_rows(scope))]
        for ward in {w["name"] for w in centre.district(d)["wards"]} | {"\x00"}:
            out.append(centre.venues(Scope(district=d, ward=ward)))
    for kind in [*INSPECTION_KINDS, "\x00", "nonsense"]:
        out += [centre.inspection(kinds=(kind,)), list(centre.inspection_rows(kinds=(kind,)))]
    for v in [*venue_ids, *(r["venue_id"] for r in centre.venues(Scope())), "\x00"]:
        out.append(centre.venue(v))
    return out


def test_every_query_answers_whatever_is_stored(store):
    city = small_city(venues=30, share=0.5, offline=1, camera_down=1)
    reg = registry_of(city)
    store.load_fleet(reg)
    store.import_venues(city.venues)
    venue_ids = write_extremes(store, city)
    store.refresh_scan_days()  # what a centre's start does on such a store (load_fleet)
    store.refresh_rollup()  # and its rollup of the figures
    now = time.time()
    for grace in (0, 23):  # before and after the "no scans today" hour
        centre = Centre(store, Settings(clock=lambda: now, grace_hour=grace))
        answers = every_answer(centre, venue_ids)
        for a in answers:
            assert_answer_contract(a)
        json.dumps(answers, allow_nan=False)  # what the API and --json print: valid JSON
        rep = report(centre)
        assert_answer_contract(rep)
        text = table(rep, now, width=120, max_rows=1000)
        assert "\x1b" not in text and "\x00" not in text  # nothing repaints the operator's terminal
    kinds = centre.inspection()["by_kind"]
    assert "implausible" in kinds and "silent" in kinds  # the odd rows are listed, not dropped
    figures = centre.overview()["totals"]
    assert figures["scans"] > 0 and figures["kiosks"] == len(city.kiosks) + 10


def test_monitor_prints_a_store_an_earlier_centre_left(broker, tmp_path):
    """``kiosk monitor --once --json`` and the table over such a store: exit 0, valid JSON, no traceback."""
    city = small_city(venues=20, share=0.5)
    reg, ven = write_city(city, tmp_path)
    db = tmp_path / "centre.sqlite3"
    s = open_store(db)
    s.load_fleet(registry_of(city))
    s.import_venues(city.venues)
    write_extremes(s, city)
    s.close()
    for extra in (["--json"], []):
        r = subprocess.run([sys.executable, "-m", "kiosk", "monitor", "--broker", broker.url, "--registry", str(reg),
                            "--venues", str(ven), "--db", str(db), "--once", "--settle", "0.2", *extra],
                           capture_output=True, text=True, timeout=60, cwd=ROOT)
        assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
        if extra:
            rep = json.loads(r.stdout, parse_constant=lambda c: pytest.fail(f"{c} in the JSON"))
            assert_answer_contract(rep)
            assert len(rep["kiosks"]) == len(city.kiosks)
        else:
            assert "Inspection list" in r.stdout and "\x1b" not in r.stdout
