"""``kiosk export --config F --from WHEN --to WHEN [--out FILE]``: the visit log as CSV, on the kiosk itself.

``WHEN`` is a local date-time (``2021-09-14T08:30``, ``2021-09-14 08:30``) or a
date; ``--from`` is included and ``--to`` excluded, except that a bare date in
``--to`` means the whole of that day. The kiosk's own time zone reads them.

Columns: local time with its offset, UTC time, venue id, device id, pseudonym,
verdict, reason, format, then only the personal fields the config allows
(``[ledger] visit_log_fields``; the family and given names go with ``name``, the
declaration issuer's key id with ``subject_id``).
The venue and device columns let the exports of several kiosks be merged.
Exit 1 with a plain message when the visit log is off or the ledger does not
exist; the file is created readable by its owner only. A text cell that a
spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@`` first: names come
from codes anyone can print) starts with an apostrophe.

This is the path for a venue's own records over SSH; the health authority's
fleet-wide path is ``kiosk trace`` (docs/tracing.md).
"""

from __future__ import annotations

import csv
import os
import sys
from datetime import date, datetime, time, timedelta

from kiosk.cli import UsageError

BASE_COLUMNS = ("local_time", "utc_time", "venue_id", "device_id", "pseudonym", "verdict", "reason", "format")
FIELD_COLUMNS = {"name": ("name", "family_name", "given_name"), "birth_date": ("birth_date",),
                 "id_number": ("id_number",), "phone": ("phone",), "subject_id": ("subject_id", "subject_issuer")}


def add_arguments(p) -> None:
    p.add_argument("--config", required=True, help="the kiosk's config file")
    p.add_argument("--from", dest="start", required=True, metavar="WHEN",
                   help="start, local: YYYY-MM-DD or YYYY-MM-DDTHH:MM (included)")
    p.add_argument("--to", dest="end", required=True, metavar="WHEN",
                   help="end, local: YYYY-MM-DDTHH:MM (excluded), or YYYY-MM-DD for the whole day")
    p.add_argument("--out", default="-", help="CSV file to write (default: standard output)")


def local_time(text: str, option: str, end: bool = False) -> datetime:
    """A local date-time (aware, the kiosk's zone) from ``--from``/``--to``; a bare date in ``--to`` ends that day."""
    try:
        if len(text) == 10:
            d = date.fromisoformat(text)
            t = datetime.combine(d + timedelta(days=1) if end else d, time())
        else:
            t = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{option} {text!r}: expected a local date-time like 2021-09-14T08:30 or a date") from None
    return t.astimezone() if t.tzinfo is None else t


def run(args) -> int:
    from kiosk import config
    from kiosk.door.record import Ledger, LedgerError

    start, end = local_time(args.start, "--from"), local_time(args.end, "--to", end=True)
    if end <= start:
        raise UsageError("--to is not after --from")
    cfg = config.load(args.config)
    if not cfg.ledger.visit_log:
        print("kiosk export: the visit log is off ([ledger] visit_log = false), so no visits were recorded",
              file=sys.stderr)
        return 1
    if not cfg.ledger_path.exists():
        print(f"kiosk export: no ledger at {cfg.ledger_path} (has this kiosk run yet?)", file=sys.stderr)
        return 1
    try:
        ledger = Ledger.open(cfg.ledger, cfg.ledger_path, duplicate_window_s=cfg.policy.duplicate_window_minutes * 60,
                             venue_id=cfg.venue.id, device_id=cfg.device.id)
    except LedgerError as exc:
        print(f"kiosk export: {exc}", file=sys.stderr)
        return 1
    columns = BASE_COLUMNS + tuple(c for f in ledger.visit_log.fields for c in FIELD_COLUMNS[f])
    try:
        out = sys.stdout if args.out == "-" else open(_private(args.out), "w", newline="", encoding="utf-8")
    except OSError as exc:
        ledger.close()
        print(f"kiosk export: cannot write {args.out}: {exc.strerror}", file=sys.stderr)
        return 1
    n = 0
    try:
        writer = csv.writer(out)
        writer.writerow(columns)
        for row in ledger.visits(start, end):
            writer.writerow([_text_cell(v) for v in _row(row, ledger, cfg)])
            n += 1
    finally:
        if out is not sys.stdout:
            out.close()
        ledger.close()
    print(f"kiosk export: {n} visits from {start.isoformat(timespec='minutes')} to "
          f"{end.isoformat(timespec='minutes')}" + ("" if args.out == "-" else f" written to {args.out}"),
          file=sys.stderr)
    return 0


def _row(row: dict, ledger, cfg) -> list:
    # Records from before the visit record had local time and venue (schema step 3) get them here.
    local = row["local"] or ledger.local(datetime.fromisoformat(row["time"].replace("Z", "+00:00"))).isoformat(
        timespec="milliseconds")
    base = [local, row["time"], row["venue_id"] or cfg.venue.id, row["device_id"] or cfg.device.id,
            row["pseudonym"], row["verdict"], row["reason"], row["format"]]
    return base + [row[c] for f in ledger.visit_log.fields for c in FIELD_COLUMNS[f]]


def _text_cell(value) -> str:
    """A cell as text; one a spreadsheet would run as a formula (a name from an unsigned code) gets an apostrophe."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(("=", "+", "-", "@", "\t", "\r")):
        return "'" + value
    return value


def _private(path: str) -> str:
    """Create the file readable by its owner only: it holds personal data."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.close(fd)
    return path
