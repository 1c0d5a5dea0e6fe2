"""Inspection campaigns: who visits which venue on which day.

An official (the city: any districts; a district's official: its own) creates a campaign with a name,
a period (first and last day), districts, kinds of venue (:mod:`kiosk.centre.venue_places`; none
picked: every kind) and a team of inspector accounts covering those districts. Its visit list, the
*plan*, is drawn once, when it is created:

* every venue of the inspection list in scope (each with the reasons it is listed; "no scans today" only
  where the venue has a kiosk: the centre sees no scan of a venue that only posts its code), and
* a random sample of the other registered venues in scope (``sample_share``; the plans' visits are
  unannounced, so the sample is drawn by the centre, from the campaign's id, and shown to nobody
  outside the team);

each planned venue goes to an inspector covering its district, on the day and to the inspector with
the fewest visits so far (balanced per day across the period). The plan can then be edited: a venue
added or removed, reassigned, moved to another day.

Creating is idempotent: a campaign id already taken answers the campaign that has it, unchanged (a
form sent twice, a resent request); nothing ever replaces a campaign. Errors are
:class:`CampaignError`, one sentence naming the field.
"""

from __future__ import annotations

import json
import random
import re
import secrets
from dataclasses import dataclass
from datetime import date, timedelta

from kiosk.centre.queries import Scope

MAX_DAYS = 92
# How far from today a campaign's period may lie: a plan is drawn from today's inspection list, so a period
# years away (9999-12-31, 0001-01-01: a slip of the date picker) plans nothing anyone will visit.
MAX_AHEAD_DAYS = 366
MAX_BEHIND_DAYS = 366
MAX_NAME = 120
ID_RE = re.compile(r"^[A-Za-z0-9_-]{6,64}$")
SAMPLE = "sample"  # the reason of a venue drawn at random
ADDED = "added"    # the reason of a venue an official added by hand
NO_SCANS = "no-scans-today"


class CampaignError(ValueError):
    """A campaign or an edit that cannot be made: 400 with this sentence (it names the field)."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Campaign:
    campaign_id: str
    name: str
    first_day: str
    last_day: str
    districts: tuple[str, ...]
    kinds: tuple[str, ...]
    sample_share: float
    members: tuple[str, ...]
    created_by: str
    created_at: float

    def days(self) -> list[str]:
        first, last = date.fromisoformat(self.first_day), date.fromisoformat(self.last_day)
        return [(first + timedelta(n)).isoformat() for n in range((last - first).days + 1)]

    def as_dict(self) -> dict:
        return {"campaign_id": self.campaign_id, "name": self.name, "first_day": self.first_day,
                "last_day": self.last_day, "districts": list(self.districts), "kinds": list(self.kinds),
                "sample_share": self.sample_share, "members": list(self.members), "created_by": self.created_by}


def inspectors(accounts) -> dict[str, tuple[str, ...]]:
    """Every inspector account that may log in, with the districts it covers (a campaign's possible team)."""
    accounts.refresh()  # the accounts file as it is now (kiosk centre user edits it under a running centre)
    return {a.name: tuple(a.districts) for a in accounts.by_name.values() if a.role == "inspector" and not a.disabled}


def new_id() -> str:
    """A campaign id for a new form (the form carries it, so sending the form twice makes one campaign)."""
    return "c-" + secrets.token_urlsafe(9)


def text(value: str, field: str, limit: int = 200) -> str:
    """A form's text, refused (naming ``field``) when it holds a control character (PostgreSQL cannot store a
    NUL; no name has one) or is longer than ``limit``."""
    if len(value) > limit:
        raise CampaignError(field, f"{field}: at most {limit} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise CampaignError(field, f"{field}: no control characters")
    return value


def _day(text: str, field: str) -> date:
    try:
        return date.fromisoformat((text or "").strip())
    except ValueError:
        raise CampaignError(field, f"{field}: a day as YYYY-MM-DD (got {str(text)[:20]!r})") from None


def check_new(campaign_id: str, name: str, first_day: str, last_day: str, districts, kinds, members,
              sample_share, today: str | None = None) -> tuple:
    """The fields of a new campaign, checked (each refusal names its field); ``today`` (the city's day):
    the period lies within a year of it."""
    if not ID_RE.match(campaign_id or ""):
        raise CampaignError("campaign_id", "campaign_id: 6 to 64 letters, digits, - or _")
    name = " ".join(text(name or "", "name", 1000).split())
    if not name:
        raise CampaignError("name", "name: the campaign needs a name")
    if len(name) > MAX_NAME:
        raise CampaignError("name", f"name: at most {MAX_NAME} characters")
    first, last = _day(first_day, "first_day"), _day(last_day, "last_day")
    if last < first:
        raise CampaignError("last_day", "last_day: the last day comes on or after the first day")
    if (last - first).days + 1 > MAX_DAYS:
        raise CampaignError("last_day", f"last_day: a campaign lasts at most {MAX_DAYS} days")
    if today is not None:
        now = date.fromisoformat(today)
        if first < now - timedelta(MAX_BEHIND_DAYS):
            raise CampaignError("first_day", f"first_day: at most {MAX_BEHIND_DAYS} days before today ({today})")
        if first > now + timedelta(MAX_AHEAD_DAYS):
            raise CampaignError("first_day", f"first_day: at most {MAX_AHEAD_DAYS} days after today ({today})")
    districts = tuple(sorted({text(d, "districts") for d in districts if d}))
    if not districts:
        raise CampaignError("districts", "districts: pick at least one district")
    members = tuple(sorted({text(m, "members", 64) for m in members if m}))
    if not members:
        raise CampaignError("members", "members: pick at least one inspector")
    try:
        share = float(sample_share)
    except (TypeError, ValueError):
        raise CampaignError("sample_share", "sample_share: a share from 0 to 1 (0.1: one venue in ten)") from None
    if not 0 <= share <= 1:
        raise CampaignError("sample_share", "sample_share: a share from 0 to 1 (0.1: one venue in ten)")
    kinds = tuple(sorted({text(k, "kinds", 80) for k in kinds if k}))
    return campaign_id, name, first.isoformat(), last.isoformat(), districts, kinds, members, share


def _row_to_campaign(r: dict, members: list[str]) -> Campaign:
    return Campaign(r["campaign_id"], r["name"], r["first_day"], r["last_day"], tuple(json.loads(r["districts"])),
                    tuple(json.loads(r["kinds"])), float(r["sample_share"]), tuple(members), r["created_by"],
                    float(r["created_at"]))


def get(store, campaign_id: str) -> Campaign | None:
    rows = store.query("SELECT * FROM campaigns WHERE campaign_id = ?", [campaign_id])
    if not rows:
        return None
    members = [m["account"] for m in store.query(
        "SELECT account FROM campaign_members WHERE campaign_id = ? ORDER BY account", [campaign_id])]
    return _row_to_campaign(rows[0], members)


def every(store) -> list[Campaign]:
    """Every campaign, the newest period first."""
    members: dict[str, list[str]] = {}
    for m in store.query("SELECT campaign_id, account FROM campaign_members ORDER BY account"):
        members.setdefault(m["campaign_id"], []).append(m["account"])
    return [_row_to_campaign(r, members.get(r["campaign_id"], []))
            for r in store.query("SELECT * FROM campaigns ORDER BY first_day DESC, name, campaign_id")]


def draw(centre, campaign: Campaign, covers: dict[str, tuple[str, ...]]) -> list[tuple]:
    """The campaign's plan: (venue_id, district, inspector, day, reasons) rows (see the module's docstring).

    ``covers``: each member's districts. Deterministic for a campaign id: drawing again draws the same.
    """
    store = centre.store
    scope = Scope(districts=campaign.districts)
    where, params = scope.where("v")
    kind_sql = ""
    if campaign.kinds:
        kind_sql = f" AND COALESCE(p.kind, '') IN ({', '.join('?' for _ in campaign.kinds)})"
        params = [*params, *campaign.kinds]
    registered = {r["venue_id"]: r for r in store.query(
        "SELECT v.venue_id, v.district, v.ward FROM venues v LEFT JOIN venue_places p ON p.venue_id = v.venue_id "
        f"WHERE v.registered = 1{where}{kind_sql} ORDER BY v.district, v.ward, v.venue_id", params)}
    kiosked = {r["venue_id"] for r in store.query("SELECT DISTINCT venue_id FROM fleet WHERE revoked = 0")}
    reasons: dict[str, list[str]] = {}
    for row in centre.inspection_rows(scope):
        v = row["venue_id"]
        if v not in registered or (row["why"] == NO_SCANS and v not in kiosked):
            continue  # a venue without a kiosk has no scan the centre could see: not a finding of its own
        if row["why"] not in reasons.setdefault(v, []):
            reasons[v].append(row["why"])
    others = [v for v in registered if v not in reasons]
    rng = random.Random(campaign.campaign_id)
    sampled = set(rng.sample(others, round(len(others) * campaign.sample_share)))
    chosen = [r for v, r in registered.items() if v in reasons or v in sampled]  # district, ward order
    days = campaign.days()
    load = {(m, d): 0 for m in campaign.members for d in days}
    plan = []
    for r in chosen:
        team = [m for m in campaign.members if r["district"] in covers.get(m, ())]
        # The least loaded (inspector, day): an even share per day for everyone, earliest days first.
        who, day = min(((m, d) for m in team for d in days), key=lambda md: (load[md], md[1], md[0]))
        load[(who, day)] += 1
        plan.append((r["venue_id"], r["district"], who, day, ",".join(reasons.get(r["venue_id"], [SAMPLE]))))
    return plan


def create(centre, campaign: Campaign, covers: dict[str, tuple[str, ...]]) -> tuple[Campaign, bool]:
    """Create ``campaign`` and its plan; (the campaign stored under its id, whether this call made it).

    A taken id answers the campaign that has it: nothing is replaced. Each member must cover at least
    one of the campaign's districts and every district needs a member.
    """
    store = centre.store
    have = get(store, campaign.campaign_id)
    if have is not None:
        return have, False
    for m in campaign.members:
        if not set(covers.get(m, ())) & set(campaign.districts):
            raise CampaignError("members", f"members: {m} is not an inspector of these districts")
    for d in campaign.districts:
        if not any(d in covers.get(m, ()) for m in campaign.members):
            raise CampaignError("members", f"members: no inspector of the team covers {d}")
    plan = draw(centre, campaign, covers)
    with store.exclusive() as x:
        if x.query("SELECT 1 AS one FROM campaigns WHERE campaign_id = ?", [campaign.campaign_id]):
            made = False  # another request with the same id got there first
        else:
            made = True
            x.execute("INSERT INTO campaigns (campaign_id, name, first_day, last_day, districts, kinds, sample_share, "
                      "created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                      (campaign.campaign_id, campaign.name, campaign.first_day, campaign.last_day,
                       json.dumps(list(campaign.districts), ensure_ascii=False),
                       json.dumps(list(campaign.kinds), ensure_ascii=False), campaign.sample_share,
                       campaign.created_by, campaign.created_at))
            for m in campaign.members:
                x.execute("INSERT INTO campaign_members (campaign_id, account) VALUES (?, ?)", (campaign.campaign_id, m))
            for i in range(0, len(plan), 200):
                chunk = plan[i:i + 200]
                x.execute("INSERT INTO campaign_plan (campaign_id, venue_id, district, inspector, day, reasons) VALUES "
                          + ", ".join("(?, ?, ?, ?, ?, ?)" for _ in chunk) + " ON CONFLICT DO NOTHING",
                          [v for r in chunk for v in (campaign.campaign_id, *r)])
    return get(store, campaign.campaign_id), made


# -- the plan -------------------------------------------------------------------------------------

def narrowed(district_column: str, alias: str, districts: tuple[str, ...] | None, inspector: str | None,
             day: str | None) -> tuple[str, list]:
    """`` AND ...`` conditions (and their parameters) keeping a plan's or visits' rows of these districts
    (None: all), this inspector and this day (None: any)."""
    sql, params = "", []
    if districts is not None:
        sql += f" AND {district_column} IN ({', '.join('?' for _ in districts) or 'NULL'})"
        params.extend(districts)
    for col, value in (("inspector", inspector), ("day", day)):
        if value is not None:
            sql += f" AND {alias}.{col} = ?"
            params.append(value)
    return sql, params

def plan(store, campaign_id: str, districts: tuple[str, ...] | None = None, inspector: str | None = None,
         day: str | None = None) -> list[dict]:
    """The plan's rows with each venue's name, address and ward and whether it has been visited
    (``districts``: only those; None: all)."""
    sql = ("SELECT c.venue_id, c.district, c.inspector, c.day, c.reasons, COALESCE(v.name, '') AS name, "
           "COALESCE(v.address, '') AS address, COALESCE(v.ward, '') AS ward, "
           "(SELECT COUNT(*) FROM visits s WHERE s.campaign_id = c.campaign_id AND s.venue_id = c.venue_id) "
           "AS visits FROM campaign_plan c LEFT JOIN venues v ON v.venue_id = c.venue_id WHERE c.campaign_id = ?")
    where, params = narrowed("c.district", "c", districts, inspector, day)
    rows = store.query(sql + where + " ORDER BY c.day, c.inspector, c.district, v.ward, c.venue_id",
                       [campaign_id, *params])
    for r in rows:
        r["reasons"] = [x for x in r["reasons"].split(",") if x]
        r["visits"] = int(r["visits"])
    return rows


def planned_row(store, campaign_id: str, venue_id: str) -> dict | None:
    rows = store.query("SELECT * FROM campaign_plan WHERE campaign_id = ? AND venue_id = ?", [campaign_id, venue_id])
    return rows[0] if rows else None


def add_venue(store, campaign: Campaign, venue_id: str, inspector: str, day: str,
              covers: dict[str, tuple[str, ...]]) -> bool:
    """Add a registered venue of the campaign's districts; False when it was already planned (unchanged)."""
    rows = store.query("SELECT district FROM venues WHERE venue_id = ? AND registered = 1", [venue_id])
    if not rows or rows[0]["district"] not in campaign.districts:
        raise CampaignError("venue_id", f"venue_id: {venue_id[:64]!r} is no registered venue of this campaign's "
                                        "districts")
    district = rows[0]["district"]
    _check_assignment(campaign, inspector, day, district, covers)
    if planned_row(store, campaign.campaign_id, venue_id) is not None:
        return False
    store.execute("INSERT INTO campaign_plan (campaign_id, venue_id, district, inspector, day, reasons) "
                  "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                  (campaign.campaign_id, venue_id, district, inspector, day, ADDED))
    return True


def change(store, campaign: Campaign, venue_id: str, covers: dict[str, tuple[str, ...]],
           inspector: str | None = None, day: str | None = None) -> None:
    """Reassign a planned venue and/or move it to another day of the period."""
    row = planned_row(store, campaign.campaign_id, venue_id)
    if row is None:
        raise CampaignError("venue_id", "venue_id: not on this campaign's list")
    inspector, day = inspector or row["inspector"], day or row["day"]
    _check_assignment(campaign, inspector, day, row["district"], covers)
    store.execute("UPDATE campaign_plan SET inspector = ?, day = ? WHERE campaign_id = ? AND venue_id = ?",
                  (inspector, day, campaign.campaign_id, venue_id))


def remove(store, campaign: Campaign, venue_id: str) -> bool:
    """Take a venue off the list (not one already visited: its visit stays counted); False: was not on it."""
    if store.query("SELECT 1 AS one FROM visits WHERE campaign_id = ? AND venue_id = ?",
                   [campaign.campaign_id, venue_id]):
        raise CampaignError("venue_id", "venue_id: this venue has been visited; its visit stays on the list")
    had = planned_row(store, campaign.campaign_id, venue_id) is not None
    store.execute("DELETE FROM campaign_plan WHERE campaign_id = ? AND venue_id = ?", (campaign.campaign_id, venue_id))
    return had


def _check_assignment(campaign: Campaign, inspector: str, day: str, district: str,
                      covers: dict[str, tuple[str, ...]]) -> None:
    if inspector not in campaign.members:
        raise CampaignError("inspector", f"inspector: {inspector[:64]!r} is not in this campaign's team")
    if district not in covers.get(inspector, ()):
        raise CampaignError("inspector", f"inspector: {inspector} does not cover {district}")
    if day not in campaign.days():
        raise CampaignError("day", f"day: a day of the campaign, {campaign.first_day} to {campaign.last_day}")
