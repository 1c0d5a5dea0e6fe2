"""``kiosk centre backup|restore|schema``: the store's backups and its schema, for an IT officer.

    kiosk centre backup --db URL --out FILE        a backup (never over an existing file)
    kiosk centre restore --db URL FILE [--force]   replace the store with a backup (all or nothing)
    kiosk centre schema --db URL [--upgrade]       the schema's version and migrations; apply the missing ones

See :mod:`kiosk.centre.backup` and :mod:`kiosk.centre.migrations`; docs/operations.md has the procedures.
"""

from __future__ import annotations

import time

from kiosk.cli import UsageError


def run(args) -> int:
    action, rest = args.words[0], args.words[1:]
    if not args.db:
        raise UsageError(f"{action}: --db URL is required (a SQLite file or postgresql://...)")
    if action == "backup":
        if rest or not args.out:
            raise UsageError("usage: kiosk centre backup --db URL --out FILE")
        return _backup(args)
    if action == "restore":
        if len(rest) != 1:
            raise UsageError("usage: kiosk centre restore --db URL FILE [--force]")
        return _restore(args, rest[0])
    if rest:
        raise UsageError("usage: kiosk centre schema --db URL [--upgrade]")
    return _schema(args)


def _safe(url: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    if "://" not in url:
        return url
    p = urlsplit(url)
    if p.password is None:
        return url
    return urlunsplit(p._replace(netloc=p.netloc.replace(f":{p.password}@", ":***@", 1)))


def _backup(args) -> int:
    from kiosk.centre.backup import backup

    started = time.monotonic()
    done = backup(args.db, args.out)
    print(f"backup of {_safe(args.db)} ({done.kind}, schema version {done.schema_version}): {done.path}, "
          f"{done.bytes:,} bytes, {time.monotonic() - started:.1f} s")
    return 0


def _restore(args, path: str) -> int:
    from kiosk.centre.backup import restore

    started = time.monotonic()
    done = restore(args.db, path, force=args.force)
    upgraded = (f", upgraded to schema version {done.migrated_to}" if done.migrated_to != done.schema_version
                else "")
    print(f"restored {path} (schema version {done.schema_version}) into {_safe(args.db)}: {done.tables} tables, "
          f"{done.rows:,} rows{upgraded}, {time.monotonic() - started:.1f} s; every dashboard session ended")
    return 0


def _schema(args) -> int:
    from pathlib import Path

    from kiosk.centre import migrations
    from kiosk.centre.store import open_store

    if not args.db.startswith(("postgresql://", "postgres://")) and not Path(args.db.removeprefix("sqlite:///")).is_file():
        raise UsageError(f"--db {args.db}: no such store file")
    if args.upgrade:
        store = open_store(args.db)  # opening migrates
        try:
            print(f"{_safe(args.db)}: schema version {migrations.version_of(store)} (this centre's: "
                  f"{migrations.LATEST})")
        finally:
            store.close()
        return 0
    # Without --upgrade: look, change nothing (open the store without its migrations).
    store = open_store(args.db, migrate=False)
    try:
        have = migrations.version_of(store)
        for r in migrations.history(store):
            print(f"  {r['version']:>3}  {r['name']:<28} applied {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(r['applied_at']))} UTC")
        missing = [f"{n} ({migrations.name_of(m)})" for n, m in enumerate(migrations.MIGRATIONS, 1) if n > have]
        state = ("up to date" if have == migrations.LATEST else
                 f"newer than this centre ({migrations.LATEST})" if have > migrations.LATEST else
                 f"lacks {', '.join(missing)}: any centre process opening it applies them, or run with --upgrade")
        print(f"{_safe(args.db)}: schema version {have}, {state}")
    finally:
        store.close()
    return 0
