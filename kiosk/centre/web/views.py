"""What each route answers: the data a page and its API twin share, the pages, the CSV and the charts.

Every handler takes ``(dashboard, asked, **parameters)`` (parameters parsed by the route table)
and asks :mod:`kiosk.centre.access` for the scope it may query; the page and its API twin call
the same data function, so they cannot disagree (Datasette's habit).
"""

from __future__ import annotations

from dataclasses import replace

from starlette.responses import RedirectResponse, Response

from kiosk.centre import charts
from kiosk.centre.access import CITY, FIGURES, INSPECTION, VENUES, districts_of, figures_scope, home, scope_of
from kiosk.centre.i18n import words
from kiosk.centre.queries import FIGURES as FIGURE_NAMES
from kiosk.centre.queries import _scope_dict
from kiosk.centre.versions import UNKNOWN, fleet_versions
from kiosk.centre.web import csv_words, field
from kiosk.centre.web.exports import csv_response, csv_stream
from kiosk.centre.web.security import SVG_CSP

PAGE_SIZE = 500  # inspection rows a page (the whole city is the CSV export)
INSPECTION_CSV = ["why", "provisional", "district", "ward", "venue_id", "venue_name", "address", "site", "device", "since",
                  "for_seconds", "detail"]


def _quote(text: str) -> str:
    import urllib.parse

    return urllib.parse.quote(text, safe="")


# -- data shared by pages and API ---------------------------------------------------------------
def overview_data(dash, ask, day=None) -> dict:
    scope_of(ask.account, CITY)
    return dash.centre.overview(day=day)


def district_data(dash, ask, name: str, day=None) -> dict:
    scope = scope_of(ask.account, FIGURES, district=name)
    d = dash.centre.district(name, scope, day=day)
    if not d["wards"]:
        raise LookupError(name)
    return d


def ward_data(dash, ask, name: str, ward: str, day=None) -> dict:
    scope = scope_of(ask.account, VENUES, district=name, ward=ward)
    day = dash.centre.check_day(day)
    rows = dash.centre.venues(scope, day=day)
    if not rows:
        raise LookupError(ward)
    return {**dash.centre._envelope(district=name, ward=ward, venues=rows), "day": day,
            "today": day == dash.centre.settings.today()}


def venue_data(dash, ask, venue_id: str) -> dict:
    v = dash.centre.venue(venue_id, scope_of(ask.account, VENUES))
    if v is None:
        raise LookupError(venue_id)
    return v


def _inspection_scope(ask, district, ward):
    """The account's inspection scope, narrowed to a ward (its name in every district asked for)."""
    scope = scope_of(ask.account, INSPECTION, district=district)
    return scope if ward is None else replace(scope, ward=ward)


def inspection_data(dash, ask, district=None, kind=None, limit=PAGE_SIZE, offset=0, ward=None, sort=None,
                    order="asc") -> dict:
    scope = _inspection_scope(ask, district, ward)
    data = dash.centre.inspection(scope, kinds=(kind,) if kind else (), limit=limit, offset=offset, sort=sort,
                                  desc=order == "desc")
    last = field.last_visits(dash, data["rows"])  # so the list says who has been seen to already
    for r in data["rows"]:
        r["last_visit"] = last.get(r["venue_id"]) if r.get("venue_id") else None
    return data


def versions_data(dash, ask, district=None, current=None) -> dict:
    """The fleet's software in the account's scope: versions for it and per district, the kiosks behind."""
    return fleet_versions(dash.centre, scope_of(ask.account, VENUES, district=district), current=current)


# -- API ----------------------------------------------------------------------------------------
def api_me(dash, ask) -> dict:
    a = ask.account
    return {"account": a.name, "role": a.role, "districts": list(a.districts), "district": a.district,
            "lang": ask.lang, "home": home(a)}


def api_districts(dash, ask) -> dict:
    return {"districts": districts_of(ask.account, dash.centre.districts() if ask.account.is_city else [])}


def api_overview(dash, ask, day=None) -> dict:
    return overview_data(dash, ask, day)


def api_district(dash, ask, name, day=None) -> dict:
    return district_data(dash, ask, name, day)


def api_ward(dash, ask, name, ward, day=None) -> dict:
    return ward_data(dash, ask, name, ward, day)


def api_venue(dash, ask, venue_id) -> dict:
    return venue_data(dash, ask, venue_id)


def api_inspection(dash, ask, district=None, kind=None, limit=PAGE_SIZE, offset=0, ward=None, sort=None,
                   order="asc") -> dict:
    return inspection_data(dash, ask, district, kind, limit, offset, ward, sort, order)


def api_history(dash, ask, district=None, venue_id=None, days=30) -> dict:
    scope = figures_scope(ask.account, district=district, venue_id=venue_id)
    return dash.centre._envelope(scope=_scope_dict(scope), history=dash.centre.history(scope, days))


def api_hourly(dash, ask, district=None, venue_id=None) -> dict:
    scope = figures_scope(ask.account, district=district, venue_id=venue_id)
    return dash.centre._envelope(scope=_scope_dict(scope), hourly=dash.centre.hourly(scope))


def api_kiosks(dash, ask, district=None) -> dict:
    return dash.centre._envelope(kiosks=dash.centre.kiosks(scope_of(ask.account, VENUES, district=district)))


def api_versions(dash, ask, district=None, current=None) -> dict:
    return versions_data(dash, ask, district, current)


def api_refused(dash, ask) -> dict:
    scope_of(ask.account, CITY)  # topics name every site: the city's business
    return dash.centre.refused()


def api_report(dash, ask, day=None) -> dict:
    day = dash.centre.check_day(day)
    return {**dash.centre._envelope(rows=dash.centre.daily_report(scope_of(ask.account, FIGURES), day=day)),
            "day": day}


# -- pages --------------------------------------------------------------------------------------
def _day_q(data: dict) -> str:
    """The query string that keeps a past day on links and charts ("" for today)."""
    return "" if data.get("today", True) else "day=" + data["day"]


def home_page(dash, ask, day=None):
    if not ask.account.is_city:
        return RedirectResponse(home(ask.account), status_code=303)
    data = overview_data(dash, ask, day)
    dq = _day_q(data)
    return dash.page(ask, "overview.html", data=data, api="/api/v1/overview" + (f"?{dq}" if dq else ""),
                     chart_q=dq, day_q=dq)


def district_page(dash, ask, name, day=None):
    data = district_data(dash, ask, name, day)
    dq = _day_q(data)
    return dash.page(ask, "district.html", data=data,
                     api=f"/api/v1/districts/{_quote(name)}" + (f"?{dq}" if dq else ""),
                     chart_q="district=" + _quote(name) + (f"&{dq}" if dq else ""), day_q=dq)


def ward_page(dash, ask, name, ward, day=None):
    data = ward_data(dash, ask, name, ward, day)
    dq = _day_q(data)
    return dash.page(ask, "ward.html", data=data, day_q=dq,
                     api=f"/api/v1/districts/{_quote(name)}/wards/{_quote(ward)}" + (f"?{dq}" if dq else ""))


def venue_page(dash, ask, venue_id):
    data = venue_data(dash, ask, venue_id)
    return dash.page(ask, "venue.html", data=data, api=f"/api/v1/venues/{_quote(data['venue']['venue_id'])}",
                     visits=field.venue_visits(dash, data["venue"]["venue_id"]))


def inspection_page(dash, ask, district=None, kind=None, limit=PAGE_SIZE, offset=0, ward=None, sort=None,
                    order="asc"):
    data = inspection_data(dash, ask, district, kind, limit, offset, ward, sort, order)
    districts = districts_of(ask.account, dash.centre.districts() if ask.account.is_city else [])
    chosen = district or (districts[0] if len(districts) == 1 else None)
    wards = [w["name"] for w in dash.centre.district(chosen, scope_of(ask.account, INSPECTION, district=chosen))[
        "wards"]] if chosen else []
    return dash.page(ask, "inspection.html", data=data, districts=districts, selected=district or "",
                     wards=wards, ward=ward or "", sort=sort or "", order=order, kind=kind or "", page_size=limit,
                     api="/api/v1/inspection?" + ask.request.url.query)


VERSIONS_SHOWN = 500  # kiosks behind listed on the page (all of them: the API twin)


def versions_page(dash, ask, district=None, current=None):
    data = versions_data(dash, ask, district, current)
    districts = districts_of(ask.account, dash.centre.districts() if ask.account.is_city else [])
    return dash.page(ask, "versions.html", data=data, districts=districts, selected=district or "",
                     current=current or "", unknown=UNKNOWN, shown=VERSIONS_SHOWN,
                     api="/api/v1/versions?" + ask.request.url.query)


def metrics_text(dash, ask):
    """The centre's metrics, as Prometheus reads them (a city account: the whole city's kiosks and refusals)."""
    scope_of(ask.account, CITY)
    body, content_type = dash.metrics.render(ask.request.headers.get("accept"))
    return Response(body, media_type=content_type, headers={"Cache-Control": "no-store"})


def report_csv(dash, ask, day=None):
    day = dash.centre.check_day(day)
    rows = dash.centre.daily_report(scope_of(ask.account, FIGURES), day=day)
    cols = ["level", "district", "ward", *FIGURE_NAMES, "scan_share"]
    return csv_response(list(csv_words.rows(rows, cols, ask.lang, dash.centre.settings.timezone)), cols,
                        f"report-{day}.csv", csv_words.headers(cols, ask.lang))


def inspection_csv(dash, ask, district=None, kind=None, ward=None, sort=None, order="asc"):
    rows = dash.centre.inspection_rows(_inspection_scope(ask, district, ward), kinds=(kind,) if kind else (),
                                       sort=sort, desc=order == "desc")
    return csv_stream(csv_words.rows(rows, INSPECTION_CSV, ask.lang, dash.centre.settings.timezone), INSPECTION_CSV,
                      f"inspection-{dash.centre.settings.today()}.csv", csv_words.headers(INSPECTION_CSV, ask.lang))


def chart_svg(dash, ask, chart, district=None, venue_id=None, day=None):
    """One chart, computed only when asked for (pages embed them as <img>, fetched on their own)."""
    scope = figures_scope(ask.account, district=district, venue_id=venue_id)
    centre, w = dash.centre, words(ask.lang)
    day = centre.check_day(day)
    if chart == "hourly":
        svg = charts.bars(centre.hourly(scope), [f"{h}h" for h in range(24)], w["hourly"], every=4)
    else:
        hist = centre.history(scope, until=day)
        labels = [r["day"][5:] for r in hist]
        if chart == "history":
            svg = charts.bars([r["scans"] for r in hist], labels, w["history"], every=7)
        else:  # venues with a code per day: the registry's history, not today's number drawn flat
            svg = charts.lines([(w["venues_with_scans"], [r["venues_with_scans"] for r in hist], "l1"),
                                (w["venues_with_code"], [r["venues_with_code"] for r in hist], "l2")], labels,
                               w["coverage"])
    return Response(svg, media_type="image/svg+xml",
                    headers={"Cache-Control": "no-store", "Content-Security-Policy": SVG_CSP})
