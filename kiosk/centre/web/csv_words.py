"""The CSV exports in the session's language: a Vietnamese session gets Vietnamese headers and values,
local times (the city's zone, ``YYYY-MM-DD HH:MM``) and percentages, so an official opens it in Excel and
reads it as it is (issue 21.6); an English session gets the machine form (snake_case headers, the API's
values and ISO 8601 UTC times), which scripts read.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from kiosk.centre.i18n import words

# Vietnamese headers of the columns that are not figures (the figures' are the dashboard's own words).
HEADERS_VI = {
    "level": "Cấp", "why": "Vấn đề", "provisional": "Tạm thời", "venue_id": "Mã địa điểm",
    "venue_name": "Địa điểm", "address": "Địa chỉ", "site": "Khu", "device": "Máy", "since": "Từ lúc (giờ địa phương)",
    "for_seconds": "Bao lâu (giây)", "detail": "Chi tiết", "scan_share": "Tỷ lệ địa điểm có lượt quét (%)",
}
LEVELS_VI = {"district": "Quận/huyện", "ward": "Phường/xã", "total": "Tổng"}


def headers(columns: list[str], lang: str) -> list[str]:
    if lang != "vi":
        return list(columns)
    w = words("vi")
    return [HEADERS_VI.get(c) or w.get(c, c) for c in columns]


def rows(items, columns: list[str], lang: str, timezone: str):
    """``items`` (dicts) as the session reads them; the same dicts in an English session."""
    if lang != "vi":
        yield from items
        return
    w, zone = words("vi"), ZoneInfo(timezone)
    for r in items:
        out = dict(r)
        if "level" in out:
            out["level"] = LEVELS_VI.get(out["level"], out["level"])
        if "why" in out:
            out["why"] = w.get(out["why"], out["why"])
            out["detail"] = out.get("detail_vi", out.get("detail"))
        if "provisional" in out:
            out["provisional"] = "tạm thời" if out["provisional"] else ""
        if out.get("since"):
            out["since"] = _local(out["since"], zone)
        if out.get("scan_share") is not None:
            out["scan_share"] = round(out["scan_share"] * 100, 1)
        yield out


def _local(when: str, zone: ZoneInfo) -> str:
    """An ISO 8601 UTC time as the city's local ``YYYY-MM-DD HH:MM``; as it is when it has no local time
    (a stored year 1 or 9999 at the edge of what a date can say)."""
    try:
        return datetime.fromisoformat(when.replace("Z", "+00:00")).astimezone(zone).strftime("%Y-%m-%d %H:%M")
    except (ValueError, OverflowError):
        return when
