"""``kiosk config check FILE``: validate a config, touching no hardware."""

from __future__ import annotations

import sys

from kiosk import config


def add_arguments(p) -> None:
    sp = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    check = sp.add_parser("check", help="validate a config file and exit (0 valid, 2 invalid)")
    check.add_argument("file")
    sp.add_parser("example", help="print the documented example config (every key with its default)")


def run(args) -> int:
    if args.action == "example":
        sys.stdout.write(config.example_toml())
        return 0
    cfg = config.load(args.file)  # ConfigError -> exit 2 with the message, in kiosk.cli
    print(f"{args.file}: ok (site {cfg.device.site}, device {cfg.device.id}, venue {cfg.venue.name})")
    return 0
