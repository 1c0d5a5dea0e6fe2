"""The route table: every page, API route, export and chart, with its parameters and what it answers.

The app's routes and ``/api/v1/openapi.json`` are both made from :data:`ENDPOINTS` (and
:data:`FORMS`, the login, logout and language forms), so the description cannot drift from what
is served. ``kind``: ``api`` (JSON; 401 without a session), ``page`` (HTML; the login page
without a session), ``csv``, ``svg`` or ``metrics`` (text; 401 without a session). :data:`PROBES`,
the health probes, are answered without a session. ``schema``: the name of the JSON answer's schema in
:mod:`kiosk.centre.web.openapi`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from kiosk.centre.access import CAMPAIGNS, CITY, FIGURES, INSPECTION, VENUES, VISITS
from kiosk.centre.i18n import LANGUAGES
from kiosk.centre.queries import INSPECTION_KINDS
from kiosk.centre.web import field, views
from kiosk.centre.web.params import Param


@dataclass(frozen=True)
class Endpoint:
    path: str
    name: str
    kind: str
    handler: Callable
    summary: str
    need: str | None = None  # the capability (kiosk.centre.access); None: any account
    params: tuple[Param, ...] = ()
    schema: str | None = None
    redirects: bool = False  # may answer 303 to a logged-in account (a home page)


DISTRICT_Q = Param("district", description="only this district (a district account: its own; an inspector: "
                                           "one of its districts)")
VENUE_Q = Param("venue_id", description="only this venue")
DISTRICT_P = Param("name", where="path", description="the district's name as in the venue registry")
WARD_P = Param("ward", where="path", description="the ward's name as in the venue registry")
VENUE_P = Param("venue_id", where="path", description="the venue's id in the venue registry")
KIND_Q = Param("kind", kind="enum", choices=INSPECTION_KINDS, description="only rows of this kind")
LIMIT_Q = Param("limit", kind="integer", minimum=1, maximum=5000, default=views.PAGE_SIZE,
                description="rows a page")
OFFSET_Q = Param("offset", kind="integer", minimum=0, maximum=10_000_000, default=0,
                 description="rows to skip (the next page: offset + limit)")
DAYS_Q = Param("days", kind="integer", minimum=1, maximum=120, default=30, description="days, today included")
DAY_Q = Param("day", kind="date", description="the city's local day (YYYY-MM-DD) the figures are of; default "
                                             "today; not after today nor older than the history kept (404)")
WARD_Q = Param("ward", description="only this ward (with district: of that district; without: of that name in any)")
SORT_Q = Param("sort", kind="enum", choices=("why", "venue", "ward", "district", "since"),
               description="sort by this column first (then the list's own order: district, ward, problem, venue)")
ORDER_Q = Param("order", kind="enum", choices=("asc", "desc"), default="asc", description="the sort's direction")
CURRENT_Q = Param("current", max_length=64, description="the version kiosks should run; older ones are behind "
                                                      "(default: the newest version a kiosk in the scope runs)")
CHART_P = Param("chart", where="path", kind="enum", choices=("history", "coverage", "hourly"),
                description="which chart")

CAMPAIGN_P = Param("campaign_id", where="path", max_length=64, description="the campaign's id")
CAMPAIGN_Q = Param("campaign_id", max_length=64, description="only this campaign (default: every campaign the "
                                                               "account sees, the newest first)")
CAMPAIGN_OPT = Param("campaign_id", max_length=64, description="only this campaign (default: every campaign the "
                                                                 "account sees)")
VISIT_DAY_Q = Param("day", kind="date", max_length=10, description="a day of visits as YYYY-MM-DD (default: today)")
INSPECTOR_Q = Param("inspector", max_length=64, description="only this inspector's visits")

ENDPOINTS: tuple[Endpoint, ...] = (
    # -- the API --------------------------------------------------------------------------------
    Endpoint("/api/v1/me", "me", "api", views.api_me, "the account asking: name, role, districts, language",
             schema="Me"),
    Endpoint("/api/v1/overview", "overview", "api", views.api_overview,
             "a day's figures of the city (default today) and one row per district (city account)", CITY, (DAY_Q,),
             schema="Overview"),
    Endpoint("/api/v1/districts", "districts", "api", views.api_districts, "the districts the account may see",
             schema="Districts"),
    Endpoint("/api/v1/districts/{name}", "district", "api", views.api_district,
             "one district's figures and one row per ward", FIGURES, (DISTRICT_P, DAY_Q), schema="District"),
    Endpoint("/api/v1/districts/{name}/wards/{ward}", "ward", "api", views.api_ward,
             "one ward's venues with today's figures", VENUES, (DISTRICT_P, WARD_P, DAY_Q), schema="Ward"),
    Endpoint("/api/v1/venues/{venue_id}", "venue", "api", views.api_venue,
             "one venue: where, today's figures, its kiosks, 30 days, today's hourly curve", VENUES, (VENUE_P,),
             schema="Venue"),
    Endpoint("/api/v1/inspection", "inspection", "api", views.api_inspection,
             "the inspection list: one row per problem, paged", INSPECTION,
             (DISTRICT_Q, WARD_Q, KIND_Q, SORT_Q, ORDER_Q, LIMIT_Q, OFFSET_Q), schema="Inspection"),
    Endpoint("/api/v1/history", "history", "api", views.api_history,
             "scans and venues with scans per day (a venue's: any account that sees the venue)", FIGURES,
             (DISTRICT_Q, VENUE_Q, DAYS_Q), schema="History"),
    Endpoint("/api/v1/hourly", "hourly", "api", views.api_hourly, "today's scans per local hour", FIGURES,
             (DISTRICT_Q, VENUE_Q), schema="Hourly"),
    Endpoint("/api/v1/kiosks", "kiosks", "api", views.api_kiosks,
             "every kiosk: online, health flags, today's counts", VENUES, (DISTRICT_Q,), schema="Kiosks"),
    Endpoint("/api/v1/versions", "versions", "api", views.api_versions,
             "the fleet's software: versions for the account's scope and per district, every kiosk, those behind",
             VENUES, (DISTRICT_Q, CURRENT_Q), schema="Versions"),
    Endpoint("/api/v1/refused", "refused", "api", views.api_refused,
             "messages that changed nothing, per reason and topic (city account)", CITY, schema="Refused"),
    Endpoint("/api/v1/report", "report", "api", views.api_report,
             "the daily report: a row per district, then per ward, then the city's total", FIGURES, (DAY_Q,),
             schema="Report"),
    # -- pages, exports, charts -----------------------------------------------------------------
    Endpoint("/", "home", "page", views.home_page, "the city overview (other accounts: their home page)",
             params=(DAY_Q,), redirects=True),
    Endpoint("/district/{name}", "district_page", "page", views.district_page, "a district", FIGURES,
             (DISTRICT_P, DAY_Q)),
    Endpoint("/district/{name}/ward/{ward}", "ward_page", "page", views.ward_page, "a ward's venues", VENUES,
             (DISTRICT_P, WARD_P, DAY_Q)),
    Endpoint("/venue/{venue_id}", "venue_page", "page", views.venue_page, "a venue", VENUES, (VENUE_P,)),
    Endpoint("/versions", "versions_page", "page", views.versions_page,
             "which version each kiosk runs, per district, and which kiosks are behind", VENUES,
             (DISTRICT_Q, CURRENT_Q)),
    Endpoint("/inspection", "inspection_page", "page", views.inspection_page, "the inspection list", INSPECTION,
             (DISTRICT_Q, WARD_Q, KIND_Q, SORT_Q, ORDER_Q, LIMIT_Q, OFFSET_Q)),
    Endpoint("/inspection.csv", "inspection_csv", "csv", views.inspection_csv, "the whole inspection list as CSV",
             INSPECTION, (DISTRICT_Q, WARD_Q, KIND_Q, SORT_Q, ORDER_Q)),
    Endpoint("/report.csv", "report_csv", "csv", views.report_csv, "the daily report as CSV", FIGURES,
             (DAY_Q,)),
    Endpoint("/charts/{chart}.svg", "chart", "svg", views.chart_svg, "a chart drawn on the server", FIGURES,
             (CHART_P, DISTRICT_Q, VENUE_Q, DAY_Q)),
    # -- operations -----------------------------------------------------------------------------
    Endpoint("/metrics", "metrics", "metrics", views.metrics_text,
             "this process's metrics in the Prometheus text format (city account; Prometheus itself scrapes "
             "--metrics-listen, which needs no session)", CITY),
    # -- inspection campaigns (kiosk.centre.web.field; the forms: FORMS, kiosk.centre.web.field_forms) --------
    Endpoint("/api/v1/campaigns", "campaigns", "api", field.api_campaigns,
             "the inspection campaigns the account sees, with venues planned and visited", schema="Campaigns"),
    Endpoint("/api/v1/campaigns/{campaign_id}", "campaign", "api", field.api_campaign,
             "one campaign and its visit list (an inspector: its own visits; an official: its district's)",
             params=(CAMPAIGN_P,), schema="Campaign"),
    Endpoint("/api/v1/visits", "visits", "api", field.api_visits, "the visits recorded in the account's campaigns",
             params=(CAMPAIGN_Q, VISIT_DAY_Q, INSPECTOR_Q, LIMIT_Q, OFFSET_Q), schema="Visits"),
    Endpoint("/api/v1/inspection-report", "inspection_report", "api", field.api_report,
             "a campaign's report (all the account's campaigns without campaign_id): venues planned, visited, "
             "compliant, each finding, each outcome, for all its districts, per district and per day",
             CAMPAIGNS, (CAMPAIGN_OPT, DISTRICT_Q), schema="InspectionReport"),
    Endpoint("/api/v1/field/day", "field_day", "api", field.api_field_day,
             "an inspector's visits of a day (default today) and those of earlier days still to make", VISITS,
             (VISIT_DAY_Q,), schema="FieldDay"),
    Endpoint("/campaigns", "campaigns_page", "page", field.campaigns_page,
             "the campaigns, and (an official) the form that creates one"),
    Endpoint("/campaigns/{campaign_id}", "campaign_page", "page", field.campaign_page,
             "a campaign: its report and its visit list, editable by an official", params=(CAMPAIGN_P,)),
    Endpoint("/inspection-report", "inspection_report_page", "page", field.report_page, "the campaigns' report",
             CAMPAIGNS, (CAMPAIGN_OPT, DISTRICT_Q)),
    Endpoint("/inspection-report.csv", "inspection_report_csv", "csv", field.report_csv,
             "the campaigns' report as CSV (UTF-8 with a byte-order mark; headers in the page's language)",
             CAMPAIGNS, (CAMPAIGN_OPT, DISTRICT_Q)),
    Endpoint("/inspection-report.xlsx", "inspection_report_xlsx", "xlsx", field.report_xlsx,
             "the campaigns' report as an Excel workbook", CAMPAIGNS, (CAMPAIGN_OPT, DISTRICT_Q)),
    Endpoint("/field/day", "field_day_page", "page", field.field_day_page,
             "the inspector's phone: the day's visits, with the map and the reason of each", VISITS, (VISIT_DAY_Q,)),
    Endpoint("/field/visit/{campaign_id}/{venue_id}", "visit_form_page", "page", field.visit_form_page,
             "the inspector's phone: the visit form (checklist, photo of the posted code, outcome)", VISITS,
             (CAMPAIGN_P, VENUE_P)),
    Endpoint("/field/sw.js", "field_service_worker", "script", field.service_worker,
             "the service worker that keeps the inspector's pages for the day on the phone", VISITS),
)


@dataclass(frozen=True)
class Probe:
    """A health probe: answered without a session, one word per check (kiosk.centre.health)."""

    path: str
    name: str
    summary: str


PROBES: tuple[Probe, ...] = (
    Probe("/healthz", "healthz", "the process is alive (200 alive, 503 stopped)"),
    Probe("/readyz", "readyz", "ready: the broker connected (a process that ingests) and the store reachable and "
                               "writable (200 ready, 503 not ready, with ok or down per check)"),
)


@dataclass(frozen=True)
class Form:
    """A state-changing route (POST, CSRF token and same-origin check): described, not in ENDPOINTS."""

    path: str
    name: str
    summary: str
    fields: tuple[str, ...]
    params: tuple[Param, ...] = ()
    statuses: tuple[int, ...] = (303, 403)
    media: str = "application/x-www-form-urlencoded"  # or "image/*": the body is a photo
    schema: str | None = None  # the JSON answer's schema (a form that answers JSON, not a redirect)


LANG_P = Param("code", where="path", kind="enum", choices=LANGUAGES, description="the dashboard's language")

FORMS: tuple[Form, ...] = (
    Form("/login", "login", "log in (form: name, password, csrf, next); answers 303 to next or the account's home",
         ("name", "password", "csrf", "next"), statuses=(303, 400, 401, 403, 413, 429)),
    Form("/logout", "logout", "end this session (form: csrf)", ("csrf",)),
    Form("/lang/{code}", "lang", "switch the dashboard's language (form: csrf, next)", ("csrf", "next"), (LANG_P,),
         statuses=(303, 400, 403)),
    # -- inspection campaigns (kiosk.centre.web.field_forms) -----------------------------------------------
    Form("/campaigns", "campaign_create", "create a campaign (form: csrf, campaign_id, name, first_day, last_day, "
         "district, kind and member (each repeated), sample_share); the same campaign_id twice makes one campaign",
         ("csrf", "campaign_id", "name", "first_day", "last_day", "district", "kind", "member", "sample_share"),
         statuses=(303, 400, 403, 404, 413)),
    Form("/campaigns/{campaign_id}/plan", "campaign_plan_edit", "edit a campaign's visit list (form: csrf, action "
         "add, remove or change, venue_id, inspector, day)", ("csrf", "action", "venue_id", "inspector", "day"),
         (CAMPAIGN_P,), statuses=(303, 400, 403, 404, 413)),
    Form("/api/v1/visits", "visit_record", "record a visit (the phone's outbox; header X-CSRF-Token): visit_id made "
         "by the phone (the same visit resent changes nothing; other answers under its id: 409), campaign_id, "
         "venue_id, at (ms since 1970), the checklist "
         "(code_created, posted_entrance, posting_ok, visitors_guided, scanning, kiosk_working: yes, no or na), "
         "outcome (compliant, reminded, warned, fined), note, lat, lon, accuracy",
         ("csrf", "visit_id", "campaign_id", "venue_id", "at", "code_created", "posted_entrance", "posting_ok",
          "visitors_guided", "scanning", "kiosk_working", "outcome", "note", "lat", "lon", "accuracy"),
         statuses=(200, 400, 401, 403, 409, 413), schema="VisitAnswer"),
    Form("/api/v1/visits/{visit_id}/photo", "visit_photo", "the photo of the venue's posted code (JPEG, PNG or WebP, "
         "at most 8 MiB; header X-CSRF-Token): read with the kiosk's decoder and compared with the registry's code; "
         "the photo is not kept", (), (Param("visit_id", where="path", max_length=64, description="the visit's id"),),
         statuses=(200, 400, 401, 403, 404, 409, 413), media="image/*", schema="VisitAnswer"),
)
