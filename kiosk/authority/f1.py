"""The F1 list: the case's visits and everyone co-present, merged across kiosks, as CSV and XLSX.

One row per person and visit. Rows are de-duplicated across kiosks: the same
person (by ID number, else name + birth date + phone, else the kiosk's own
pseudonym) at the same venue is one row per case visit they overlapped (the
closest check-in kept), or per minute of arrival for a place request. The
``kiosks`` column says which kiosks reported the row.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Iterable

COLUMNS = ("role", "name", "birth_date", "id_number", "phone", "venue_id", "venue", "address", "district", "ward",
           "visit_time", "case_visit_time", "overlap_minutes", "verdict", "format", "kiosks")
HEADERS = {"role": "role (case / contact / visit)", "visit_time": "time of visit (local)",
           "case_visit_time": "case's visit (local)", "overlap_minutes": "minutes from the case's check-in"}
ROLE_ORDER = {"case": 0, "contact": 1, "visit": 2}


def person_key(record: dict, kiosk: str) -> tuple:
    """Who a record is about, as far as the kiosk recorded it."""
    if record.get("id_number"):
        return ("id", record["id_number"])
    parts = tuple((record.get(k) or "").casefold() for k in ("name", "birth_date", "phone"))
    if any(parts):
        return ("person", *parts)
    return ("pseudonym", kiosk, record.get("pseudonym", ""))  # only linkable within one kiosk


def merge(answers: Iterable) -> list[dict]:
    """Rows of the F1 list from the kiosks' opened answers, de-duplicated, case first, then by time."""
    merged: dict[tuple, dict] = {}
    for a in answers:
        kiosk = f"{a.site}/{a.device}"
        venue = a.venue or {}
        for r in a.records:
            role = r.get("role", "visit")
            venue_id = r.get("venue_id") or venue.get("id", "")
            who = person_key(r, kiosk)
            if role == "contact":
                key = (role, who, venue_id, r.get("case_time"))
            elif role == "case":
                key = (role, venue_id, r.get("time"))
            else:
                key = (role, who, venue_id, str(r.get("time", ""))[:16])
            row = {"role": role, "name": r.get("name", ""), "birth_date": r.get("birth_date", ""),
                   "id_number": r.get("id_number", ""), "phone": r.get("phone", ""), "venue_id": venue_id,
                   "venue": venue.get("name", ""), "address": venue.get("address", ""),
                   "district": venue.get("district", ""), "ward": venue.get("ward", ""),
                   "visit_time": r.get("local") or r.get("time", ""), "case_visit_time": r.get("case_local", ""),
                   "overlap_minutes": r.get("overlap_minutes", ""), "verdict": r.get("verdict", ""),
                   "format": r.get("format", ""), "kiosks": kiosk, "_utc": r.get("time", "")}
            old = merged.get(key)
            if old is None:
                merged[key] = row
                continue
            kiosks = sorted(set(old["kiosks"].split(", ")) | {kiosk})
            if role == "contact" and abs(row["overlap_minutes"]) < abs(old["overlap_minutes"]):
                old.update({k: v for k, v in row.items() if k != "kiosks"})
            old["kiosks"] = ", ".join(kiosks)
    rows = sorted(merged.values(), key=lambda r: (ROLE_ORDER.get(r["role"], 3), r["_utc"], r["name"]))
    for r in rows:
        del r["_utc"]
    return rows


def _private(path: Path) -> None:
    """Personal data: the file is the tracer's alone from the start."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))


def write_csv(rows: list[dict], path: str | os.PathLike) -> Path:
    path = Path(path)
    _private(path)
    with open(path, "w", newline="", encoding="utf-8-sig") as f:  # BOM: spreadsheet programs read UTF-8 right
        w = csv.writer(f)
        w.writerow([HEADERS.get(c, c) for c in COLUMNS])
        for r in rows:
            w.writerow([r[c] for c in COLUMNS])
    return path


def write_xlsx(rows: list[dict], kiosks: list[dict], path: str | os.PathLike) -> Path:
    """The F1 list and a sheet of every expected kiosk with its outcome (answered, refused, missing)."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    path = Path(path)
    wb = Workbook()
    ws = wb.active
    ws.title = "F1"
    ws.append([HEADERS.get(c, c) for c in COLUMNS])
    for r in rows:
        ws.append([r[c] for c in COLUMNS])
    for cell in ws[1]:
        cell.font = Font(bold=True)
    ws.freeze_panes = "A2"
    ks = wb.create_sheet("Kiosks")
    ks.append(["kiosk", "outcome", "reason", "answered at", "records"])
    for k in kiosks:
        ks.append([k["kiosk"], k["outcome"], k["reason"], k["ts"], k["records"]])
    for cell in ks[1]:
        cell.font = Font(bold=True)
    _private(path)
    wb.save(path)
    return path


def kiosk_rows(collector) -> list[dict]:
    """One row per expected or answering kiosk: its outcome, or "missing"."""
    out = []
    for key in sorted(collector.expected | set(collector.answers)):
        a = collector.answers.get(key)
        out.append({"kiosk": "/".join(key), "outcome": a.outcome if a else "missing", "reason": a.reason if a else "",
                    "ts": a.ts if a else "", "records": len(a.records) if a else 0})
    return out
