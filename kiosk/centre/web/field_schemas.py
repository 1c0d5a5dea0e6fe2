"""The JSON schemas of the campaigns' answers (``/api/v1/campaigns``, ``/api/v1/visits``,
``/api/v1/inspection-report``, ``/api/v1/field/day``), for :mod:`kiosk.centre.web.openapi`."""

from __future__ import annotations

from kiosk.centre.inspection_report import FIGURES
from kiosk.centre.visits import CHECKLIST, CODE_CHECKS, FINDINGS, OUTCOMES

_STR = {"type": "string"}
_NSTR = {"type": "string", "nullable": True}
_INT = {"type": "integer"}
_NUM = {"type": "number", "nullable": True}
_LIST = {"type": "array", "items": _STR}


def field_schemas(obj, ref, envelope: dict) -> dict:
    campaign = {"campaign_id": _STR, "name": _STR, "first_day": _STR, "last_day": _STR, "districts": _LIST,
                "kinds": _LIST, "sample_share": {"type": "number"}, "members": _LIST, "created_by": _STR}
    answer = {"yes", "no", "na"}
    visit = obj({"visit_id": _STR, "campaign_id": _STR, "venue_id": _STR, "inspector": _STR,
                 "at": {"type": "string", "description": "when the visit was made, ISO 8601 UTC"}, "day": _STR,
                 **{c: {"type": "string", "enum": sorted(answer)} for c in CHECKLIST},
                 "code_check": {"type": "string", "enum": list(CODE_CHECKS),
                                "description": "the photo of the posted code: '' (none sent), match, differs, "
                                               "unreadable"},
                 "photo_sha256": _STR, "outcome": {"type": "string", "enum": list(OUTCOMES)}, "note": _STR,
                 "lat": _NUM, "lon": _NUM, "accuracy": _NUM, "received_at": _STR,
                 "findings": {"type": "array", "items": {"type": "string", "enum": list(FINDINGS)}}},
                required=["visit_id", "campaign_id", "venue_id", "inspector", "at", "outcome", "findings"])
    plan_row = obj({"venue_id": _STR, "district": _STR, "inspector": _STR, "day": _STR, "reasons": _LIST,
                    "name": _STR, "address": _STR, "ward": _STR, "visits": _INT})
    field_row = obj({"campaign_id": _STR, "campaign": _STR, "venue_id": _STR, "day": _STR, "reasons": _LIST,
                     "name": _STR, "address": _STR, "ward": _STR, "district": _STR, "kind": _STR, "lat": _NUM,
                     "lon": _NUM, "kiosks": _INT, "outcome": _NSTR,
                     "map": {"type": "string", "description": "a geo: URI (the registry's position, else a search "
                                                              "for the address)"}})
    report_row = obj({"level": {"type": "string", "enum": ["city", "district", "day"]}, "district": _NSTR,
                      "day": _NSTR, **{f: _INT for f in FIGURES}})
    return {
        "CampaignSummary": obj({**campaign, "planned": _INT, "visited": _INT}),
        "Campaigns": obj({**envelope, "campaigns": {"type": "array", "items": ref("CampaignSummary")}}),
        "Campaign": obj({**envelope, "campaign": obj(campaign), "plan": {"type": "array", "items": plan_row}}),
        "Visit": visit,
        "Visits": obj({**envelope, "campaign_id": _NSTR, "offset": _INT,
                       "visits": {"type": "array", "items": ref("Visit")}}),
        "VisitAnswer": obj({"visit": ref("Visit"), "created": {"type": "boolean"}}),
        "InspectionReportRow": report_row,
        "InspectionReport": obj({**envelope, "campaigns": {"type": "array", "items": obj(campaign)},
                                 "scope": obj({"campaign_id": _NSTR, "district": _NSTR}),
                                 "total": ref("InspectionReportRow"),
                                 "districts": {"type": "array", "items": ref("InspectionReportRow")},
                                 "days": {"type": "array", "items": ref("InspectionReportRow")}}),
        "FieldDay": obj({**envelope, "inspector": _STR, "for_day": _STR,
                         "visits": {"type": "array", "items": field_row},
                         "earlier": {"type": "array", "items": field_row}}),
    }
