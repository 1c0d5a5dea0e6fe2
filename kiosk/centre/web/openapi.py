"""``/api/v1/openapi.json``: the OpenAPI 3.0 description, made from the route table.

Every route of :data:`~kiosk.centre.web.routes.ENDPOINTS` and :data:`~kiosk.centre.web.routes.FORMS`,
with its parameters, its answers and, for JSON answers, their schemas below. The suite checks that
every route the app serves is described and every described route is served
(tests/test_centre_openapi.py), and fuzzes each from this description with schemathesis.
"""

from __future__ import annotations

from kiosk import __version__
from kiosk.centre.queries import FIGURES, INSPECTION_KINDS, LIVE_FIGURES
from kiosk.centre.visits import OUTCOMES
from kiosk.centre.web.field_schemas import field_schemas
from kiosk.centre.web.routes import ENDPOINTS, FORMS, PROBES

_STR = {"type": "string"}
_NSTR = {"type": "string", "nullable": True}
_INT = {"type": "integer"}
_NBOOL = {"type": "boolean", "nullable": True}
_TIME = {"type": "string", "nullable": True, "description": "ISO 8601 UTC, or null"}


def _obj(props: dict, required: list[str] | None = None, **extra) -> dict:
    return {"type": "object", "properties": props, "required": list(props) if required is None else required, **extra}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


_ENVELOPE = {"day": {"type": "string", "description": "the city's local day"}, "generated": _STR}
_SCOPE = _obj({"district": _NSTR, "ward": _NSTR, "venue_id": _NSTR, "districts": {"type": "array", "items": _STR}},
              required=["district", "ward", "venue_id"])
_DAY = _obj({"day": _STR, **{k: _INT for k in ("scans", "accepted", "rejected", "duplicates", "overrides",
                                                "venues_with_scans", "venues_with_code")}})
# A figure of the fleet as it is now: null for a past day. The share of venues with a code that had a scan.
_FIG = {f: ({"type": "integer", "nullable": True, "description": "now; null for a past day"}
            if f in LIVE_FIGURES else _INT) for f in FIGURES}
_SHARE = {"type": "number", "nullable": True, "minimum": 0, "maximum": 1,
          "description": "venues with scans / venues with a code (null: no venue with a code)"}
_TODAY = {"type": "boolean", "description": "the figures are today's (false: a past day asked with ?day=)"}

SCHEMAS = {
    "Error": _obj({"error": _STR, "parameter": _STR}, required=["error"]),
    "Figures": _obj({**_FIG, "scan_share": _SHARE}),
    "NamedFigures": _obj({"name": _STR, **_FIG, "scan_share": _SHARE}),
    "Me": _obj({"account": _STR, "role": {"type": "string", "enum": ["city", "district", "inspector"]},
                "districts": {"type": "array", "items": _STR}, "district": _NSTR,
                "lang": {"type": "string", "enum": ["vi", "en"]}, "home": _STR}),
    "Districts": _obj({"districts": {"type": "array", "items": _STR}}),
    "Overview": _obj({**_ENVELOPE, "today": _TODAY, "scope": _SCOPE, "totals": _ref("Figures"),
                      "districts": {"type": "array", "items": _ref("NamedFigures")}}),
    "District": _obj({**_ENVELOPE, "today": _TODAY, "district": _STR, "totals": _ref("Figures"),
                      "wards": {"type": "array", "items": _ref("NamedFigures")}}),
    "VenueRow": _obj({"venue_id": _STR, "name": _STR, "address": _STR, "ward": _STR, "district": _STR,
                      "registered": {"type": "boolean"}, "kiosks": _INT, "kiosks_online": _INT, "scans": _INT,
                      "accepted": _INT, "rejected": _INT, "duplicates": _INT, "overrides": _INT,
                      "unique_visitors": _INT, "last_scan": _TIME}),
    "Ward": _obj({**_ENVELOPE, "today": _TODAY, "district": _STR, "ward": _STR,
                  "venues": {"type": "array", "items": _ref("VenueRow")}}),
    "Kiosk": _obj({"site": _STR, "device": _STR, "venue_id": _STR, "venue_name": _STR, "address": _STR,
                   "ward": _STR, "district": _STR, "online": {"type": "boolean"}, "status": _NSTR,
                   "last_heard": _TIME, "camera_ok": _NBOOL, "camera_error": _STR, "display_ok": _NBOOL,
                   "clock_synced": _NBOOL, "trust_stale": _NBOOL, "degraded": {"type": "array", "items": _STR},
                   "version": _NSTR, **{k: _INT for k in ("scans", "accepted", "rejected", "duplicates", "overrides",
                                                           "unique_visitors", "dropped_events")},
                   "last_seq": {"type": "integer", "nullable": True}, "last_scan": _TIME}),
    "Day": _DAY,
    "Venue": _obj({**_ENVELOPE, "venue": _ref("VenueRow"), "kiosks": {"type": "array", "items": _ref("Kiosk")},
                   "history": {"type": "array", "items": _ref("Day")},
                   "hourly": {"type": "array", "items": _INT, "minItems": 24, "maxItems": 24}}),
    "InspectionRow": _obj({"why": {"type": "string", "enum": list(INSPECTION_KINDS)},
                           "provisional": {"type": "boolean", "description": "a no-scans-today row before the "
                                                                             "grace hour: the venue may open later"},
                           "venue_id": _STR,
                           "venue_name": _STR, "address": _STR, "ward": _STR, "district": _STR, "site": _NSTR,
                           "device": _NSTR, "since": _TIME, "for_seconds": {"type": "integer", "nullable": True},
                           "detail": _STR, "detail_vi": _STR,
                           "last_visit": {**_obj({"at": _TIME, "outcome": {"type": "string", "enum": list(OUTCOMES)}}),
                                          "nullable": True,
                                          "description": "the venue's latest inspection visit, or null"}}),
    "Inspection": _obj({**_ENVELOPE, "scope": _SCOPE, "total": _INT,
                        "by_kind": {"type": "object", "additionalProperties": _INT}, "offset": _INT,
                        "rows": {"type": "array", "items": _ref("InspectionRow")}}),
    "History": _obj({**_ENVELOPE, "scope": _SCOPE, "history": {"type": "array", "items": _ref("Day")}}),
    "Hourly": _obj({**_ENVELOPE, "scope": _SCOPE,
                    "hourly": {"type": "array", "items": _INT, "minItems": 24, "maxItems": 24}}),
    "Kiosks": _obj({**_ENVELOPE, "kiosks": {"type": "array", "items": _ref("Kiosk")}}),
    "Refused": _obj({**_ENVELOPE, "total": _INT, "by_reason": {"type": "object", "additionalProperties": _INT},
                     "topics": {"type": "array", "items": _obj({"topic": _STR, "reason": _STR, "n": _INT,
                                                                "last_at": _TIME})}}),
    "VersionTally": _obj({"kiosks": _INT, "behind": _INT, "unknown": _INT,
                          "versions": {"type": "object", "additionalProperties": _INT,
                                       "description": "kiosks per version, newest first; 'unknown': no signed info"}}),
    "VersionKiosk": _obj({"site": _STR, "device": _STR, "venue_id": _STR, "venue_name": _STR, "district": _STR,
                          "ward": _STR, "version": _STR, "behind": {"type": "boolean"}, "online": {"type": "boolean"},
                          "status": _NSTR, "info_at": _TIME}),
    "Versions": _obj({**_ENVELOPE, "scope": _SCOPE, "current": _NSTR, "current_given": {"type": "boolean"},
                      "newest_seen": _NSTR, "totals": _ref("VersionTally"),
                      "districts": {"type": "array", "items": {"allOf": [_ref("VersionTally"),
                                                                         _obj({"name": _STR})]}},
                      "behind": {"type": "array", "items": _ref("VersionKiosk")},
                      "kiosks": {"type": "array", "items": _ref("VersionKiosk")}}),
    "ReportRow": _obj({"level": {"type": "string", "enum": ["district", "ward", "total"]},
                       "district": {**_NSTR, "description": "null on the total row"},
                       "ward": {**_NSTR, "description": "null on the total row"}, **_FIG, "scan_share": _SHARE}),
    "Report": _obj({**_ENVELOPE, "rows": {"type": "array", "items": _ref("ReportRow")}}),
    **field_schemas(_obj, _ref, _ENVELOPE),
}

_MEDIA = {"page": "text/html", "csv": "text/csv", "svg": "image/svg+xml", "metrics": "text/plain",
          "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "script": "text/javascript"}
_WHY = {400: "a parameter the route cannot use (the message names it)", 401: "no session",
        403: "outside the account's role or districts, or a form from another site",
        404: "no such district, ward or venue in the account's districts",
        303: "to the login page (no session) or the account's home", 413: "request body too large",
        409: "a visit already recorded under this id with other answers, or its photo already checked",
        429: "too many failed logins for this name or address", 200: "the answer"}


def _json_error(code: int) -> dict:
    return {"description": _WHY[code], "content": {"application/json": {"schema": _ref("Error")}}}


def _html(code: int) -> dict:
    return {"description": _WHY[code], "content": {"text/html": {"schema": _STR}}}


def _redirect() -> dict:
    return {"description": _WHY[303], "headers": {"Location": {"schema": _STR}}}


def describe() -> dict:
    """The OpenAPI document (a new dict each call)."""
    paths: dict = {}
    for e in ENDPOINTS:
        if e.kind == "api":
            responses = {"200": {"description": e.summary, "content": {"application/json": {"schema": _ref(e.schema)}}},
                         **{str(c): _json_error(c) for c in (400, 401, 403, 404)}}
        elif e.kind == "metrics":
            responses = {"200": {"description": e.summary, "content": {"text/plain": {"schema": _STR}}},
                         **{str(c): _json_error(c) for c in (401, 403)}}
        else:
            ok = {"schema": _STR} if e.kind != "csv" else {"schema": _STR}
            responses = {"200": {"description": e.summary, "content": {_MEDIA[e.kind]: ok}}, "303": _redirect(),
                         **{str(c): _html(c) for c in (400, 403, 404)}}
        paths[e.path] = {"get": {
            "operationId": e.name, "summary": e.summary, "tags": ["api" if e.kind == "api" else "operations" if e.kind == "metrics" else "pages"],
            "parameters": [p.openapi() for p in e.params], "responses": responses,
            **({"x-capability": e.need} if e.need else {}),
        }}
    for f in FORMS:
        props = {k: {"type": "string", "maxLength": 1024} for k in f.fields}
        responses = {}
        for c in f.statuses:
            if c == 200:
                responses["200"] = {"description": f.summary, "content": {"application/json": {"schema": _ref(f.schema)}}}
            else:
                responses[str(c)] = _redirect() if c == 303 else (
                    _json_error(c) if c == 413 or f.schema else _html(c))
        if f.media == "image/*":
            body = {m: {"schema": {"type": "string", "format": "binary"}} for m in ("image/jpeg", "image/png", "image/webp")}
        else:
            body = {f.media: {"schema": {"type": "object", "properties": props}}}
        paths.setdefault(f.path, {})["post"] = {
            "operationId": f.name, "summary": f.summary, "tags": ["forms"],
            **({} if f.name == "logout" or f.schema or f.path.startswith("/campaigns") else {"security": []}),
            "parameters": [p.openapi() for p in f.params],
            "requestBody": {"required": True, "content": body},
            "responses": responses,
        }
    paths["/login"]["get"] = {
        "operationId": "login_page", "summary": "the login form (a session: 303 to next or the account's home)",
        "tags": ["forms"], "security": [],
        "parameters": [{"name": "next", "in": "query", "required": False, "description": "a path of this site to "
                        "go to after the login (anything else: the account's home)", "schema": {"type": "string"}}],
        "responses": {"200": _html(200), "303": _redirect()},
    }
    probe = {"type": "object", "additionalProperties": {"type": "string", "enum": ["ok", "down"]},
             "properties": {"status": {"type": "string", "enum": ["alive", "stopped", "ready", "not ready"]}},
             "required": ["status"]}
    for p in PROBES:
        paths[p.path] = {"get": {
            "operationId": p.name, "summary": p.summary, "tags": ["operations"], "security": [],
            "responses": {str(c): {"description": p.summary, "content": {"application/json": {"schema": probe}}}
                          for c in (200, 503)},
        }}
    paths["/api/v1/openapi.json"] = {"get": {
        "operationId": "openapi", "summary": "this description", "tags": ["api"], "security": [],
        "responses": {"200": {"description": "OpenAPI 3.0", "content": {"application/json": {"schema": {"type": "object"}}}}},
    }}
    return {
        "openapi": "3.0.3",
        "info": {"title": "Check-in centre", "version": __version__,
                 "description": "The centre's dashboard and JSON API (docs/centre.md). Times are ISO 8601 UTC; "
                                "every JSON answer has `day` (the city's local day) and `generated`. A session "
                                "comes from POST /login (cookie centre_session)."},
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {"schemas": SCHEMAS, "securitySchemes": {
            "session": {"type": "apiKey", "in": "cookie", "name": "centre_session"}}},
        "security": [{"session": []}],
    }
