"""``kiosk centre``: the centre's web dashboard and API with its ingest, and its accounts.

    kiosk centre --broker URL --registry fleet.json --db URL --listen HOST:PORT [--venues CSV] --accounts FILE
    kiosk centre user add NAME [--role city|district|inspector] [--district D ...] --accounts FILE
    kiosk centre user list|passwd NAME|disable NAME|enable NAME|remove NAME --accounts FILE [--db URL]
    kiosk centre backup --db URL --out FILE
    kiosk centre restore --db URL FILE [--force]
    kiosk centre schema --db URL [--upgrade]

``--no-ingest`` serves the dashboard only (a dashboard process reading a PostgreSQL that
ingest workers write); ``--no-web`` is an ingest worker only (``--share-group`` to split).
A running centre re-reads the accounts file when it changes; ``--db`` on ``passwd``, ``disable``
and ``remove`` also ends the account's sessions in that store at once.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading

from kiosk.cli import UsageError


def add_arguments(p) -> None:
    from kiosk.commands.monitor import add_centre_arguments

    p.add_argument("words", nargs="*", help="'user add|list|passwd|disable|enable|remove [NAME]' manages accounts; "
                                            "'backup', 'restore FILE', 'schema' (see docs/operations.md); "
                                            "nothing: run the centre")
    p.add_argument("--out", default="", metavar="FILE", help="backup: the file to write (never overwritten)")
    p.add_argument("--force", action="store_true", help="restore: replace a store that holds figures")
    p.add_argument("--upgrade", action="store_true", help="schema: apply the migrations the store lacks")
    p.add_argument("--accounts", default="", help="accounts file (JSON, argon2 hashes)")
    p.add_argument("--role", choices=("city", "district", "inspector"), default=None,
                   help="user add: city (sees everything), district (one district's official), inspector (one or "
                        "more districts' inspection lists and venues); default: district with --district, else city")
    p.add_argument("--district", action="append", default=[], metavar="D",
                   help="user add: a district the account sees (an inspector may have several: repeat)")
    p.add_argument("--replace", action="store_true", help="user add: replace an existing account of that name")
    p.add_argument("--admin", default="", metavar="DIR",
                   help="user add: administrative units the --district must be in (default: $KIOSK_ADMIN_DATA, "
                        "else ../shared/testdata/admin beside the checkout)")
    p.add_argument("--province", default="hanoi", help="user add: the province's CSV in --admin (default hanoi)")
    p.add_argument("--new-password-file", dest="user_password_file", default="",
                   help="user add|passwd: read the password from this file (default: ask)")
    p.add_argument("--audit-log", default="", help="the accounts' audit log (JSON lines; default: beside "
                                                   "--accounts, NAME.audit.jsonl)")
    p.add_argument("--listen", default="127.0.0.1:8080", help="HOST:PORT of the dashboard (default 127.0.0.1:8080)")
    p.add_argument("--session-key-file", default="", help="no longer used (sessions are kept in the store); "
                                                          "accepted so older units still start")
    p.add_argument("--session-idle-minutes", type=float, default=30.0,
                   help="a session unused this long ends (default 30)")
    p.add_argument("--session-hours", type=float, default=12.0, help="a session ends this long after its login, "
                                                                      "used or not (default 12)")
    p.add_argument("--trusted-proxy", action="append", default=[], metavar="ADDR",
                   help="a reverse proxy (address or network) whose X-Forwarded-For is believed; repeat for "
                        "several (default: none: the client is the socket's peer)")
    p.add_argument("--insecure-cookies", action="store_true", help="session cookie without Secure (plain http "
                                                                   "on a test machine only)")
    p.add_argument("--no-ingest", action="store_true", help="serve the dashboard only (another worker ingests)")
    p.add_argument("--no-web", action="store_true", help="ingest only (a worker of a shared subscription)")
    p.add_argument("--refresh", type=float, default=10.0, help="pages refresh their figures every N s (default 10)")
    p.add_argument("--metrics-listen", default="", metavar="HOST:PORT",
                   help="serve /metrics, /healthz and /readyz here, without a session, for Prometheus and a load "
                        "balancer on a private network (default: none; /metrics is then only on the dashboard, "
                        "for a city account, and the probes on the dashboard's --listen)")
    group = p.add_argument_group("ingest")
    add_centre_arguments(group, required=False)


def _host_port(option: str, value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise UsageError(f"{option} {value!r}: use HOST:PORT")
    return host.strip("[]"), int(port)


USER_ACTIONS = ("add", "list", "passwd", "disable", "enable", "remove")


def run(args) -> int:
    if args.words[:1] == ["user"]:
        from kiosk.commands import centre_users

        return centre_users.run(args)
    if args.words[:1] in (["backup"], ["restore"], ["schema"]):
        from kiosk.commands import centre_store

        return centre_store.run(args)
    if args.words:
        raise UsageError(f"unknown centre action {' '.join(args.words)!r} (try: user {'|'.join(USER_ACTIONS)}, "
                         "backup, restore FILE, schema)")
    return _serve(args)


def _serve(args) -> int:
    from kiosk.centre.accounts import Accounts
    from kiosk.centre.queries import Centre, Settings
    from kiosk.centre.store import open_store
    from kiosk.centre.web import create_app
    from kiosk.commands.monitor import open_centre
    from kiosk.errors import KioskError
    from kiosk.centre.audit import AuditLog, default_path
    from kiosk.centre.sessions import Sessions
    from kiosk.centre.web.security import parse_networks

    host, port = _host_port("--listen", args.listen)
    metrics_at = _host_port("--metrics-listen", args.metrics_listen) if args.metrics_listen else None
    if not args.no_web and not args.accounts:
        raise UsageError("--accounts FILE is required (make one with: kiosk centre user add NAME --accounts FILE)")
    try:
        accounts = Accounts.load(args.accounts) if args.accounts else Accounts()
    except KioskError as exc:
        raise UsageError(str(exc)) from None
    if not args.no_web and not accounts.by_name:
        raise UsageError(f"{args.accounts}: no accounts yet (kiosk centre user add NAME --accounts {args.accounts})")
    try:
        trusted = parse_networks(args.trusted_proxy)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.session_idle_minutes <= 0 or args.session_hours <= 0:
        raise UsageError("--session-idle-minutes and --session-hours: more than 0")
    worker = retention = None
    if args.no_ingest:
        try:
            store = open_store(args.db)
        except KioskError as exc:
            raise UsageError(str(exc)) from None
        centre = Centre(store, Settings(timezone=args.timezone, grace_hour=args.grace_hour,
                                        offline_hours=args.offline_hours, stale_seconds=args.stale_minutes * 60,
                                    keep_days=args.keep_days, morning_hour=args.morning_hour))
    else:
        if not args.broker or not args.registry:
            raise UsageError("--broker and --registry are required (or --no-ingest)")
        from kiosk.centre.retention import Retention

        store, worker, centre = open_centre(args)
        worker.start()
        retention = Retention(store, centre.settings, keep_days=args.keep_days)
        retention.start()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from kiosk.centre.health import Health
    from kiosk.centre.metrics import CentreMetrics, MetricsListener

    health = Health(store, worker)
    role = "ingest" if args.no_web else "dashboard" if args.no_ingest else "ingest+dashboard"
    # The fleet's state is read from the store by dashboard processes only: N ingest workers on one store
    # would each report the same kiosks.
    metrics = CentreMetrics(worker=worker, centre=None if args.no_web else centre, health=health, role=role,
                            retention=retention)
    listener = None
    try:
        if metrics_at is not None:
            try:
                listener = MetricsListener(metrics, health, *metrics_at)
            except OSError as exc:
                raise UsageError(f"--metrics-listen {args.metrics_listen}: {exc.strerror}") from None
            listener.start()
        from kiosk.centre.startup import announce

        stop = threading.Event()
        if args.no_web:
            # Before the start-up line: a supervisor that reads the line and stops the worker at once
            # gets a clean exit, not death by the default SIGTERM.
            signal.signal(signal.SIGTERM, lambda *_: stop.set())
        announce(store, listen=None if args.no_web else args.listen, broker=None if args.no_ingest else args.broker,
                 share_group=args.share_group, metrics=args.metrics_listen or None)
        if args.no_web:
            try:
                stop.wait()
            except KeyboardInterrupt:
                pass
            return 0
        import uvicorn

        sessions = Sessions(store, idle_seconds=args.session_idle_minutes * 60,
                            max_seconds=args.session_hours * 3600)
        audit = AuditLog(args.audit_log or default_path(args.accounts))
        app = create_app(centre, accounts, secure_cookies=not args.insecure_cookies, refresh_seconds=args.refresh,
                         sessions=sessions, audit=audit, trusted_proxies=trusted, health=health, metrics=metrics)
        # proxy_headers=False: the client's address is the socket's peer unless --trusted-proxy says
        # otherwise (kiosk.centre.web.security.client_address); uvicorn's own default believes any local peer.
        uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False, proxy_headers=False,
                    server_header=False)
        return 0
    finally:
        if listener is not None:
            listener.stop()
        if retention is not None:
            retention.stop()
        if worker is not None:
            worker.stop()
        store.close()
