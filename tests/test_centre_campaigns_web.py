"""Campaigns through the dashboard (in-process): an official creates one with the form (twice: one campaign),
edits its list, an inspector records a visit and its photo, the report comes as a page, JSON, CSV and XLSX in
the session's language, the venue page and the inspection list show the visit; each refusal is a sentence.
"""

from __future__ import annotations

import csv
import io
import re
import time
import urllib.parse

import pytest
from starlette.testclient import TestClient

from centre_helpers import seeded_city
from kiosk.centre import campaigns
from kiosk.centre.accounts import Accounts
from kiosk.centre.queries import Centre, Settings
from kiosk.centre.store import open_store
from kiosk.centre.venue_places import load_places
from kiosk.centre.web import create_app
from kiosk.testing.campaign import places_of

PASSWORD = "correct horse battery"
ORIGIN = {"origin": "http://testserver"}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    store = open_store(tmp_path_factory.mktemp("campaigns-web") / "centre.sqlite3")
    city = seeded_city(store, venues=60, history_days=3)
    load_places(store, places_of(city.venues))
    districts = sorted({v.district for v in city.venues})
    acc = Accounts()
    acc.add("city", PASSWORD)
    acc.add("d0", PASSWORD, districts[0])
    acc.add("d2", PASSWORD, districts[2])
    acc.add("i1", PASSWORD, role="inspector", districts=districts[:2])  # an inspector of two districts
    acc.add("i2", PASSWORD, role="inspector", districts=districts[:1])
    centre = Centre(store, Settings(grace_hour=0))
    app = create_app(centre, acc, secure_cookies=False)
    yield app, centre, city, districts
    store.close()


def client(app, name: str) -> TestClient:
    c = TestClient(app)
    token = re.search(r'name="csrf" value="([^"]+)"', c.get("/login").text).group(1)
    assert c.post("/login", data={"name": name, "password": PASSWORD, "csrf": token},
                  follow_redirects=False).status_code == 303
    return c


def token(c: TestClient, page: str) -> str:
    text = c.get(page).text
    return re.search(r'(?:name="csrf" value|data-csrf)="([^"]+)"', text).group(1)


def test_an_official_creates_edits_and_reports_a_campaign_and_an_inspector_records_a_visit(site):
    app, centre, city, districts = site
    d0 = client(app, "d0")
    page = d0.get("/campaigns").text
    assert 'name="member" value="i1"' in page and 'name="member" value="i2"' in page
    assert 'value="Chợ"' in page  # the registry's kinds of venue
    cid = re.search(r'name="campaign_id" value="([^"]+)"', page).group(1)
    today = centre.settings.today()
    form = {"csrf": token(d0, "/campaigns"), "campaign_id": cid, "name": "Kiểm tra chợ, trường", "first_day": today,
            "last_day": today, "district": [districts[0]], "member": ["i1", "i2"], "sample_share": "0.5"}
    r = d0.post("/campaigns", data=form, headers=ORIGIN, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/campaigns/{cid}"
    plan = d0.get(f"/api/v1/campaigns/{cid}").json()["plan"]
    assert plan and {p["district"] for p in plan} == {districts[0]}
    # The same form again (a double tap, a resend): the first campaign stands, unchanged.
    assert d0.post("/campaigns", data={**form, "sample_share": "1"}, headers=ORIGIN,
                   follow_redirects=False).status_code == 303
    assert d0.get(f"/api/v1/campaigns/{cid}").json()["plan"] == plan
    assert len([c for c in d0.get("/api/v1/campaigns").json()["campaigns"] if c["campaign_id"] == cid]) == 1

    # Refusals say which field, in a sentence; another district is not the official's.
    bad = d0.post("/campaigns", data={**form, "campaign_id": campaigns.new_id(), "last_day": "2020-01-01"},
                  headers=ORIGIN)
    assert bad.status_code == 400 and "last_day: the last day comes on or after the first day" in bad.text
    bad = d0.post("/campaigns", data={**form, "campaign_id": campaigns.new_id(), "district": [districts[2]]},
                  headers=ORIGIN)
    assert bad.status_code == 400 and "is not your district" in bad.text
    assert d0.post("/campaigns", data={**form, "csrf": "forged"}, headers=ORIGIN).status_code == 403
    assert d0.post("/campaigns", data=form, headers={"origin": "http://evil.example"}).status_code == 403
    assert client(app, "d2").get(f"/campaigns/{cid}").status_code == 404  # another district's campaign

    # Edit: move a venue to i2 (covers the district), refuse a day outside the period.
    listed_ids = {r["venue_id"] for r in d0.get("/api/v1/inspection", params={"limit": 5000}).json()["rows"]}
    first = next(p for p in plan if p["venue_id"] in listed_ids)  # a flagged venue: its visit shows on the list
    edit = {"csrf": token(d0, f"/campaigns/{cid}"), "venue_id": first["venue_id"], "action": "change",
            "inspector": "i2" if first["inspector"] == "i1" else "i1", "day": today}
    assert d0.post(f"/campaigns/{cid}/plan", data=edit, headers=ORIGIN, follow_redirects=False).status_code == 303
    moved = next(p for p in d0.get(f"/api/v1/campaigns/{cid}").json()["plan"] if p["venue_id"] == first["venue_id"])
    assert moved["inspector"] == edit["inspector"]
    bad = d0.post(f"/campaigns/{cid}/plan", data={**edit, "day": "2030-01-01"}, headers=ORIGIN)
    assert bad.status_code == 400 and "day: a day of the campaign" in bad.text

    # The inspector's phone: the day's list, a visit (sent twice), its photo.
    who = moved["inspector"]
    phone = client(app, who)
    day = phone.get("/api/v1/field/day").json()
    mine = [v for v in day["visits"] if v["campaign_id"] == cid]
    assert first["venue_id"] in {v["venue_id"] for v in mine}
    assert all(v["map"].startswith("geo:") for v in mine)
    bad_day = phone.get("/api/v1/field/day", params={"day": "tomorrow"})
    assert bad_day.status_code == 400 and bad_day.json()["error"].startswith("day: a day as YYYY-MM-DD")
    csrf = token(phone, "/field/day")
    visit = {"visit_id": "v-web-000001", "campaign_id": cid, "venue_id": first["venue_id"],
             "at": str(int(time.time() * 1000)), "outcome": "reminded", "code_created": "yes",
             "posted_entrance": "no", "posting_ok": "yes", "visitors_guided": "no", "scanning": "yes",
             "kiosk_working": "na", "note": "Đã nhắc dán mã ở cửa chính"}
    headers = {**ORIGIN, "x-csrf-token": csrf}
    one = phone.post("/api/v1/visits", data=visit, headers=headers)
    two = phone.post("/api/v1/visits", data=visit, headers=headers)
    assert one.status_code == two.status_code == 200
    assert one.json()["created"] and not two.json()["created"]
    assert one.json()["visit"] == two.json()["visit"]
    bad = phone.post("/api/v1/visits", data={**visit, "visit_id": "v-web-000002", "outcome": "jailed"},
                     headers=headers)
    assert bad.status_code == 400 and bad.json()["parameter"] == "outcome"
    assert phone.post("/api/v1/visits", data=visit, headers=ORIGIN).status_code == 403  # no token
    assert d0.post("/api/v1/visits", data=visit, headers={**ORIGIN, "x-csrf-token": token(d0, "/campaigns")}
                   ).status_code == 403  # an official does not record visits

    big = phone.post(f"/api/v1/visits/{visit['visit_id']}/photo", content=b"\xff\xd8\xff" + bytes(9 * 1024 * 1024),
                     headers={**headers, "content-type": "image/jpeg"})
    assert big.status_code == 413 and "photo: at most 8 MiB" in big.json()["error"]
    svg = phone.post(f"/api/v1/visits/{visit['visit_id']}/photo", content=b"<svg/>",
                     headers={**headers, "content-type": "image/png"})
    assert svg.status_code == 400 and "JPEG, PNG or WebP" in svg.json()["error"]
    import segno

    buf = io.BytesIO()
    segno.make("venue:someone-else").save(buf, kind="png", scale=6)
    r = phone.post(f"/api/v1/visits/{visit['visit_id']}/photo", content=buf.getvalue(),
                   headers={**headers, "content-type": "image/png"})
    assert r.status_code == 200 and r.json()["visit"]["code_check"] == "differs"
    assert r.json()["visit"]["findings"] == ["no_posted_entrance", "no_visitors_guided", "code_differs"]

    # The report: JSON, page, CSV (Vietnamese headers, BOM), XLSX; the venue page and the inspection list.
    rep = d0.get("/api/v1/inspection-report", params={"campaign_id": cid}).json()
    assert rep["total"]["planned"] == len(plan) and rep["total"]["visited"] == 1 and rep["total"]["reminded"] == 1
    assert rep["total"]["code_differs"] == 1 and rep["districts"][0]["district"] == districts[0]
    assert [d["day"] for d in rep["days"]] == [today]
    assert 'id="total-visited">1<' in d0.get("/inspection-report", params={"campaign_id": cid}).text
    csv_text = d0.get("/inspection-report.csv", params={"campaign_id": cid}).content.decode("utf-8")
    assert csv_text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(csv_text.lstrip("\ufeff"))))
    assert rows[0][:5] == ["Cấp", "Quận/huyện", "Ngày", "Số địa điểm dự kiến", "Số địa điểm đã kiểm tra"]
    assert rows[1][0] == "Toàn đợt" and rows[1][4] == "1"
    from openpyxl import load_workbook

    wb = load_workbook(io.BytesIO(d0.get("/inspection-report.xlsx", params={"campaign_id": cid}).content))
    sheet = wb.active
    assert sheet.cell(1, 4).value == "Số địa điểm dự kiến" and sheet.cell(2, 5).value == 1
    venue = d0.get("/venue/" + urllib.parse.quote(first["venue_id"], safe="")).text
    assert 'data-visit="v-web-000001"' in venue and "Nhắc nhở" in venue and "Khác mã đã đăng ký" in venue
    # The inspection list (API and page): the visited venue's rows carry its last visit, the others none.
    listed = d0.get("/api/v1/inspection", params={"limit": 5000}).json()["rows"]
    seen = [r["last_visit"] for r in listed if r["venue_id"] == first["venue_id"]]
    assert seen and all(v["outcome"] == "reminded" and v["at"] for v in seen)
    assert all(r["last_visit"] is None for r in listed if r["venue_id"] != first["venue_id"])
    inspection = d0.get("/inspection", params={"limit": 5000}).text
    for _ in seen:
        assert "Nhắc nhở" in inspection.split(f'data-venue="{first["venue_id"]}"')[1].split("</tr>")[0]

    # English session: the CSV's headers in English.
    d0.post("/lang/en", data={"csrf": token(d0, "/campaigns"), "next": "/"}, headers=ORIGIN)
    header = d0.get("/inspection-report.csv").content.decode("utf-8").lstrip("\ufeff").splitlines()[0]
    assert header.startswith("Level,District,Day,Venues planned,Venues visited")

    # A visited venue stays on the list.
    gone = d0.post(f"/campaigns/{cid}/plan", data={**edit, "action": "remove"}, headers=ORIGIN)
    assert gone.status_code == 400 and "has been visited" in gone.text
