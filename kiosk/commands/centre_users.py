"""``kiosk centre user add|list|passwd|disable|enable|remove``: the dashboard's accounts, for an IT officer.

Every change is written to the accounts file in one rename (a running centre re-reads it at its
next request) and to the audit log, with the operating-system user who made it; never a
password. A district is checked against the administrative units (``--admin``, the same data
``kiosk simulate --admin`` reads) and, when ``--venues`` is given, the venue registry (the names the
dashboard scopes by). ``add`` refuses a name that exists unless ``--replace``. With ``--db``,
``passwd``, ``disable`` and ``remove`` also delete the account's sessions in that store (the centre
ends them at the next request anyway, once it has read the changed file).
"""

from __future__ import annotations

import difflib
import getpass
import os

from kiosk.cli import UsageError

ACTIONS = ("add", "list", "passwd", "disable", "enable", "remove")
USAGE = ("usage: kiosk centre user add NAME [--role city|district|inspector] [--district D ...] --accounts FILE "
         "[--new-password-file F] [--replace] | list | passwd NAME | disable NAME | enable NAME | remove NAME "
         "(--accounts FILE [--db URL])")


def run(args) -> int:
    from kiosk.centre.accounts import AccountError, Accounts, make_account
    from kiosk.centre.audit import AuditLog, default_path
    from kiosk.errors import KioskError

    words = args.words[1:]
    if not words or words[0] not in ACTIONS:
        raise UsageError(USAGE)
    action = words[0]
    if (action == "list") != (len(words) == 1) or len(words) > 2:
        raise UsageError(USAGE)
    if not args.accounts:
        raise UsageError("--accounts FILE is required")
    try:
        accounts = Accounts.load(args.accounts)
    except KioskError as exc:
        raise UsageError(str(exc)) from None
    audit = AuditLog(args.audit_log or default_path(args.accounts))
    by = _operator()
    if action == "list":
        return _list(accounts)
    name = words[1]
    try:
        if action == "add":
            districts = _checked_districts(args)
            # Checked before the password is asked for: a refusal costs the officer nothing.
            wanted = make_account(name, args.role, districts, "")
            existed = wanted.name in accounts.by_name
            if existed and not args.replace:
                raise AccountError(f"account {wanted.name} exists (passwd changes its password; --replace "
                                   "replaces the account)")
            a = accounts.add(name, _password(args, name), role=args.role, districts=districts,
                             replace_existing=args.replace)
            accounts.save()
            audit.write("account-replaced" if existed else "account-added", account=a.name, role=a.role,
                        districts=list(a.districts), by=by)
            ended = _end_sessions(args, a.name) if existed else 0
            print(f"account {a.name}: {_describe(a)} ({args.accounts})" + (f"; {ended} session(s) ended" if ended else ""))
            return 0
        if action == "passwd":
            accounts.existing(name)  # no such account: said before the password is asked for
            a = accounts.set_password(name, _password(args, name))
            event = "password-changed"
        elif action in ("disable", "enable"):
            a = accounts.set_disabled(name, action == "disable")
            event = f"account-{action}d"
        else:
            a = accounts.remove(name)
            event = "account-removed"
        accounts.save()
        audit.write(event, account=a.name, by=by)
        ended = _end_sessions(args, a.name) if action != "enable" else 0
    except KioskError as exc:
        raise UsageError(str(exc)) from None
    print(f"account {a.name}: {event.replace('-', ' ')}" + (f"; {ended} session(s) ended" if ended else ""))
    return 0


def _describe(a) -> str:
    if a.is_city:
        return "city (every district)"
    return f"{a.role}: " + ", ".join(a.districts)


def _list(accounts) -> int:
    rows = sorted(accounts.by_name.values(), key=lambda a: a.name)
    if not rows:
        print(f"no accounts in {accounts.path}")
        return 0
    width = max(len(a.name) for a in rows)
    print(f"{'name'.ljust(width)}  {'role'.ljust(9)}  {'state'.ljust(8)}  districts")
    for a in rows:
        print(f"{a.name.ljust(width)}  {a.role.ljust(9)}  {('disabled' if a.disabled else 'active').ljust(8)}  "
              f"{', '.join(a.districts) or '(every district)'}")
    return 0


def _password(args, name: str) -> str:
    if args.user_password_file:
        try:
            with open(args.user_password_file, encoding="utf-8") as f:
                return f.read().strip()
        except OSError as exc:
            raise UsageError(f"--new-password-file: cannot read {args.user_password_file!r} ({exc.strerror})") from None
    first = getpass.getpass(f"password for {name}: ")
    if getpass.getpass("again: ") != first:
        raise UsageError("the two passwords differ")
    return first


def _checked_districts(args) -> list[str]:
    """``--district`` values in NFC, each a district of the administrative units (and of the venue registry,
    when given): a misspelt district would give an official an empty dashboard."""
    from kiosk.centre.accounts import nfc
    from kiosk.centre.admin_units import admin_csv, admin_units
    from kiosk.errors import KioskError

    districts = [nfc(d).strip() for d in args.district if d.strip()]
    if not districts:
        return []
    try:
        admin = {r["district"] for r in admin_units(args.admin or None, args.province)}
        where = str(admin_csv(args.admin or None, args.province))
    except KioskError as exc:
        raise UsageError(f"cannot check --district: {exc}") from None
    registry = None
    if args.venues:
        from kiosk.centre.registry import read_venues

        try:
            registry = {v.district for v in read_venues(args.venues)}
        except KioskError as exc:
            raise UsageError(f"--venues: {exc}") from None
    for d in districts:
        if d not in admin:
            raise UsageError(f"--district {d!r}: not a district of {where}{_did_you_mean(d, admin)}")
        if registry is not None and d not in registry:
            raise UsageError(f"--district {d!r}: no venue of the venue registry {args.venues} is in it (the account "
                             f"would see nothing){_did_you_mean(d, registry)}")
    return districts


def _did_you_mean(d: str, names) -> str:
    close = difflib.get_close_matches(d, sorted(names), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _end_sessions(args, name: str) -> int:
    if not args.db:
        return 0
    from kiosk.centre.sessions import end_account_sessions
    from kiosk.centre.store import open_store
    from kiosk.errors import KioskError

    try:
        store = open_store(args.db)
    except KioskError as exc:
        raise UsageError(f"--db: {exc}") from None
    try:
        return end_account_sessions(store, name)
    finally:
        store.close()


def _operator() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())
