"""``kiosk centre``: the centre's web dashboard and API with its ingest, and its accounts.

    kiosk centre --broker URL --registry fleet.json --db URL --listen HOST:PORT [--venues CSV] --accounts FILE
    kiosk centre user add NAME [--district D] --accounts FILE [--new-password-file F]

``--no-ingest`` serves the dashboard only (a dashboard process reading a PostgreSQL that
ingest workers write); ``--no-web`` is an ingest worker only (``--share-group`` to split).
"""

from __future__ import annotations

import getpass
import logging
import os
import signal
import sys
import threading

from kiosk.cli import UsageError


def add_arguments(p) -> None:
    from kiosk.commands.monitor import add_centre_arguments

    p.add_argument("words", nargs="*", help="'user add NAME' manages accounts; nothing: run the centre")
    p.add_argument("--accounts", default="", help="accounts file (JSON, argon2 hashes)")
    p.add_argument("--district", default=None, help="user add: the district this account sees (none: the city)")
    p.add_argument("--new-password-file", dest="user_password_file", default="",
                   help="user add: read the password from this file (default: ask)")
    p.add_argument("--listen", default="127.0.0.1:8080", help="HOST:PORT of the dashboard (default 127.0.0.1:8080)")
    p.add_argument("--session-key-file", default="", help="secret for session cookies (file or credential:NAME); "
                                                          "default: a new one each start (everyone logs in again)")
    p.add_argument("--insecure-cookies", action="store_true", help="session cookie without Secure (plain http "
                                                                   "on a test machine only)")
    p.add_argument("--no-ingest", action="store_true", help="serve the dashboard only (another worker ingests)")
    p.add_argument("--no-web", action="store_true", help="ingest only (a worker of a shared subscription)")
    p.add_argument("--refresh", type=float, default=10.0, help="pages refresh their figures every N s (default 10)")
    group = p.add_argument_group("ingest")
    add_centre_arguments(group, required=False)


def run(args) -> int:
    if args.words[:2] == ["user", "add"]:
        return _user_add(args)
    if args.words:
        raise UsageError(f"unknown centre action {' '.join(args.words)!r} (try: user add NAME)")
    return _serve(args)


def _user_add(args) -> int:
    from kiosk.centre.accounts import Accounts
    from kiosk.errors import KioskError

    if len(args.words) != 3:
        raise UsageError("usage: kiosk centre user add NAME [--district D] --accounts FILE [--new-password-file F]")
    if not args.accounts:
        raise UsageError("--accounts FILE is required")
    if args.user_password_file:
        try:
            with open(args.user_password_file, encoding="utf-8") as f:
                password = f.read().strip()
        except OSError as exc:
            raise UsageError(f"--new-password-file: cannot read {args.user_password_file!r} ({exc.strerror})") from None
    else:
        password = getpass.getpass(f"password for {args.words[2]}: ")
    try:
        accounts = Accounts.load(args.accounts)
        a = accounts.add(args.words[2], password, args.district)
        accounts.save()
    except KioskError as exc:
        raise UsageError(str(exc)) from None
    print(f"account {a.name}: {'district ' + a.district if a.district else 'the city'} ({args.accounts})")
    return 0


def _serve(args) -> int:
    from kiosk.centre.accounts import Accounts
    from kiosk.centre.queries import Centre, Settings
    from kiosk.centre.store import open_store
    from kiosk.centre.web import create_app
    from kiosk.commands.monitor import open_centre
    from kiosk.errors import KioskError
    from kiosk.secrets import SecretError, read_secret_bytes

    host, _, port = args.listen.rpartition(":")
    if not host or not port.isdigit():
        raise UsageError(f"--listen {args.listen!r}: use HOST:PORT")
    if not args.no_web and not args.accounts:
        raise UsageError("--accounts FILE is required (make one with: kiosk centre user add NAME --accounts FILE)")
    try:
        accounts = Accounts.load(args.accounts) if args.accounts else Accounts()
    except KioskError as exc:
        raise UsageError(str(exc)) from None
    if not args.no_web and not accounts.by_name:
        raise UsageError(f"{args.accounts}: no accounts yet (kiosk centre user add NAME --accounts {args.accounts})")
    key = None
    if args.session_key_file:
        try:
            key = read_secret_bytes(args.session_key_file).decode().strip()
        except (SecretError, UnicodeDecodeError) as exc:
            raise UsageError(f"--session-key-file: {exc}") from None
    worker = retention = None
    if args.no_ingest:
        try:
            store = open_store(args.db)
        except KioskError as exc:
            raise UsageError(str(exc)) from None
        centre = Centre(store, Settings(timezone=args.timezone, grace_hour=args.grace_hour,
                                        offline_hours=args.offline_hours, stale_seconds=args.stale_minutes * 60))
    else:
        if not args.broker or not args.registry:
            raise UsageError("--broker and --registry are required (or --no-ingest)")
        from kiosk.centre.retention import Retention

        store, worker, centre = open_centre(args)
        worker.start()
        retention = Retention(store, centre.settings, keep_days=args.keep_days)
        retention.start()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from kiosk.centre.startup import announce

    announce(store, listen=None if args.no_web else args.listen, broker=None if args.no_ingest else args.broker,
             share_group=args.share_group)
    try:
        if args.no_web:
            stop = threading.Event()
            signal.signal(signal.SIGTERM, lambda *_: stop.set())
            try:
                stop.wait()
            except KeyboardInterrupt:
                pass
            return 0
        import uvicorn

        app = create_app(centre, accounts, session_key=key, secure_cookies=not args.insecure_cookies,
                         refresh_seconds=args.refresh)
        uvicorn.run(app, host=host, port=int(port), log_level="warning", access_log=False)
        return 0
    finally:
        if retention is not None:
            retention.stop()
        if worker is not None:
            worker.stop()
        store.close()
