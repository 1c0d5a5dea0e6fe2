"""The F1 list: the case's visits and everyone co-present, merged across kiosks, as CSV and XLSX.

One row per person and visit. Rows are de-duplicated across kiosks and rounds:
the same person (by ID number, else name + birth date + phone, else the kiosk's
own pseudonym) at the same venue is one row per case visit they overlapped (the
closest check-in kept), or per minute of arrival for a place request. The
``kiosks`` column says which kiosks reported the row.

Each row carries what the kiosks kept to reach the person, or says what is
missing and why (the kiosk does not keep that field, or the visitor's code
carries none). Someone who checked in with a signed health declaration carries
no name, phone or ID: where the kiosk keeps ``subject_id`` the row has the
declaration's subject and its issuer's key id, and the tracer reaches the person
through that issuer. Times are in the tracer's time zone, to the minute.

Files are replaced atomically (a temporary file renamed over the old one) and
never by a list with fewer rows: a list from a store that lacks answers another
machine collected keeps the old file and says so. Names and other text come from
visitors' codes, some unsigned: a cell that a spreadsheet would run as a formula
is written as text.
"""

from __future__ import annotations

import csv
import os
import tempfile
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Iterable

PERSONAL = ("name", "phone", "id_number", "birth_date")
# A health declaration's subject (the issuer's reference for the person) and the issuer's key id:
# asked of the issuer, they reach someone whose code carried no name, phone or ID.
SUBJECT = ("subject_id", "subject_issuer")
DECLARATION = "health-declaration"
COLUMNS = ("role", "name", "phone", "id_number", "birth_date", *SUBJECT, "missing", "venue_id", "venue", "address",
           "district", "ward", "visit_time", "case_visit_time", "together", "minutes_apart", "verdict", "format",
           "kiosks", "pseudonym")
ROLE_ORDER = {"case": 0, "contact": 1, "visit": 2}
FIELD_WORDS = {"name": "name", "phone": "phone", "id_number": "ID number", "birth_date": "birth date",
               "subject_id": "declaration subject"}
FORMAT_WORDS = {"cccd": "a CCCD chip-card", "pc-covid": "a PC-Covid", "health-declaration": "a health declaration",
                "eu-dcc": "an EU DCC", "unknown": "an unrecognised"}


def headers(zone: str) -> list[str]:
    """Column headers; the times name the tracer's time zone."""
    names = {"role": "role (case / contact / visit)", "id_number": "ID number", "birth_date": "birth date",
             "subject_id": "declaration subject (ask its issuer)", "subject_issuer": "declaration issuer (key id)",
             "missing": "missing details (why)", "venue_id": "venue id", "visit_time": f"time of visit ({zone})",
             "case_visit_time": f"case's visit ({zone})", "together": "check-ins (contact's and case's)",
             "minutes_apart": "minutes apart", "pseudonym": "kiosk pseudonym (links visits at one kiosk)"}
    return [names.get(c, c) for c in COLUMNS]


def person_key(record: dict, kiosk: str) -> tuple:
    """Who a record is about, as far as the kiosk recorded it."""
    if record.get("id_number"):
        return ("id", record["id_number"])
    parts = tuple((record.get(k) or "").casefold() for k in ("name", "birth_date", "phone"))
    if any(parts):
        return ("person", *parts)
    if record.get("subject_id"):  # one issuer's subject is one person, whichever kiosk saw them
        return ("subject", record.get("subject_issuer") or "", record["subject_id"])
    return ("pseudonym", kiosk, record.get("pseudonym", ""))  # only linkable within one kiosk


def merge(answers: Iterable, exclude: set[tuple[str, str]] = frozenset()) -> list[dict]:
    """Rows of the F1 list from the kiosks' opened answers, de-duplicated, case first, then by time.

    ``exclude``: (kiosk, pseudonym) pairs that are the case itself, dropped from contacts. Rows keep
    UTC times and the sources they came from; :func:`table` makes them readable.
    """
    merged: dict[tuple, dict] = {}
    for a in answers:
        kiosk = f"{a.site}/{a.device}"
        venue = a.venue or {}
        fields = a.fields
        for r in a.records:
            role = r.get("role", "visit")
            if role == "contact" and (kiosk, r.get("pseudonym")) in exclude:
                continue
            venue_id = r.get("venue_id") or venue.get("id", "")
            who = person_key(r, kiosk)
            if role == "contact":
                key = (role, who, venue_id, r.get("case_time"))
            elif role == "case":
                key = (role, venue_id, r.get("time"))
            else:
                key = (role, who, venue_id, str(r.get("time", ""))[:16])
            minutes = r.get("overlap_minutes")
            row = {"role": role, **{f: r.get(f) or "" for f in (*PERSONAL, *SUBJECT)}, "venue_id": venue_id,
                   "venue": venue.get("name", ""), "address": venue.get("address", ""),
                   "district": venue.get("district", ""), "ward": venue.get("ward", ""),
                   "time": str(r.get("time", "")), "case_time": str(r.get("case_time") or ""),
                   "minutes": minutes if isinstance(minutes, (int, float)) and not isinstance(minutes, bool) else None,
                   "verdict": r.get("verdict", ""), "format": r.get("format", ""), "kiosks": {kiosk},
                   "pseudonyms": {(kiosk, r.get("pseudonym") or "")},
                   "sources": [(kiosk, tuple(fields) if fields is not None else None, r.get("format", ""))]}
            old = merged.get(key)
            if old is None:
                merged[key] = row
                continue
            if role == "contact" and row["minutes"] is not None and (
                    old["minutes"] is None or abs(row["minutes"]) < abs(old["minutes"])):
                for k in ("time", "minutes", "verdict", "format"):
                    old[k] = row[k]
            for f in (*PERSONAL, *SUBJECT):  # another kiosk may keep what this one does not
                old[f] = old[f] or row[f]
            old["kiosks"] |= row["kiosks"]
            old["pseudonyms"] |= row["pseudonyms"]
            old["sources"] += row["sources"]
    return sorted(merged.values(), key=lambda r: (ROLE_ORDER.get(r["role"], 3), r["time"], r["name"]))


def row_key(row: dict) -> tuple:
    """What makes a row itself, to tell new rows from known ones between two builds."""
    return (row["role"], row["venue_id"], row["case_time"] if row["role"] == "contact" else row["time"][:16],
            row["id_number"] or row["name"] or row["subject_id"] or min(row["pseudonyms"]))


def missing_note(row: dict) -> str:
    """Which of name, phone, ID number and birth date the row lacks, and why; "" when it has them all.

    A health declaration's row also says when its subject is missing, and, when the subject is
    there, that the issuer is the way to the person.
    """
    declaration = any(fmt == DECLARATION for _, _, fmt in row["sources"])
    missing = [f for f in PERSONAL if not row[f]]
    if declaration and not row["subject_id"]:
        missing.append("subject_id")
    if not missing:
        return ""
    why: dict[str, list[str]] = {}
    for f in missing:
        reasons = []
        for kiosk, kept, fmt in row["sources"]:
            if kept is None:
                reasons.append(f"not in {kiosk}'s answer")
            elif not kept:
                reasons.append(f"{kiosk} keeps only pseudonyms (visit_log_fields = [])")
            elif f not in kept:
                reasons.append(f"{kiosk} does not keep {{them}} (visit_log_fields = {', '.join(kept)})")
            elif f == "subject_id":  # every declaration has a subject: the field was allowed after this visit
                reasons.append(f"{kiosk} did not keep {{them}} at this visit (allowed since)")
            else:
                reasons.append(f"{FORMAT_WORDS.get(fmt, f'a {fmt}' if fmt else 'an unrecognised')} code carries none")
        why.setdefault("; ".join(dict.fromkeys(reasons)), []).append(FIELD_WORDS[f])
    note = "; ".join(f"no {', '.join(fs)}: {reason.format(them='them' if len(fs) > 1 else 'it')}"
                     for reason, fs in why.items())
    if declaration and row["subject_id"]:
        note += "; reach them through the declaration's issuer (declaration subject and issuer columns)"
    return note


def _local(utc: str, zone: tzinfo) -> datetime | None:
    try:
        return datetime.fromisoformat(utc.replace("Z", "+00:00")).astimezone(zone)
    except (ValueError, TypeError):
        return None


def together(contact_utc: str, case_utc: str, zone: tzinfo) -> tuple[str, int | str]:
    """``("14:05-14:37 (32 min before the case)", 32)``: both check-ins, in order, and the whole minutes between."""
    a, c = _local(contact_utc, zone), _local(case_utc, zone)
    if a is None or c is None:
        return "", ""
    seconds = (a - c).total_seconds()
    minutes = int(round(abs(seconds) / 60))
    if minutes == 0:
        return f"{c:%H:%M} (within a minute of the case)", 0
    first, last = (a, c) if seconds < 0 else (c, a)
    side = "before" if seconds < 0 else "after"
    return f"{first:%H:%M}-{last:%H:%M} ({minutes} min {side} the case)", minutes


def table(rows: list[dict], zone: tzinfo) -> list[dict]:
    """The rows as the tracer reads them: local times to the minute, what is missing and why."""
    out = []
    for r in rows:
        visit = _local(r["time"], zone)
        case = _local(r["case_time"], zone) if r["case_time"] else None
        text, minutes = together(r["time"], r["case_time"], zone) if r["role"] == "contact" else ("", "")
        out.append({"role": r["role"], **{f: r[f] for f in (*PERSONAL, *SUBJECT)}, "missing": missing_note(r),
                    "venue_id": r["venue_id"], "venue": r["venue"], "address": r["address"],
                    "district": r["district"], "ward": r["ward"],
                    "visit_time": f"{visit:%Y-%m-%d %H:%M}" if visit else r["time"],
                    "case_visit_time": f"{case:%Y-%m-%d %H:%M}" if case else "",
                    "together": text, "minutes_apart": minutes, "verdict": r["verdict"], "format": r["format"],
                    "kiosks": ", ".join(sorted(r["kiosks"])),
                    "pseudonym": ", ".join(sorted({p[:16] for _, p in r["pseudonyms"] if p}))})
    return out


# -- files -----------------------------------------------------------------------

def existing_rows(path: Path) -> int | None:
    """Rows in an F1 file this tool wrote (0 when absent); None when it cannot be read as one."""
    if not path.exists():
        return 0
    try:
        if path.suffix == ".xlsx":
            from openpyxl import load_workbook

            wb = load_workbook(path, read_only=True)
            try:
                return max(0, (wb["F1"].max_row or 1) - 1)
            finally:
                wb.close()
        with open(path, newline="", encoding="utf-8-sig") as f:
            return max(0, sum(1 for _ in csv.reader(f)) - 1)
    except Exception:  # noqa: BLE001 - a file someone edited or truncated: never overwrite it blindly
        return None


def _replace(path: Path, write) -> None:
    """Write through a temporary file (0600 from the start) beside ``path``, then rename it over ``path``."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    try:
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(value):
    """A text cell a spreadsheet would read as a formula gets a leading apostrophe (OWASP's CSV injection advice)."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def write_csv(rows: list[dict], path: str | os.PathLike, zone_name: str) -> Path:
    """The F1 list as CSV (UTF-8 with a BOM so spreadsheet programs read Vietnamese right), atomically."""
    import io

    path = Path(path)

    def write(f):
        text = io.StringIO(newline="")
        w = csv.writer(text)
        w.writerow(headers(zone_name))
        for r in rows:
            w.writerow([_csv_cell(r[c]) for c in COLUMNS])
        f.write(text.getvalue().encode("utf-8-sig"))

    _replace(path, write)
    return path


def write_xlsx(rows: list[dict], kiosks: list[dict], path: str | os.PathLike, zone_name: str) -> Path:
    """The F1 list and a sheet of every asked kiosk with its outcome (answered, refused, missing), atomically."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    path = Path(path)
    wb = Workbook()
    ws = wb.active
    ws.title = "F1"
    ws.append(headers(zone_name))
    for r in rows:
        ws.append([r[c] for c in COLUMNS])
        for cell in ws[ws.max_row]:
            if isinstance(cell.value, str) and cell.value.startswith("="):
                cell.data_type = "s"  # openpyxl would otherwise store it as a formula
    for cell in ws[1]:
        cell.font = Font(bold=True)
    ws.freeze_panes = "A2"
    ks = wb.create_sheet("Kiosks")
    ks.append(["request", "kiosk", "outcome", "reason", "answered at", "records"])
    for k in kiosks:
        ks.append([k["request"], k["kiosk"], k["outcome"], k["reason"], k["ts"], k["records"]])
    for cell in ks[1]:
        cell.font = Font(bold=True)
    _replace(path, wb.save)
    return path


def kiosk_rows(collector, label: str = "") -> list[dict]:
    """One row per kiosk that matters to a request: its outcome, or "missing".

    A contacts round's padding entries (kiosks asked about nothing) are left out: they answer with nothing.
    """
    out = []
    for key in sorted(collector.required):
        a = collector.answers.get(key)
        out.append({"request": label, "kiosk": "/".join(key), "outcome": a.outcome if a else "missing",
                    "reason": a.reason if a else "", "ts": a.ts if a else "", "records": len(a.records) if a else 0})
    return out
