"""``kiosk doctor --config FILE [--json]``: self-check with pass/warn/fail and what to do.

Exit 0 when nothing failed (warnings allowed), 1 when a check failed.
"""

from __future__ import annotations

import json
import sys

from kiosk.doctor import CHECK_NAMES, FAIL, run_checks, worst

DEFAULT_CONFIG = "/etc/kiosk/kiosk.toml"


def add_arguments(p) -> None:
    p.add_argument("--config", default=DEFAULT_CONFIG, help=f"the kiosk's config file (default {DEFAULT_CONFIG})")
    p.add_argument("--json", action="store_true", help="print the findings as one JSON document")
    p.add_argument("--only", action="append", choices=CHECK_NAMES[1:], metavar="CHECK",
                   help=f"run only this check (repeatable): {', '.join(CHECK_NAMES[1:])}")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for the broker and the camera (default 5)")


def run(args) -> int:
    findings = run_checks(args.config, only=args.only, broker_timeout=args.timeout, camera_timeout=args.timeout)
    overall = worst(findings)
    if args.json:
        json.dump({"ok": overall != FAIL, "result": overall, "config": args.config,
                   "checks": [f.to_dict() for f in findings]}, sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
    else:
        width = max(len(f.check) for f in findings)
        for f in findings:
            print(f"{f.status.upper():4}  {f.check:<{width}}  {f.message}")
            if f.advice:
                print(f"{'':4}  {'':<{width}}  -> {f.advice}")
        counts = {s: sum(f.status == s for f in findings) for s in ("pass", "warn", "fail")}
        print(f"\n{counts['pass']} passed, {counts['warn']} warning(s), {counts['fail']} failed")
    return 1 if overall == FAIL else 0
