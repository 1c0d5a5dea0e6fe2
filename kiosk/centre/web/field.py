"""Campaigns, visits and the inspection report: what their pages, API twins and exports answer (GET).

Who sees what (:mod:`kiosk.centre.access`): the city every campaign; a district's official the campaigns
that include its district, their plan and report held to it; an inspector the campaigns it is in, and
of their plan only its own visits. The forms that change them are in :mod:`kiosk.centre.web.field_forms`.
"""

from __future__ import annotations

import urllib.parse
from datetime import date

from starlette.responses import FileResponse, Response

from kiosk.centre import campaigns, inspection_report, visits
from kiosk.centre.access import CAMPAIGNS, VISITS, Forbidden, districts_of, may
from kiosk.centre.i18n import words
from kiosk.centre.venue_places import kinds as venue_kinds
from kiosk.centre.web.dashboard import DATA
from kiosk.centre.web.exports import csv_response, safe_cell
from kiosk.centre.web.params import BadParameter

# The field pages may ask for the phone's position (the inspector allows it or not) and show a photo
# chosen on the phone before it is sent (a blob: URL); everything else as on every page.
FIELD_HEADERS = {
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(self), payment=()",
    "Content-Security-Policy": ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
                                "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
                                "form-action 'self'; frame-ancestors 'none'; worker-src 'self'"),
}


def _held(account, c: campaigns.Campaign) -> tuple[str, ...] | None:
    """The districts of ``c`` the account sees (None: all of them), or Forbidden."""
    if account.is_city:
        return None
    if account.role == "inspector":
        if account.name not in c.members:
            raise Forbidden(c.campaign_id)
        return tuple(d for d in c.districts if d in account.districts)
    mine = tuple(d for d in c.districts if d in account.districts)
    if not mine:
        raise Forbidden(c.campaign_id)
    return mine


def _shown(c: campaigns.Campaign, held: tuple[str, ...] | None) -> dict:
    d = c.as_dict()
    if held is not None:
        d["districts"] = list(held)
    return d


def visible(dash, account) -> list[tuple[campaigns.Campaign, tuple[str, ...] | None]]:
    out = []
    for c in campaigns.every(dash.centre.store):
        try:
            out.append((c, _held(account, c)))
        except Forbidden:
            continue
    return out


def campaign_of(dash, account, campaign_id: str) -> tuple[campaigns.Campaign, tuple[str, ...] | None]:
    if not campaigns.ID_RE.match(campaign_id):
        raise LookupError(campaign_id)  # no campaign has such an id (nor a NUL PostgreSQL could not compare)
    c = campaigns.get(dash.centre.store, campaign_id)
    if c is None:
        raise LookupError(campaign_id)
    try:
        return c, _held(account, c)
    except Forbidden:
        raise LookupError(campaign_id) from None  # another district's campaign: not found, as a venue is


# -- data shared by pages and API -----------------------------------------------------------------
def campaigns_data(dash, ask) -> dict:
    rows = []
    for c, held in visible(dash, ask.account):
        r = inspection_report.report(dash.centre.store, [c.campaign_id], held)["total"]
        rows.append({**_shown(c, held), "planned": r["planned"], "visited": r["visited"]})
    return dash.centre._envelope(campaigns=rows)


def campaign_data(dash, ask, campaign_id: str) -> dict:
    c, held = campaign_of(dash, ask.account, campaign_id)
    mine = ask.account.name if ask.account.role == "inspector" else None
    plan = campaigns.plan(dash.centre.store, c.campaign_id, held, inspector=mine)
    return dash.centre._envelope(campaign=_shown(c, held), plan=plan)


def visits_data(dash, ask, campaign_id=None, day=None, inspector=None, limit=1000, offset=0) -> dict:
    """The visits of one campaign, or of every campaign the account sees (the newest campaign first)."""
    chosen = [campaign_of(dash, ask.account, campaign_id)] if campaign_id else visible(dash, ask.account)
    if ask.account.role == "inspector":
        inspector = ask.account.name
    rows: list[dict] = []
    for c, held in chosen:
        rows += visits.of_campaign(dash.centre.store, c.campaign_id, held, inspector, day, offset + limit, 0)
        if len(rows) >= offset + limit:
            break
    return dash.centre._envelope(campaign_id=campaign_id, offset=offset, visits=rows[offset:offset + limit])


def report_data(dash, ask, campaign_id=None, district=None) -> dict:
    if not may(ask.account, CAMPAIGNS):
        raise Forbidden(CAMPAIGNS)
    chosen = [campaign_of(dash, ask.account, campaign_id)] if campaign_id else visible(dash, ask.account)
    if district is not None and not ask.account.is_city and district not in ask.account.districts:
        raise Forbidden(district)
    helds = {h for _, h in chosen}
    held = None if helds == {None} else tuple(sorted({d for h in helds for d in (h or ())}))
    if district is not None:
        held = (district,) if held is None or district in held else ()
    data = inspection_report.report(dash.centre.store, [c.campaign_id for c, _ in chosen], held)
    return dash.centre._envelope(campaigns=[_shown(c, h) for c, h in chosen],
                                 scope={"campaign_id": campaign_id, "district": district}, **data)


def field_day_data(dash, ask, day=None) -> dict:
    """The inspector's visits of ``day`` (default today) and those of earlier days still to make."""
    if not may(ask.account, VISITS):
        raise Forbidden(VISITS)
    today = dash.centre.settings.today()
    day = _valid_day(day) or today
    rows = dash.centre.store.query(
        _DAY_SQL + " WHERE p.inspector = ? AND (p.day = ? OR (p.day < ? AND c.last_day >= ? AND NOT EXISTS ("
        "SELECT 1 FROM visits s WHERE s.campaign_id = p.campaign_id AND s.venue_id = p.venue_id))) "
        "ORDER BY p.day, v.ward, v.address, p.venue_id", [ask.account.name, day, day, today])
    shown = [_day_row(r) for r in rows]
    return dash.centre._envelope(inspector=ask.account.name, for_day=day,
                                 visits=[r for r in shown if r["day"] == day],
                                 earlier=[r for r in shown if r["day"] != day])


_DAY_SQL = (
    "SELECT p.campaign_id, c.name AS campaign, p.venue_id, p.day, p.reasons, COALESCE(v.name, '') AS name, "
    "COALESCE(v.address, '') AS address, COALESCE(v.ward, '') AS ward, COALESCE(v.district, '') AS district, "
    "COALESCE(pl.kind, '') AS kind, pl.lat, pl.lon, "
    "(SELECT COUNT(*) FROM fleet f WHERE f.venue_id = p.venue_id AND f.revoked = 0) AS kiosks, "
    "(SELECT s.outcome FROM visits s WHERE s.campaign_id = p.campaign_id AND s.venue_id = p.venue_id "
    "ORDER BY s.at DESC LIMIT 1) AS outcome "
    "FROM campaign_plan p JOIN campaigns c ON c.campaign_id = p.campaign_id "
    "LEFT JOIN venues v ON v.venue_id = p.venue_id LEFT JOIN venue_places pl ON pl.venue_id = p.venue_id")


def _valid_day(day) -> str | None:
    if day is None:
        return None
    try:
        return date.fromisoformat(day).isoformat()
    except ValueError:
        raise BadParameter("day", f"day: a day as YYYY-MM-DD (got {day[:20]!r})") from None


def map_link(r: dict) -> str:
    """``geo:`` with the registry's position (the phone's map app opens there), else a search for the address."""
    if r.get("lat") is not None and r.get("lon") is not None:
        label = urllib.parse.quote(r.get("name") or r["venue_id"])
        return f"geo:{float(r['lat']):.6f},{float(r['lon']):.6f}?q={float(r['lat']):.6f},{float(r['lon']):.6f}({label})"
    return "geo:0,0?q=" + urllib.parse.quote(", ".join(x for x in (r.get("address"), r.get("ward"), r.get("district"))
                                                       if x))


def _day_row(r: dict) -> dict:
    r = dict(r)
    r["reasons"] = [x for x in r["reasons"].split(",") if x]
    r["kiosks"] = int(r["kiosks"])
    r["map"] = map_link(r)
    r["lat"] = None if r["lat"] is None else float(r["lat"])
    r["lon"] = None if r["lon"] is None else float(r["lon"])
    return r


def visit_form_data(dash, ask, campaign_id: str, venue_id: str) -> dict:
    if not may(ask.account, VISITS):
        raise Forbidden(VISITS)
    c, held = campaign_of(dash, ask.account, campaign_id)
    rows = dash.centre.store.query(_DAY_SQL + " WHERE p.campaign_id = ? AND p.venue_id = ?", [campaign_id, venue_id])
    if not rows or rows[0]["district"] not in (held or ()):
        raise LookupError(venue_id)
    before = [v for v in visits.of_venue(dash.centre.store, venue_id) if v["campaign_id"] == campaign_id]
    return dash.centre._envelope(campaign=_shown(c, held), venue=_day_row(rows[0]), visits=before)


def venue_visits(dash, venue_id: str) -> list[dict]:
    """The venue page's visits block: every visit of the venue, the latest first."""
    return visits.of_venue(dash.centre.store, venue_id)


def last_visits(dash, rows: list[dict]) -> dict[str, dict]:
    """The inspection list's column: each listed venue's latest visit (ISO time and outcome)."""
    from kiosk.wire.signing import iso

    found = visits.last_of_venues(dash.centre.store, sorted({r["venue_id"] for r in rows if r.get("venue_id")}))
    return {v: {"at": iso(x["at"]), "outcome": x["outcome"]} for v, x in found.items()}


# -- API ------------------------------------------------------------------------------------------
def api_campaigns(dash, ask) -> dict:
    return campaigns_data(dash, ask)


def api_campaign(dash, ask, campaign_id) -> dict:
    return campaign_data(dash, ask, campaign_id)


def api_visits(dash, ask, campaign_id=None, day=None, inspector=None, limit=1000, offset=0) -> dict:
    return visits_data(dash, ask, campaign_id, day, inspector, limit, offset)


def api_report(dash, ask, campaign_id=None, district=None) -> dict:
    return report_data(dash, ask, campaign_id, district)


def api_field_day(dash, ask, day=None) -> dict:
    return field_day_data(dash, ask, day)


# -- pages ----------------------------------------------------------------------------------------
def _field_page(dash, ask, template: str, **ctx):
    response = dash.page(ask, template, **ctx)
    response.headers.update(FIELD_HEADERS)
    return response


def field_day_page(dash, ask, day=None):
    data = field_day_data(dash, ask, day)
    return _field_page(dash, ask, "field_day.html", data=data, map_link=map_link, api="")


def visit_form_page(dash, ask, campaign_id, venue_id):
    data = visit_form_data(dash, ask, campaign_id, venue_id)
    return _field_page(dash, ask, "field_visit.html", data=data, checklist=visits.CHECKLIST, outcomes=visits.OUTCOMES,
                       api="")


def campaigns_page(dash, ask):
    data = campaigns_data(dash, ask)
    manage = may(ask.account, CAMPAIGNS)
    districts = districts_of(ask.account, dash.centre.districts() if ask.account.is_city else [])
    team = {n: ds for n, ds in campaigns.inspectors(dash.accounts).items() if set(ds) & set(districts)}
    today = dash.centre.settings.today()
    return dash.page(ask, "campaigns.html", data=data, manage=manage, districts=districts, team=team,
                     venue_kinds=venue_kinds(dash.centre.store, tuple(districts)) if manage else [], new_id=campaigns.new_id(),
                     today=today, api="/api/v1/campaigns")


def campaign_page(dash, ask, campaign_id):
    data = campaign_data(dash, ask, campaign_id)
    report = inspection_report.report(dash.centre.store, [campaign_id],
                                      None if ask.account.is_city else tuple(data["campaign"]["districts"]))
    return dash.page(ask, "campaign.html", data=data, report=report, manage=may(ask.account, CAMPAIGNS),
                     days=campaigns.get(dash.centre.store, campaign_id).days(),
                     api=f"/api/v1/campaigns/{urllib.parse.quote(campaign_id, safe='')}")


def report_page(dash, ask, campaign_id=None, district=None):
    data = report_data(dash, ask, campaign_id, district)
    q = urllib.parse.urlencode({k: v for k, v in (("campaign_id", campaign_id), ("district", district)) if v})
    return dash.page(ask, "inspection_report.html", data=data, query=q,
                     every=[c for c, _ in visible(dash, ask.account)], selected=campaign_id or "",
                     api="/api/v1/inspection-report" + ("?" + q if q else ""))


# -- exports --------------------------------------------------------------------------------------
def _headers(lang: str) -> list[str]:
    w = words(lang)
    return [w.get("ir_" + c, c) for c in inspection_report.COLUMNS]


def _rows_for_export(data: dict, lang: str) -> list[dict]:
    w = words(lang)
    out = []
    for r in inspection_report.table(data):
        out.append({**r, "level": w.get("ir_level_" + r["level"], r["level"])})
    return out


def report_csv(dash, ask, campaign_id=None, district=None):
    data = report_data(dash, ask, campaign_id, district)
    headers = _headers(ask.lang)
    rows = [dict(zip(headers, (r[c] for c in inspection_report.COLUMNS))) for r in _rows_for_export(data, ask.lang)]
    return csv_response(rows, headers, f"inspection-report-{dash.centre.settings.today()}.csv")


def report_xlsx(dash, ask, campaign_id=None, district=None):
    data = report_data(dash, ask, campaign_id, district)
    rows = [{c: safe_cell(r[c]) for c in inspection_report.COLUMNS} for r in _rows_for_export(data, ask.lang)]
    body = inspection_report.xlsx(rows, _headers(ask.lang), words(ask.lang)["ir_title"])
    return Response(body, media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    headers={"Content-Disposition": f'attachment; filename="inspection-report-'
                                                    f'{dash.centre.settings.today()}.xlsx"', "Cache-Control": "no-store"})


def service_worker(dash, ask):
    """The field pages' service worker, served from /field/ so that its scope is the field pages."""
    if not may(ask.account, VISITS):
        raise Forbidden(VISITS)
    return FileResponse(str(DATA / "static" / "field-sw.js"), media_type="text/javascript",
                        headers={"Cache-Control": "no-cache", **FIELD_HEADERS})
