"""A campaign's report: venues planned, visited, compliant, each finding and each outcome, per district,
for the whole campaign (the city) and per day.

A venue visited twice counts once, by its latest visit (the second visit is the one that says how the
venue stands now). "Visited" on a day is the day of that visit, in the city's time zone; "planned" on
a day is the day the plan gives it. The page, ``/api/v1/inspection-report``, the CSV and the XLSX are
all made from :func:`report`.
"""

from __future__ import annotations

from kiosk.centre.visits import CHECKLIST, FINDINGS, OUTCOMES

FIGURES = ("planned", "visited", *FINDINGS, *OUTCOMES)  # "compliant" is an outcome
COLUMNS = ("level", "district", "day", *FIGURES)


def _latest(ids_sql: str) -> str:
    return ("SELECT s.*, ROW_NUMBER() OVER (PARTITION BY s.campaign_id, s.venue_id ORDER BY s.at DESC, "
            f"s.visit_id DESC) AS n FROM visits s WHERE s.campaign_id IN ({ids_sql})")


def _sums(S: str) -> str:
    finding = [f"{S}(CASE WHEN l.{c} = 0 THEN 1 ELSE 0 END) AS no_{c}" for c in CHECKLIST]
    finding += [f"{S}(CASE WHEN l.code_check = '{x}' THEN 1 ELSE 0 END) AS code_{x}" for x in ("differs", "unreadable")]
    outcome = [f"{S}(CASE WHEN l.outcome = '{o}' THEN 1 ELSE 0 END) AS {o}" for o in OUTCOMES]
    return ", ".join([*finding, *outcome])


def _row(level: str, district: str | None, day: str | None, r: dict | None) -> dict:
    out = {"level": level, "district": district, "day": day}
    for f in FIGURES:
        out[f] = int((r or {}).get(f) or 0)
    return out


def report(store, campaign_ids: list[str], districts: tuple[str, ...] | None = None) -> dict:
    """``total`` (every district of the campaigns together), ``districts`` (one row each) and ``days``.

    ``districts``: only those (an official's own); None: all the campaigns'.
    """
    if not campaign_ids:
        return {"total": _row("city", None, None, None), "districts": [], "days": []}
    S = "SUM"
    ids = ", ".join("?" for _ in campaign_ids)
    where, params = "", list(campaign_ids)
    if districts is not None:
        where = f" AND p.district IN ({', '.join('?' for _ in districts) or 'NULL'})"
        params += list(districts)
    latest = _latest(ids)
    join = (f"FROM campaign_plan p LEFT JOIN ({latest}) l ON l.campaign_id = p.campaign_id "
            "AND l.venue_id = p.venue_id AND l.n = 1 WHERE p.campaign_id IN (" + ids + ")" + where)
    both = [*campaign_ids, *params]
    # One pass: every figure by (district, planned day, visit day); the three views are sums of these groups
    # (a few hundred rows for a month of thirty districts), so the visits are read once, not three times.
    groups = store.query(
        f"SELECT p.district, p.day AS planned_day, l.day AS visit_day, COUNT(*) AS planned, "
        f"COUNT(l.visit_id) AS visited, {_sums(S)} {join} GROUP BY p.district, p.day, l.day", both)
    per_district: dict[str, dict] = {}
    days: dict[str, dict] = {}
    for g in groups:
        d = per_district.setdefault(g["district"], _row("district", g["district"], None, None))
        for f in FIGURES:
            d[f] += int(g[f] or 0)
        days.setdefault(g["planned_day"], _row("day", None, g["planned_day"], None))["planned"] += int(g["planned"])
        if g["visit_day"] is not None:
            v = days.setdefault(g["visit_day"], _row("day", None, g["visit_day"], None))
            for f in FIGURES[1:]:
                v[f] += int(g[f] or 0)
    rows = [per_district[k] for k in sorted(per_district)]
    total = _row("city", None, None, {f: sum(r[f] for r in rows) for f in FIGURES})
    return {"total": total, "districts": rows, "days": [days[d] for d in sorted(days)]}


def table(data: dict) -> list[dict]:
    """The report as one table (CSV, XLSX): the total, each district, then each day."""
    return [data["total"], *data["districts"], *data["days"]]


def xlsx(rows: list[dict], headers: list[str], sheet: str) -> bytes:
    """The table as an XLSX workbook (openpyxl, as the authority's F1 list); text is never a formula."""
    import io

    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook()
    ws = wb.active
    ws.title = sheet[:31]
    ws.append(headers)
    for cell in ws[1]:
        cell.font = Font(bold=True)
    for r in rows:
        ws.append([r[c] for c in COLUMNS])
        for cell in ws[ws.max_row]:
            if isinstance(cell.value, str) and cell.value.startswith("="):
                cell.data_type = "s"  # openpyxl would otherwise store it as a formula
    ws.freeze_panes = "A2"
    for col in ws.columns:
        ws.column_dimensions[col[0].column_letter].width = max(10, min(40, max(len(str(c.value or "")) for c in col) + 2))
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
