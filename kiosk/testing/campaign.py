"""A campaign's visits for a simulated city (``kiosk simulate --campaign NAME``): screenshots and demos that
look like a district's real month.

The simulated registry names each venue after its kind (``Chợ 12``, ``Trường 40``): those kinds, and a
position in the city around each ward, go into the store as the registry's ``kind``, ``lat`` and ``lon``
would (:mod:`kiosk.centre.venue_places`). The campaign is created as an official would create it, and its
days up to now get visits: most venues compliant, some reminded or warned, a few fined, with the
findings that go with each.
"""

from __future__ import annotations

import hashlib
import random
import time
import uuid
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from kiosk.centre import campaigns, visits
from kiosk.centre.venue_places import VenuePlace, load_places

HANOI = (21.0285, 105.8542)


def places_of(venues) -> list[VenuePlace]:
    """Each simulated venue's kind (its name without the number) and a position a few km around Hanoi."""
    out = []
    for v in venues:
        h = hashlib.sha256(v.venue_id.encode()).digest()
        lat = HANOI[0] + (h[0] - 128) / 128 * 0.08
        lon = HANOI[1] + (h[1] - 128) / 128 * 0.10
        out.append(VenuePlace(v.venue_id, v.name.rsplit(" ", 1)[0], round(lat, 6), round(lon, 6)))
    return out


def _visit(rng: random.Random, campaign_id: str, row: dict, inspector: str, at: float, place: VenuePlace | None,
           has_kiosk: bool) -> visits.Visit:
    outcome = rng.choices(visits.OUTCOMES, (0.62, 0.22, 0.11, 0.05))[0]
    checklist = {c: 1 for c in visits.CHECKLIST}
    checklist["kiosk_working"] = 1 if has_kiosk else None
    if outcome != "compliant":  # what was found is why the inspector did more than note it
        for item in rng.sample(visits.CHECKLIST[:5], {"reminded": 1, "warned": 2, "fined": 3}[outcome]):
            checklist[item] = 0
        if has_kiosk and rng.random() < 0.3:
            checklist["kiosk_working"] = 0
    lat = lon = None
    if place is not None and place.lat is not None and rng.random() < 0.8:
        lat, lon = place.lat + rng.uniform(-2e-4, 2e-4), place.lon + rng.uniform(-2e-4, 2e-4)
    note = rng.choice(("", "", "Đã nhắc chủ quán dán mã ở cửa chính", "Mã in quá nhỏ, đã hướng dẫn in lại",
                       "Nhân viên chưa nhắc khách quét mã")) if outcome != "compliant" else ""
    return visits.Visit(str(uuid.UUID(int=rng.getrandbits(128))), campaign_id, row["venue_id"], inspector, at,
                        checklist, outcome, note, lat, lon, 12.0 if lat is not None else None)


def run(centre, accounts, name: str, districts: list[str] | None = None, days: int = 5, sample_share: float = 0.1,
        seed: int = 1, venues=None, now: float | None = None) -> dict:
    """Create the campaign ``name`` over the last ``days`` days (today included) and record its visits so far.

    ``accounts``: the centre's accounts; the team is every inspector covering the districts (none: an error
    naming the districts). ``venues``: the registry's venues, for their kinds and positions.
    """
    store, settings = centre.store, centre.settings
    now = time.time() if now is None else now
    zone = ZoneInfo(settings.timezone)
    today = datetime.fromtimestamp(now, zone).date()
    if venues:
        load_places(store, places_of(venues))
    every = districts or centre.districts()
    covers = {n: ds for n, ds in campaigns.inspectors(accounts).items() if set(ds) & set(every)}
    covered = sorted({d for ds in covers.values() for d in ds} & set(every))
    if not covered:
        raise campaigns.CampaignError("members", "members: no inspector account covers " + ", ".join(every[:3]))
    c = campaigns.Campaign(f"sim-{seed}-{hashlib.sha256(name.encode()).hexdigest()[:8]}", name,
                           (today - timedelta(days - 1)).isoformat(), today.isoformat(), tuple(covered), (),
                           sample_share, tuple(sorted(covers)), "simulate", now)
    c, made = campaigns.create(centre, c, covers)
    places = {p.venue_id: p for p in places_of(venues or [])}
    kiosked = {r["venue_id"] for r in store.query("SELECT DISTINCT venue_id FROM fleet WHERE revoked = 0")}
    recorded = 0
    local_now = datetime.fromtimestamp(now, zone)
    for row in campaigns.plan(store, c.campaign_id):
        day = date.fromisoformat(row["day"])
        if row["visits"] or day > today:
            continue
        # One generator per venue: a second run decides the same for each venue (and makes the same visit id,
        # which the store keeps once), so running the simulation again adds only what the clock now allows.
        rng = random.Random(f"{seed}:{c.campaign_id}:{row['venue_id']}")
        at = datetime(day.year, day.month, day.day, 8, 0, tzinfo=zone) + timedelta(minutes=rng.randint(0, 8 * 60))
        if at > local_now or rng.random() < (0.08 if day < today else 0.0):
            continue  # not yet this morning, or the inspector did not get there (the report shows it)
        v = _visit(rng, c.campaign_id, row, row["inspector"], at.timestamp(), places.get(row["venue_id"]),
                   row["venue_id"] in kiosked)
        visits.record(store, v, settings.timezone, now)
        check = rng.choices(("match", "differs", "unreadable", ""), (0.8, 0.05, 0.07, 0.08))[0]
        if check:
            visits.set_code_check(store, v.visit_id, check, hashlib.sha256(v.visit_id.encode()).hexdigest())
        recorded += 1
    return {"campaign_id": c.campaign_id, "created": made, "visits": recorded}


# -- kiosk simulate --campaign ------------------------------------------------------------------------
def add_arguments(p) -> None:
    """``kiosk simulate``'s campaign options (its argparse calls this)."""
    g = p.add_argument_group("an inspection campaign's visits (docs/inspection.md)")
    g.add_argument("--campaign", default="", metavar="NAME",
                   help="also create this inspection campaign in the centre's store and record its visits so far")
    g.add_argument("--campaign-store", default="", metavar="URL",
                   help="the centre's store (a SQLite path or postgresql://...; needed with --campaign)")
    g.add_argument("--campaign-accounts", default="", metavar="FILE",
                   help="the centre's accounts file: the team is its inspectors (needed with --campaign)")
    g.add_argument("--campaign-days", type=int, default=5, help="the campaign's days, ending today (default 5)")
    g.add_argument("--campaign-sample", type=float, default=0.1,
                   help="share of the venues without a problem visited at random (default 0.1)")


def from_args(args, city) -> dict:
    """Run :func:`run` for ``kiosk simulate --campaign``: the simulated kiosks and venues go into the store's
    registries (what ``kiosk centre`` loads from ``--registry`` and ``--venues``), then the campaign and its
    visits. Kiosks the store has heard nothing from yet are on the inspection list ("never heard"), so planned."""
    from kiosk.centre.accounts import Accounts
    from kiosk.centre.queries import Centre, Settings
    from kiosk.centre.registry import FleetRegistry
    from kiosk.centre.store import open_store

    if not args.campaign_store or not args.campaign_accounts:
        raise campaigns.CampaignError("campaign", "--campaign needs --campaign-store and --campaign-accounts")
    if not 1 <= args.campaign_days <= campaigns.MAX_DAYS:
        raise campaigns.CampaignError("campaign", f"--campaign-days: 1 to {campaigns.MAX_DAYS}")
    store = open_store(args.campaign_store)
    try:
        store.load_fleet(FleetRegistry.from_json(city.registry()))  # what the centre loads from --registry
        store.import_venues(city.venues)
        centre = Centre(store, Settings(timezone=city.timezone))
        return run(centre, Accounts.load(args.campaign_accounts), args.campaign, days=args.campaign_days,
                   sample_share=args.campaign_sample, seed=args.seed, venues=city.venues)
    finally:
        store.close()
