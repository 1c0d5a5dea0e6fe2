"""The administrative units (kiosk/centre/admin_units.py), the simulated city's places: Hanoi's real
districts and wards, read from the shared test data by path."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kiosk.centre.admin_units import CHECKOUT_ADMIN, AdminDataError, admin_units
from kiosk.testing.city import City

ROOT = Path(__file__).resolve().parent.parent
SHARED_ADMIN = ROOT.parent / "shared" / "testdata" / "admin"


def simulate(*args, env=None):
    """``kiosk simulate`` as an operator runs it; the broker is never reached (the city is built first)."""
    return subprocess.run([sys.executable, "-m", "kiosk", "simulate", "--broker", "mqtt://127.0.0.1:9", *args],
                          capture_output=True, text=True, timeout=30, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})


def test_the_city_defaults_to_hanoi_from_the_shared_test_data_beside_the_checkout(monkeypatch):
    monkeypatch.delenv("KIOSK_ADMIN_DATA", raising=False)
    assert CHECKOUT_ADMIN.resolve() == SHARED_ADMIN.resolve()
    units = admin_units()
    assert len({u["district_code"] for u in units}) == 30 and len(units) == 579
    city = City.build(600, 0.1, keys=False)
    assert len({v.district for v in city.venues}) == 30
    assert {v.province for v in city.venues} == {"Thành phố Hà Nội"}
    assert not list((ROOT / "kiosk").rglob("hanoi.csv")), "test data must stay in ../shared, not in the package"


def test_another_province_from_admin_dir_and_from_the_environment(tmp_path, monkeypatch):
    city = City.build(50, 0.2, admin=SHARED_ADMIN, province="ha-tinh", keys=False)
    assert {v.province for v in city.venues} == {"Tỉnh Hà Tĩnh"}
    elsewhere = tmp_path / "admin"
    elsewhere.mkdir()
    shutil.copy(SHARED_ADMIN / "ha-tinh.csv", elsewhere / "hanoi.csv")  # the environment's directory wins
    monkeypatch.setenv("KIOSK_ADMIN_DATA", str(elsewhere))
    assert {u["province"] for u in admin_units()} == {"Tỉnh Hà Tĩnh"}


def test_missing_or_wrong_admin_data_is_one_line_naming_the_file(tmp_path):
    r = simulate("--admin", str(tmp_path), "--kiosks", "2")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines() == [f"kiosk simulate: {tmp_path}/hanoi.csv: no such administrative units CSV"]
    (tmp_path / "hanoi.csv").write_text("name,age\nAn,3\n")
    r = simulate("--admin", str(tmp_path), "--kiosks", "2")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    assert "hanoi.csv: not an administrative units CSV" in r.stderr
    r = simulate("--province", "hue", "--kiosks", "2", env={"KIOSK_ADMIN_DATA": str(SHARED_ADMIN)})
    assert r.returncode == 2 and "hue.csv: no such administrative units CSV" in r.stderr


def test_no_admin_data_anywhere_says_how_to_give_it(tmp_path, monkeypatch):
    import kiosk.centre.admin_units as units

    monkeypatch.delenv("KIOSK_ADMIN_DATA", raising=False)
    monkeypatch.setattr(units, "CHECKOUT_ADMIN", tmp_path / "nowhere")  # an installed copy, no checkout around
    with pytest.raises(AdminDataError, match="give --admin DIR .* or set KIOSK_ADMIN_DATA"):
        admin_units()
