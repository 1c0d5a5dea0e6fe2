"""What an account may see: the one place that decides it (pages, API, CSV and charts all ask here).

Three roles:

* ``city``: every district, the city's overview and the refused messages;
* ``district``: one district's official: its figures, wards, venues, kiosks, inspection list, report;
* ``inspector``: assigned to one or more districts: their inspection lists, venues and kiosks (and a
  venue's own figures and charts), not the district figures or the report.

A route names what it needs (a *capability*, below) and the part of the city it asks for; this
module answers with the :class:`~kiosk.centre.queries.Scope` to query, held inside the account's
districts, or raises :class:`Forbidden`. A record outside the account's districts that is asked for
by its id (a venue) is simply not found in that scope: the answer does not say whether it exists.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kiosk.centre.queries import Scope

if TYPE_CHECKING:
    from kiosk.centre.accounts import Account


# Capabilities: what a route shows.
CITY = "city"              # the whole city at once: the overview of every district, refused messages
FIGURES = "figures"        # a district's and its wards' figures, history, hourly curve, the daily report
VENUES = "venues"          # a ward's venues, a venue (with its own figures and charts), kiosks
INSPECTION = "inspection"  # the inspection list and its CSV
CAMPAIGNS = "campaigns"    # create and edit inspection campaigns in its districts, their reports
VISITS = "visits"          # record visits of the campaigns it is a member of (the inspector's phone)

CAPABILITIES = {
    "city": frozenset({CITY, FIGURES, VENUES, INSPECTION, CAMPAIGNS}),
    "district": frozenset({FIGURES, VENUES, INSPECTION, CAMPAIGNS}),
    "inspector": frozenset({VENUES, INSPECTION, VISITS}),
}


class Forbidden(Exception):
    """Outside the account's role or districts (403)."""


def may(account: "Account", capability: str) -> bool:
    return capability in CAPABILITIES.get(account.role, ())


def sees_district(account: "Account", district: str) -> bool:
    return account.is_city or district in account.districts


def scope_of(account: "Account", capability: str, district: str | None = None, ward: str | None = None,
             venue_id: str | None = None) -> Scope:
    """The scope ``account`` may query for ``capability``: the part asked for, held in its districts.

    Raises :class:`Forbidden` for a capability the role lacks or a district not its own.
    """
    if not may(account, capability):
        raise Forbidden(capability)
    if account.is_city:
        return Scope(district=district, ward=ward, venue_id=venue_id)
    if district is not None:
        if district not in account.districts:
            raise Forbidden(district)
        return Scope(district=district, ward=ward, venue_id=venue_id)
    if len(account.districts) == 1:
        return Scope(district=account.districts[0], ward=ward, venue_id=venue_id)
    return Scope(ward=ward, venue_id=venue_id, districts=tuple(account.districts))


def figures_scope(account: "Account", district: str | None = None, venue_id: str | None = None) -> Scope:
    """Scope of a chart, history or hourly curve: a venue's own needs :data:`VENUES`, anything wider
    :data:`FIGURES` (an inspector sees a venue's curve on its page, not a district's)."""
    return scope_of(account, VENUES if venue_id is not None else FIGURES, district=district, venue_id=venue_id)


def districts_of(account: "Account", all_districts: list[str]) -> list[str]:
    """The districts ``account`` may pick from (the city: every one the store knows)."""
    return list(all_districts) if account.is_city else list(account.districts)


def home(account: "Account") -> str:
    """Where the account lands after logging in."""
    import urllib.parse

    if account.is_city:
        return "/"
    if account.role == "district":
        return "/district/" + urllib.parse.quote(account.districts[0], safe="")
    return "/field/day"  # the inspector's phone: today's visits
