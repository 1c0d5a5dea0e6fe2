"""The terminal view (``kiosk monitor``): the same query layer as the dashboard, as JSON or a table."""

from __future__ import annotations

import shutil
import unicodedata
from datetime import datetime

from kiosk.centre.queries import Centre, Scope


def report(centre: Centre, scope: Scope = Scope()) -> dict:
    """Today's totals, every district, every kiosk, the inspection list and the refused messages."""
    o = centre.overview(scope)
    return {**o, "kiosks": centre.kiosks(scope), "inspection": centre.inspection(scope)["rows"],
            "refused": centre.refused()}


def _ago(t: str | None, now: float) -> str:
    if t is None:
        return "never"
    s = max(0, int(now - datetime.fromisoformat(t.replace("Z", "+00:00")).timestamp()))
    if s >= 86400:
        return f"{s // 86400}d{s % 86400 // 3600:02d}h"
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def _fit(text: str, width: int) -> str:
    """``text`` cut to ``width``, without the control characters a stored name may carry (an escape
    sequence would repaint the operator's terminal; the store's text is whatever an earlier centre kept)."""
    if not text.isprintable():
        text = "".join(" " if unicodedata.category(ch)[0] in "CZ" else ch for ch in text)
    return text if len(text) <= width else text[:max(1, width - 1)] + "…"


def table(rep: dict, now: float, width: int | None = None, max_rows: int | None = None) -> str:
    """A plain-text view sized to the terminal (names are cut only to the width there is)."""
    size = shutil.get_terminal_size((120, 40))
    width = width or size.columns
    max_rows = max_rows or max(10, size.lines - 12)
    t = rep["totals"]
    r = rep["refused"]
    lines = [
        f"City {rep['day']}: {t['kiosks_online']}/{t['kiosks']} kiosks online, {t['venues_with_scans']} venues with "
        f"scans of {t['venues_with_code']} with a code ({t['venues_with_kiosk']} with a kiosk), {t['scans']} scans "
        f"({t['accepted']} accepted, {t['rejected']} rejected, {t['duplicates']} duplicates, {t['overrides']} "
        f"overrides), {t['unique_visitors']} unique visitors",
        f"Refused messages: {r['total']}"
        + (" (" + ", ".join(f"{_fit(k, 30)} {v}" for k, v in r["by_reason"].items()) + ")" if r["total"] else ""),
        "",
    ]
    name_w = max(20, width - 78)
    lines.append(f"{'site/device':<22} {'venue':<{name_w}} {'state':<14} {'cam':<4} {'disp':<4} {'scans':>6} "
                 f"{'acc':>6} {'rej':>5} {'last scan':>10}")
    kiosks = rep["kiosks"]
    flag = {True: "ok", False: "DOWN", None: "-"}
    for k in kiosks[:max_rows]:
        state = ("online " if k["online"] else (k["status"] or "silent").upper() + " ") + _ago(k["last_heard"], now)
        lines.append(f"{_fit(k['site'] + '/' + k['device'], 22):<22} "
                     f"{_fit(k['venue_name'] or k['venue_id'], name_w):<{name_w}} {_fit(state, 14):<14} "
                     f"{flag[k['camera_ok']]:<4} {flag[k['display_ok']]:<4} {k['scans']:>6} {k['accepted']:>6} "
                     f"{k['rejected']:>5} {_ago(k['last_scan'], now) if k['last_scan'] else '-':>10}")
    if len(kiosks) > max_rows:
        lines.append(f"... and {len(kiosks) - max_rows} more (use --json for all)")
    insp = rep["inspection"]
    lines += ["", f"Inspection list ({len(insp)}):"]
    for row in insp[:max_rows]:
        how_long = _ago(row["since"], now) if row["since"] else "-"
        where = ", ".join(x for x in (row["address"], row["district"]) if x)
        name = _fit(row["venue_name"] or row["venue_id"], 30)
        lines.append(f"  {_fit(row['why'], 20):<20} {how_long:>8}  {name:<30} {_fit(where, max(20, width - 66))}")
    if len(insp) > max_rows:
        lines.append(f"  ... and {len(insp) - max_rows} more (use --json or the dashboard's CSV)")
    return "\n".join(lines)
