"""``kiosk monitor --broker URL --registry FILE``: the terminal view of the centre (live table, or ``--once --json``)."""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time

from kiosk.centre.plausible import DEFAULT_CLOCK_SKEW_MINUTES, DEFAULT_MAX_SCANS_PER_MINUTE
from kiosk.cli import UsageError


def add_broker_arguments(p) -> None:
    """--broker and the TLS / credential options shared by ``monitor``, ``centre`` and ``simulate``."""
    p.add_argument("--broker", required=True, help="broker URL, mqtt://host:port or mqtts://host:port")
    p.add_argument("--username", default="", help="broker user name")
    p.add_argument("--password-file", default="", help="password: a file, or credential:NAME (systemd)")
    p.add_argument("--ca-file", default="", help="CA certificate for TLS (mqtts)")
    p.add_argument("--cert-file", default="", help="client certificate for TLS")
    p.add_argument("--key-file", default="", help="client key: a file, or credential:NAME")


def add_broker_arguments_optional(p) -> None:
    """The broker options for a command that may run without a broker (``kiosk centre --no-ingest``)."""
    p.add_argument("--broker", default="", help="broker URL, mqtt://host:port or mqtts://host:port")
    p.add_argument("--username", default="", help="broker user name")
    p.add_argument("--password-file", default="", help="broker password: a file, or credential:NAME (systemd)")
    p.add_argument("--ca-file", default="", help="CA certificate for TLS (mqtts)")
    p.add_argument("--cert-file", default="", help="client certificate for TLS")
    p.add_argument("--key-file", default="", help="client key: a file, or credential:NAME")


def broker_settings(args):
    """An ``[mqtt]``-like config from the command line (validated like the kiosk's own)."""
    from kiosk.config import MqttConfig
    from kiosk.wire.broker import parse_url

    try:
        parse_url(args.broker)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    for opt in ("password_file", "ca_file", "cert_file", "key_file"):
        value = getattr(args, opt)
        if value and not value.startswith("credential:") and not os.access(value, os.R_OK):
            raise UsageError(f"--{opt.replace('_', '-')}: cannot read {value!r}")
    return MqttConfig(url=args.broker, username=args.username, password_file=args.password_file,
                      ca_file=args.ca_file, cert_file=args.cert_file, key_file=args.key_file,
                      reconnect_min_seconds=0.5, reconnect_max_seconds=10.0)


def add_centre_arguments(p, required: bool = True) -> None:
    """What the ingest needs: the store, the registries, the subscription and how figures are judged."""
    if required:
        add_broker_arguments(p)
    else:
        add_broker_arguments_optional(p)
    p.add_argument("--registry", required=required, help="fleet registry JSON (kiosk fleet): only its kiosks' signed "
                                                     "messages count")
    p.add_argument("--venues", default="", help="venue registry CSV to import (venues that created a code)")
    p.add_argument("--db", default="", help="store: a SQLite file (default: in memory) or postgresql://...")
    p.add_argument("--share-group", default="", help="MQTT 5 shared subscription group: workers in one group "
                                                     "split the fleet")
    p.add_argument("--client-id", default="", help="MQTT client id (default: stable per --db and group, so the "
                                                   "broker keeps events published while the centre is away)")
    p.add_argument("--timezone", default="Asia/Ho_Chi_Minh", help="the city's time zone: a venue's day")
    p.add_argument("--grace-hour", type=int, default=10, help="inspection: venues without scans are final from this "
                                                               "local hour (default 10); provisional before it")
    p.add_argument("--morning-hour", type=int, default=6, help="inspection: venues without scans yet are listed "
                                                                "(provisional) from this local hour (default 6)")
    p.add_argument("--offline-hours", type=float, default=2.0, help="inspection: offline longer than this (default 2)")
    p.add_argument("--stale-minutes", type=float, default=5.0, help="no signed message for this long: silent "
                                                                    "(default 5)")
    p.add_argument("--verify-processes", type=int, default=0, help="check signatures in this many processes of "
                                                                    "their own (default 0: in the worker; worth 1 "
                                                                    "when the machine has a core to spare)")
    p.add_argument("--keep-days", type=int, default=120, help="days of history kept (at least 90; default 120); "
                                                               "older days are pruned every hour")
    p.add_argument("--max-scans-per-minute", type=float, default=DEFAULT_MAX_SCANS_PER_MINUTE,
                   help="plausibility: the most check-ins one kiosk can make a minute (default 120: two lanes at "
                        "one a second); a kiosk claiming more since its local midnight is refused as implausible")
    p.add_argument("--clock-skew-minutes", type=float, default=DEFAULT_CLOCK_SKEW_MINUTES,
                   help="plausibility: how far a kiosk's times may run ahead of the centre's clock (default 10)")


def add_arguments(p) -> None:
    add_centre_arguments(p)
    p.add_argument("--district", default=None, help="only this district")
    p.add_argument("--once", action="store_true", help="read the retained state, print once and exit")
    p.add_argument("--json", action="store_true", help="print JSON instead of the table")
    p.add_argument("--settle", type=float, default=1.0, help="--once: seconds without a message before printing (default 1)")
    p.add_argument("--timeout", type=float, default=5.0, help="--once: give up when the broker cannot be reached in this many seconds")
    p.add_argument("--refresh", type=float, default=2.0, help="live table refresh period in seconds (default 2)")
    p.add_argument("--current-version", default=None, metavar="VERSION",
                   help="kiosks on an older version are listed as behind (default: behind the newest version seen)")


def open_centre(args, once: bool = False):
    """Store, registries, query layer and ingest worker from the command line; UsageError on bad input."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from kiosk.centre.queries import Centre, Settings
    from kiosk.centre.registry import FleetRegistry, read_venues
    from kiosk.centre.store import open_store
    from kiosk.centre.venue_places import load_places, read_places
    from kiosk.centre.watch import IngestWorker
    from kiosk.errors import KioskError
    from kiosk.secrets import SecretError

    settings = broker_settings(args)
    if args.share_group and any(c in args.share_group for c in "/+#"):
        raise UsageError("--share-group must not contain /, + or #")
    try:
        ZoneInfo(args.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageError(f"--timezone: unknown time zone {args.timezone!r}") from None
    if not 0 <= args.grace_hour <= 23 or not 0 <= args.morning_hour <= 23:
        raise UsageError("--grace-hour and --morning-hour must be 0-23")
    if not 0 <= args.verify_processes <= 64:
        raise UsageError("--verify-processes must be 0-64")
    if args.keep_days < 90:
        raise UsageError("--keep-days must be at least 90 (the history the dashboard promises)")
    limits = plausibility_limits(args)
    try:
        registry = FleetRegistry.load(args.registry)
        venues = read_venues(args.venues) if args.venues else None
        places = read_places(args.venues) if args.venues else None  # optional kind, lat, lon (campaigns)
        store = open_store(args.db)
    except KioskError as exc:
        raise UsageError(str(exc)) from None
    store.load_fleet(registry)
    if venues is not None:  # the registry's snapshot of the city's local day (kiosk.centre.rollup)
        from datetime import datetime

        store.import_venues(venues, day=datetime.now(ZoneInfo(args.timezone)).date().isoformat())
        load_places(store, places)
    client_id = args.client_id
    if not client_id and not once and args.db:
        client_id = "kiosk-centre-" + hashlib.sha256(f"{args.db}|{args.share_group}".encode()).hexdigest()[:12]
    try:
        worker = IngestWorker(args.broker, store, registry, share_group=args.share_group, client_id=client_id,
                              session_expiry=0 if once else 7 * 24 * 3600, mqtt_config=settings,
                              verify_processes=args.verify_processes, limits=limits)
    except (SecretError, ValueError, OSError) as exc:  # unreadable secret, bad TLS files
        store.close()
        raise UsageError(str(exc)) from None
    centre = Centre(store, Settings(timezone=args.timezone, grace_hour=args.grace_hour,
                                    offline_hours=args.offline_hours, stale_seconds=args.stale_minutes * 60,
                                    keep_days=args.keep_days, morning_hour=args.morning_hour))
    return store, worker, centre


def plausibility_limits(args):
    """The ingest's plausibility limits from the command line; UsageError naming the option."""
    from kiosk.centre.plausible import Limits

    if not 1 <= args.max_scans_per_minute <= 100_000:
        raise UsageError("--max-scans-per-minute must be 1-100000")
    if not 0 <= args.clock_skew_minutes <= 1440:
        raise UsageError("--clock-skew-minutes must be 0-1440")
    return Limits(max_scans_per_minute=args.max_scans_per_minute, clock_skew_minutes=args.clock_skew_minutes,
                  timezone=args.timezone)


def run(args) -> int:
    from kiosk.centre.queries import Scope
    from kiosk.centre.report import report, table

    store, worker, centre = open_centre(args, once=args.once)
    scope = Scope(district=args.district)
    worker.start()
    try:
        if args.once:
            if not worker.settle(quiet_seconds=args.settle, connect_timeout=args.timeout):
                print(f"kiosk monitor: cannot reach the broker at {args.broker}", file=sys.stderr)
                return 1
            worker.flush()
            rep = report(centre, scope, current_version=args.current_version)
            print(json.dumps(rep, ensure_ascii=False, indent=2) if args.json else table(rep, time.time()))
            return 0
        while True:
            worker.flush()
            rep = report(centre, scope, current_version=args.current_version)
            if args.json:
                print(json.dumps(rep, ensure_ascii=False), flush=True)
            else:
                state = "" if worker.connected.is_set() else f"  [not connected to {args.broker}]"
                sys.stdout.write("\x1b[H\x1b[2J" + table(rep, time.time()) + state + "\n")
                sys.stdout.flush()
            time.sleep(args.refresh)
    except KeyboardInterrupt:
        return 0
    finally:
        worker.stop()
        store.close()
