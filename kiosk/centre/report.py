"""The terminal view (``kiosk monitor``): the same query layer as the dashboard, as JSON or a table."""

from __future__ import annotations

import shutil
import unicodedata
from datetime import datetime

from kiosk.centre.queries import Centre, Scope
from kiosk.centre.versions import fleet_versions

# Figures that only mean something against the venue registry (venues that created a code).
VENUE_FIGURES = ("venues_with_code", "venues_unregistered", "venues_with_kiosk", "venues_with_scans")


def report(centre: Centre, scope: Scope = Scope(), current_version: str | None = None) -> dict:
    """Today's totals, every district, every kiosk, the inspection list, the refused messages and the software.

    Without a venue registry in the store (``kiosk monitor`` without ``--venues``) every kiosk's venue is
    unknown to the centre: the venue figures become null and the ``unknown-venue`` rows are left out of the
    inspection list (they would name every kiosk), and ``venue_registry.loaded`` says so.
    """
    o = centre.overview(scope)
    summary = centre.store.registry_summary()
    loaded = int(summary["venues"] or 0) > 0
    inspection = centre.inspection(scope)["rows"]
    if not loaded:
        for figures in (o["totals"], *o["districts"]):
            figures.update({f: None for f in VENUE_FIGURES})
        inspection = [r for r in inspection if r["why"] != "unknown-venue"]
    versions = fleet_versions(centre, scope, current=current_version)
    return {**o, "venue_registry": {"loaded": loaded, "venues": int(summary["venues"] or 0)},
            "kiosks": centre.kiosks(scope), "inspection": inspection, "refused": centre.refused(),
            "versions": {k: v for k, v in versions.items() if k not in ("kiosks", "day", "generated", "scope")}}


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
    registry = rep.get("venue_registry", {"loaded": True})
    venues = (f"{t['venues_with_scans']} venues with scans of {t['venues_with_code']} with a code "
              f"({t['venues_with_kiosk']} with a kiosk), " if registry["loaded"] else "")
    lines = [
        f"City {rep['day']}: {t['kiosks_online']}/{t['kiosks']} kiosks online, {venues}{t['scans']} scans "
        f"({t['accepted']} accepted, {t['rejected']} rejected, {t['duplicates']} duplicates, {t['overrides']} "
        f"overrides), {t['unique_visitors']} unique visitors",
    ]
    if not registry["loaded"]:
        lines.append("No venue registry (--venues CSV): venue figures and venues without scans are not known; "
                     "venue names are the kiosks' own")
    lines += [
        f"Refused messages: {r['total']}"
        + (" (" + ", ".join(f"{_fit(k, 30)} {v}" for k, v in r["by_reason"].items()) + ")" if r["total"] else ""),
    ]
    if "versions" in rep:
        lines += software_lines(rep["versions"], max_rows)
    lines.append("")
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


def software_lines(v: dict, max_rows: int = 20) -> list[str]:
    """The fleet's software in a few lines: versions in the city, districts with kiosks behind, who is behind.

    A version is whatever a kiosk's signed info said: it goes through :func:`_fit` like every stored name.
    """
    t = v["totals"]
    if not t["kiosks"]:
        return []

    def spread(versions: dict) -> str:
        return ", ".join(f"{_fit(ver, 24)} on {n}" for ver, n in versions.items())

    against = (f"{_fit(v['current'], 24)} ({'given' if v['current_given'] else 'newest on 2+ kiosks'})"
               if v["current"] else "-")
    lines = [f"Software: {spread(t['versions'])}; {t['behind']} behind {against}"]
    for d in v["districts"]:
        if d["behind"]:
            lines.append(f"  {_fit(d['name'], 40) or '(no district)'}: {d['behind']} of {d['kiosks']} behind "
                         f"({spread(d['versions'])})")
    for k in v["behind"][:max_rows]:
        lines.append(f"  behind: {_fit(k['site'] + '/' + k['device'], 40)} runs {_fit(k['version'], 24)}"
                     f"{'' if k['online'] else ' (not online)'}")
    if len(v["behind"]) > max_rows:
        lines.append(f"  ... and {len(v['behind']) - max_rows} more behind (use --json for all)")
    return lines
