"""``kiosk config check FILE``: every check ``kiosk run`` does before serving, touching no hardware state.

Prints every problem at once (errors and warnings, each naming the key, file
and line); exit 0 when the kiosk would start, 2 when it would refuse.
``kiosk config example`` prints the documented example config.
"""

from __future__ import annotations

import json
import sys

from kiosk import config


def add_arguments(p) -> None:
    sp = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    check = sp.add_parser("check", help="check a config file as `kiosk run` does and exit (0 would start, 2 would not)")
    check.add_argument("file")
    check.add_argument("--json", action="store_true", help="print the problems as one JSON document")
    check.add_argument("--headless", action="store_true", help="as `kiosk run --headless` (no screen)")
    check.add_argument("--portable", action="store_true",
                       help="leave out what depends on this machine (state_dir, GPIO, camera, scanners, credentials): "
                            "checking a config made for another kiosk")
    sp.add_parser("example", help="print the documented example config (every key with its default)")


def run(args) -> int:
    if args.action == "example":
        sys.stdout.write(config.example_toml())
        return 0
    from kiosk.config.preflight import check_file

    report = check_file(args.file, host=not args.portable, headless=args.headless)
    if args.json:
        json.dump({"ok": report.ok, "config": args.file,
                   "problems": [{"level": p.level, "key": p.key, "line": p.line, "file": p.path, "message": p.message,
                                 "text": str(p)} for p in report.errors + report.warnings]},
                  sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
        return 0 if report.ok else 2
    for line in report.lines():
        print(line, file=sys.stderr)
    if not report.ok:
        print(f"kiosk: configuration error: {report.summary()}; `kiosk run` would refuse to start", file=sys.stderr)
        return 2
    cfg = report.config
    warned = f", {len(report.warnings)} warning(s)" if report.warnings else ""
    print(f"{args.file}: ok (site {cfg.device.site}, device {cfg.device.id}, venue {cfg.venue.name}){warned}")
    return 0
