"""``kiosk run --config FILE``: the kiosk at the door (what systemd starts).

Before any hardware is touched the config goes through :mod:`kiosk.config.preflight`,
the same checks as ``kiosk config check``: with any error the kiosk refuses to
start with the same messages and exit code 2, so the two can never disagree.
"""

from __future__ import annotations

import logging
import signal
import sys

log = logging.getLogger("kiosk")


def add_arguments(p) -> None:
    p.add_argument("--config", default="/etc/kiosk/kiosk.toml", help="config file (default: %(default)s)")
    p.add_argument("--headless", action="store_true", help="no screen, whatever the config says")


def run(args) -> int:
    from kiosk.config.preflight import check_file

    report = check_file(args.config, headless=args.headless)
    if not report.ok:
        for line in report.lines():
            print(line, file=sys.stderr)
        print(f"kiosk: configuration error: {report.summary()}; refusing to start", file=sys.stderr)
        return 2
    for problem in report.warnings:
        log.warning("%s", problem)
    cfg = report.config
    from kiosk.door.assembly import assemble
    from kiosk.door.systemd import Notifier

    kiosk = assemble(cfg, headless=args.headless, notifier=Notifier())
    signal.signal(signal.SIGTERM, lambda *_: kiosk.stop())
    log.info("kiosk %s/%s at %s running", cfg.device.site, cfg.device.id, cfg.venue.name)
    return kiosk.run(until_exhausted=True)
