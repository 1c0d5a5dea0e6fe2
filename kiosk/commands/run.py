"""``kiosk run --config FILE``: the kiosk at the door (what systemd starts)."""

from __future__ import annotations

import logging
import signal

from kiosk import config

log = logging.getLogger("kiosk")


def add_arguments(p) -> None:
    p.add_argument("--config", default="/etc/kiosk/kiosk.toml", help="config file (default: %(default)s)")
    p.add_argument("--headless", action="store_true", help="no screen, whatever the config says")


def run(args) -> int:
    cfg = config.load(args.config)  # validated before any hardware is touched
    from kiosk.pipeline import assemble
    from kiosk.watchdog import Notifier

    kiosk = assemble(cfg, headless=args.headless, notifier=Notifier())
    signal.signal(signal.SIGTERM, lambda *_: kiosk.stop())
    log.info("kiosk %s/%s at %s running", cfg.device.site, cfg.device.id, cfg.venue.name)
    return kiosk.run(until_exhausted=True)
