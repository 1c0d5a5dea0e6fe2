"""The dashboard over HTTP (a real uvicorn): login, accounts, district scope, API twins of the pages, CSV."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from kiosk.centre.accounts import Accounts
from kiosk.centre.limiter import LoginLimiter
from kiosk.centre.queries import Centre, Settings
from kiosk.centre.store import open_store
from kiosk.centre.web import create_app
from centre_helpers import Browser, LiveServer, seeded_city

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("web")
    store = open_store(tmp / "centre.sqlite3")
    city = seeded_city(store)
    districts = sorted({v.district for v in city.venues})
    accounts = Accounts.load(tmp / "accounts.json")
    accounts.add("city", PASSWORD, None)
    accounts.add("d0", PASSWORD, districts[0])
    accounts.add("d1", PASSWORD, districts[1])
    accounts.save()
    centre = Centre(store, Settings(grace_hour=0, offline_hours=1.0))
    server = LiveServer(create_app(centre, Accounts.load(tmp / "accounts.json"), secure_cookies=False,
                                   limiter=LoginLimiter(failures=3)))
    yield server, city, districts, centre, tmp
    server.stop()
    store.close()


def test_every_page_and_api_needs_a_login(site):
    server, city, districts, *_ = site
    b = Browser(server.url)
    status, text, _ = b.request("/")
    assert status == 200 and 'id="login-form"' in text  # redirected to the login page
    for path in ("/api/v1/overview", f"/api/v1/districts/{districts[0]}", "/api/v1/inspection", "/api/v1/refused"):
        assert b.json(path)[0] == 401
    assert b.request("/report.csv")[1].count("login-form") == 1


def test_city_account_sees_figures_equal_to_the_simulated_city(site):
    server, city, districts, centre, _ = site
    b = Browser(server.url)
    assert b.login("city", PASSWORD) == 200
    status, o = b.json("/api/v1/overview")
    assert status == 200
    assert o["totals"]["scans"] == sum(k.scans for k in city.kiosks)
    assert o["totals"]["venues_with_code"] == len(city.venues)
    assert [d["name"] for d in o["districts"]] == districts
    assert o["generated"].endswith("Z")
    page = b.request("/")[1]
    for d in o["districts"]:
        assert f'data-f="districts.{o["districts"].index(d)}.scans">{d["scans"]}<' in page
    status, h = b.json("/api/v1/history")
    assert len(h["history"]) == 30 and h["history"][-1]["scans"] == o["totals"]["scans"]
    assert sum(b.json("/api/v1/hourly")[1]["hourly"]) == o["totals"]["scans"]
    svg = b.request("/charts/history.svg")[1]
    assert svg.startswith("<svg") and "<rect" in svg
    assert b.json("/api/v1/refused")[0] == 200


def test_district_account_is_held_to_its_district(site):
    server, city, districts, centre, _ = site
    b = Browser(server.url)
    assert b.login("d0", PASSWORD) == 200
    status, text, _ = b.request("/")
    assert 'id="district-name">' + districts[0] in text  # its home is its district
    assert b.json(f"/api/v1/districts/{districts[0]}")[0] == 200
    assert b.request(f"/district/{districts[1]}")[0] == 403
    assert b.json(f"/api/v1/districts/{districts[1]}")[0] == 403
    assert b.json("/api/v1/overview")[0] == 403
    assert b.json(f"/api/v1/inspection?district={districts[1]}")[0] == 403
    assert b.json("/api/v1/refused")[0] == 403
    other = next(v for v in city.venues if v.district == districts[1])
    assert b.json(f"/api/v1/venues/{other.venue_id}")[0] == 404  # not even whether it exists
    status, insp = b.json("/api/v1/inspection")
    assert insp["rows"] and {r["district"] for r in insp["rows"]} == {districts[0]}
    b.post("/lang/en", {"next": "/"})  # the CSV's machine form (snake_case, UTC): an English session's
    rep = list(csv.DictReader(io.StringIO(b.request("/report.csv")[1].lstrip("\ufeff"))))
    assert {r["district"] for r in rep} == {districts[0]}
    kiosks = b.json("/api/v1/kiosks")[1]["kiosks"]
    assert kiosks and {k["district"] for k in kiosks} == {districts[0]}


def test_daily_report_and_inspection_csv(site):
    server, city, districts, centre, _ = site
    b = Browser(server.url)
    b.login("city", PASSWORD)
    # A Vietnamese session's report: Vietnamese headers and levels, the share as a percentage, a total row.
    status, text, headers = b.request("/report.csv")
    assert status == 200 and "attachment" in headers["content-disposition"] and text.startswith("\ufeff")
    vi = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
    assert list(vi[0])[:4] == ["Cấp", "Quận/huyện", "Phường/xã", "Địa điểm có mã"]
    assert {r["Cấp"] for r in vi} == {"Quận/huyện", "Phường/xã", "Tổng"}
    assert vi[-1]["Cấp"] == "Tổng" and int(vi[-1]["Lượt quét"]) == sum(k.scans for k in city.kiosks)
    insp_vi = list(csv.DictReader(io.StringIO(b.request("/inspection.csv")[1].lstrip("\ufeff"))))
    since = [r["Từ lúc (giờ địa phương)"] for r in insp_vi if r["Từ lúc (giờ địa phương)"]]
    assert since and all(len(t) == 16 and t[10] == " " and not t.endswith("Z") for t in since)  # local, no UTC
    assert "Không có lượt quét hôm nay" in {r["Vấn đề"] for r in insp_vi}
    b.post("/lang/en", {"next": "/"})  # an English session: the machine form (snake_case, UTC)
    status, text, headers = b.request("/report.csv")
    rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
    assert [r["district"] for r in rows if r["level"] == "district"] == districts
    assert rows[-1]["level"] == "total" and rows[-1]["district"] == ""
    assert sum(int(r["scans"]) for r in rows if r["level"] == "ward") == sum(k.scans for k in city.kiosks)
    insp = list(csv.DictReader(io.StringIO(b.request("/inspection.csv")[1].lstrip("\ufeff"))))
    assert len(insp) == centre.inspection()["total"]
    assert [r["venue_id"] for r in insp] == [r["venue_id"] for r in centre.inspection()["rows"]]
    status, first = b.json("/api/v1/inspection?limit=3&offset=2")
    assert status == 200 and first["total"] == len(insp) and [r["venue_id"] for r in first["rows"]] == \
        [r["venue_id"] for r in insp[2:5]]
    assert {"offline", "silent", "camera-down", "display-down", "no-scans-today"} <= {r["why"] for r in insp}


def test_login_rate_limit_and_cookie_flags(site, tmp_path):
    accounts = Accounts({})
    accounts.add("d1", PASSWORD, "Quận Ba Đình")
    limited = LiveServer(create_app(site[3], accounts, secure_cookies=False, limiter=LoginLimiter(failures=3)))
    try:
        b = Browser(limited.url)
        assert [b.login("d1", "wrong password!") for _ in range(3)] == [401, 401, 401]
        assert b.login("d1", PASSWORD) == 429  # even the right password, until the window passes
    finally:
        limited.stop()
    # the real command's cookies: HttpOnly and Secure
    from kiosk.centre.accounts import Accounts as A

    a = A({})
    a.add("x", PASSWORD, None)
    s2 = LiveServer(create_app(site[3], a))
    try:
        import urllib.parse
        import urllib.request

        req = urllib.request.Request(s2.url + "/login", data=urllib.parse.urlencode(
            {"name": "x", "password": PASSWORD}).encode())

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args, **kw):
                return None

        try:
            urllib.request.build_opener(NoRedirect).open(req)
        except urllib.error.HTTPError as e:
            cookie = e.headers["set-cookie"].lower()
        assert "httponly" in cookie and "secure" in cookie and "samesite=strict" in cookie
    finally:
        s2.stop()


def test_language_switch(site):
    server, *_ = site
    b = Browser(server.url)
    b.login("city", PASSWORD)
    assert "Lượt quét" in b.request("/")[1]
    # what the inspector is told about a row, in the page's language (the API keeps both)
    insp = b.request("/inspection?kind=no-scans-today")[1]
    assert "chỉ dán mã (không có máy quét)" in insp and "poster only" not in insp
    assert b.request("/lang/en")[0] == 405  # a plain link (GET) changes nothing
    assert "Lượt quét" in b.request("/")[1]
    status, page, _ = b.post("/lang/en", {"next": "/inspection?kind=silent"})
    assert status == 200 and "online by its last will" in page  # back on the page it was on, in English
    assert "Venues with a code" in b.request("/")[1]
    insp = b.request("/inspection?kind=no-scans-today")[1]
    assert "poster only (no kiosk)" in insp and "chỉ dán mã" not in insp
    rows = b.json("/api/v1/inspection?kind=silent")[1]["rows"]
    assert rows and all(r["detail"].startswith("online by") and "chữ ký" in r["detail_vi"] for r in rows)


def test_user_add_command(tmp_path):
    pw = tmp_path / "pw"
    pw.write_text(PASSWORD)
    acc = tmp_path / "accounts.json"
    r = subprocess.run([sys.executable, "-m", "kiosk", "centre", "user", "add", "hk", "--district", "Quận Hoàn Kiếm",
                        "--accounts", str(acc), "--new-password-file", str(pw)], capture_output=True, text=True,
                       cwd=ROOT)
    assert r.returncode == 0, r.stderr
    data = json.loads(acc.read_text())
    assert data["accounts"][0]["districts"] == ["Quận Hoàn Kiếm"] and data["accounts"][0]["role"] == "district"
    assert data["accounts"][0]["password_hash"].startswith("$argon2id$") and PASSWORD not in acc.read_text()
    assert oct(acc.stat().st_mode & 0o777) == "0o600"
    assert Accounts.load(acc).check("hk", PASSWORD) is not None
    short = tmp_path / "short"
    short.write_text("abc")
    r = subprocess.run([sys.executable, "-m", "kiosk", "centre", "user", "add", "x", "--accounts", str(acc),
                        "--new-password-file", str(short)], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 2 and "at least 10" in r.stderr and "Traceback" not in r.stderr
