"""A venue's kind and position, from the venue registry's optional columns ``kind``, ``lat`` and ``lon``.

The registry (:mod:`kiosk.centre.registry`) needs only ``venue_id``, ``name`` and ``district``; a city
whose registry also says what a venue is (``Chợ``, ``Trường``, ``Bệnh viện``...) and where it stands
lets a campaign pick kinds of venue and gives an inspector's phone a ``geo:`` map link. A venue
without them is of kind "" (every campaign that picks no kind includes it) and gets an address search.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path

from kiosk.wire.registry import RegistryError


@dataclass(frozen=True)
class VenuePlace:
    venue_id: str
    kind: str = ""
    lat: float | None = None
    lon: float | None = None


def _coordinate(text: str, limit: float, name: str, where: str) -> float | None:
    text = (text or "").strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise RegistryError(f"{where}: {name} is not a number ({text[:30]!r})") from None
    if not math.isfinite(value) or abs(value) > limit:
        raise RegistryError(f"{where}: {name} must be between -{limit:g} and {limit:g}")
    return value


def parse_places(text: str, source: str = "venues.csv") -> list[VenuePlace]:
    """The rows of a venue registry that say a kind or a position (none when it has neither column)."""
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    if not {"kind", "lat", "lon"} & set(header):
        return []
    out = []
    for line, row in enumerate(reader, 2):
        where = f"{source}:{line}"
        lat = _coordinate(row.get("lat", ""), 90, "lat", where)
        lon = _coordinate(row.get("lon", ""), 180, "lon", where)
        if (lat is None) != (lon is None):
            raise RegistryError(f"{where}: lat and lon go together (one of them is empty)")
        kind = (row.get("kind") or "").strip()[:80]
        if kind or lat is not None:
            out.append(VenuePlace((row.get("venue_id") or "").strip(), kind, lat, lon))
    return out


def read_places(path) -> list[VenuePlace]:
    p = Path(path)
    try:
        return parse_places(p.read_text(encoding="utf-8-sig"), str(p))
    except OSError as exc:
        raise RegistryError(f"{p}: cannot read the venue registry ({exc.strerror})") from None


def load_places(store, places) -> int:
    """Put ``places`` in the store (a venue's row replaced by its newer one); how many."""
    rows = list({p.venue_id: (p.venue_id, p.kind, p.lat, p.lon) for p in places if p.venue_id}.values())
    with store.exclusive() as x:
        for i in range(0, len(rows), 500):  # a few hundred rows a statement: a city's registry in seconds
            chunk = rows[i:i + 500]
            x.execute("INSERT INTO venue_places (venue_id, kind, lat, lon) VALUES "
                      + ", ".join("(?, ?, ?, ?)" for _ in chunk)
                      + " ON CONFLICT (venue_id) DO UPDATE SET kind = excluded.kind, lat = excluded.lat, "
                        "lon = excluded.lon", [v for r in chunk for v in r])
    return len(rows)


def kinds(store, districts: tuple[str, ...] | None = None) -> list[str]:
    """The kinds of venue the registry names (in ``districts`` when given), sorted."""
    sql = "SELECT DISTINCT p.kind FROM venue_places p"
    params: list = []
    if districts:
        sql += (" JOIN venues v ON v.venue_id = p.venue_id WHERE v.district IN ("
                + ", ".join("?" for _ in districts) + ")")
        params = list(districts)
    return sorted(r["kind"] for r in store.query(sql, params) if r["kind"])
