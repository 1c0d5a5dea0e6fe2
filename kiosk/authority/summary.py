"""What ``kiosk trace collect`` writes and says: the F1 list's files, what is new, who is still silent.

The files come first: a reader that goes away (``collect ... | head -1``) must not cost the list.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import tzinfo
from pathlib import Path
from typing import Mapping

from kiosk.authority import f1
from kiosk.authority.investigation import Investigation
from kiosk.authority.session import SessionResult
from kiosk.authority.store import StoredRequest


@dataclass(frozen=True)
class Report:
    """The exit code (0 all answered, 1 some silent or a list kept, 130 interrupted), the lines for
    standard output (what the tracer reads) and for standard error (what went wrong or needs doing)."""

    rc: int
    out: list[str]
    err: list[str]


def report(inv: Investigation, main: StoredRequest, raw: list[dict], before: set, new_answers: int,
           session: SessionResult | None, zone: tzinfo, zone_name: str, *, prefix: str, keys_dir: str,
           broker: str) -> Report:
    """Write the list to ``prefix``.csv and .xlsx (never a shorter one over a longer one), then say what is
    new and who is silent. ``before`` holds the row keys the list had before this collect."""
    rc = 0
    out: list[str] = []  # what the tracer reads: standard output
    err: list[str] = []  # what went wrong or needs doing: standard error
    new_rows = [r for r in raw if f1.row_key(r) not in before]
    counts = {role: sum(r["role"] == role for r in new_rows) for role in ("case", "contact", "visit")}
    words = {"case": ("new check-in of the case", "new check-ins of the case"),
             "contact": ("new contact", "new contacts"), "visit": ("new visit", "new visits")}
    news = [plural(new_answers, "new answer")] + [f"{n} {words[role][n != 1]}" for role, n in counts.items() if n]
    label = {main.id: f"{main.kind} request {main.id[:8]}"}
    for r in inv.rounds:
        label[r.id] = f"round {r.round} (other entrances)"
    out.append(", ".join(news))
    kiosk_sheet = []
    for c in inv.all_collectors():
        kiosk_sheet += f1.kiosk_rows(c, label[c.request_id])
        answered = [a for a in c.answers.values() if (a.site, a.device) in c.required]
        refused: dict[str, int] = {}
        for a in answered:
            if a.outcome == "refused":
                refused[a.reason] = refused.get(a.reason, 0) + 1
        missing = [f"{s}/{d}" for s, d in c.missing()]
        line = f"{label[c.request_id]}: {len(answered)} of {plural(len(c.required), 'kiosk')} answered"
        if refused:
            line += " (refused: " + ", ".join(f"{n} {why}" for why, n in sorted(refused.items())) + ")"
        if missing:
            line += f"; {len(missing)} still silent: {', '.join(missing)}"
        out.append(line)
        if c.rejected:
            err.append(f"messages not believed on {label[c.request_id]}: {by_reason(c.rejected)}")
    table = f1.table(raw, zone)
    written, kept = [], []
    for path, write in ((Path(f"{prefix}.csv"), lambda p: f1.write_csv(table, p, zone_name)),
                        (Path(f"{prefix}.xlsx"), lambda p: f1.write_xlsx(table, kiosk_sheet, p, zone_name))):
        old = f1.existing_rows(path)
        if old is None:
            err.append(f"kept {path} as it is: it is not an F1 list this tool can read (edited?); "
                       "write elsewhere with --out")
            rc = 1
        elif old > len(table):
            kept.append(f"{path} ({old} rows)")
        else:
            write(path)
            written.append(str(path))
    if kept:
        err.append(f"kept {' and '.join(kept)}: the answers kept on this machine give only {len(table)} rows. Were "
                   "they collected on another machine? Bring its answer store here with kiosk trace import, then "
                   "run collect again")
        rc = 1
    if written:
        out.append(f"{len(table)} rows ({len(new_rows)} new) in {' and '.join(written)}")
    if inv.unreadable:
        err.append(f"{plural(inv.unreadable, 'kept answer')} {'does' if inv.unreadable == 1 else 'do'} not open with "
                   f"{keys_dir}'s box key (were the keys replaced?)")
        rc = 1
    pending = inv.unasked()
    if pending:
        err.append(f"{plural(len(pending), 'kiosk')} at venues the case visited not asked yet (run collect again to ask "
                   "them)")
    if session is not None:
        if session.error:
            err.append(session.error)
            rc = 1
        elif session.taken_over:
            err.append("another collect of this request took the broker session over (another officer's machine?): "
                       "stopped here. What it receives stays in its answer store: bring it here with kiosk trace "
                       "import")
            rc = 1
        elif not session.connected:
            err.append(f"could not reach the broker at {broker}: the list holds only the answers "
                       "kept before")
            rc = 1
    if not inv.complete() and rc == 0:
        rc = 1
    if session is not None and session.interrupted:
        rc = 130
    return Report(rc, out, err)


def plural(n: int, word: str) -> str:
    """``n word`` or ``n words``."""
    return f"{n} {word}{'' if n == 1 else 's'}"


def by_reason(counts: Mapping[str, int]) -> str:
    """``bad-signature: 1, unknown-key: 2``: counts by reason as the tracer reads them (never a Python dict)."""
    return ", ".join(f"{reason}: {n}" for reason, n in sorted(counts.items()))
