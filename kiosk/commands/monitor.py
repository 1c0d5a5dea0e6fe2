"""``kiosk monitor --broker URL``: the fleet picture (live table, or ``--once --json``)."""

from __future__ import annotations

import json
import os
import sys
import time

from kiosk.cli import UsageError


def add_broker_arguments(p) -> None:
    """--broker and the TLS / credential options shared by ``monitor`` and ``simulate``."""
    p.add_argument("--broker", required=True, help="broker URL, mqtt://host:port or mqtts://host:port")
    p.add_argument("--username", default="", help="broker user name")
    p.add_argument("--password-file", default="", help="password: a file, or credential:NAME (systemd)")
    p.add_argument("--ca-file", default="", help="CA certificate for TLS (mqtts)")
    p.add_argument("--cert-file", default="", help="client certificate for TLS")
    p.add_argument("--key-file", default="", help="client key: a file, or credential:NAME")


def broker_settings(args):
    """An ``[mqtt]``-like config from the command line (validated like the kiosk's own)."""
    from kiosk.config import MqttConfig
    from kiosk.publish.connection import parse_url

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


def add_arguments(p) -> None:
    add_broker_arguments(p)
    p.add_argument("--db", default="", help="SQLite file of the fleet picture (default: in memory); "
                                            "monitors sharing a group may share one file")
    p.add_argument("--once", action="store_true", help="read the retained state, print once and exit")
    p.add_argument("--json", action="store_true", help="print JSON instead of the table")
    p.add_argument("--offline-hours", type=float, default=2.0, help="inspection list: offline longer than this (default 2)")
    p.add_argument("--share-group", default="", help="MQTT 5 shared subscription group: monitors in one group split the fleet")
    p.add_argument("--client-id", default="", help="MQTT client id; a fixed one lets the broker keep this monitor's "
                                                   "queued events across its restarts")
    p.add_argument("--settle", type=float, default=1.0, help="--once: seconds without a message before printing (default 1)")
    p.add_argument("--timeout", type=float, default=5.0, help="--once: give up when the broker cannot be reached in this many seconds")
    p.add_argument("--refresh", type=float, default=2.0, help="live table refresh period in seconds (default 2)")


def run(args) -> int:
    from kiosk.monitor.fleet import local_today
    from kiosk.monitor.report import report, table
    from kiosk.monitor.store import FleetStore
    from kiosk.monitor.watch import FleetMonitor
    from kiosk.secrets import SecretError

    settings = broker_settings(args)
    if args.share_group and ("/" in args.share_group or "+" in args.share_group or "#" in args.share_group):
        raise UsageError("--share-group must not contain /, + or #")
    try:
        store = FleetStore(args.db or ":memory:")
    except Exception as exc:  # sqlite3.Error, OSError
        raise UsageError(f"cannot open {args.db}: {exc}") from None
    try:
        monitor = FleetMonitor(args.broker, store, share_group=args.share_group, client_id=args.client_id,
                               session_expiry=0 if args.once else 300, mqtt_config=settings)
    except (SecretError, ValueError, OSError) as exc:  # unreadable secret, bad TLS files
        raise UsageError(str(exc)) from None
    monitor.start()
    try:
        if args.once:
            if not monitor.settle(quiet_seconds=args.settle, connect_timeout=args.timeout):
                print(f"kiosk monitor: cannot reach the broker at {args.broker}", file=sys.stderr)
                return 1
            monitor.flush()
            _print(report(store.kiosks(), local_today(), offline_hours=args.offline_hours), args.json, table)
            return 0
        while True:
            monitor.flush()
            rep = report(store.kiosks(), local_today(), offline_hours=args.offline_hours)
            if args.json:
                print(json.dumps(rep, ensure_ascii=False), flush=True)
            else:
                state = "" if monitor.connected.is_set() else f"  [not connected to {args.broker}]"
                sys.stdout.write("\x1b[H\x1b[2J" + table(rep) + state + "\n")
                sys.stdout.flush()
            time.sleep(args.refresh)
    except KeyboardInterrupt:
        return 0
    finally:
        monitor.stop()
        store.close()


def _print(rep: dict, as_json: bool, table) -> None:
    print(json.dumps(rep, ensure_ascii=False, indent=2) if as_json else table(rep))
