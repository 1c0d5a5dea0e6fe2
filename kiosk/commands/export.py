"""``kiosk export --config F --from DATE --to DATE [--out FILE]``: the visit log as CSV for the health authority.

Columns: time (UTC), pseudonym, verdict, reason, format, then only the personal
fields the config allows (``[ledger] visit_log_fields``). Exit 1 with a plain
message when the visit log is off or the ledger does not exist.
"""

from __future__ import annotations

import csv
import os
import sys
from datetime import date

from kiosk.cli import UsageError

BASE_COLUMNS = ("time", "pseudonym", "verdict", "reason", "format")


def add_arguments(p) -> None:
    p.add_argument("--config", required=True, help="the kiosk's config file")
    p.add_argument("--from", dest="start", required=True, metavar="DATE", help="first day, YYYY-MM-DD (local time)")
    p.add_argument("--to", dest="end", required=True, metavar="DATE", help="last day, YYYY-MM-DD (included)")
    p.add_argument("--out", default="-", help="CSV file to write (default: standard output)")


def _day(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{option} {text!r}: expected a date like 2021-09-14") from None


def run(args) -> int:
    from kiosk import config
    from kiosk.ledger import Ledger, LedgerError

    start, end = _day(args.start, "--from"), _day(args.end, "--to")
    if end < start:
        raise UsageError("--to is before --from")
    cfg = config.load(args.config)
    if not cfg.ledger.visit_log:
        print("kiosk export: the visit log is off ([ledger] visit_log = false), so no visits were recorded",
              file=sys.stderr)
        return 1
    if not cfg.ledger_path.exists():
        print(f"kiosk export: no ledger at {cfg.ledger_path} (has this kiosk run yet?)", file=sys.stderr)
        return 1
    try:
        ledger = Ledger.from_config(cfg)
    except LedgerError as exc:
        print(f"kiosk export: {exc}", file=sys.stderr)
        return 1
    columns = BASE_COLUMNS + tuple(ledger.visit_log_fields)
    n = 0
    try:
        out = sys.stdout if args.out == "-" else open(_private(args.out), "w", newline="", encoding="utf-8")
    except OSError as exc:
        ledger.close()
        print(f"kiosk export: cannot write {args.out}: {exc.strerror}", file=sys.stderr)
        return 1
    try:
        writer = csv.writer(out)
        writer.writerow(columns)
        for row in ledger.visits(start, end):
            writer.writerow([row[c] if row[c] is not None else "" for c in columns])
            n += 1
    finally:
        if out is not sys.stdout:
            out.close()
        ledger.close()
    print(f"kiosk export: {n} visits from {start} to {end}" + ("" if args.out == "-" else f" written to {args.out}"),
          file=sys.stderr)
    return 0


def _private(path: str) -> str:
    """Create the file readable by its owner only: it holds personal data."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.close(fd)
    return path
