"""Inspection campaigns in the store (SQLite and PostgreSQL): the plan drawn from the inspection list and a
sample, balanced per day, edited; visits recorded once however often they are sent; the photo check;
the report's figures.
"""

from __future__ import annotations

import io
import time

import pytest

from campaign_desk import city_store, team  # noqa: F401 (a fixture)
from centre_pg import pg_url, postgres_server  # noqa: F401
from kiosk.centre import campaigns, inspection_report, photo_check, visits
from kiosk.centre.accounts import Accounts
from kiosk.centre.queries import Centre, Scope, Settings
from kiosk.centre.venue_places import kinds, parse_places


def _campaign(districts, cid="c-test-1", share=0.25, kinds_=(), members=("a1", "a2", "a3"), first="2026-12-07",
              last="2026-12-11"):
    return campaigns.Campaign(cid, "Kiểm tra tháng 12", first, last, tuple(districts), tuple(kinds_), share,
                              tuple(members), "city", 0.0)


def test_the_plan_holds_every_flagged_venue_and_a_sample_balanced_per_day(city_store):
    store, city = city_store
    centre = Centre(store, Settings(grace_hour=0))
    districts, covers = team(city)
    c, made = campaigns.create(centre, _campaign(districts), covers)
    assert made and c.members == ("a1", "a2", "a3")
    plan = campaigns.plan(store, c.campaign_id)
    kiosked = {k.venue.venue_id for k in city.kiosks}
    flagged = {r["venue_id"] for r in centre.inspection_rows(Scope(districts=tuple(districts)))
               if r["why"] != "no-scans-today" or r["venue_id"] in kiosked}  # no scan seen without a kiosk
    flagged &= {v.venue_id for v in city.venues}
    planned = {r["venue_id"] for r in plan}
    assert flagged <= planned
    sampled = [r for r in plan if r["reasons"] == [campaigns.SAMPLE]]
    others = len(city.venues) - len(flagged)
    assert len(sampled) == round(others * 0.25)
    for r in plan:  # each venue goes to an inspector who covers its district, on a day of the period
        assert r["district"] in covers[r["inspector"]] and r["day"] in c.days()
        if r["venue_id"] in flagged:
            assert r["reasons"] and campaigns.SAMPLE not in r["reasons"]
    per_day: dict = {}
    for r in plan:
        per_day.setdefault((r["inspector"], r["day"]), 0)
        per_day[(r["inspector"], r["day"])] += 1
    for who in ("a1", "a2", "a3"):
        loads = [per_day.get((who, d), 0) for d in c.days()]
        assert max(loads) - min(loads) <= 1, (who, loads)

    # Created again (the same form sent twice): the first stands, nothing is drawn again.
    again, made = campaigns.create(centre, _campaign(districts, share=0.9), covers)
    assert not made and again.sample_share == 0.25 and len(campaigns.plan(store, c.campaign_id)) == len(plan)


def test_kinds_narrow_the_plan_and_bad_teams_are_refused(city_store):
    store, city = city_store
    centre = Centre(store, Settings(grace_hour=0))
    districts, covers = team(city)
    assert "Chợ" in kinds(store) and "Trường" in kinds(store, tuple(districts[:1]))
    c, _ = campaigns.create(centre, _campaign(districts, cid="c-markets", share=1.0, kinds_=("Chợ",)), covers)
    names = {r["name"] for r in campaigns.plan(store, c.campaign_id)}
    assert names and all(n.startswith("Chợ ") for n in names)
    with pytest.raises(campaigns.CampaignError, match="no inspector of the team covers"):
        campaigns.create(centre, _campaign(districts, cid="c-nobody", members=("a2",)), covers)
    with pytest.raises(campaigns.CampaignError, match="a1 is not an inspector of these districts"):
        campaigns.create(centre, _campaign(districts[-1:], cid="c-wrong", members=("a1", "a3")),
                         {"a1": (districts[0],), "a3": (districts[-1],)})
    with pytest.raises(campaigns.CampaignError, match="last_day"):
        campaigns.check_new("c-abcdef", "x", "2026-12-10", "2026-12-01", districts, (), ("a1",), 0.1)


def test_the_plan_is_edited_add_remove_reassign_move(city_store):
    store, city = city_store
    centre = Centre(store, Settings(grace_hour=0))
    districts, covers = team(city)
    c, _ = campaigns.create(centre, _campaign(districts, share=0.0), covers)
    planned = {r["venue_id"] for r in campaigns.plan(store, c.campaign_id)}
    outside = next(v for v in city.venues if v.venue_id not in planned and v.district == districts[0])
    assert campaigns.add_venue(store, c, outside.venue_id, "a2", "2026-12-09", covers)
    assert not campaigns.add_venue(store, c, outside.venue_id, "a2", "2026-12-09", covers)  # idempotent
    campaigns.change(store, c, outside.venue_id, covers, inspector="a1", day="2026-12-11")
    row = campaigns.planned_row(store, c.campaign_id, outside.venue_id)
    assert (row["inspector"], row["day"], row["reasons"]) == ("a1", "2026-12-11", campaigns.ADDED)
    with pytest.raises(campaigns.CampaignError, match="does not cover"):
        campaigns.change(store, c, outside.venue_id, covers, inspector="a3")
    with pytest.raises(campaigns.CampaignError, match="day: a day of the campaign"):
        campaigns.change(store, c, outside.venue_id, covers, day="2027-01-01")
    assert campaigns.remove(store, c, outside.venue_id)
    assert not campaigns.remove(store, c, outside.venue_id)


def _form(c, venue_id, visit_id="v-0000000001", outcome="warned", **kw):
    form = {"visit_id": visit_id, "campaign_id": c.campaign_id, "venue_id": venue_id, "outcome": outcome,
            "at": str(int(time.time() * 1000)), "note": "Mã in quá nhỏ", "lat": "21.03", "lon": "105.85",
            "accuracy": "15", **{item: "yes" for item in visits.CHECKLIST}, "kiosk_working": "na"}
    form.update(kw)
    return form


def test_a_visit_is_recorded_once_and_counted_in_the_report(city_store):
    store, city = city_store
    centre = Centre(store, Settings(grace_hour=0))
    districts, covers = team(city)
    c, _ = campaigns.create(centre, _campaign(districts, share=0.2), covers)
    plan = campaigns.plan(store, c.campaign_id)
    first, second = plan[0], plan[1]
    now = time.time()
    v = visits.parse(_form(c, first["venue_id"], posting_ok="no", note="Mã in quá nhỏ"), first["inspector"], now)
    stored, made = visits.record(store, v, "Asia/Ho_Chi_Minh", now)
    assert made and stored["findings"] == ["no_posting_ok"] and stored["outcome"] == "warned"
    again, made = visits.record(store, v, "Asia/Ho_Chi_Minh", now + 60)  # resent from the outbox
    assert not made and again == stored
    visits.set_code_check(store, v.visit_id, "unreadable", "ab" * 32)
    assert visits.get(store, v.visit_id)["findings"] == ["no_posting_ok", "code_unreadable"]
    ok = visits.parse(_form(c, second["venue_id"], visit_id="v-0000000002", outcome="compliant"),
                      second["inspector"], now)
    visits.record(store, ok, "Asia/Ho_Chi_Minh", now)

    data = inspection_report.report(store, [c.campaign_id])
    t = data["total"]
    assert (t["planned"], t["visited"], t["compliant"], t["warned"], t["no_posting_ok"], t["code_unreadable"]) == \
        (len(plan), 2, 1, 1, 1, 1)
    assert sum(r["planned"] for r in data["districts"]) == len(plan)
    assert sum(d["planned"] for d in data["days"]) == len(plan) and sum(d["visited"] for d in data["days"]) == 2
    only = inspection_report.report(store, [c.campaign_id], (first["district"],))
    assert only["total"]["planned"] == sum(1 for r in plan if r["district"] == first["district"])
    assert [r["visit_id"] for r in visits.of_venue(store, first["venue_id"])] == [v.visit_id]
    assert visits.last_of_venues(store, [first["venue_id"]])[first["venue_id"]]["outcome"] == "warned"
    with pytest.raises(campaigns.CampaignError, match="visited"):
        campaigns.remove(store, c, first["venue_id"])


@pytest.mark.parametrize("field,value,says", [
    ("outcome", "shot", "outcome: one of compliant"), ("posting_ok", "maybe", "posting_ok: yes, no or na"),
    ("visit_id", "x", "visit_id"), ("lat", "91", "lat: a number"), ("at", "", "at: when"),
    ("note", "x" * 2001, "note: at most")])
def test_a_bad_visit_names_its_field(field, value, says):
    c = _campaign(["D"])
    with pytest.raises(campaigns.CampaignError, match=says):
        visits.parse(_form(c, "V1", **{field: value}), "a1", time.time())


def _poster(text: str) -> bytes:
    import segno

    buf = io.BytesIO()
    segno.make(text, error="m").save(buf, kind="png", scale=8, border=4)
    return buf.getvalue()


def test_the_photo_check_reads_the_code_as_a_kiosk_does():
    from kiosk.testing.city import qr_hash

    assert photo_check.check(_poster("venue:HN-1"), qr_hash("venue:HN-1"))[0] == "match"
    assert photo_check.check(_poster("venue:HN-2"), qr_hash("venue:HN-1"))[0] == "differs"
    blank = io.BytesIO()
    from PIL import Image

    Image.new("L", (200, 200), 255).save(blank, "PNG")
    assert photo_check.check(blank.getvalue(), qr_hash("venue:HN-1"))[0] == "unreadable"
    with pytest.raises(photo_check.PhotoError, match="JPEG, PNG or WebP"):
        photo_check.check(b"<svg>not a photo</svg>", "")
    with pytest.raises(photo_check.PhotoError, match="damaged"):
        photo_check.check(b"\x89PNG\r\n\x1a\n" + b"\0" * 100, "")


def test_registry_columns_kind_lat_lon_are_optional_and_checked():
    assert parse_places("venue_id,name,district\nV1,a,D\n") == []
    got = parse_places("venue_id,name,district,kind,lat,lon\nV1,a,D,Chợ,21.0,105.8\nV2,b,D,,,\n")
    assert [(p.venue_id, p.kind, p.lat) for p in got] == [("V1", "Chợ", 21.0)]
    from kiosk.wire.registry import RegistryError

    with pytest.raises(RegistryError, match="venues.csv:2: lat must be between"):
        parse_places("venue_id,name,district,lat,lon\nV1,a,D,95,1\n")
    with pytest.raises(RegistryError, match="lat and lon go together"):
        parse_places("venue_id,name,district,lat,lon\nV1,a,D,21,\n")


def test_inspectors_of_several_districts_are_a_campaigns_possible_team():
    accounts = Accounts({})
    accounts.add("i1", "pw-long-enough", role="inspector", districts=("A", "B"))
    accounts.add("d1", "pw-long-enough", "A")
    assert campaigns.inspectors(accounts) == {"i1": ("A", "B")}


def test_control_characters_are_refused_before_the_store():
    with pytest.raises(campaigns.CampaignError, match="name: no control characters"):
        campaigns.check_new("c-abcdef", "a\x00b", "2026-12-01", "2026-12-02", ["D"], (), ("a1",), 0.1)
    c = _campaign(["D"])
    with pytest.raises(campaigns.CampaignError, match="venue_id: no control characters"):
        visits.parse(_form(c, "V\x001"), "a1", time.time())
