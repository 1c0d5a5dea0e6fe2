"""The fleet's software on the dashboard (issue 23 item 5): ``/versions`` and its API twin ``/api/v1/versions``.

A small signed city whose kiosks report different versions in their signed ``info`` (one never sent one, one
reports a version with markup in it): the API counts the versions for the city and per district and lists the
kiosks behind, for the version named or else the newest that two kiosks run; each account sees only its districts; the page
shows the same in Vietnamese and English, escaped.
"""

from __future__ import annotations

import re
import time
from collections import Counter

import pytest
from starlette.testclient import TestClient

from kiosk.centre.accounts import Accounts
from kiosk.centre.ingest import Ingest
from kiosk.centre.queries import Centre, Settings
from kiosk.centre.store import open_store
from kiosk.centre.web import create_app
from kiosk.testing.city import City
from centre_helpers import registry_of

PASSWORD = "versions for everyone"
ODD = "<b>1.0</b>"  # a version with markup, signed by a kiosk: text to show, never HTML


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    city = City.build(40, 0.6, districts=3, seed=11)
    districts = sorted({v.district for v in city.venues})
    for i, k in enumerate(city.kiosks):
        k.version = ("0.2.0", "0.2.0", "0.1.9", "0.10.0rc1")[i % 4]
    city.kiosks[1].version = ODD
    silent = city.kiosks[2]  # never sends its info: unknown
    store = open_store(tmp_path_factory.mktemp("versions") / "centre.sqlite3")
    reg = registry_of(city)
    store.load_fleet(reg)
    store.import_venues(city.venues)
    ingest = Ingest(reg)
    now = time.time()
    for k in city.kiosks:
        if k is not silent:
            ingest.handle(k.topic("info"), k.signed("info", k.info(now)))
    store.write(ingest.take())
    acc = Accounts()
    acc.add("city", PASSWORD)
    acc.add("district", PASSWORD, districts[0])
    acc.add("inspector", PASSWORD, role="inspector", districts=districts[1:3])
    app = create_app(Centre(store, Settings()), acc, secure_cookies=False)
    yield city, districts, silent, app
    store.close()


def client(app, name: str, lang: str = "vi") -> TestClient:
    c = TestClient(app)
    token = re.search(r'name="csrf" value="([^"]+)"', c.get("/login").text).group(1)
    assert c.post("/login", data={"name": name, "password": PASSWORD, "csrf": token},
                  follow_redirects=False).status_code == 303
    c.cookies.set("centre_lang", lang)
    return c


def expected(kiosks, silent) -> Counter:
    return Counter("unknown" if k is silent else k.version for k in kiosks)


def test_the_api_counts_versions_and_lists_the_kiosks_behind(fleet):
    city, districts, silent, app = fleet
    c = client(app, "city")
    got = c.get("/api/v1/versions").json()
    assert got["current"] == got["newest_seen"] == "0.10.0rc1"  # 0.10 after 0.9, and after 0.2: read as numbers
    assert got["totals"]["versions"] == dict(expected(city.kiosks, silent))
    assert list(got["totals"]["versions"])[:3] == ["0.10.0rc1", "0.2.0", "0.1.9"]  # newest first
    assert got["totals"]["unknown"] == 1 and got["totals"]["kiosks"] == len(city.kiosks)
    behind = {f"{k.site}/{k.device}" for k in city.kiosks if k is not silent and k.version != "0.10.0rc1"}
    assert {f"{k['site']}/{k['device']}" for k in got["behind"]} == behind
    assert got["totals"]["behind"] == len(behind)
    for d in got["districts"]:
        mine = [k for k in city.kiosks if k.venue.district == d["name"]]
        assert d["kiosks"] == len(mine) and d["versions"] == dict(expected(mine, silent))
    assert {d["name"] for d in got["districts"]} == set(districts)
    # the version the city is rolling out, named: the release candidate is behind 0.10.0 as well
    named = c.get("/api/v1/versions", params={"current": "0.10.0"}).json()
    assert named["current"] == "0.10.0" and named["current_given"] is True
    assert named["totals"]["behind"] == len(city.kiosks) - 1  # all but the one that never said
    assert c.get("/api/v1/versions", params={"current": "1\x00"}).status_code == 400


def test_each_account_sees_only_its_districts_kiosks(fleet):
    city, districts, silent, app = fleet
    d = client(app, "district")
    got = d.get("/api/v1/versions").json()
    assert [x["name"] for x in got["districts"]] == [districts[0]]
    assert {x["district"] for x in got["kiosks"]} == {districts[0]}
    assert got["totals"]["kiosks"] == sum(1 for k in city.kiosks if k.venue.district == districts[0])
    assert d.get("/api/v1/versions", params={"district": districts[1]}).status_code == 403
    assert d.get("/versions", params={"district": districts[1]}).status_code == 403
    i = client(app, "inspector")
    got = i.get("/api/v1/versions").json()
    assert {x["name"] for x in got["districts"]} == set(districts[1:3])
    assert i.get("/api/v1/versions", params={"district": districts[0]}).status_code == 403
    assert TestClient(app).get("/api/v1/versions").status_code == 401


def test_the_page_shows_the_same_in_both_languages(fleet):
    city, districts, silent, app = fleet
    for lang, heading, behind_word, unknown_word in (
            ("vi", "Phần mềm máy quét", "Máy chưa cập nhật", "Chưa rõ"),
            ("en", "Kiosk software", "Kiosks behind", "Unknown (no signed info yet)")):
        c = client(app, "city", lang)
        html = c.get("/versions").text
        assert f"<h1>{heading}</h1>" in html and behind_word in html and unknown_word in html
        assert 'id="nav-versions"' in c.get("/inspection").text  # reachable from every page
        api = c.get("/api/v1/versions").json()
        rows = re.findall(r'<tr data-kiosk="([^"]+)">', html)
        assert rows == [f"{k['site']}/{k['device']}" for k in api["behind"]]
        assert ODD not in html and "&lt;b&gt;1.0&lt;/b&gt;" in html  # the kiosk's text, escaped
        assert re.search(r'id="versions-behind">\s*' + str(api["totals"]["behind"]) + "<", html)
    # a district's page, through the district table's link
    c = client(app, "city", "en")
    page = c.get("/versions", params={"district": districts[1], "current": "0.2.0"}).text
    mine = [k for k in city.kiosks if k.venue.district == districts[1]]
    older = [k for k in mine if k is not silent and k.version in ("0.1.9", ODD)]
    assert len(re.findall(r'<tr data-kiosk=', page)) == len(older) > 0
    assert 'value="0.2.0"' in page
