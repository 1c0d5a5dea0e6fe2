"""Campaigns and visits attacked as a browser can: a visit resent with other answers, a visit dated outside
its campaign, a campaign dated 9999, a photo that declares 20000x20000 pixels. Each is refused with a 4xx
and a sentence naming the field; nothing stored is overwritten. The store's part on SQLite and PostgreSQL;
the web's in process over one SQLite centre for the module.
"""

from __future__ import annotations

import io
import re
import struct
import time
import zlib

import pytest
from starlette.testclient import TestClient

from centre_helpers import seeded_city
from centre_pg import pg_url, postgres_server  # noqa: F401
from kiosk.centre import campaigns, photo_check, visits
from kiosk.centre.accounts import Accounts
from kiosk.centre.queries import Centre, Settings
from kiosk.centre.store import open_store
from kiosk.centre.web import create_app

PASSWORD = "correct horse battery"
ORIGIN = {"origin": "http://testserver"}
TZ = "Asia/Ho_Chi_Minh"


def _form(c: campaigns.Campaign, venue_id: str, **kw) -> dict[str, str]:
    return {"visit_id": "v-attack-0001", "campaign_id": c.campaign_id, "venue_id": venue_id, "outcome": "reminded",
            "at": str(int(time.time() * 1000)), "note": "Mã in quá nhỏ", "lat": "21.03", "lon": "105.85",
            "accuracy": "15", **{item: "yes" for item in visits.CHECKLIST}, "kiosk_working": "na", **kw}


def _bomb_png(side: int) -> bytes:
    """A valid grayscale PNG of side x side black pixels: a few hundred KiB that unpack to side² bytes."""
    z = zlib.compressobj(9)
    line = b"\0" + bytes(side)
    data = b"".join(z.compress(line) for _ in range(side)) + z.flush()

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", data) + chunk(b"IEND", b""))


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_visit_resent_with_other_answers_is_refused_and_the_stored_one_stands(backend, request, tmp_path):
    store = open_store(tmp_path / "c.sqlite3" if backend == "sqlite" else request.getfixturevalue("pg_url"))
    try:
        city = seeded_city(store, venues=20, history_days=1)
        districts = sorted({v.district for v in city.venues})
        centre = Centre(store, Settings(grace_hour=0))
        today = centre.settings.today()
        c, _ = campaigns.create(centre, campaigns.Campaign("c-attack-1", "Kiểm tra", today, today, (districts[0],),
                                                           (), 1.0, ("a1",), "city", 0.0), {"a1": (districts[0],)})
        venue = campaigns.plan(store, c.campaign_id)[0]["venue_id"]
        now = time.time()
        first = visits.parse(_form(c, venue), "a1", now)
        stored, made = visits.record(store, first, TZ, now)
        assert made
        again, made = visits.record(store, visits.parse(_form(c, venue, at=str(int(first.at * 1000))), "a1", now),
                                    TZ, now)
        assert not made and again == stored  # the outbox's resend after a lost answer: the same visit
        other = visits.parse(_form(c, venue, at=str(int(first.at * 1000)), outcome="fined", note="Đã phạt"), "a1", now)
        with pytest.raises(visits.VisitConflict, match=r"visit_id: v-attack-0001 is already recorded with other "
                                                        r"answers \(outcome, note\)"):
            visits.record(store, other, TZ, now)
        assert visits.get(store, first.visit_id) == stored

        class Racing:
            """The store as a second request sees it when the first inserts between its look and its insert."""

            def __init__(self):
                self.looked = False

            def query(self, sql, params=()):
                if not self.looked:
                    self.looked = True
                    return []
                return store.query(sql, params)

            def execute(self, sql, params=()):
                return store.execute(sql, params)

        with pytest.raises(visits.VisitConflict, match=r"\(outcome, note\)"):
            visits.record(Racing(), other, TZ, now)
        assert visits.get(store, first.visit_id) == stored
        # The photo's check is stored once: a second photo does not turn a finding into a match.
        assert visits.set_code_check(store, first.visit_id, "differs", "aa" * 32)["code_check"] == "differs"
        kept = visits.set_code_check(store, first.visit_id, "match", "bb" * 32)
        assert (kept["code_check"], kept["photo_sha256"], kept["findings"]) == ("differs", "aa" * 32, ["code_differs"])
    finally:
        store.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    store = open_store(tmp_path_factory.mktemp("attacks") / "centre.sqlite3")
    city = seeded_city(store, venues=30, history_days=1)
    districts = sorted({v.district for v in city.venues})
    acc = Accounts()
    acc.add("d0", PASSWORD, districts[0])
    acc.add("i1", PASSWORD, role="inspector", districts=districts[:1])
    centre = Centre(store, Settings(grace_hour=0))
    today = centre.settings.today()
    c, _ = campaigns.create(centre, campaigns.Campaign("c-attack-web", "Kiểm tra", today, today, (districts[0],), (),
                                                       1.0, ("i1",), "d0", 0.0), campaigns.inspectors(acc))
    app = create_app(centre, acc, secure_cookies=False)
    yield app, centre, c, districts
    store.close()


def client(app, name: str) -> tuple[TestClient, str]:
    """A logged-in client and its session's CSRF token."""
    c = TestClient(app)
    token = re.search(r'name="csrf" value="([^"]+)"', c.get("/login").text).group(1)
    assert c.post("/login", data={"name": name, "password": PASSWORD, "csrf": token},
                  follow_redirects=False).status_code == 303
    page = c.get("/field/day" if name.startswith("i") else "/campaigns").text
    return c, re.search(r'(?:name="csrf" value|data-csrf)="([^"]+)"', page).group(1)


def test_the_phone_is_told_when_a_visit_id_comes_back_with_other_answers(site):
    app, centre, c, _ = site
    phone, csrf = client(app, "i1")
    headers = {**ORIGIN, "x-csrf-token": csrf}
    venue = campaigns.plan(centre.store, c.campaign_id)[0]["venue_id"]
    visit = _form(c, venue, visit_id="v-attack-web1")
    assert phone.post("/api/v1/visits", data=visit, headers=headers).status_code == 200
    assert phone.post("/api/v1/visits", data=visit, headers=headers).json()["created"] is False
    changed = phone.post("/api/v1/visits", data={**visit, "outcome": "fined"}, headers=headers)
    assert changed.status_code == 409 and changed.json()["parameter"] == "visit_id"
    assert "already recorded with other answers (outcome)" in changed.json()["error"]
    assert visits.get(centre.store, "v-attack-web1")["outcome"] == "reminded"


def test_a_visit_dated_outside_its_campaign_is_refused(site):
    app, centre, c, _ = site
    phone, csrf = client(app, "i1")
    venue = campaigns.plan(centre.store, c.campaign_id)[0]["venue_id"]
    r = phone.post("/api/v1/visits", data=_form(c, venue, visit_id="v-attack-1970", at="0"),
                   headers={**ORIGIN, "x-csrf-token": csrf})
    assert r.status_code == 400 and r.json()["parameter"] == "at"
    assert r.json()["error"].startswith("at: the visit's day, 1970-01-01, is outside the campaign")
    assert visits.get(centre.store, "v-attack-1970") is None


@pytest.mark.parametrize("first,last,says", [
    ("9999-12-31", "9999-12-31", "first_day: at most 366 days after today"),
    ("0001-01-01", "0001-01-01", "first_day: at most 366 days before today"),
    ("2020-01-01", "2030-01-01", "last_day: a campaign lasts at most 92 days")])
def test_a_campaign_dated_years_away_is_refused_naming_the_day(site, first, last, says):
    app, _, _, districts = site
    official, csrf = client(app, "d0")
    form = {"csrf": csrf, "campaign_id": campaigns.new_id(), "name": "Kiểm tra", "first_day": first, "last_day": last,
            "district": [districts[0]], "member": ["i1"], "sample_share": "0.1"}
    r = official.post("/campaigns", data=form, headers=ORIGIN, follow_redirects=False)
    assert r.status_code == 400 and says in r.text


def test_a_photo_declaring_400_megapixels_is_refused_before_it_is_decoded(site):
    app, centre, c, _ = site
    bomb = _bomb_png(20000)
    assert len(bomb) < photo_check.MAX_PHOTO_BYTES and photo_check.declared_size(bomb) == (20000, 20000)
    phone, csrf = client(app, "i1")
    venue = campaigns.plan(centre.store, c.campaign_id)[0]["venue_id"]
    headers = {**ORIGIN, "x-csrf-token": csrf}
    assert phone.post("/api/v1/visits", data=_form(c, venue, visit_id="v-attack-bomb"), headers=headers).status_code == 200
    import cv2

    # The decoder is never reached: were it called, the 400 MB it would unpack fails this test at once.
    real, cv2.imdecode = cv2.imdecode, None
    try:
        r = phone.post("/api/v1/visits/v-attack-bomb/photo", content=bomb, headers={**headers, "content-type": "image/png"})
    finally:
        cv2.imdecode = real
    assert r.status_code == 400 and r.json()["parameter"] == "photo"
    assert r.json()["error"].startswith("photo: at most 50 megapixels (this one has 20000x20000)")
    assert visits.get(centre.store, "v-attack-bomb")["code_check"] == ""


def test_a_second_different_photo_does_not_replace_the_checked_one(site):
    import segno

    app, centre, c, _ = site
    phone, csrf = client(app, "i1")
    venue = campaigns.plan(centre.store, c.campaign_id)[0]["venue_id"]
    headers = {**ORIGIN, "x-csrf-token": csrf}
    assert phone.post("/api/v1/visits", data=_form(c, venue, visit_id="v-attack-photo"), headers=headers).status_code == 200

    def poster(text: str) -> bytes:
        buf = io.BytesIO()
        segno.make(text, error="m").save(buf, kind="png", scale=8, border=4)
        return buf.getvalue()

    photo = {**headers, "content-type": "image/png"}
    first = phone.post("/api/v1/visits/v-attack-photo/photo", content=poster("venue:someone-else"), headers=photo)
    assert first.status_code == 200 and first.json()["visit"]["code_check"] == "differs"
    again = phone.post("/api/v1/visits/v-attack-photo/photo", content=poster("venue:someone-else"), headers=photo)
    assert again.status_code == 200 and again.json()["visit"] == first.json()["visit"]  # a resend: checked once
    other = phone.post("/api/v1/visits/v-attack-photo/photo", content=poster("venue:" + venue), headers=photo)
    assert other.status_code == 409 and other.json()["parameter"] == "photo"
    assert other.json()["error"].startswith("photo: this visit's photo was checked already (differs)")
    assert visits.get(centre.store, "v-attack-photo")["findings"] == ["code_differs"]


@pytest.mark.parametrize("how", ["json", "multipart"])
def test_a_visit_sent_as_json_or_multipart_is_told_the_body_must_be_a_form(site, how):
    import json

    app, centre, c, _ = site
    phone, csrf = client(app, "i1")
    venue = campaigns.plan(centre.store, c.campaign_id)[0]["venue_id"]
    headers = {**ORIGIN, "x-csrf-token": csrf}
    visit = _form(c, venue, visit_id="v-attack-" + how)
    if how == "json":
        r = phone.post("/api/v1/visits", content=json.dumps(visit), headers={**headers, "content-type": "application/json"})
    else:
        r = phone.post("/api/v1/visits", data=visit, files={"photo": ("p.png", b"x", "image/png")}, headers=headers)
    assert r.status_code == 400 and r.json()["parameter"] == "body"
    assert r.json()["error"].startswith("body: a form (application/x-www-form-urlencoded)")


def test_a_form_with_more_fields_than_any_form_has_is_told_so(site):
    app, centre, c, districts = site
    official, csrf = client(app, "d0")
    body = f"csrf={csrf}&" + "&".join(f"member=m{i}" for i in range(600))
    r = official.post("/campaigns", content=body, headers={**ORIGIN, "content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 400 and "body: at most 500 fields" in r.text
    phone, token = client(app, "i1")
    r = phone.post("/api/v1/visits", content="&".join(f"note={i}" for i in range(600)),
                   headers={**ORIGIN, "x-csrf-token": token, "content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 400 and r.json() == {"error": "body: at most 500 fields", "parameter": "body"}
