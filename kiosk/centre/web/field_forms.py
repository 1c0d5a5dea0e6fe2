"""The forms that change campaigns and the phone's posts that record visits (POST).

Each goes through the dashboard's machinery: a session, this site's own pages (:func:`same_origin`),
the session's CSRF token (the ``csrf`` field of a form, or the ``X-CSRF-Token`` header the phone's
outbox sends with a visit and its photo), then :mod:`kiosk.centre.access`. A refusal is a 4xx with a
sentence naming the field: HTML for the officials' forms, JSON for the phone. Every one is idempotent:
a campaign id, a visit id and a photo sent twice change nothing the second time.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import urllib.parse

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from kiosk.centre import campaigns, photo_check, visits
from kiosk.centre.access import CAMPAIGNS, VISITS, may
from kiosk.centre.web.dashboard import Asked, Dashboard, JSON, json_error
from kiosk.centre.web.field import campaign_of
from kiosk.centre.web.security import same_origin

FORM_TYPE = "application/x-www-form-urlencoded"
MAX_FIELDS = 500  # a campaign's form: a field per district, kind and member picked, and a few more
TOO_MANY = f"body: at most {MAX_FIELDS} fields"
CROSS_SITE = "this form came from another site or is out of date: reload the page and try again"
PHOTO_TOO_LARGE = (f"photo: at most {photo_check.MAX_PHOTO_BYTES // (1024 * 1024)} MiB; take the photo again at a "
                   "lower resolution (the visit itself is kept)")


def _fields(body: bytes) -> dict[str, list[str]] | None:
    """A form's fields, each with its values in order; None: more fields than any of these forms has."""
    try:
        pairs = urllib.parse.parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True,
                                       max_num_fields=MAX_FIELDS)
    except ValueError:
        return None
    out: dict[str, list[str]] = {}
    for k, v in pairs:
        out.setdefault(k, []).append(v)
    return out


def _token_ok(ask: Asked, given: str) -> bool:
    want = ask.session.csrf if ask.session is not None else ""
    return bool(want) and hmac.compare_digest(want.encode("utf-8", "replace"), given.encode("utf-8", "replace"))


def routes(dash: Dashboard):
    """(path, endpoint) of each POST route below; their descriptions are in routes.FORMS."""

    async def guarded(request: Request, fields: dict[str, list[str]] | None, json_answer: bool):
        """(ask, refusal or None): a session, a form that could be read (``fields`` None: too many), same
        origin and the CSRF token."""
        ask = await run_in_threadpool(dash.asked, request)
        if ask.account is None:
            return ask, (json_error(401, "login required") if json_answer else dash.login_redirect(ask))
        if fields is None:  # its token cannot be told from the rest: say why, not "from another site"
            return ask, (json_error(400, TOO_MANY, parameter="body") if json_answer
                         else dash.error_page(ask, 400, TOO_MANY))
        given = request.headers.get("x-csrf-token") or ((fields or {}).get("csrf") or [""])[0]
        if not same_origin(request, dash.trusted) or not _token_ok(ask, given):
            return ask, (json_error(403, CROSS_SITE) if json_answer else dash.error_page(ask, 403, CROSS_SITE))
        return ask, None

    async def officials_form(request: Request):
        """(ask, fields, refusal or None) of a form only an official (city or district) may send."""
        fields = _fields(await request.body())
        ask, refusal = await guarded(request, fields, False)
        if refusal is None and not may(ask.account, CAMPAIGNS):
            refusal = dash.error_page(ask, 403, "403")
        return ask, fields, refusal

    def refuse_html(ask, status: int, message: str) -> Response:
        return dash.finish(ask, dash.error_page(ask, status, message))

    async def create_campaign(request: Request) -> Response:
        ask, fields, refusal = await officials_form(request)
        if refusal is not None:
            return dash.finish(ask, refusal)
        one = {k: v[0] for k, v in fields.items()}
        try:
            cid, name, first, last, districts, kinds, members, share = campaigns.check_new(
                one.get("campaign_id", ""), one.get("name", ""), one.get("first_day", ""), one.get("last_day", ""),
                fields.get("district", []), fields.get("kind", []), fields.get("member", []),
                one.get("sample_share", "0.1"), dash.centre.settings.today())
            for d in districts:
                if not ask.account.is_city and d not in ask.account.districts:
                    raise campaigns.CampaignError("districts", f"districts: {d[:80]} is not your district")
            c = campaigns.Campaign(cid, name, first, last, districts, kinds, share, members, ask.account.name,
                                   dash.centre.settings.now())
            c, made = await run_in_threadpool(campaigns.create, dash.centre, c, campaigns.inspectors(dash.accounts))
        except campaigns.CampaignError as exc:
            return refuse_html(ask, 400, exc.message)
        if made:
            await run_in_threadpool(dash.audit.write, "campaign-created", account=ask.account.name,
                                    campaign=c.campaign_id, address=ask.address)
        return dash.finish(ask, RedirectResponse("/campaigns/" + urllib.parse.quote(c.campaign_id, safe=""),
                                                 status_code=303))

    async def edit_plan(request: Request) -> Response:
        ask, fields, refusal = await officials_form(request)
        if refusal is not None:
            return dash.finish(ask, refusal)
        one = {k: v[0] for k, v in fields.items()}
        try:
            c, held = await run_in_threadpool(campaign_of, dash, ask.account, request.path_params["campaign_id"])
        except LookupError:
            return refuse_html(ask, 404, "not found")
        venue_id, action = one.get("venue_id", ""), one.get("action", "")
        try:
            for field in ("venue_id", "inspector", "day"):
                campaigns.text(one.get(field, ""), field)
            await run_in_threadpool(_edit, c, held, action, venue_id, one)
        except campaigns.CampaignError as exc:
            return refuse_html(ask, 400, exc.message)
        await run_in_threadpool(dash.audit.write, "campaign-edited", account=ask.account.name, campaign=c.campaign_id,
                                action=action, venue=venue_id, address=ask.address)
        return dash.finish(ask, RedirectResponse("/campaigns/" + urllib.parse.quote(c.campaign_id, safe="")
                                                 + "#plan", status_code=303))

    def _edit(c: campaigns.Campaign, held, action: str, venue_id: str, one: dict[str, str]) -> None:
        """One edit of the plan (in a worker thread: it reads and writes the store)."""
        store, covers = dash.centre.store, campaigns.inspectors(dash.accounts)
        row = campaigns.planned_row(store, c.campaign_id, venue_id)
        district = row["district"] if row else None
        if action == "add":
            found = store.query("SELECT district FROM venues WHERE venue_id = ?", [venue_id])
            district = found[0]["district"] if found else None
        if held is not None and district is not None and district not in held:
            raise campaigns.CampaignError("venue_id", "venue_id: not in your district")
        if action == "add":
            campaigns.add_venue(store, c, venue_id, one.get("inspector", ""), one.get("day", ""), covers)
        elif action == "remove":
            campaigns.remove(store, c, venue_id)
        elif action == "change":
            campaigns.change(store, c, venue_id, covers, one.get("inspector") or None, one.get("day") or None)
        else:
            raise campaigns.CampaignError("action", "action: add, remove or change")

    def _may_record(ask, visit: visits.Visit) -> None:
        c = campaigns.get(dash.centre.store, visit.campaign_id)
        if c is None or ask.account.name not in c.members:
            raise campaigns.CampaignError("campaign_id", "campaign_id: not a campaign of your team")
        visits.check_period(visit, c.first_day, c.last_day, dash.centre.settings.timezone)
        row = campaigns.planned_row(dash.centre.store, visit.campaign_id, visit.venue_id)
        if row is None or row["district"] not in ask.account.districts:
            raise campaigns.CampaignError("venue_id", "venue_id: not on this campaign's list in your districts")

    async def record_visit(request: Request) -> Response:
        fields = _fields(await request.body())
        ask, refusal = await guarded(request, fields, True)
        if refusal is not None:
            return dash.finish(ask, refusal)
        if not may(ask.account, VISITS):
            return json_error(403, "only an inspector records visits")
        sent_as = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if sent_as != FORM_TYPE:  # JSON or multipart would be read as an empty form: say what is wrong instead
            return json_error(400, f"body: a form ({FORM_TYPE}), as the phone's outbox sends it, not "
                                   f"{sent_as[:60] or 'a body without a type'}", parameter="body")
        try:
            visit = visits.parse({k: v[0] for k, v in fields.items()}, ask.account.name, time.time())
            await run_in_threadpool(_may_record, ask, visit)
            stored, made = await run_in_threadpool(visits.record, dash.centre.store, visit,
                                                   dash.centre.settings.timezone, dash.centre.settings.now())
        except campaigns.CampaignError as exc:
            return json_error(409 if isinstance(exc, visits.VisitConflict) else 400, exc.message, parameter=exc.field)
        return JSON({"visit": stored, "created": made}, headers={"Cache-Control": "no-store"})

    async def visit_photo(request: Request) -> Response:
        ask, refusal = await guarded(request, {}, True)  # the token comes in its header
        if refusal is not None:
            return dash.finish(ask, refusal)
        if not may(ask.account, VISITS):
            return json_error(403, "only an inspector records visits")
        visit_id = request.path_params["visit_id"]
        if not visits.VISIT_ID.match(visit_id):
            return json_error(404, "visit_id: no such visit of yours; the phone sends the visit before its photo")
        stored = await run_in_threadpool(visits.get, dash.centre.store, visit_id)
        if stored is None or stored["inspector"] != ask.account.name:
            return json_error(404, "visit_id: no such visit of yours; the phone sends the visit before its photo")
        data = await request.body()  # at most the photo cap: the BodyLimit middleware stops a larger one
        digest = hashlib.sha256(data).hexdigest()
        if stored["photo_sha256"] == digest:  # the outbox resending after a lost answer: checked once
            return JSON({"visit": stored, "created": False}, headers={"Cache-Control": "no-store"})
        conflict = visits.photo_conflict(stored, digest)
        if conflict:
            return json_error(409, conflict, parameter="photo")
        registry = await run_in_threadpool(dash.centre.store.query,
                                           "SELECT venue_qr_sha256 FROM venues WHERE venue_id = ?", [stored["venue_id"]])
        try:
            check, digest = await run_in_threadpool(photo_check.check, data,
                                                     registry[0]["venue_qr_sha256"] if registry else "")
        except photo_check.PhotoError as exc:
            return json_error(413 if len(data) > photo_check.MAX_PHOTO_BYTES else 400, str(exc), parameter="photo")
        shown = await run_in_threadpool(visits.set_code_check, dash.centre.store, stored["visit_id"], check, digest)
        conflict = visits.photo_conflict(shown, digest)  # another photo was checked meanwhile
        if conflict:
            return json_error(409, conflict, parameter="photo")
        return JSON({"visit": shown, "created": False}, headers={"Cache-Control": "no-store"})

    return [("/campaigns", create_campaign), ("/campaigns/{campaign_id}/plan", edit_plan),
            ("/api/v1/visits", record_visit), ("/api/v1/visits/{visit_id}/photo", visit_photo)]
