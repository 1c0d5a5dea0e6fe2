"""The fleet's software: which version each kiosk runs, per district and for the city, and who is behind.

A kiosk's version comes from its own signed ``info`` (docs/mqtt.md), as the ingest stored it
in ``kiosk_info``; a kiosk that never sent one is ``unknown``, never counted as behind or up
to date. "Behind" means older than the version the caller names (``current``, e.g. the release
being rolled out), or else than the newest version at least :data:`QUORUM` kiosks in the scope
run: a version is only what a kiosk signs, and one stolen kiosk claiming "99.0" must not make the
whole fleet look behind (a scope with a single known kiosk takes that kiosk's version).

Read from the store the way :mod:`kiosk.centre.queries` is, so a dashboard route is one line::

    return JSONResponse(fleet_versions(centre, scope, current=request.query_params.get("current")))
"""

from __future__ import annotations

import re

from decimal import Decimal

from kiosk.centre.queries import FIRST_TIME, LAST_TIME, Centre, Scope
from kiosk.wire.signing import iso

UNKNOWN = "unknown"  # the kiosk sent no signed info yet
QUORUM = 2  # kiosks that must run a version before it is the one the others are behind

_PART = re.compile(r"\d+|[A-Za-z]+")


def version_key(version: str) -> tuple:
    """Orders versions as people read them: 0.10.0 after 0.9.2, 1.0.0rc1 before 1.0.0.

    The leading numbers compare as numbers; a version with letters after them (a pre-release
    such as ``rc1``, ``b2``, ``dev3``) comes before the same numbers without.
    """
    parts = _PART.findall(version[:200])  # a stored version is whatever a kiosk signed: bounded work
    numbers = []
    while parts and parts[0].isdigit():
        numbers.append(int(parts.pop(0)[:18]))
    while numbers and numbers[-1] == 0:  # 1.0 == 1.0.0
        numbers.pop()
    rest = tuple((0, int(p[:18]), "") if p.isdigit() else (1, 0, p.lower()) for p in parts)
    return (tuple(numbers), 0 if rest else 1, rest)


def newest(versions) -> str | None:
    """The newest of ``versions`` (None when there is none)."""
    found = [v for v in versions if v and v != UNKNOWN]
    return max(found, key=version_key) if found else None


def newest_run_by_quorum(versions, quorum: int = QUORUM) -> str | None:
    """The newest version at least ``quorum`` of ``versions`` are (all of them, when fewer are known)."""
    counts: dict[str, int] = {}
    for v in versions:
        if v and v != UNKNOWN:
            counts[v] = counts.get(v, 0) + 1
    need = min(quorum, sum(counts.values()))
    return newest(v for v, n in counts.items() if n >= need) if counts else None


def is_behind(version: str | None, target: str | None) -> bool:
    """True when a known ``version`` is older than ``target``."""
    if not version or version == UNKNOWN or not target:
        return False
    return version_key(version) < version_key(target)


def _text(v) -> str:
    """A stored text as str, whatever type the store kept (an earlier centre's rows are not trusted)."""
    if type(v) is str:
        return v
    if v is None:
        return ""
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)


def _when(t) -> str | None:
    """A stored epoch time as ISO 8601 UTC, or None when it is not one an ISO string can say."""
    if isinstance(t, bool) or not isinstance(t, (int, float, Decimal)):
        return None
    t = float(t)
    return iso(t) if FIRST_TIME <= t <= LAST_TIME else None  # NaN fails both comparisons


def _rows(centre: Centre, scope: Scope) -> list[dict]:
    s = centre.settings
    where, params = scope.where("v")
    sql = f"""
    SELECT f.site, f.device, f.venue_id, COALESCE(v.name, '') AS venue_name, COALESCE(v.district, '') AS district,
      COALESCE(v.ward, '') AS ward, i.version, i.info_ts, s.status, n.last_ts,
      CASE WHEN (s.status IS NULL OR s.status = 'online') AND n.last_ts >= ? THEN 1 ELSE 0 END AS online
    FROM fleet f LEFT JOIN venues v ON v.venue_id = f.venue_id
    LEFT JOIN kiosk_info i ON i.site = f.site AND i.device = f.device
    LEFT JOIN kiosk_status s ON s.site = f.site AND s.device = f.device
    LEFT JOIN kiosk_seen n ON n.site = f.site AND n.device = f.device
    WHERE f.revoked = 0{where} ORDER BY v.district, v.ward, f.site, f.device"""
    return centre.store.query(sql, [s.now() - s.stale_seconds, *params])


def _tally(kiosks: list[dict]) -> dict:
    counts: dict[str, int] = {}
    for k in kiosks:
        counts[k["version"]] = counts.get(k["version"], 0) + 1
    # Newest first; unknown last: the order an operator reads a rollout's progress in.
    order = sorted((v for v in counts if v != UNKNOWN), key=version_key, reverse=True)
    if UNKNOWN in counts:
        order.append(UNKNOWN)
    return {"kiosks": len(kiosks), "versions": {v: counts[v] for v in order},
            "behind": sum(k["behind"] for k in kiosks), "unknown": counts.get(UNKNOWN, 0)}


def fleet_versions(centre: Centre, scope: Scope = Scope(), current: str | None = None) -> dict:
    """Versions for the city (or ``scope``), per district, and every kiosk with whether it is behind.

    ``current``: the version kiosks should run; by default the newest one :data:`QUORUM` kiosks in
    ``scope`` run (``newest_seen`` is the newest any kiosk claims).
    Revoked kiosks are left out (they sign nothing the centre believes).
    """
    rows = _rows(centre, scope)
    target = current or newest_run_by_quorum(_text(r["version"]) for r in rows)
    kiosks = []
    for r in rows:
        version = _text(r["version"]) or UNKNOWN
        kiosks.append({
            "site": _text(r["site"]), "device": _text(r["device"]), "venue_id": _text(r["venue_id"]),
            "venue_name": _text(r["venue_name"]), "district": _text(r["district"]), "ward": _text(r["ward"]),
            "version": version, "behind": is_behind(version, target), "online": bool(r["online"]),
            "status": None if r["status"] is None else _text(r["status"]), "info_at": _when(r["info_ts"]),
        })
    by_district: dict[str, list[dict]] = {}
    for k in kiosks:
        by_district.setdefault(k["district"], []).append(k)
    s = centre.settings
    return {
        "day": s.today(), "generated": iso(s.now()),
        "scope": {"district": scope.district, "ward": scope.ward, "venue_id": scope.venue_id},
        "current": target, "current_given": bool(current), "newest_seen": newest(k["version"] for k in kiosks),
        "totals": _tally(kiosks),
        "districts": [{"name": d, **_tally(ks)} for d, ks in sorted(by_district.items())],
        "behind": [k for k in kiosks if k["behind"]],
        "kiosks": kiosks,
    }
