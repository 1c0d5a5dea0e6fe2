"""The one query layer: every figure the pages, the API, the CSV exports and ``kiosk monitor`` show.

As in Datasette, a page and its JSON twin are built from the same call, so they
cannot disagree; tests assert on the JSON and the browser checks the page.

Scope: a :class:`Scope` narrows any figure to a district, a ward or a venue (a
district account's scope is always its district). Today is the venue's local day
(the centre's ``--timezone``, the city's zone; kiosks count by their own local day).
All times leave this module as ISO 8601 UTC strings (``kiosk.wire.signing.iso``), or null.

The contract for whoever renders these answers (pages, API, CSV, ``kiosk monitor``): no call
raises because of what is stored, whatever an earlier centre or a hand in the database put there
(issue 19.3). Every figure comes out as an int in ``0..MAX_FIGURE`` (negative, not-a-number or
non-numeric stored values count as 0, larger ones as ``MAX_FIGURE``); every time as an ISO string
between years 1 and 9999, or None when the stored one is no time (not finite, out of range, text);
``for_seconds`` as an int or None; ``scan_share`` (venues with scans over venues with a code) as a float in
0..1 or None; a figure of the fleet as it is now (``LIVE_FIGURES``) asked of a past day as None; every text
as ``str`` (NUL characters and odd Unicode are
passed through as they are: escaping is the renderer's job). Sums are made in SQL without
overflow (PostgreSQL's ``SUM`` of ``BIGINT`` is ``NUMERIC``; SQLite's ``TOTAL``), never by
adding stored values row by row. Scope values and kinds may be any ``str``: one holding a NUL
(which PostgreSQL cannot compare) matches nothing; ``days``, ``limit`` and ``offset`` are clamped.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from kiosk.centre.rollup import ROLLUP_FIGURES, snapshot_for
from kiosk.centre.store import HOURS, IMPLAUSIBLE_LISTED_SECONDS, Store
from kiosk.wire.signing import iso

FIGURES = ("venues_with_code", "venues_unregistered", "venues_with_kiosk", "kiosks", "kiosks_online",
           "venues_with_scans", "scans", "accepted", "rejected", "duplicates", "overrides", "unique_visitors")

# The columns of an inspection row as the SQL gives them (queries.Centre._inspection_sql).
ROW_COLUMNS = ("why", "venue_id", "venue_name", "address", "ward", "district", "site", "device", "since", "detail")
INSPECTION_KINDS = ("offline", "silent", "never-heard", "camera-down", "display-down", "clock-unsynced",
                    "trust-stale", "venue-code-mismatch", "unknown-venue", "implausible", "no-scans-today")
# Figures of the fleet as it is now: a past day's report has none (None), the counts of that day only.
LIVE_FIGURES = ("venues_unregistered", "venues_with_kiosk", "kiosks", "kiosks_online")
MAX_FIGURE = 2 ** 53 - 1  # the largest figure any answer carries (JavaScript's safe integers)
MAX_HISTORY_DAYS = 366
MAX_OFFSET = MAX_FIGURE
# Epoch seconds of 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z: the times an ISO string can say.
FIRST_TIME, LAST_TIME = -62135596800.0, 253402300799.0


@dataclass(frozen=True)
class Scope:
    """Which part of the city: everything, a district, a ward of it, or one venue."""

    district: str | None = None
    ward: str | None = None
    venue_id: str | None = None
    districts: tuple[str, ...] | None = None  # several districts (an inspector's); None: no such limit

    def where(self, alias: str = "v") -> tuple[str, list]:
        sql, params = "", []
        for col, value in (("district", self.district), ("ward", self.ward), ("venue_id", self.venue_id)):
            if value is None:
                continue
            if "\x00" in value:  # no name holds one (PostgreSQL cannot even compare it): nothing matches
                sql += " AND 1 = 0"
                continue
            sql += f" AND {alias}.{col} = ?"
            params.append(value)
        if self.districts is not None:
            sql += f" AND {alias}.district IN ({', '.join('?' for _ in self.districts)})" if self.districts \
                else " AND 1 = 0"
            params.extend(self.districts)
        return sql, params

    def within(self, district: str | None) -> "Scope":
        """This scope, held inside an account's district (None: the city account)."""
        return self if district is None else replace(self, district=district)


class DayOutOfRange(LookupError):
    """A ``day`` the centre has no figures for (in the future, or older than its history): 404 with a sentence."""


def _share(r: dict) -> float | None:
    """The share of venues with a code that had any scan (0..1, 3 decimals), None without venues with a code."""
    code, scans = _figure(r.get("venues_with_code")), _figure(r.get("venues_with_scans"))
    return round(min(1.0, scans / code), 3) if code else None


@dataclass
class Settings:
    """How the centre judges figures: the city's time zone, the morning grace hour, staleness."""

    timezone: str = "Asia/Ho_Chi_Minh"
    grace_hour: int = 10  # "no scans today" rows are final from this local hour on (--grace-hour) ...
    morning_hour: int = 6  # ... and listed, marked provisional, from this one (an inspector plans the day at 8)
    stale_seconds: float = 300.0  # no signed message for this long: the kiosk is silent (health is every 60 s)
    offline_hours: float = 2.0  # "offline" rows once a kiosk has been offline this long
    history_cache_seconds: float = 60.0
    keep_days: int = 120  # the history kept (--keep-days): the oldest day a page may be asked for
    clock: object = field(default=time.time, repr=False)

    def now(self) -> float:
        return self.clock()

    def local(self, t: float | None = None) -> datetime:
        return datetime.fromtimestamp(self.now() if t is None else t, ZoneInfo(self.timezone))

    def today(self) -> str:
        return self.local().date().isoformat()


VENUE_FIGURES = ("kiosks", "kiosks_online", "scans", "accepted", "rejected", "duplicates", "overrides",
                 "unique_visitors")
KIOSK_FIGURES = ("accepted", "rejected", "duplicates", "overrides", "unique_visitors", "dropped_events")


def _scans(S: str, alias: str = "") -> str:
    """Scans (accepted + rejected + duplicates) as three sums: stored values are never added row by row
    (PostgreSQL's BIGINT + raises on overflow; ``S`` is the overflow-free sum, see ``Centre._sum``)."""
    a = f"{alias}." if alias else ""
    return f"{S}({a}accepted) + {S}({a}rejected) + {S}({a}duplicates)"


def _figure(v) -> int:
    """A stored or summed figure as an int in ``0..MAX_FIGURE`` (see the module's contract)."""
    t = type(v)
    if t is not int:
        if t is float:
            if v != v:  # NaN
                return 0
        elif t is not Decimal or v.is_nan():
            return 0  # None, text, bytes (SQLite keeps any type): no figure
        v = MAX_FIGURE if v > MAX_FIGURE else 0 if v < 0 else int(v)
    return MAX_FIGURE if v > MAX_FIGURE else 0 if v < 0 else v


def _time(t) -> float | None:
    """A stored time (epoch seconds) when it is one an ISO string can say, else None."""
    if type(t) is not float:
        if not isinstance(t, (int, Decimal)) or isinstance(t, bool):
            return None
        t = float(t)
    return t if FIRST_TIME <= t <= LAST_TIME else None  # NaN fails both comparisons


def _iso(t) -> str | None:
    t = _time(t)
    return None if t is None else iso(t)


def _text(v) -> str:
    """A stored text as str (SQLite keeps whatever type it was given)."""
    if type(v) is str:
        return v
    if v is None:
        return ""
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)


def _seconds_since(since, now: float) -> int | None:
    t = _time(since)
    return None if t is None else max(0, int(now - t))


def _kiosk_now(scope: Scope, candidates: str = "") -> tuple[str, list]:
    """Every (not revoked) kiosk with its venue, state and today's counts; params: stale cut-off, today.

    ``candidates``: SQL of (site, device) rows the kiosks are limited to (its parameters come between the
    stale cut-off and today).
    """
    where, params = scope.where("v")
    only = f"JOIN ({candidates}) c ON c.site = f.site AND c.device = f.device" if candidates else ""
    sql = f"""
    SELECT f.site, f.device, f.venue_id, COALESCE(v.name, '') AS venue_name, COALESCE(v.address, '') AS address,
      COALESCE(v.ward, '') AS ward, COALESCE(v.district, '') AS district, COALESCE(v.registered, 0) AS registered,
      COALESCE(v.venue_qr_sha256, '') AS registry_qr, COALESCE(i.venue_qr_sha256, '') AS shown_qr, i.info_ts,
      i.version, s.status, s.status_at, s.offline_first_seen,
      h.camera_ok, h.camera_error, h.camera_since, h.display_ok, h.display_since, h.clock_synced, h.trust_stale,
      h.trust_age_hours, h.degraded, h.health_ts, n.last_ts, n.last_seq, n.last_scan,
      COALESCE(d.accepted, 0) AS accepted, COALESCE(d.rejected, 0) AS rejected,
      COALESCE(d.duplicates, 0) AS duplicates, COALESCE(d.overrides, 0) AS overrides,
      COALESCE(d.unique_visitors, 0) AS unique_visitors, COALESCE(d.dropped_events, 0) AS dropped_events,
      CASE WHEN (s.status IS NULL OR s.status = 'online') AND n.last_ts >= ? THEN 1 ELSE 0 END AS online
    FROM fleet f {only} LEFT JOIN venues v ON v.venue_id = f.venue_id
    LEFT JOIN kiosk_status s ON s.site = f.site AND s.device = f.device
    LEFT JOIN kiosk_health h ON h.site = f.site AND h.device = f.device
    LEFT JOIN kiosk_seen n ON n.site = f.site AND n.device = f.device
    LEFT JOIN kiosk_info i ON i.site = f.site AND i.device = f.device
    LEFT JOIN daily d ON d.site = f.site AND d.device = f.device AND d.day = ?
    WHERE f.revoked = 0{where}"""
    return sql, params


class Centre:
    """Queries over one store with one set of settings (the dashboard, the API and the monitor share it)."""

    def __init__(self, store: Store, settings: Settings | None = None):
        self.store = store
        self.settings = settings or Settings()
        # Sums that cannot overflow whatever is stored: SQLite's SUM raises past 2**63, its TOTAL is a double;
        # PostgreSQL's SUM of BIGINT is NUMERIC.
        self._sum = "TOTAL" if store.dialect == "sqlite" else "SUM"
        self._cache: dict = {}
        self._cache_lock = threading.Lock()

    # -- building blocks ---------------------------------------------------------------
    def _kiosk_rows(self, scope: Scope) -> list[dict]:
        sql, params = _kiosk_now(scope)
        s = self.settings
        return self.store.query(sql + " ORDER BY f.site, f.device", [s.now() - s.stale_seconds, s.today(), *params])

    def _ward_rows(self, scope: Scope, day: str | None = None) -> list[dict]:
        """Figures per (district, ward) of today joined from every venue and kiosk: the old path, kept for one
        venue's scope and as the benchmark's "before" (scripts/bench_centre.py); pages read the rollup."""
        s = self.settings
        ksql, kparams = _kiosk_now(scope)
        where, params = scope.where("v")
        S = self._sum
        sql = f"""
        SELECT v.district AS district, v.ward AS ward,
          SUM(CASE WHEN v.registered = 1 THEN 1 ELSE 0 END) AS venues_with_code,
          SUM(CASE WHEN v.registered = 1 THEN 0 ELSE 1 END) AS venues_unregistered,
          SUM(CASE WHEN kv.kiosks > 0 THEN 1 ELSE 0 END) AS venues_with_kiosk,
          SUM(COALESCE(kv.kiosks, 0)) AS kiosks, {S}(COALESCE(kv.kiosks_online, 0)) AS kiosks_online,
          SUM(CASE WHEN kv.scans > 0 THEN 1 ELSE 0 END) AS venues_with_scans,
          {S}(COALESCE(kv.scans, 0)) AS scans, {S}(COALESCE(kv.accepted, 0)) AS accepted,
          {S}(COALESCE(kv.rejected, 0)) AS rejected, {S}(COALESCE(kv.duplicates, 0)) AS duplicates,
          {S}(COALESCE(kv.overrides, 0)) AS overrides, {S}(COALESCE(kv.unique_visitors, 0)) AS unique_visitors
        FROM venues v LEFT JOIN (
          SELECT venue_id, COUNT(*) AS kiosks, {S}(online) AS kiosks_online, {_scans(S)} AS scans,
            {S}(accepted) AS accepted, {S}(rejected) AS rejected, {S}(duplicates) AS duplicates,
            {S}(overrides) AS overrides, {S}(unique_visitors) AS unique_visitors
          FROM ({ksql}) k GROUP BY venue_id) kv ON kv.venue_id = v.venue_id
        WHERE 1 = 1{where}
        GROUP BY v.district, v.ward ORDER BY v.district, v.ward"""
        return self.store.query(sql, [s.now() - s.stale_seconds, day or s.today(), *kparams, *params])

    def _ward_figures(self, scope: Scope, day: str) -> list[dict]:
        """Figures per (district, ward) of ``day`` as the pages read them: the ingest's rollup for the counts,
        the venue registry's history for venues with a code; the fleet as it is now for kiosks, kiosks
        online, venues with a kiosk and venues not registered (today only; None for a past day)."""
        if scope.venue_id is not None:  # the rollup has no venues: one venue's figures come the long way
            return self._ward_rows(scope, day)
        rwhere, rparams = scope.where("r")
        out: dict[tuple, dict] = {}

        def row(district, ward) -> dict:
            key = (_text(district), _text(ward))
            r = out.get(key)
            if r is None:
                r = out[key] = {"district": key[0], "ward": key[1], **{f: 0 for f in FIGURES}}
            return r

        cols = ", ".join(f"r.{f}" for f in ROLLUP_FIGURES)
        for r in self.store.query(f"SELECT r.district, r.ward, {cols} FROM rollup_daily r WHERE r.day = ?{rwhere}",
                                  [day, *rparams]):
            row(r["district"], r["ward"]).update({f: _figure(r[f]) for f in ROLLUP_FIGURES})
        snap = self._registry_day(day)
        if snap is not None:
            for r in self.store.query("SELECT r.district, r.ward, r.venues_with_code FROM registry_history r "
                                      f"WHERE r.day = ?{rwhere}", [snap, *rparams]):
                if _figure(r["venues_with_code"]):
                    row(r["district"], r["ward"])["venues_with_code"] = _figure(r["venues_with_code"])
        s = self.settings
        if day == s.today():  # the fleet as it is now: today's page only
            self._fleet_figures(scope, row)
        rows = [out[k] for k in sorted(out)]
        if day != s.today():
            for r in rows:
                r.update({f: None for f in LIVE_FIGURES})
        return rows

    def _fleet_figures(self, scope: Scope, row) -> None:
        """Kiosks, venues with a kiosk (``rollup_fleet``), venues not registered, and kiosks online: the
        kiosks less those that are not, found from small indexes (most of a city's kiosks are online)."""
        rwhere, rparams = scope.where("r")
        for r in self.store.query(f"SELECT r.district, r.ward, r.kiosks, r.venues_with_kiosk FROM rollup_fleet r "
                                  f"WHERE 1 = 1{rwhere}", rparams):
            x = row(r["district"], r["ward"])
            x.update(kiosks=_figure(r["kiosks"]), venues_with_kiosk=_figure(r["venues_with_kiosk"]),
                     kiosks_online=_figure(r["kiosks"]))
        vwhere, vparams = scope.where("v")
        for r in self.store.query("SELECT v.district, v.ward, COUNT(*) AS n FROM venues v "
                                  f"WHERE v.registered = 0{vwhere} GROUP BY v.district, v.ward", vparams):
            row(r["district"], r["ward"])["venues_unregistered"] = _figure(r["n"])
        s = self.settings
        for r in self.store.query(f"""
            WITH c AS (SELECT site, device FROM kiosk_status WHERE status <> 'online'
              UNION SELECT site, device FROM kiosk_seen WHERE last_ts < ? OR last_ts IS NULL
              UNION SELECT f.site, f.device FROM fleet f WHERE NOT EXISTS (
                SELECT 1 FROM kiosk_seen n WHERE n.site = f.site AND n.device = f.device))
            SELECT v.district AS district, v.ward AS ward, COUNT(*) AS n FROM c
            JOIN fleet f ON f.site = c.site AND f.device = c.device JOIN venues v ON v.venue_id = f.venue_id
            WHERE f.revoked = 0{vwhere} GROUP BY v.district, v.ward""", [s.now() - s.stale_seconds, *vparams]):
            x = row(r["district"], r["ward"])
            x["kiosks_online"] = max(0, x["kiosks_online"] - _figure(r["n"]))

    def _registry_days(self) -> list[str]:
        return [_text(r["day"]) for r in self.store.query("SELECT DISTINCT day FROM registry_history ORDER BY day")]

    def _registry_day(self, day: str) -> str | None:
        """The registry snapshot that holds on ``day`` (kiosk.centre.rollup.snapshot_for)."""
        return snapshot_for(self._registry_days(), day)

    def venues_with_code_series(self, scope: Scope, days: list[str]) -> list[int]:
        """Venues with a code on each of ``days`` in ``scope``, from the registry's history."""
        snaps = self._registry_days()
        if not snaps or scope.venue_id is not None:
            n = self.venues_with_code(scope)
            return [n for _ in days]
        where, params = scope.where("r")
        by = {_text(r["day"]): _figure(r["n"]) for r in self.store.query(
            f"SELECT r.day, SUM(r.venues_with_code) AS n FROM registry_history r WHERE 1 = 1{where} GROUP BY r.day",
            params)}
        return [by.get(snapshot_for(snaps, d) or "", 0) for d in days]

    @staticmethod
    def _rollup(rows: list[dict], key) -> list[dict]:
        out: dict = {}
        for r in rows:
            k = key(r)
            acc = out.get(k)
            if acc is None:
                acc = out[k] = {"name": k, **{f: 0 for f in FIGURES}}
            for f in FIGURES:
                if r[f] is None or acc[f] is None:
                    acc[f] = None  # a figure of now, asked of a past day
                else:
                    acc[f] = min(MAX_FIGURE, acc[f] + _figure(r[f]))
        return [{**r, "scan_share": _share(r)} for r in out.values()]

    def _envelope(self, **body) -> dict:
        return {"day": self.settings.today(), "generated": iso(self.settings.now()), **body}

    def check_day(self, day: str | None) -> str:
        """``day`` (YYYY-MM-DD, a day of the history this centre keeps, not after today) or today.

        Raises :class:`DayOutOfRange` with a sentence for a day in the future or older than the history kept.
        """
        today = self.settings.today()
        if day is None or day == today:
            return today
        d = date.fromisoformat(day)
        if d > date.fromisoformat(today):
            raise DayOutOfRange(f"day: {day} has not come yet in the city (today is {today})")
        first = date.fromisoformat(today) - timedelta(days=self.settings.keep_days)
        if d < first:
            raise DayOutOfRange(f"day: {day} is older than the {self.settings.keep_days} days of history the centre "
                                f"keeps (the first is {first.isoformat()})")
        return day

    # -- what pages and API serve ------------------------------------------------------
    def overview(self, scope: Scope = Scope(), day: str | None = None) -> dict:
        """The figures of ``scope`` on ``day`` (default today) and one row per district in it (the city's table)."""
        day = self.check_day(day)
        wards = self._ward_figures(scope, day)
        districts = sorted(self._rollup(wards, lambda r: _text(r["district"])), key=lambda r: r["name"])
        total = self._total(wards, day)
        return {**self._envelope(scope=_scope_dict(scope), totals=total, districts=districts), "day": day,
                "today": day == self.settings.today()}

    def _total(self, wards: list[dict], day: str) -> dict:
        (total,) = self._rollup(wards, lambda r: "total") or [{"name": "total", **self._empty(day)}]
        total.pop("name")
        return total

    def _empty(self, day: str) -> dict:
        live = day == self.settings.today()
        return {**{f: (0 if live or f not in LIVE_FIGURES else None) for f in FIGURES}, "scan_share": None}

    def district(self, name: str, scope: Scope = Scope(), day: str | None = None) -> dict:
        """One district on ``day`` (default today): its figures and one row per ward."""
        day = self.check_day(day)
        scope = replace(scope, district=name)
        wards = self._ward_figures(scope, day)
        rows = [{"name": _text(r["ward"]), **{f: r[f] for f in FIGURES}, "scan_share": _share(r)} for r in wards]
        return {**self._envelope(district=name, totals=self._total(wards, day), wards=rows), "day": day,
                "today": day == self.settings.today()}

    def venues(self, scope: Scope, day: str | None = None) -> list[dict]:
        """One row per venue in ``scope`` with the figures of ``day`` (default today; a ward page, the venue page)."""
        s = self.settings
        ksql, kparams = _kiosk_now(scope)
        where, params = scope.where("v")
        S = self._sum
        sql = f"""
        SELECT v.venue_id, v.name, v.address, v.ward, v.district, v.registered,
          COALESCE(kv.kiosks, 0) AS kiosks, COALESCE(kv.kiosks_online, 0) AS kiosks_online,
          COALESCE(kv.scans, 0) AS scans, COALESCE(kv.accepted, 0) AS accepted,
          COALESCE(kv.rejected, 0) AS rejected, COALESCE(kv.duplicates, 0) AS duplicates,
          COALESCE(kv.overrides, 0) AS overrides, COALESCE(kv.unique_visitors, 0) AS unique_visitors,
          kv.last_scan
        FROM venues v LEFT JOIN (
          SELECT venue_id, COUNT(*) AS kiosks, {S}(online) AS kiosks_online, {_scans(S)} AS scans,
            {S}(accepted) AS accepted, {S}(rejected) AS rejected, {S}(duplicates) AS duplicates,
            {S}(overrides) AS overrides, {S}(unique_visitors) AS unique_visitors, MAX(last_scan) AS last_scan
          FROM ({ksql}) k GROUP BY venue_id) kv ON kv.venue_id = v.venue_id
        WHERE 1 = 1{where} ORDER BY v.district, v.ward, v.name, v.venue_id"""
        rows = self.store.query(sql, [s.now() - s.stale_seconds, day or s.today(), *kparams, *params])
        out = []
        for r in rows:
            out.append({"venue_id": _text(r["venue_id"]), "name": _text(r["name"]), "address": _text(r["address"]),
                        "ward": _text(r["ward"]), "district": _text(r["district"]), "registered": r["registered"] == 1,
                        **{f: _figure(r[f]) for f in VENUE_FIGURES}, "last_scan": _iso(r["last_scan"])})
        return out

    def venue(self, venue_id: str, scope: Scope = Scope()) -> dict | None:
        """One venue: where it is, today's figures, its kiosks, its 30 days and today's hourly curve."""
        scope = replace(scope, venue_id=venue_id)
        rows = self.venues(scope)
        if not rows:
            return None
        return self._envelope(venue=rows[0], kiosks=self.kiosks(scope), history=self.history(scope),
                              hourly=self.hourly(scope))

    def kiosks(self, scope: Scope = Scope()) -> list[dict]:
        """Every kiosk in ``scope``: state (online from its own signed messages), health, today's counts."""
        out = []
        for r in self._kiosk_rows(scope):
            counts = {f: _figure(r[f]) for f in KIOSK_FIGURES}
            status = r["status"]
            out.append({
                "site": _text(r["site"]), "device": _text(r["device"]), "venue_id": _text(r["venue_id"]),
                "venue_name": _text(r["venue_name"]), "address": _text(r["address"]), "ward": _text(r["ward"]),
                "district": _text(r["district"]), "online": r["online"] == 1,
                "status": status if status in ("online", "offline") else None, "last_heard": _iso(r["last_ts"]),
                "camera_ok": _bool(r["camera_ok"]), "camera_error": _text(r["camera_error"]),
                "display_ok": _bool(r["display_ok"]), "clock_synced": _bool(r["clock_synced"]),
                "trust_stale": _bool(r["trust_stale"]), "degraded": [w for w in _text(r["degraded"]).split(",") if w],
                "version": None if r["version"] is None else _text(r["version"]),
                "scans": min(MAX_FIGURE, counts["accepted"] + counts["rejected"] + counts["duplicates"]), **counts,
                "last_seq": None if r["last_seq"] is None else _figure(r["last_seq"]),
                "last_scan": _iso(r["last_scan"]),
            })
        return out

    def history(self, scope: Scope = Scope(), days: int = 30, until: str | None = None) -> list[dict]:
        """The ``days`` days up to ``until`` (default today; included), one row a day: scans, venues with
        scans and venues with a code (the registry's history).

        Past days are cached for ``history_cache_seconds`` (they only change by late counts); today
        is always live.
        """
        s = self.settings
        days = min(MAX_HISTORY_DAYS, max(1, int(days)))
        today = date.fromisoformat(until or s.today())
        first = (today - timedelta(days=days - 1)).isoformat()
        key = (scope, first, today.isoformat())
        with self._cache_lock:
            hit = self._cache.get(key)
        if hit is not None and hit[0] > time.monotonic():
            past = hit[1]
        else:
            past = self._history(scope, first, (today - timedelta(days=1)).isoformat())
            with self._cache_lock:
                if len(self._cache) > 512:
                    self._cache.clear()
                self._cache[key] = (time.monotonic() + s.history_cache_seconds, past)
        rows = {**past, **self._history(scope, today.isoformat(), today.isoformat())}
        out = []
        all_days = [(today - timedelta(days=days - 1 - i)).isoformat() for i in range(days)]
        for d, code in zip(all_days, self.venues_with_code_series(scope, all_days)):
            out.append({"day": d, **rows.get(d, {"scans": 0, "accepted": 0, "rejected": 0, "duplicates": 0,
                                                  "overrides": 0, "venues_with_scans": 0}), "venues_with_code": code})
        return out

    def _history(self, scope: Scope, first: str, last: str) -> dict:
        if last < first:
            return {}
        if scope.venue_id is None:  # the rollup: a row per ward and day, not per kiosk
            where, params = scope.where("r")
            sums = ", ".join(f"SUM(r.{f}) AS {f}" for f in ("scans", "accepted", "rejected", "duplicates", "overrides",
                                                           "venues_with_scans"))
            return {_text(r.pop("day")): {k: _figure(v) for k, v in r.items()} for r in self.store.query(
                f"SELECT r.day AS day, {sums} FROM rollup_daily r WHERE r.day >= ? AND r.day <= ?{where} "
                "GROUP BY r.day",
                [first, last, *params])}
        where, params = scope.where("v")
        S = self._sum
        sql = f"""
        SELECT d.day AS day, {_scans(S, "d")} AS scans, {S}(d.accepted) AS accepted,
          {S}(d.rejected) AS rejected, {S}(d.duplicates) AS duplicates, {S}(d.overrides) AS overrides,
          COUNT(DISTINCT CASE WHEN d.accepted > 0 OR d.rejected > 0 OR d.duplicates > 0 THEN d.venue_id END)
            AS venues_with_scans
        FROM daily d JOIN venues v ON v.venue_id = d.venue_id
        WHERE d.day >= ? AND d.day <= ?{where} GROUP BY d.day"""
        return {r.pop("day"): {k: _figure(v) for k, v in r.items()}
                for r in self.store.query(sql, [first, last, *params])}

    def hourly(self, scope: Scope = Scope()) -> list[int]:
        """Today's scans per local hour (0-23) in ``scope``."""
        where, params = scope.where("v")
        sums = ", ".join(f"{self._sum}(hr.{h}) AS {h}" for h in HOURS)
        sql = f"""SELECT {sums} FROM hourly hr JOIN fleet f ON f.site = hr.site AND f.device = hr.device
                  JOIN venues v ON v.venue_id = f.venue_id WHERE hr.day = ? AND f.revoked = 0{where}"""
        (r,) = self.store.query(sql, [self.settings.today(), *params])
        return [_figure(r[h]) for h in HOURS]

    def venues_with_code(self, scope: Scope = Scope()) -> int:
        where, params = scope.where("v")
        return _figure(self.store.query(f"SELECT COUNT(*) AS n FROM venues v WHERE v.registered = 1{where}",
                                        params)[0]["n"])

    def districts(self) -> list[str]:
        # A skip scan of the (district, ward) index: one probe per district, not a pass over the city's venues.
        return [_text(r["district"]) for r in self.store.query(
            "WITH RECURSIVE d(district) AS ("
            " SELECT (SELECT MIN(district) FROM venues WHERE district > '')"
            " UNION ALL SELECT (SELECT MIN(v.district) FROM venues v WHERE v.district > d.district)"
            " FROM d WHERE d.district IS NOT NULL) "
            "SELECT district FROM d WHERE district IS NOT NULL ORDER BY district")]

    def _kiosk_problems(self, scope: Scope) -> tuple[str, list]:
        """Every kiosk problem row of ``scope`` (SQL and parameters), judging only the kiosks that may have one.

        The rules, in the order a kiosk is judged: a kiosk whose venue is not registered is
        ``unknown-venue`` (and judged on); never heard, offline (for ``offline_hours``, aged from its own
        last signed time, never from when this centre noticed) or silent say all there is; a kiosk online
        is checked for camera, display, clock, trust data and the venue code it shows; a silent one keeps its
        camera and display rows (its last word on them). Apart from these, a
        kiosk that signed an implausible claim in the last day is ``implausible``, whatever its state.

        Most kiosks of a city are well, so the candidates come first, each from a small index (a health
        flag, an offline status, an old last signed time, an unregistered venue, no signed message at all,
        a code that differs from the registry's), and only they are joined with their whole state.
        """
        s = self.settings
        now = s.now()
        stale = now - s.stale_seconds
        ksql, kparams = _kiosk_now(scope, candidates="""
          SELECT site, device FROM kiosk_health
            WHERE camera_ok = 0 OR display_ok = 0 OR clock_synced = 0 OR trust_stale = 1
          UNION SELECT site, device FROM kiosk_status WHERE status = 'offline'
          UNION SELECT site, device FROM kiosk_seen WHERE last_ts < ?
          UNION SELECT f.site, f.device FROM venues v JOIN fleet f ON f.venue_id = v.venue_id WHERE v.registered = 0
          UNION SELECT f.site, f.device FROM fleet f WHERE NOT EXISTS (
            SELECT 1 FROM kiosk_seen n WHERE n.site = f.site AND n.device = f.device)
          UNION SELECT f.site, f.device FROM kiosk_info i JOIN fleet f ON f.site = i.site AND f.device = i.device
            JOIN venues v ON v.venue_id = f.venue_id
            WHERE v.venue_qr_sha256 <> '' AND i.venue_qr_sha256 <> '' AND v.venue_qr_sha256 <> i.venue_qr_sha256""")
        kcols = "venue_id, venue_name, address, ward, district, site, device"

        def branch(why: str, since: str, cond: str) -> str:
            return f"SELECT '{why}' AS why, {kcols}, {since} AS since, camera_error AS detail FROM k WHERE {cond}"

        parts = [
            branch("unknown-venue", "info_ts", "registered = 0"),
            branch("never-heard", "offline_first_seen", "last_ts IS NULL"),
            branch("offline", "last_ts", "last_ts IS NOT NULL AND status = 'offline' AND last_ts <= ?"),
            branch("silent", "last_ts", "last_ts IS NOT NULL AND (status IS NULL OR status <> 'offline') AND online = 0"),
            # A silent kiosk's last word on its camera (display) still stands: the row stays until it says
            # otherwise or goes offline (only "offline" says all there is).
            branch("camera-down", "camera_since", "last_ts IS NOT NULL AND (status IS NULL OR status <> 'offline') "
                                                  "AND camera_ok = 0"),
            branch("display-down", "display_since", "last_ts IS NOT NULL AND (status IS NULL OR status <> 'offline') "
                                                    "AND display_ok = 0"),
            branch("clock-unsynced", "health_ts", "online = 1 AND clock_synced = 0"),
            # guarded: a stored age of 1e308 would overflow PostgreSQL's double precision arithmetic
            branch("trust-stale", "CASE WHEN trust_age_hours >= 0 AND trust_age_hours <= 1e6 "
                                  "THEN health_ts - trust_age_hours * 3600 END", "online = 1 AND trust_stale = 1"),
            branch("venue-code-mismatch", "info_ts",
                   "online = 1 AND registry_qr <> '' AND shown_qr <> '' AND registry_qr <> shown_qr"),
        ]
        params = [stale, stale, s.today(), *kparams, now - s.offline_hours * 3600]
        # A kiosk that signed a claim no kiosk could make, for a day after its last one (the centre's clock).
        where, wparams = scope.where("v")
        parts.append(
            "SELECT 'implausible' AS why, f.venue_id, COALESCE(v.name, '') AS venue_name, COALESCE(v.address, '') "
            "AS address, COALESCE(v.ward, '') AS ward, COALESCE(v.district, '') AS district, f.site, f.device, "
            "x.first_at AS since, x.what AS detail FROM kiosk_implausible x "
            "JOIN fleet f ON f.site = x.site AND f.device = x.device LEFT JOIN venues v ON v.venue_id = f.venue_id "
            f"WHERE f.revoked = 0 AND x.last_at >= ?{where}")
        params += [now - IMPLAUSIBLE_LISTED_SECONDS, *wparams]
        return f"WITH k AS ({ksql}) {' UNION ALL '.join(parts)}", params

    def _no_scans(self, scope: Scope, columns: str) -> tuple[str, list] | None:
        """Registered venues of ``scope`` with no scan today (from the morning hour on; None before it)."""
        s = self.settings
        local = s.local(s.now())
        if local.hour < min(s.morning_hour, s.grace_hour):
            return None
        where, params = scope.where("v")
        return (f"SELECT {columns} FROM venues v WHERE v.registered = 1{where} "
                "AND (v.last_scan_day IS NULL OR v.last_scan_day < ?)", [*params, s.today()])

    def _no_scans_rows(self, scope: Scope, limit: int | None) -> tuple[str, list] | None:
        s = self.settings
        midnight = s.local(s.now()).replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
        found = self._no_scans(scope, "'no-scans-today' AS why, v.venue_id AS venue_id, v.name AS venue_name, "
                                      "v.address AS address, v.ward AS ward, v.district AS district, NULL AS site, "
                                      "NULL AS device, CAST(? AS DOUBLE PRECISION) AS since, NULL AS detail")
        if found is None:
            return None
        sql, params = found
        params = [midnight, *params]
        # In the list's order within the branch (why is constant), so the first page is an index range scan
        # (venues_inspection) that LIMIT stops; the list's own LIMIT needs no more than offset + limit of it.
        sql += " ORDER BY v.district, v.ward, v.name, v.venue_id"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return f"SELECT * FROM ({sql}) ns", params

    def _inspection_sql(self, scope: Scope, kinds: tuple[str, ...], limit: int | None = None
                        ) -> tuple[str, str, list, bool]:
        """The list's rows of ``kinds`` (all: empty) as SQL: (WITH clause, the union of the rows, parameters,
        whether the kiosk problems ``kp`` are in it). ``limit``: how many rows of the list are needed."""
        parts, params, with_kp = [], [], ""
        asked = [k for k in kinds if k != "no-scans-today"]
        if not kinds or asked:
            ksql, params = self._kiosk_problems(scope)
            only = f" WHERE x.why IN ({', '.join('?' for _ in asked)})" if asked else ""
            # Materialised: the page and the counts per kind read it once.
            with_kp = f"WITH kp AS MATERIALIZED (SELECT * FROM ({ksql}) x{only}) "
            params += asked
            parts.append("SELECT * FROM kp")
        if not kinds or "no-scans-today" in kinds:
            found = self._no_scans_rows(scope, limit)
            if found is not None:
                parts.append(found[0])
                params += found[1]
        if not parts:  # only "no scans today" asked for, before the grace hour
            parts.append(f"SELECT {', '.join('NULL AS ' + c for c in ROW_COLUMNS)} WHERE 1 = 0")
        return with_kp, " UNION ALL ".join(parts), params, bool(with_kp)

    def _inspection_row(self, r: dict, now: float) -> dict:
        since = r["since"]
        why = _text(r["why"])
        detail = dict(_DETAILS.get(why) or {"en": "", "vi": ""})
        if why == "camera-down" and r["detail"]:
            detail = {"en": _text(r["detail"]), "vi": _text(r["detail"])}  # the kiosk's own words for its camera
        elif why == "implausible":
            what = _text(r["detail"])[:64]  # the check that failed, a field's name: the same in both languages
            detail = {"en": f"{detail['en']} ({what})", "vi": f"{detail['vi']} ({what})"}
        elif why == "no-scans-today":
            n = _figure(r.get("n"))
            detail = ({"en": f"{n} kiosk(s)", "vi": f"{n} máy quét"} if n else
                      {"en": "poster only (no kiosk)", "vi": "chỉ dán mã (không có máy quét)"})
        # Before the grace hour a venue without scans may simply not have opened yet: listed, not yet final.
        provisional = why == "no-scans-today" and self.settings.local(now).hour < self.settings.grace_hour
        return {"why": why, "provisional": provisional, "venue_id": _text(r["venue_id"]),
                "venue_name": _text(r["venue_name"]),
                "address": _text(r["address"]), "ward": _text(r["ward"]), "district": _text(r["district"]),
                "site": None if r["site"] is None else _text(r["site"]),
                "device": None if r["device"] is None else _text(r["device"]), "since": _iso(since),
                "for_seconds": _seconds_since(since, now), "detail": detail["en"], "detail_vi": detail["vi"]}

    # The kiosks of a venue without scans, counted for the rows returned only (never for the whole city).
    KIOSKS = ("CASE WHEN q.why = 'no-scans-today' THEN (SELECT COUNT(*) FROM fleet f2 "
              "WHERE f2.venue_id = q.venue_id AND f2.revoked = 0) END")

    def inspection(self, scope: Scope = Scope(), kinds: tuple[str, ...] = (), limit: int | None = None,
                   offset: int = 0, sort: str | None = None, desc: bool = False) -> dict:
        """The venues an inspector should visit, one row per problem, with how long it has lasted.

        Filtering, ordering and paging happen in the database, and one statement returns the page and
        the kiosk problems' counts per kind: a page of the whole city costs the kiosks with a problem,
        the page's venues and one count of venues without scans, not the city. ``limit`` None: every row.
        """
        now = self.settings.now()
        offset = min(MAX_OFFSET, max(0, int(offset)))
        limit = None if limit is None else min(MAX_OFFSET, max(0, int(limit)))
        kinds = _kinds(kinds)
        # The "no scans" branch stops early only in the list's own order (its index's).
        need = None if limit is None or sort in SORTS else offset + limit
        with_kp, union, params, has_kp = self._inspection_sql(scope, kinds, need)
        page = f"SELECT * FROM ({union}) p{_order('p', sort=sort, desc=desc)}"
        if limit is not None:
            page += " LIMIT ? OFFSET ?"
            params = [*params, limit, offset]
        cols = ", ".join(f"q.{c}" for c in ROW_COLUMNS)
        sql = f"SELECT 0 AS part, {cols}, {self.KIOSKS} AS n FROM ({page}) q"
        if has_kp:
            nulls = ", ".join("NULL" for _ in ROW_COLUMNS[1:])
            sql += f" UNION ALL SELECT 1 AS part, kp.why, {nulls}, COUNT(*) FROM kp GROUP BY kp.why"
        rows, by_kind = [], {}
        for r in self.store.query(f"{with_kp}SELECT * FROM ({sql}) q{_order('q', 'q.part, ', sort, desc)}", params):
            if r["part"]:
                by_kind[r["why"]] = _figure(r["n"])
            else:
                rows.append(self._inspection_row(r, now))
        if not kinds or "no-scans-today" in kinds:
            found = self._no_scans(scope, "COUNT(*) AS n")
            n = _figure(self.store.query(*found)[0]["n"]) if found else 0
            if n:
                by_kind["no-scans-today"] = n
        by_kind = dict(sorted(by_kind.items()))
        return self._envelope(scope=_scope_dict(scope), total=sum(by_kind.values()), by_kind=by_kind,
                              offset=offset, rows=rows)

    def inspection_rows(self, scope: Scope = Scope(), kinds: tuple[str, ...] = (), sort: str | None = None,
                        desc: bool = False):
        """Every inspection row of ``scope``, in the list's order, streamed from the database (the CSV export)."""
        now = self.settings.now()
        with_kp, union, params, _ = self._inspection_sql(scope, _kinds(kinds))
        cols = ", ".join(f"q.{c}" for c in ROW_COLUMNS)
        sql = (f"{with_kp}SELECT {cols}, {self.KIOSKS} AS n FROM (SELECT * FROM ({union}) p"
               f"{_order('p', sort=sort, desc=desc)}) q{_order('q', sort=sort, desc=desc)}")
        for r in self.store.stream(sql, params):
            yield self._inspection_row(r, now)

    def refused(self, limit: int = 100) -> dict:
        """Messages that changed nothing: per reason, and the topics they came on (most first)."""
        by_reason = {_text(r["reason"]): _figure(r["n"]) for r in self.store.query(
            f"SELECT reason, {self._sum}(n) AS n FROM refused GROUP BY reason ORDER BY reason")}
        topics = [{"topic": _text(r["topic"]), "reason": _text(r["reason"]), "n": _figure(r["n"]),
                   "last_at": _iso(r["last_at"])}
                  for r in self.store.query("SELECT topic, reason, n, last_at FROM refused "
                                            "ORDER BY n DESC, topic LIMIT ?", [min(MAX_OFFSET, max(0, int(limit)))])]
        return self._envelope(total=min(MAX_FIGURE, sum(by_reason.values())), by_reason=by_reason, topics=topics)

    def daily_report(self, scope: Scope = Scope(), day: str | None = None) -> list[dict]:
        """The daily report of ``day`` (default today): one row per district, then one per ward of it (what a
        district sends the city), then, for more than one district, their total (level ``total``)."""
        day = self.check_day(day)
        wards = self._ward_figures(scope, day)
        out = []
        for d in sorted(self._rollup(wards, lambda r: _text(r["district"])), key=lambda r: r["name"]):
            out.append({"level": "district", "district": d.pop("name"), "ward": "", **d})
            for w in wards:
                if _text(w["district"]) == out[-1]["district"]:
                    out.append({"level": "ward", "district": _text(w["district"]), "ward": _text(w["ward"]),
                                **{f: w[f] for f in FIGURES}, "scan_share": _share(w)})
        if scope.district is None:  # one district's own row is its total
            out.append({"level": "total", "district": None, "ward": None, **self._total(wards, day)})
        return out


# What an inspector is told about a row, in the dashboard's two languages (camera-down: the kiosk's words).
_DETAILS = {
    "unknown-venue": {"en": "the kiosk's venue id is not in the venue registry",
                      "vi": "mã địa điểm của máy không có trong danh sách địa điểm"},
    "never-heard": {"en": "no signed message from this kiosk yet", "vi": "máy chưa gửi tin nhắn có chữ ký nào"},
    "silent": {"en": "online by its last will, but no signed message lately",
               "vi": "vẫn báo trực tuyến nhưng lâu rồi không gửi tin nhắn có chữ ký"},
    "offline": {"en": "check the kiosk's power and network at the venue",
                "vi": "kiểm tra nguồn điện và mạng của máy tại địa điểm"},
    "camera-down": {"en": "the camera is down: visitors cannot check in", "vi": "camera hỏng: khách không quét mã được"},
    "display-down": {"en": "the venue code is not on screen", "vi": "mã địa điểm không hiện trên màn hình"},
    "clock-unsynced": {"en": "the kiosk's clock is not synchronised: codes may be judged at the wrong time",
                       "vi": "đồng hồ của máy chưa đồng bộ: mã có thể bị xét sai thời điểm"},
    "trust-stale": {"en": "the kiosk's trust data is out of date: it cannot learn of revoked certificates",
                    "vi": "dữ liệu tin cậy của máy đã cũ: máy không biết các chứng nhận bị thu hồi"},
    "venue-code-mismatch": {"en": "the code on screen is not the registered venue code",
                            "vi": "mã trên màn hình khác mã địa điểm đã đăng ký"},
    "implausible": {"en": "the kiosk signed figures no kiosk could have seen: check the device, its key may be "
                          "stolen or its clock wrong",
                    "vi": "máy đã ký số liệu không máy nào có thể ghi nhận: kiểm tra thiết bị, khóa của máy có thể "
                          "đã bị lấy cắp hoặc đồng hồ bị sai"},
}


def _kinds(kinds) -> tuple[str, ...]:
    """The kinds asked for; one holding a NUL (no kind does) becomes one that matches no row."""
    return tuple("?" if "\x00" in k else k for k in kinds)


# The inspection list's sortable columns (``?sort=``) and the row column each sorts by.
SORTS = {"why": "why", "venue": "venue_name", "ward": "ward", "district": "district", "since": "since"}


def _order(alias: str, first: str = "", sort: str | None = None, desc: bool = False) -> str:
    """The inspection list's order over the rows of ``alias`` (after ``first``, if given): ``sort``'s column
    first (rows without a value last, whatever the database), then the list's own order, so it is stable."""
    a = alias  # short, for the lines below
    by = ""
    if sort in SORTS:
        col = f"{a}.{SORTS[sort]}"
        by = f"CASE WHEN {col} IS NULL THEN 1 ELSE 0 END, {col} {'DESC' if desc else 'ASC'}, "
    return (f" ORDER BY {first}{by}{a}.district, {a}.ward, {a}.why, {a}.venue_name, {a}.venue_id, "
            f"COALESCE({a}.device, '')")


def _bool(v) -> bool | None:
    return None if v is None else bool(v)


def _scope_dict(scope: Scope) -> dict:
    d = {"district": scope.district, "ward": scope.ward, "venue_id": scope.venue_id}
    if scope.districts is not None:
        d["districts"] = list(scope.districts)
    return d
