"""``kiosk update``: install a new release and switch to it, rolling back when it is not ready (:mod:`kiosk.ops.update`);
``kiosk update rollout``: a release to a canary share of the fleet, then the rest (:mod:`kiosk.ops.rollout`).

The rollout's command line lives here, not in kiosk.ops: it shares the broker options of the centre's
commands, and the tools (ops, centre) stay independent of each other.
"""

from __future__ import annotations

import sys
from pathlib import Path

from kiosk.cli import UsageError
from kiosk.ops import update


def add_arguments(p) -> None:
    p.add_argument("action", nargs="?", choices=["rollout"],
                   help="rollout: from the centre, send a release to a canary share of the fleet, then the rest")
    update.add_arguments(p)
    _rollout_arguments(p.add_argument_group("rollout (kiosk update rollout, run at the centre)"))


def run(args) -> int:
    if args.action == "rollout":
        return run_rollout(args)
    return update.run(args)


def _rollout_arguments(g) -> None:
    """The rollout's options (an argument group of ``kiosk update``)."""
    from kiosk.commands.monitor import add_broker_arguments_optional

    add_broker_arguments_optional(g)
    g.add_argument("--registry", help="rollout: the fleet registry (kiosk fleet): who the kiosks are, their keys")
    g.add_argument("--key", help="rollout: the centre's command key (kiosk command keygen): a file or credential:NAME")
    g.add_argument("--release", metavar="ARCHIVE", help="rollout: the release archive (kiosk-src.tar.gz); its "
                                                        "version and SHA-256 go into the signed command")
    g.add_argument("--url", help="rollout: where the kiosks fetch ARCHIVE (https://, http:// or file://)")
    g.add_argument("--canary", default="10%", help="rollout: the canary: a share (10%%) or a number of kiosks "
                                                   "(default 10%%)")
    g.add_argument("--deadline", type=float, default=900.0, metavar="SECONDS",
                   help="rollout: each stage's kiosks must be back healthy on the new version within this "
                        "(default 900)")
    g.add_argument("--allow-degraded", action="append", default=[], metavar="WORD",
                   help="rollout: a degraded word that still counts as healthy (e.g. gpio-mock); repeatable")
    g.add_argument("--quiet-seconds", type=float, default=1.0,
                   help="rollout: read the retained state until no message came for this long (default 1)")
    g.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS",
                   help="rollout: give up when the broker cannot be reached in this many seconds (default 10)")


def run_rollout(args) -> int:
    """``kiosk update rollout``: from the command line."""
    from kiosk.commands.monitor import broker_settings
    from kiosk.errors import KioskValueError
    from kiosk.ops.rollout import FleetWatch, Rollout, RolloutError, canary_count, release_of_archive
    from kiosk.secrets import SecretError
    from kiosk.wire import registry, signing

    missing = [o for o in ("broker", "registry", "key", "release", "url") if not getattr(args, o)]
    if missing:
        raise UsageError("rollout needs " + ", ".join(f"--{m}" for m in missing))
    if args.deadline <= 0 or args.timeout <= 0 or args.quiet_seconds < 0:
        raise UsageError("--deadline and --timeout must be positive")
    settings = broker_settings(args)
    try:
        entries = registry.load(args.registry)
        key = signing.load_private_key(args.key)
        release = release_of_archive(Path(args.release), args.url)
        canary_count(args.canary, 1)  # the option's form, before anything is sent
    except (KioskValueError, SecretError) as exc:
        raise UsageError(str(exc)) from None
    kiosks = sorted({e.kiosk for e in entries if not e.revoked})
    if not kiosks:
        raise UsageError(f"{args.registry}: no active kiosk")
    try:
        watch = FleetWatch(args.broker, entries, settings)
    except (SecretError, ValueError, OSError) as exc:
        raise UsageError(str(exc)) from None
    watch.start()
    try:
        if not watch.settle(args.quiet_seconds, args.timeout):
            print(f"kiosk update rollout: cannot reach the broker at {watch.address}", file=sys.stderr)
            return 1
        rollout = Rollout(watch, key, release, kiosks, args.canary, args.deadline, args.allow_degraded,
                          out=lambda line: print(line, flush=True))
        try:
            return rollout.run(dry_run=args.dry_run)
        except RolloutError as exc:
            print(f"kiosk update rollout: {exc}", file=sys.stderr)
            return 1
    finally:
        watch.stop()

