"""The fleet report: JSON for scripts (``--once --json``) and a terminal table for people."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Iterable

from kiosk.monitor.fleet import KioskState, inspection, totals


def report(kiosks: Iterable[KioskState], today: str, now: float | None = None, offline_hours: float = 2.0) -> dict:
    """Totals, every kiosk and the inspection list, as one JSON-ready dict."""
    kiosks = list(kiosks)
    now = time.time() if now is None else now
    return {
        "generated": datetime.fromtimestamp(now).astimezone().isoformat(timespec="seconds"),
        "totals": totals(kiosks, today),
        "inspection": inspection(kiosks, today, now, offline_hours),
        "kiosks": [k.as_dict() for k in kiosks],
    }


_CAMERA = {True: "ok", False: "DOWN", None: "-"}  # None: no health message seen (yet)
_WHY = {
    "offline": "offline for {ago}",
    "camera-down": "camera down for {ago}: {detail}",
    "clock-unsynced": "clock not synchronised",
    "no-scans-today": "online, no scans today",
}


def _cameras_down(n: int) -> str:
    return f", {n} camera{'s' if n != 1 else ''} down" if n else ""


def _ago(t: float | None, now: float) -> str:
    if t is None:
        return "-"
    s = max(0, int(now - t))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def table(rep: dict, now: float | None = None, max_rows: int = 40) -> str:
    """A plain-text table of the report (fits a 100-column terminal)."""
    now = time.time() if now is None else now
    t = rep["totals"]
    lines = [
        f"Fleet {t['day']}: {t['kiosks_online']}/{t['kiosks']} kiosks online, "
        f"{t['venues_with_scans_today']}/{t['venues']} venues with scans today, {t['scans_today']} scans today "
        f"({t['accepted_today']} accepted, {t['rejected_today']} rejected, {t['duplicates_today']} duplicates)"
        + _cameras_down(t.get("kiosks_camera_down", 0)),
        "",
        f"{'site/device':<24} {'venue':<20} {'state':<15} {'cam':<4} {'accepted':>8} {'rejected':>8} {'dup':>4} "
        f"{'last scan':>9}",
    ]
    kiosks = rep["kiosks"]
    for k in kiosks[:max_rows]:
        state = "?" if k["online"] is None else ("online " if k["online"] else "OFFLINE ") + _ago(k["since"], now)
        today = k["day"] == t["day"]
        lines.append(
            f"{(k['site'] + '/' + k['device'])[:24]:<24} {(k['venue_name'] or k['venue_id'])[:20]:<20} "
            f"{state[:15]:<15} "
            f"{_CAMERA[k['camera_ok']]:<4} {k['accepted'] if today else 0:>8} {k['rejected'] if today else 0:>8} "
            f"{k['duplicates'] if today else 0:>4} {_ago(k['last_scan'], now):>9}")
    if len(kiosks) > max_rows:
        lines.append(f"... and {len(kiosks) - max_rows} more (use --json for all)")
    insp = rep["inspection"]
    lines += ["", f"Inspection list ({len(insp)}):"]
    for r in insp[:max_rows]:
        why = _WHY[r["why"]].format(ago=_ago(r["since"], now), detail=(r.get("detail") or "no error given")[:60])
        lines.append(f"  {r['site']}/{r['device']:<20} {r['venue_name'] or r['venue_id']:<24} {why}")
    return "\n".join(lines)
