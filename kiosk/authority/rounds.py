"""A case's next rounds: every entrance of every venue the case visited.

A case request finds the case's own check-ins and, at the same kiosk, everyone
within the margin. A venue with two entrances has two kiosks, each with its own
pseudonym key, so the other door's kiosk cannot recognise the case. This module
takes the case's check-ins the kiosks reported and works out, for each other
kiosk at those venues (the fleet registry says which venue a kiosk is at), which
of them to ask about: the times of the case's check-ins at its venue made through
another kiosk. :func:`kiosk.authority.requests.contacts_request` seals those
times to that kiosk.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

from kiosk.authority.registry import RegisteredKiosk


@dataclass(frozen=True)
class CaseVisit:
    """One check-in of the case, as a kiosk reported it."""

    venue_id: str
    time: str  # UTC, as the kiosk stored it
    kiosk: tuple[str, str]  # (site, device)


def case_visits(answers: Iterable, venue_of: Mapping[tuple[str, str], str]) -> list[CaseVisit]:
    """The case's check-ins in the opened answers (records with role ``case``).

    The venue is the registry's for the kiosk (``venue_of``), else what the kiosk said: the
    registry is the authority's own record of where each kiosk stands.
    """
    out = set()
    for a in answers:
        kiosk = (a.site, a.device)
        for r in a.records:
            if r.get("role") == "case" and isinstance(r.get("time"), str):
                venue = venue_of.get(kiosk) or r.get("venue_id") or (a.venue or {}).get("id") or ""
                if venue:
                    out.add(CaseVisit(venue, r["time"], kiosk))
    return sorted(out, key=lambda v: (v.time, v.venue_id, v.kiosk))


def windows(visits: Iterable[CaseVisit], kiosks: Iterable[RegisteredKiosk],
            venue_of: Mapping[tuple[str, str], str]) -> dict[str, set[str]]:
    """For each kiosk (by kid) at a venue the case visited: the case's check-ins there through another kiosk."""
    by_venue: dict[str, list[CaseVisit]] = {}
    for v in visits:
        by_venue.setdefault(v.venue_id, []).append(v)
    out: dict[str, set[str]] = {}
    for k in kiosks:
        venue = venue_of.get((k.site, k.device), "")
        times = {v.time for v in by_venue.get(venue, ()) if v.kiosk != (k.site, k.device)}
        if times:
            out[k.kid] = times
    return out


def unasked(wanted: Mapping[str, set[str]], asked: Iterable[Mapping[str, Iterable[str]]]) -> dict[str, list[str]]:
    """What ``wanted`` holds that no earlier round asked the same kiosk about."""
    done: dict[str, set[str]] = {}
    for round_ in asked:
        for kid, times in round_.items():
            done.setdefault(kid, set()).update(times)
    out = {kid: sorted(times - done.get(kid, set())) for kid, times in wanted.items()}
    return {kid: times for kid, times in out.items() if times}


def venues_of(rows: Iterable[RegisteredKiosk]) -> dict[tuple[str, str], str]:
    """Each kiosk's venue id as the registry has it (the newest row of a kiosk wins)."""
    out: dict[tuple[str, str], str] = {}
    for r in rows:
        if r.venue_id:
            out[(r.site, r.device)] = r.venue_id
    return out
