"""The city's figures per local day x district x ward, kept by the ingest (issue 21.8), and the registry's history.

The city overview, a district page and the daily report used to join every venue of the city with
every kiosk's state and counts on each request (0.7-0.9 s at 200,000 venues). They now read
``rollup_daily``: one row per (day, district, ward) with scans, accepted, rejected, duplicates,
overrides, unique visitors and the venues with any scan, written in the same transaction as the
kiosk counts it sums.

The ingest's counts are per kiosk and day and *overwrite* (a kiosk sends its running totals, in
its own ``seq`` order; a late or repeated message changes nothing). So the rollup applies the
*difference* between what the kiosk's row held and what it will hold, only for rows the upsert
will really write (a higher ``seq``): a message counted twice, or arriving after a newer one,
moves no figure. A venue counts once in ``venues_with_scans`` whatever its number of kiosks: the
rollup looks at the venue's other kiosks of that day before and after the batch.

Only kiosks of the fleet registry that are not revoked count, placed where the venue registry
puts their venue (an unregistered venue has no district or ward: it counts under ``''``). A new
fleet or venue registry may revoke a kiosk or move a venue, so loading either recomputes the
rollup from the kiosks' history (:func:`recompute`): a few seconds at 200,000 venues and 30 days.

On PostgreSQL several ingest workers write at once: each takes one transaction-level advisory lock
(:data:`ROLLUP_LOCK`) before it reads the old counts, so two workers never both apply the same
kiosk's difference. Sums are kept as doubles: exact up to 2**53 (the largest figure an answer
carries, ``queries.MAX_FIGURE``), and never an overflow error whatever a store holds.

``rollup_fleet`` holds the kiosks and the venues with a kiosk per district and ward (both change only when
a registry is loaded); the kiosks online are counted as the kiosks less those that are not (an offline
status, an old last signed time, no signed message at all: each from a small index).

``registry_history`` keeps the venues with a code per district and ward as the venue registry said
on each day it was loaded (a snapshot per load, the last of a day wins). The figure of a day is
carried forward from the latest snapshot on or before it (:func:`snapshot_for`): days before the
first snapshot take the first one, the best that is known.
"""

from __future__ import annotations

from typing import Callable, Iterable, Sequence

ROLLUP_FIGURES = ("scans", "accepted", "rejected", "duplicates", "overrides", "unique_visitors", "venues_with_scans")
COUNTS = ("accepted", "rejected", "duplicates", "overrides", "unique_visitors")  # daily's columns 4..8
ROLLUP_LOCK = 727002  # the PostgreSQL advisory lock writers of daily (and the rollup) hold
CHUNK = 300  # keys per statement: far under SQLite's 32,766 parameters, small plans in PostgreSQL

Query = Callable[[str, Sequence], list]  # (sql with ? placeholders, params) -> rows as tuples

UPSERT = ("INSERT INTO rollup_daily (day, district, ward, " + ", ".join(ROLLUP_FIGURES) + ") VALUES ("
          + ", ".join("?" * (3 + len(ROLLUP_FIGURES))) + ") ON CONFLICT (day, district, ward) DO UPDATE SET "
          + ", ".join(f"{f} = rollup_daily.{f} + excluded.{f}" for f in ROLLUP_FIGURES))


def _num(v) -> float:
    """A stored count as a float (whatever an earlier centre or a hand put there: text, NULL -> 0)."""
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, (int, float)):
        return float(v)
    try:
        return float(v)
    except (TypeError, ValueError):
        return 0.0


def _values(n: int, width: int) -> str:
    row = "(" + ", ".join("?" * width) + ")"
    return "VALUES " + ", ".join(row for _ in range(n))


def _chunks(items: list, size: int = CHUNK):
    for i in range(0, len(items), size):
        yield items[i:i + size]


def deltas(q: Query, daily: Iterable[tuple]) -> list[tuple]:
    """The rollup rows (day, district, ward, *ROLLUP_FIGURES) a batch's ``daily`` rows add, read before
    they are written (``q`` runs in the writing transaction)."""
    daily = list(daily)
    if not daily:
        return []
    # Where each kiosk of the batch counts (not revoked, in the fleet): its venue and the venue's place.
    kiosks = sorted({(r[0], r[1]) for r in daily})
    place: dict[tuple, tuple] = {}
    for chunk in _chunks(kiosks):
        for site, device, venue, district, ward in q(
                f"WITH k (site, device) AS ({_values(len(chunk), 2)}) "
                "SELECT f.site, f.device, f.venue_id, COALESCE(v.district, ''), COALESCE(v.ward, '') "
                "FROM k JOIN fleet f ON f.site = k.site AND f.device = k.device "
                "LEFT JOIN venues v ON v.venue_id = f.venue_id WHERE f.revoked = 0",
                [x for k in chunk for x in k]):
            place[(site, device)] = (venue, district, ward)
    rows = [r for r in daily if (r[0], r[1]) in place]
    if not rows:
        return []
    # Every kiosk row of the affected venues and days as stored now (the venue's other kiosks too).
    pairs = sorted({(place[(r[0], r[1])][0], r[2]) for r in rows})
    old: dict[tuple, tuple] = {}
    for chunk in _chunks(pairs):
        for site, device, day, venue, seq, *counts in q(
                # Driven by the pairs: fleet by its venue index, daily by its key (site, device, day).
                f"WITH p (venue_id, day) AS ({_values(len(chunk), 2)}) "
                "SELECT d.site, d.device, d.day, f.venue_id, d.seq, d.accepted, d.rejected, d.duplicates, "
                "d.overrides, d.unique_visitors FROM p JOIN fleet f ON f.venue_id = p.venue_id "
                "JOIN daily d ON d.site = f.site AND d.device = f.device AND d.day = p.day WHERE f.revoked = 0",
                [x for p in chunk for x in p]):
            old[(site, device, day)] = (venue, _num(seq), [_num(c) for c in counts])
    new = dict(old)
    out: dict[tuple, list[float]] = {}
    for r in rows:
        key = (r[0], r[1], r[2])
        have = old.get(key)
        if have is not None and not _num(r[10]) > have[1]:
            continue  # the upsert keeps the stored row (same or newer seq): nothing changes
        venue, district, ward = place[(r[0], r[1])]
        before = have[2] if have is not None else [0.0] * len(COUNTS)
        after = [_num(c) for c in r[4:9]]
        new[key] = (venue, _num(r[10]), after)
        acc = out.setdefault((r[2], district, ward), [0.0] * len(ROLLUP_FIGURES))
        diff = [a - b for a, b in zip(after, before)]
        acc[0] += diff[0] + diff[1] + diff[2]
        for i, d in enumerate(diff):
            acc[1 + i] += d
    # A venue counts once among the venues with scans: the sum of its kiosks' scans, before and after.
    where = {venue: (district, ward) for venue, district, ward in place.values()}

    def scans(rows_of: dict) -> dict:
        by: dict[tuple, float] = {}
        for (_, _, day), (venue, _, c) in rows_of.items():
            by[(venue, day)] = by.get((venue, day), 0.0) + c[0] + c[1] + c[2]
        return by

    was, now = scans(old), scans(new)
    for venue, day in pairs:
        before, after = was.get((venue, day), 0.0) > 0, now.get((venue, day), 0.0) > 0
        if before != after:
            district, ward = where[venue]
            out.setdefault((day, district, ward), [0.0] * len(ROLLUP_FIGURES))[6] += 1 if after else -1
    return [(*k, *v) for k, v in sorted(out.items()) if any(v)]


def _sum(dialect: str, expr: str) -> str:
    # SQLite's TOTAL is a double and never overflows; PostgreSQL's SUM of BIGINT is NUMERIC, made a double.
    return f"TOTAL({expr})" if dialect == "sqlite" else f"CAST(SUM({expr}) AS DOUBLE PRECISION)"


def recompute_sql(dialect: str) -> str:
    """One INSERT ... SELECT that writes the whole rollup from the kiosks' history (after a DELETE)."""
    S = lambda e: _sum(dialect, e)  # noqa: E731 (a short alias inside one statement)
    per_venue = (f"SELECT d.day AS day, f.venue_id AS venue_id, COALESCE(v.district, '') AS district, "
                 f"COALESCE(v.ward, '') AS ward, {S('d.accepted')} + {S('d.rejected')} + {S('d.duplicates')} AS scans, "
                 + ", ".join(f"{S('d.' + c)} AS {c}" for c in COUNTS)
                 + " FROM daily d JOIN fleet f ON f.site = d.site AND f.device = d.device AND f.revoked = 0 "
                 "LEFT JOIN venues v ON v.venue_id = f.venue_id GROUP BY d.day, f.venue_id, v.district, v.ward")
    sums = ", ".join(f"{S(c)}" for c in ("scans", *COUNTS))
    return (f"INSERT INTO rollup_daily (day, district, ward, {', '.join(ROLLUP_FIGURES)}) "
            f"SELECT day, district, ward, {sums}, {S('CASE WHEN scans > 0 THEN 1 ELSE 0 END')} "
            f"FROM ({per_venue}) x GROUP BY day, district, ward")


# The fleet per district and ward (kiosks, venues with a kiosk): it changes only when a registry is loaded.
FLEET_SQL = ("INSERT INTO rollup_fleet (district, ward, kiosks, venues_with_kiosk) "
             "SELECT v.district, v.ward, COUNT(*), COUNT(DISTINCT f.venue_id) FROM fleet f "
             "JOIN venues v ON v.venue_id = f.venue_id WHERE f.revoked = 0 GROUP BY v.district, v.ward")


def recompute(x) -> None:
    """Rewrite the rollup from ``daily``, ``fleet`` and ``venues`` (``x``: an executor inside a transaction)."""
    x.execute("DELETE FROM rollup_daily")
    x.execute(recompute_sql(x.dialect))
    x.execute("DELETE FROM rollup_fleet")
    x.execute(FLEET_SQL)


def snapshot(x, day: str) -> None:
    """Write the registry's venues with a code per district and ward as the snapshot of ``day``."""
    x.execute("DELETE FROM registry_history WHERE day = ?", (day,))
    x.execute("INSERT INTO registry_history (day, district, ward, venues_with_code) "
              "SELECT ?, district, ward, COUNT(*) FROM venues WHERE registered = 1 GROUP BY district, ward", (day,))
    # A row even when the registry is empty: the snapshot exists, so a later day does not carry an older one.
    x.execute("INSERT INTO registry_history (day, district, ward, venues_with_code) VALUES (?, '', '', 0) "
              "ON CONFLICT (day, district, ward) DO NOTHING", (day,))


def snapshot_for(days: list[str], day: str) -> str | None:
    """The snapshot day whose figures hold on ``day``: the latest on or before it, else the first (sorted ``days``)."""
    found = None
    for d in days:
        if d <= day:
            found = d
        else:
            break
    return found if found is not None else (days[0] if days else None)
