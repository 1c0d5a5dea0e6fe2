"""The dashboard and its JSON twin: Starlette pages and ``/api/v1/`` over the one query layer.

Every page has an API twin built from the same :class:`~kiosk.centre.queries.Centre` call
(Datasette's habit), so the browser tests read the page and the API tests read JSON, and
both read the same figures. Every route but ``/login`` and ``/static`` needs a session; a
district account is held to its district on pages and API alike (403 otherwise). Pages
refresh their figures in place by polling their API twin (``static/centre.js``); every asset
is served from here, so the dashboard works with no internet.
"""

from __future__ import annotations

import csv
import io
import secrets
import urllib.parse
from importlib import resources

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from kiosk.centre import charts
from kiosk.centre.accounts import Account, Accounts, LoginLimiter
from kiosk.centre.i18n import LANGUAGES, words
from kiosk.centre.queries import FIGURES, INSPECTION_KINDS, Centre, Scope

DATA = resources.files("kiosk").joinpath("data/centre")


class Forbidden(Exception):
    pass


def create_app(centre: Centre, accounts: Accounts, session_key: str | None = None, secure_cookies: bool = True,
               limiter: LoginLimiter | None = None, refresh_seconds: float = 10.0) -> Starlette:
    """The ASGI app (uvicorn serves it; tests drive it in-process or through a real browser)."""
    env = Environment(loader=FileSystemLoader(str(DATA / "templates")), autoescape=select_autoescape(["html"]))
    limiter = limiter or LoginLimiter()

    def account(request: Request) -> Account | None:
        name = request.session.get("account")
        return accounts.by_name.get(name) if name else None

    def lang(request: Request) -> str:
        return request.session.get("lang") or "vi"

    def scope_of(a: Account, district: str | None = None, ward: str | None = None,
                 venue_id: str | None = None) -> Scope:
        if not a.is_city and district is not None and district != a.district:
            raise Forbidden()
        return Scope(district=district, ward=ward, venue_id=venue_id).within(a.district)

    def page(request: Request, template: str, **ctx) -> HTMLResponse:
        a = account(request)
        html = env.get_template(template).render(
            w=words(lang(request)), lang=lang(request), account=a, figures=FIGURES, kinds=INSPECTION_KINDS,
            q=urllib.parse.quote, refresh=refresh_seconds, path=request.url.path, **ctx)
        return HTMLResponse(html, headers={"Cache-Control": "no-store"})

    def guarded(api: bool):
        def wrap(fn):
            def endpoint(request: Request):
                a = account(request)
                if a is None:
                    if api:
                        return JSONResponse({"error": "login required"}, status_code=401)
                    return RedirectResponse("/login?next=" + urllib.parse.quote(request.url.path), status_code=303)
                try:
                    return fn(request, a)
                except Forbidden:
                    if api:
                        return JSONResponse({"error": "not your district"}, status_code=403)
                    return HTMLResponse(env.get_template("error.html").render(
                        w=words(lang(request)), account=a, lang=lang(request), q=urllib.parse.quote,
                        message="403"), status_code=403)
                except LookupError:
                    return JSONResponse({"error": "not found"}, status_code=404) if api else \
                        HTMLResponse("not found", status_code=404)
            return endpoint
        return wrap

    # -- data shared by pages and API -----------------------------------------------------
    def overview_data(a: Account) -> dict:
        if not a.is_city:
            raise Forbidden()
        return centre.overview()

    def district_data(a: Account, name: str) -> dict:
        scope = scope_of(a, district=name)
        d = centre.district(name, scope)
        if not d["wards"]:
            raise LookupError(name)
        return d

    def ward_data(a: Account, district: str, ward: str) -> dict:
        scope = scope_of(a, district=district, ward=ward)
        rows = centre.venues(scope)
        if not rows:
            raise LookupError(ward)
        return centre._envelope(district=district, ward=ward, venues=rows)

    def venue_data(a: Account, venue_id: str) -> dict:
        v = centre.venue(venue_id, scope_of(a))
        if v is None:
            raise LookupError(venue_id)
        return v

    def inspection_data(request: Request, a: Account, paged: bool = True) -> dict:
        district = request.query_params.get("district") or None
        kind = request.query_params.get("kind") or ""
        limit = min(5000, int(request.query_params.get("limit", "500") or 500)) if paged else None
        offset = int(request.query_params.get("offset", "0") or 0)
        return centre.inspection(scope_of(a, district=district), kinds=(kind,) if kind else (), limit=limit,
                                 offset=offset)

    def chart(name: str, scope: Scope, lang_: str) -> str | None:
        """One chart, computed only when asked for (pages embed them as <img>, fetched on their own)."""
        w = words(lang_)
        if name == "hourly":
            return charts.bars(centre.hourly(scope), [f"{h}h" for h in range(24)], w["hourly"], every=3)
        if name not in ("history", "coverage"):
            return None
        hist = centre.history(scope)
        labels = [r["day"][5:] for r in hist]
        if name == "history":
            return charts.bars([r["scans"] for r in hist], labels, w["history"], every=5)
        code = centre.venues_with_code(scope)
        return charts.lines([(w["venues_with_scans"], [r["venues_with_scans"] for r in hist], "l1"),
                             (w["venues_with_code"], [code] * len(hist), "l2")], labels, w["coverage"])

    # -- pages -------------------------------------------------------------------------------
    async def login_post(request: Request):
        # A urlencoded form of three fields: parsed here (Starlette's form parser needs python-multipart).
        body = (await request.body())[:8192].decode("utf-8", "replace")
        form = {k: v[0] for k, v in urllib.parse.parse_qs(body).items()}
        name, password = form.get("name", "")[:64], form.get("password", "")[:1024]
        nxt = form.get("next") or "/"
        if not nxt.startswith("/") or nxt.startswith("//"):
            nxt = "/"
        address = request.client.host if request.client else "?"
        w = words(lang(request))
        if limiter.blocked(name, address):
            return HTMLResponse(env.get_template("login.html").render(
                w=w, lang=lang(request), account=None, q=urllib.parse.quote, error=w["too_many"], next=nxt),
                status_code=429)
        from starlette.concurrency import run_in_threadpool

        a = await run_in_threadpool(accounts.check, name, password)  # argon2 takes tens of ms: off the loop
        if a is None:
            limiter.failed(name, address)
            return HTMLResponse(env.get_template("login.html").render(
                w=w, lang=lang(request), account=None, q=urllib.parse.quote, error=w["bad_login"], next=nxt),
                status_code=401)
        request.session.clear()
        request.session["account"] = a.name
        request.session["lang"] = lang(request)
        return RedirectResponse(nxt, status_code=303)

    async def login(request: Request):
        if request.method == "POST":
            return await login_post(request)
        return page(request, "login.html", error="", next=request.query_params.get("next", "/"))

    def logout(request: Request):
        request.session.clear()
        return RedirectResponse("/login", status_code=303)

    def set_lang(request: Request):
        code = request.path_params["code"]
        if code in LANGUAGES:
            request.session["lang"] = code
        back = request.headers.get("referer", "/")
        path = urllib.parse.urlparse(back).path or "/"
        return RedirectResponse(path if path.startswith("/") else "/", status_code=303)

    @guarded(api=False)
    def home(request, a):
        if not a.is_city:
            return RedirectResponse(f"/district/{urllib.parse.quote(a.district)}", status_code=303)
        data = overview_data(a)
        return page(request, "overview.html", data=data, api="/api/v1/overview", chart_q="")

    @guarded(api=False)
    def district_page(request, a):
        name = request.path_params["name"]
        data = district_data(a, name)
        return page(request, "district.html", data=data, api=f"/api/v1/districts/{urllib.parse.quote(name)}",
                    chart_q="district=" + urllib.parse.quote(name))

    @guarded(api=False)
    def ward_page(request, a):
        d, wd = request.path_params["name"], request.path_params["ward"]
        data = ward_data(a, d, wd)
        return page(request, "ward.html", data=data,
                    api=f"/api/v1/districts/{urllib.parse.quote(d)}/wards/{urllib.parse.quote(wd)}")

    @guarded(api=False)
    def venue_page(request, a):
        data = venue_data(a, request.path_params["venue_id"])
        return page(request, "venue.html", data=data, api=f"/api/v1/venues/{urllib.parse.quote(data['venue']['venue_id'])}")

    @guarded(api=False)
    def inspection_page(request, a):
        data = inspection_data(request, a)
        districts = centre.districts() if a.is_city else [a.district]
        return page(request, "inspection.html", data=data, districts=districts,
                    selected=request.query_params.get("district") or "", kind=request.query_params.get("kind") or "",
                    api="/api/v1/inspection?" + request.url.query)

    @guarded(api=False)
    def chart_svg(request, a):
        name = request.path_params["chart"]
        scope = scope_of(a, district=request.query_params.get("district") or None,
                         venue_id=request.query_params.get("venue_id") or None)
        if a.is_city is False and scope.district is None:
            raise Forbidden()
        svg = chart(name, scope, lang(request))
        if svg is None:
            raise LookupError(name)
        return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": "no-store"})

    def _csv(rows: list[dict], columns: list[str], filename: str) -> Response:
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(columns)
        for r in rows:
            w.writerow(["" if r.get(c) is None else r.get(c) for c in columns])
        return Response("\ufeff" + buf.getvalue(), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{filename}"'})

    @guarded(api=False)
    def report_csv(request, a):
        rows = centre.daily_report(scope_of(a))
        return _csv(rows, ["level", "district", "ward", *FIGURES], f"report-{centre.settings.today()}.csv")

    @guarded(api=False)
    def inspection_csv(request, a):
        data = inspection_data(request, a, paged=False)
        cols = ["why", "district", "ward", "venue_id", "venue_name", "address", "site", "device", "since",
                "for_seconds", "detail"]
        return _csv(data["rows"], cols, f"inspection-{centre.settings.today()}.csv")

    # -- API ---------------------------------------------------------------------------------
    def api(fn):
        @guarded(api=True)
        def endpoint(request, a):
            return JSONResponse(fn(request, a), headers={"Cache-Control": "no-store"})
        return endpoint

    def api_me(request, a):
        return {"account": a.name, "district": a.district, "lang": lang(request)}

    def api_districts(request, a):
        return {"districts": centre.districts() if a.is_city else [a.district]}

    def api_history(request, a):
        scope = scope_of(a, district=request.query_params.get("district") or None,
                         venue_id=request.query_params.get("venue_id") or None)
        days = max(1, min(120, int(request.query_params.get("days", "30") or 30)))
        return centre._envelope(scope=scope.__dict__, history=centre.history(scope, days))

    def api_hourly(request, a):
        scope = scope_of(a, district=request.query_params.get("district") or None,
                         venue_id=request.query_params.get("venue_id") or None)
        return centre._envelope(scope=scope.__dict__, hourly=centre.hourly(scope))

    def api_kiosks(request, a):
        scope = scope_of(a, district=request.query_params.get("district") or None)
        return centre._envelope(kiosks=centre.kiosks(scope))

    def api_refused(request, a):
        if not a.is_city:
            raise Forbidden()  # topics name every site: the city's business
        return centre.refused()

    def api_report(request, a):
        return centre._envelope(rows=centre.daily_report(scope_of(a)))

    routes = [
        Route("/login", login, methods=["GET", "POST"]),
        Route("/logout", logout, methods=["GET", "POST"]),
        Route("/lang/{code}", set_lang),
        Route("/", home),
        Route("/district/{name}", district_page),
        Route("/district/{name}/ward/{ward}", ward_page),
        Route("/venue/{venue_id}", venue_page),
        Route("/inspection", inspection_page),
        Route("/inspection.csv", inspection_csv),
        Route("/report.csv", report_csv),
        Route("/charts/{chart}.svg", chart_svg),
        Route("/api/v1/me", api(api_me)),
        Route("/api/v1/overview", api(lambda r, a: overview_data(a))),
        Route("/api/v1/districts", api(api_districts)),
        Route("/api/v1/districts/{name}", api(lambda r, a: district_data(a, r.path_params["name"]))),
        Route("/api/v1/districts/{name}/wards/{ward}",
              api(lambda r, a: ward_data(a, r.path_params["name"], r.path_params["ward"]))),
        Route("/api/v1/venues/{venue_id}", api(lambda r, a: venue_data(a, r.path_params["venue_id"]))),
        Route("/api/v1/inspection", api(lambda r, a: inspection_data(r, a))),
        Route("/api/v1/history", api(api_history)),
        Route("/api/v1/hourly", api(api_hourly)),
        Route("/api/v1/kiosks", api(api_kiosks)),
        Route("/api/v1/refused", api(api_refused)),
        Route("/api/v1/report", api(api_report)),
        Mount("/static", StaticFiles(directory=str(DATA / "static")), name="static"),
    ]
    middleware = [Middleware(SessionMiddleware, secret_key=session_key or secrets.token_urlsafe(32),
                             session_cookie="centre_session", max_age=12 * 3600, same_site="strict",
                             https_only=secure_cookies)]
    return Starlette(routes=routes, middleware=middleware)
