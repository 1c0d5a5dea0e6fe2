"""Visits recorded at the door: the plans' checklist, the outcome, the time and (if allowed) the position.

A visit is sent by the inspector's phone, perhaps hours after it was made (the phone keeps it while it
has no network), perhaps twice (the answer to the first send was lost). Its id is made by the phone, so
:func:`record` stores it once: a resent visit answers the stored one, unchanged. The same id with other
answers is no resend (a phone never changes a visit it made): it is refused with :class:`VisitConflict`
(409), so the difference is said, never dropped in silence nor written over the visit the centre has.

The checklist (Hanoi's plan 2727/KH-STTTT and Hà Tĩnh's, November 2021): each item is ``yes``, ``no``
or ``na`` (does not apply: ``kiosk_working`` where the venue has no kiosk). A ``no`` is a *finding*;
so is a photo of the posted code that cannot be read or holds another code than the registry's
(:mod:`kiosk.centre.photo_check`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from kiosk.centre.campaigns import CampaignError, narrowed, text

CHECKLIST = ("code_created", "posted_entrance", "posting_ok", "visitors_guided", "scanning", "kiosk_working")
OUTCOMES = ("compliant", "reminded", "warned", "fined")
# What the photo of the posted code showed: nothing sent, the registry's code, another code, no code read.
CODE_CHECKS = ("", "match", "differs", "unreadable")
FINDINGS = (*(f"no_{c}" for c in CHECKLIST), "code_differs", "code_unreadable")
VISIT_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
MAX_NOTE = 2000
ANSWERS = {"yes": 1, "no": 0, "na": None}


class VisitConflict(CampaignError):
    """A visit id already stored with other answers: 409 with this sentence (it names what differs)."""


@dataclass(frozen=True)
class Visit:
    visit_id: str
    campaign_id: str
    venue_id: str
    inspector: str
    at: float
    checklist: dict[str, int | None]
    outcome: str
    note: str = ""
    lat: float | None = None
    lon: float | None = None
    accuracy: float | None = None


def _number(text, field: str, low: float, high: float) -> float | None:
    if text in (None, ""):
        return None
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise CampaignError(field, f"{field}: a number from {low:g} to {high:g}") from None
    if not math.isfinite(value) or not low <= value <= high:
        raise CampaignError(field, f"{field}: a number from {low:g} to {high:g}")
    return value


def parse(form: dict[str, str], inspector: str, now: float) -> Visit:
    """A visit from the phone's form (text fields); each refusal names its field.

    ``at``: when the visit was made, milliseconds since the epoch by the phone's clock; not more than
    ten minutes ahead of the centre's (a phone's clock may be a little fast, never a day).
    """
    visit_id = form.get("visit_id", "")
    if not VISIT_ID.match(visit_id):
        raise CampaignError("visit_id", "visit_id: 8 to 64 letters, digits, - or _ (the phone makes it)")
    for field in ("campaign_id", "venue_id"):
        if not form.get(field):
            raise CampaignError(field, f"{field}: missing")
        text(form[field], field)
    checklist = {}
    for item in CHECKLIST:
        answer = form.get(item, "")
        if answer not in ANSWERS:
            raise CampaignError(item, f"{item}: yes, no or na")
        checklist[item] = ANSWERS[answer]
    outcome = form.get("outcome", "")
    if outcome not in OUTCOMES:
        raise CampaignError("outcome", f"outcome: one of {', '.join(OUTCOMES)}")
    note = form.get("note", "")
    if len(note) > MAX_NOTE:
        raise CampaignError("note", f"note: at most {MAX_NOTE} characters")
    if any(ord(c) < 32 and c not in "\n\r\t" for c in note):
        raise CampaignError("note", "note: no control characters")
    at_ms = _number(form.get("at"), "at", 0, (now + 600) * 1000)
    if at_ms is None:
        raise CampaignError("at", "at: when the visit was made (milliseconds since 1970)")
    lat = _number(form.get("lat"), "lat", -90, 90)
    lon = _number(form.get("lon"), "lon", -180, 180)
    if (lat is None) != (lon is None):
        raise CampaignError("lat", "lat: lat and lon go together")
    accuracy = _number(form.get("accuracy"), "accuracy", 0, 100_000)
    return Visit(visit_id, form["campaign_id"], form["venue_id"], inspector, at_ms / 1000.0, checklist, outcome,
                 note.strip(), lat, lon, accuracy)


def day_of(visit: Visit, timezone: str) -> str:
    """The city's local day the visit was made on."""
    return datetime.fromtimestamp(visit.at, ZoneInfo(timezone)).date().isoformat()


def check_period(visit: Visit, first_day: str, last_day: str, timezone: str) -> None:
    """A visit is made during its campaign: a day outside the period is a phone's clock gone wrong (or a
    forged ``at``), and would put a day of 1970 in the campaign's report."""
    day = day_of(visit, timezone)
    if not first_day <= day <= last_day:
        raise CampaignError("at", f"at: the visit's day, {day}, is outside the campaign ({first_day} to {last_day}); "
                                  "check the phone's date")


def record(store, visit: Visit, timezone: str, now: float) -> tuple[dict, bool]:
    """Store ``visit`` once; (the stored visit, whether this call stored it). A resent id changes nothing."""
    rows = store.query("SELECT * FROM visits WHERE visit_id = ?", [visit.visit_id])
    if rows:
        return _same_as(rows[0], visit), False
    day = day_of(visit, timezone)
    store.execute(
        f"INSERT INTO visits (visit_id, campaign_id, venue_id, inspector, at, day, {', '.join(CHECKLIST)}, outcome, "
        "note, lat, lon, accuracy, received_at) VALUES (" + ", ".join("?" for _ in range(12 + len(CHECKLIST)))
        + ") ON CONFLICT (visit_id) DO NOTHING",
        (visit.visit_id, visit.campaign_id, visit.venue_id, visit.inspector, visit.at, day,
         *(visit.checklist[c] for c in CHECKLIST), visit.outcome, visit.note, visit.lat, visit.lon, visit.accuracy,
         now))
    # Another request with the same id may have got in between the look and the insert (DO NOTHING then):
    # what is stored is compared again, so a different visit is refused here too, never answered as this one.
    return _same_as(store.query("SELECT * FROM visits WHERE visit_id = ?", [visit.visit_id])[0], visit), True


def _same_as(row: dict, visit: Visit) -> dict:
    """The stored ``row`` shown, when ``visit`` is the same visit; else :class:`CampaignError` (another
    inspector's id) or :class:`VisitConflict` (other answers)."""
    if row["inspector"] != visit.inspector:
        raise CampaignError("visit_id", "visit_id: taken by another visit")
    differ = differences(row, visit)
    if differ:
        raise VisitConflict("visit_id", f"visit_id: {visit.visit_id} is already recorded with other answers "
                                        f"({', '.join(differ)}); the recorded visit stands: record a new visit "
                                        "to add what was found")
    return _shown(row)


def differences(row: dict, visit: Visit) -> list[str]:
    """The fields in which ``visit`` differs from the stored ``row`` of the same id (empty: a true resend)."""
    def near(a, b) -> bool:
        return (a is None) == (b is None) and (a is None or abs(float(a) - float(b)) < 1e-3)

    same = {"campaign_id": row["campaign_id"] == visit.campaign_id, "venue_id": row["venue_id"] == visit.venue_id,
            "at": near(row["at"], visit.at), **{c: row[c] == visit.checklist[c] for c in CHECKLIST},
            "outcome": row["outcome"] == visit.outcome, "note": (row["note"] or "") == visit.note,
            "lat": near(row["lat"], visit.lat), "lon": near(row["lon"], visit.lon),
            "accuracy": near(row["accuracy"], visit.accuracy)}
    return [f for f, ok in same.items() if not ok]


def set_code_check(store, visit_id: str, code_check: str, photo_sha256: str) -> dict:
    """Store what the visit's photo showed, once: a visit whose photo was checked keeps that check (another
    photo sent later would erase a finding, ``differs`` becoming ``match``). The visit as stored after."""
    store.execute("UPDATE visits SET code_check = ?, photo_sha256 = ? WHERE visit_id = ? AND photo_sha256 = ''",
                  (code_check, photo_sha256, visit_id))
    return get(store, visit_id)


def photo_conflict(stored: dict, photo_sha256: str) -> str | None:
    """The sentence refusing a second, different photo of ``stored`` (None: no photo yet, or the same one)."""
    if not stored["photo_sha256"] or stored["photo_sha256"] == photo_sha256:
        return None
    return (f"photo: this visit's photo was checked already ({stored['code_check']}); another photo does not "
            "replace it: record a new visit to check the code again")


def get(store, visit_id: str) -> dict | None:
    rows = store.query("SELECT * FROM visits WHERE visit_id = ?", [visit_id])
    return _shown(rows[0]) if rows else None


def findings(row: dict) -> list[str]:
    """The visit's findings: each checklist item answered no, and a code that differs or cannot be read."""
    out = [f"no_{c}" for c in CHECKLIST if row.get(c) == 0]
    if row.get("code_check") in ("differs", "unreadable"):
        out.append(f"code_{row['code_check']}")
    return out


def _shown(row: dict) -> dict:
    from kiosk.wire.signing import iso

    r = dict(row)
    r["at"] = iso(float(r["at"]))
    r["received_at"] = iso(float(r["received_at"]))
    r["findings"] = findings(row)
    for c in CHECKLIST:
        r[c] = {1: "yes", 0: "no", None: "na"}.get(r[c], "na")
    return r


def of_venue(store, venue_id: str, limit: int = 50) -> list[dict]:
    """The venue's visits, the latest first, with the campaign's name."""
    rows = store.query("SELECT s.*, COALESCE(c.name, '') AS campaign FROM visits s LEFT JOIN campaigns c "
                       "ON c.campaign_id = s.campaign_id WHERE s.venue_id = ? ORDER BY s.at DESC LIMIT ?",
                       [venue_id, limit])
    return [_shown(r) for r in rows]


def of_campaign(store, campaign_id: str, districts: tuple[str, ...] | None = None, inspector: str | None = None,
                day: str | None = None, limit: int = 5000, offset: int = 0) -> list[dict]:
    sql = ("SELECT s.*, COALESCE(v.name, '') AS venue_name, COALESCE(v.district, '') AS district FROM visits s "
           "LEFT JOIN venues v ON v.venue_id = s.venue_id WHERE s.campaign_id = ?")
    where, params = narrowed("v.district", "s", districts, inspector, day)
    return [_shown(r) for r in store.query(sql + where + " ORDER BY s.at, s.visit_id LIMIT ? OFFSET ?",
                                           [campaign_id, *params, limit, offset])]


def last_of_venues(store, venue_ids: list[str]) -> dict[str, dict]:
    """Each venue's latest visit (at, outcome), for the inspection list's column."""
    if not venue_ids:
        return {}
    out: dict[str, dict] = {}
    for i in range(0, len(venue_ids), 500):
        chunk = venue_ids[i:i + 500]
        for r in store.query(
                "SELECT s.venue_id, s.at, s.outcome FROM visits s JOIN (SELECT venue_id, MAX(at) AS at FROM visits "
                f"WHERE venue_id IN ({', '.join('?' for _ in chunk)}) GROUP BY venue_id) m "
                "ON m.venue_id = s.venue_id AND m.at = s.at", chunk):
            out[r["venue_id"]] = {"at": float(r["at"]), "outcome": r["outcome"]}
    return out
