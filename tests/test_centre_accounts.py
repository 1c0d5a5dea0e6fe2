"""Accounts an IT officer can run (issue 19 item 8) and the three roles (issue 21 item 1).

``kiosk centre user add|list|passwd|disable|enable|remove`` through the real command line (in
process), districts checked against ../shared/testdata/admin; a running dashboard picks changes up
at its next request; the audit log; and what each role sees through the real app.
"""

from __future__ import annotations

import json
import re
import unicodedata

import pytest
from starlette.testclient import TestClient

from kiosk.centre.accounts import AccountError, Accounts, account_key
from kiosk.centre.audit import AuditLog
from kiosk.centre.queries import Centre, Settings
from kiosk.centre.sessions import Sessions
from kiosk.centre.store import open_store
from kiosk.centre.web import create_app
from kiosk.cli import main
from centre_helpers import seeded_city

PASSWORD = "correct horse battery"
HK = "Quận Hoàn Kiếm"


@pytest.fixture
def files(tmp_path):
    pw = tmp_path / "pw"
    pw.write_text(PASSWORD + "\n")
    return tmp_path / "accounts.json", pw, tmp_path


def user(capsys, acc, *words, pw=None, extra=()):
    argv = ["centre", "user", *words, "--accounts", str(acc), *extra]
    if pw is not None:
        argv += ["--new-password-file", str(pw)]
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_add_checks_the_district_and_normalises(files, capsys):
    acc, pw, _ = files
    code, _, err = user(capsys, acc, "add", "hk", "--district", "Quận Hoàn Kiêm", pw=pw)
    assert code == 2 and "not a district of" in err and f"did you mean '{HK}'" in err and "Traceback" not in err
    assert not acc.exists()
    nfd = unicodedata.normalize("NFD", HK)
    code, out, err = user(capsys, acc, "add", "HoànKiếm-Officer", "--district", nfd, pw=pw)
    assert code == 0, err
    row = json.loads(acc.read_text())["accounts"][0]
    assert row["name"] == unicodedata.normalize("NFC", "hoànkiếm-officer")  # NFC, case-folded
    assert row["districts"] == [HK] and row["role"] == "district"
    assert PASSWORD not in acc.read_text() and oct(acc.stat().st_mode & 0o777) == "0o600"
    # the same name in another case or Unicode form is the same account: no silent overwrite
    code, _, err = user(capsys, acc, "add", unicodedata.normalize("NFD", "HOÀNKIẾM-OFFICER"), "--district", HK, pw=pw)
    assert code == 2 and "exists" in err
    assert json.loads(acc.read_text())["accounts"][0]["password_hash"] == row["password_hash"]
    code, _, err = user(capsys, acc, "add", "hoànkiếm-officer", "--role", "inspector", "--district", HK,
                        "--district", "Quận Ba Đình", "--replace", pw=pw)
    assert code == 0, err
    a = Accounts.load(acc).get("HOÀNKIẾM-OFFICER")
    assert a.role == "inspector" and a.districts == (HK, "Quận Ba Đình")


@pytest.mark.parametrize("args, message", [
    (["--role", "district", "--district", HK, "--district", "Quận Ba Đình"], "exactly one --district"),
    (["--role", "city", "--district", HK], "sees every district"),
    (["--role", "inspector"], "at least one --district"),
    (["--district", "Quận Hoàn Kiếm", "--province", "ha-tinh"], "not a district of"),
])
def test_add_refuses_a_role_that_does_not_fit(files, capsys, args, message):
    acc, pw, _ = files
    code, _, err = user(capsys, acc, "add", "x", *args, pw=pw)
    assert code == 2 and message in err, err


def test_add_checks_the_venue_registry_when_given(files, capsys):
    acc, pw, tmp = files
    venues = tmp / "venues.csv"
    venues.write_text("venue_id,name,address,province,district,ward\nV1,Chợ,1 Phố,Hà Nội,Quận Ba Đình,Phường Phúc Xá\n")
    code, _, err = user(capsys, acc, "add", "hk", "--district", HK, "--venues", str(venues), pw=pw)
    assert code == 2 and "no venue of the venue registry" in err
    code, _, err = user(capsys, acc, "add", "bd", "--district", "Quận Ba Đình", "--venues", str(venues), pw=pw)
    assert code == 0, err


def test_list_passwd_disable_enable_remove_and_the_audit_log(files, capsys):
    acc, pw, tmp = files
    assert user(capsys, acc, "add", "city", pw=pw)[0] == 0
    assert user(capsys, acc, "add", "hk", "--district", HK, pw=pw)[0] == 0
    code, out, _ = user(capsys, acc, "list")
    assert code == 0 and "argon2" not in out and "$" not in out
    assert re.search(r"city\s+city\s+active\s+\(every district\)", out) and re.search(rf"hk\s+district\s+active\s+{HK}", out)
    before = Accounts.load(acc).get("hk").password_hash
    new = tmp / "new"
    new.write_text("another long password")
    assert user(capsys, acc, "passwd", "HK", pw=new)[0] == 0
    a = Accounts.load(acc)
    assert a.get("hk").password_hash != before and a.check("hk", "another long password") is not None
    assert user(capsys, acc, "disable", "hk")[0] == 0
    assert Accounts.load(acc).check("hk", "another long password") is None
    assert "disabled" in user(capsys, acc, "list")[1]
    assert user(capsys, acc, "enable", "hk")[0] == 0
    assert Accounts.load(acc).check("hk", "another long password") is not None
    assert user(capsys, acc, "remove", "hk")[0] == 0
    assert Accounts.load(acc).get("hk") is None
    code, _, err = user(capsys, acc, "remove", "hk")
    assert code == 2 and "no account 'hk'" in err
    code, _, err = user(capsys, acc, "passwd", "nobody", pw=new)
    assert code == 2 and "no account" in err
    log = AuditLog(tmp / "accounts.audit.jsonl").read()
    assert [e["event"] for e in log] == ["account-added", "account-added", "password-changed", "account-disabled",
                                         "account-enabled", "account-removed"]
    assert all(e["by"] and e["at"].endswith("Z") for e in log)
    text = (tmp / "accounts.audit.jsonl").read_text()
    assert PASSWORD not in text and "another long password" not in text and "argon2" not in text


def test_passwd_with_db_ends_the_sessions_in_the_store(files, capsys):
    acc, pw, tmp = files
    assert user(capsys, acc, "add", "hk", "--district", HK, pw=pw)[0] == 0
    store = open_store(tmp / "centre.sqlite3")
    sessions = Sessions(store)
    sessions.start("hk", "stamp")
    sessions.start("hk", "stamp")
    sessions.start("other", "stamp")
    code, out, _ = user(capsys, acc, "disable", "hk", extra=["--db", str(tmp / "centre.sqlite3")])
    assert code == 0 and "2 session(s) ended" in out
    assert sessions.count("hk") == 0 and sessions.count("other") == 1
    store.close()


def test_a_version_1_file_still_loads(tmp_path):
    from argon2 import PasswordHasher

    h = PasswordHasher().hash(PASSWORD)
    p = tmp_path / "old.json"
    p.write_text(json.dumps({"version": 1, "accounts": [{"name": "City", "district": None, "password_hash": h},
                                                        {"name": "hk", "district": HK, "password_hash": h}]}))
    a = Accounts.load(p)
    assert a.get("city").role == "city" and a.get("city").districts == ()
    assert a.get("hk").role == "district" and a.get("hk").district == HK
    assert a.check("CITY", PASSWORD) is not None
    p.write_text(json.dumps({"version": 1, "accounts": [{"name": "A", "password_hash": h},
                                                        {"name": "a", "password_hash": h}]}))
    with pytest.raises(AccountError, match="appears twice"):
        Accounts.load(p)


def test_names_are_one_form():
    assert account_key("Đức") == account_key(unicodedata.normalize("NFD", "đỨC"))
    with pytest.raises(AccountError, match="no spaces or control"):
        Accounts().add("a\u202eb", PASSWORD)  # a right-to-left override is no part of a name


# -- a running centre and the roles ----------------------------------------------------------------
@pytest.fixture(scope="module")
def city(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("roles")
    store = open_store(tmp / "centre.sqlite3")
    c = seeded_city(store, venues=45)
    yield store, c, sorted({v.district for v in c.venues})
    store.close()


def login(client, name, password=PASSWORD):
    t = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text).group(1)
    return client.post("/login", data={"name": name, "password": password, "csrf": t}, follow_redirects=False)


def test_a_running_centre_picks_up_account_changes(city, files, capsys):
    store, _, districts = city
    acc, pw, tmp = files
    assert user(capsys, acc, "add", "city", pw=pw)[0] == 0
    app = create_app(Centre(store, Settings(grace_hour=0)), Accounts.load(acc), secure_cookies=False,
                     audit=AuditLog(tmp / "accounts.audit.jsonl"))
    c = TestClient(app)
    assert login(c, "newcomer").status_code == 401
    assert user(capsys, acc, "add", "newcomer", "--district", districts[0], pw=pw)[0] == 0
    r = login(c, "Newcomer")
    assert r.status_code == 303 and r.headers["location"].startswith("/district/")
    assert c.get("/api/v1/me").json()["districts"] == [districts[0]]
    assert user(capsys, acc, "remove", "newcomer")[0] == 0
    assert c.get("/api/v1/me").status_code == 401  # its session ended with it
    assert login(c, "newcomer").status_code == 401
    events = [e["event"] for e in AuditLog(tmp / "accounts.audit.jsonl").read()]
    assert events == ["account-added", "login-failed", "account-added", "login", "account-removed", "session-ended",
                      "login-failed"]


def test_an_inspector_sees_its_districts_inspection_lists_and_venues(city):
    store, c, districts = city
    assert len(districts) == 3
    mine, theirs = districts[:2], districts[2]
    acc = Accounts()
    acc.add("insp", PASSWORD, role="inspector", districts=mine)
    client = TestClient(create_app(Centre(store, Settings(grace_hour=0)), acc, secure_cookies=False))
    r = login(client, "insp")
    assert r.status_code == 303 and r.headers["location"] == "/field/day"  # the day's visits (docs/inspection.md)
    me = client.get("/api/v1/me").json()
    assert me["role"] == "inspector" and me["districts"] == mine and me["district"] is None
    assert client.get("/api/v1/districts").json()["districts"] == mine
    rows = client.get("/api/v1/inspection", params={"limit": 5000}).json()["rows"]
    assert rows and {r["district"] for r in rows} == set(mine)
    assert client.get("/api/v1/inspection", params={"district": theirs}).status_code == 403
    one = client.get("/api/v1/inspection", params={"district": mine[1]}).json()["rows"]
    assert one and {r["district"] for r in one} == {mine[1]}
    csv_text = client.get("/inspection.csv").text
    assert theirs not in csv_text and mine[0] in csv_text
    kiosks = client.get("/api/v1/kiosks").json()["kiosks"]
    assert kiosks and {k["district"] for k in kiosks} <= set(mine)
    mine_venue = next(v for v in c.venues if v.district == mine[0])
    their_venue = next(v for v in c.venues if v.district == theirs)
    assert client.get(f"/api/v1/venues/{mine_venue.venue_id}").status_code == 200
    assert client.get(f"/venue/{mine_venue.venue_id}").status_code == 200
    assert client.get(f"/charts/history.svg?venue_id={mine_venue.venue_id}").status_code == 200
    assert client.get(f"/api/v1/history?venue_id={mine_venue.venue_id}").status_code == 200
    assert client.get(f"/api/v1/venues/{their_venue.venue_id}").status_code == 404  # not even whether it exists
    for path in ("/api/v1/overview", f"/api/v1/districts/{mine[0]}", "/api/v1/report", "/api/v1/history",
                 "/api/v1/hourly", "/api/v1/refused"):
        assert client.get(path).status_code == 403, path
    # another district's venue by its id: held to the inspector's districts, nothing of it shows
    other = client.get(f"/api/v1/history?venue_id={their_venue.venue_id}").json()
    assert other["scope"]["districts"] == mine and not any(d["scans"] for d in other["history"])
    assert any(d["scans"] for d in client.get(f"/api/v1/history?venue_id={mine_venue.venue_id}").json()["history"]) \
        or not any(k.scans for k in c.kiosks if k.venue.venue_id == mine_venue.venue_id)
    for path in ("/report.csv", f"/district/{mine[0]}", "/charts/history.svg"):
        assert client.get(path).status_code == 403, path
    page = client.get("/inspection").text
    assert 'href="/report.csv"' not in page and f'<option value="{theirs}"' not in page


def test_a_district_official_with_one_district_and_the_city(city):
    store, c, districts = city
    acc = Accounts()
    acc.add("d", PASSWORD, districts[1])
    acc.add("city", PASSWORD)
    client = TestClient(create_app(Centre(store, Settings(grace_hour=0)), acc, secure_cookies=False))
    assert login(client, "d").headers["location"] == "/district/" + __import__("urllib.parse").parse.quote(districts[1], safe="")
    assert client.get("/api/v1/report").status_code == 200
    assert {r["district"] for r in client.get("/api/v1/report").json()["rows"]} == {districts[1]}
    assert client.get(f"/api/v1/districts/{districts[0]}").status_code == 403
    city_client = TestClient(create_app(Centre(store, Settings(grace_hour=0)), acc, secure_cookies=False))
    assert login(city_client, "city").headers["location"] == "/"
    assert city_client.get("/api/v1/districts").json()["districts"] == districts
    assert city_client.get("/api/v1/refused").status_code == 200
