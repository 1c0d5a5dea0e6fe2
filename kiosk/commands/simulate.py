"""``kiosk simulate --broker URL``: a simulated city's signed telemetry against a broker.

``--venues N --kiosk-share S`` venues across Hanoi's districts and wards (``--admin DIR``), a share with kiosks;
``--write-registry F`` and ``--write-venues F`` write the fleet registry and venue registry a
centre needs to believe them. ``--kiosks N`` alone: N venues, each with a kiosk.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time

from kiosk.cli import UsageError


def add_arguments(p) -> None:
    from kiosk.commands.monitor import add_broker_arguments

    add_broker_arguments(p)
    p.add_argument("--venues", type=int, default=0, help="venues with a code (default: --kiosks)")
    p.add_argument("--kiosks", type=int, default=100, help="kiosks when --venues is not given (default 100)")
    p.add_argument("--kiosk-share", type=float, default=None, help="share of venues with a kiosk (default 0.2 "
                                                                   "with --venues)")
    p.add_argument("--districts", type=int, default=0, help="use only the first N of the city's districts (default all)")
    p.add_argument("--admin", default="", metavar="DIR",
                   help="directory of administrative units CSVs, one per province (default: $KIOSK_ADMIN_DATA, "
                        "else ../shared/testdata/admin beside the checkout)")
    p.add_argument("--province", default="hanoi", help="the province's CSV in --admin (default hanoi)")
    p.add_argument("--rate", type=float, default=10.0, help="check-ins per second across the city; 0 = as fast as possible")
    p.add_argument("--duration", type=float, default=10.0, help="seconds to run (default 10)")
    p.add_argument("--checkins", type=int, default=None, help="exactly this many check-ins (instead of --duration)")
    p.add_argument("--connections", type=int, default=8, help="MQTT connections the kiosks share (default 8)")
    p.add_argument("--qos", type=int, choices=(0, 1), default=1, help="QoS of events and counts (default 1)")
    p.add_argument("--offline", type=int, default=0, help="kiosks offline for days (inspection list)")
    p.add_argument("--silent", type=int, default=0, help="kiosks online by their last will but silent for an hour")
    p.add_argument("--camera-down", type=int, default=0, help="kiosks that report a dead camera")
    p.add_argument("--display-down", type=int, default=0, help="kiosks whose screen is dead")
    p.add_argument("--counts-every", type=int, default=1, help="a kiosk republishes counts every N check-ins (default 1)")
    p.add_argument("--prefix", default="hn", help="site / venue id prefix (default hn)")
    p.add_argument("--seed", type=int, default=1, help="the city (venues, kiosks, their keys: the same --seed "
                                                       "is the same city in another run; a demo's, not a fleet's)")
    p.add_argument("--write-registry", default="", help="write the fleet registry JSON here")
    p.add_argument("--write-venues", default="", help="write the venue registry CSV here")
    p.add_argument("--json", action="store_true", help="print the totals as JSON")
    p.add_argument("--live", action="store_true", help="run until stopped (Ctrl-C, SIGTERM), like a city: check-ins "
                                                      "at --rate, health every --health-seconds")
    p.add_argument("--health-seconds", type=float, default=60.0, help="each kiosk signs its health this often "
                                                                     "(default 60, as a kiosk does; 0 = never)")
    p.add_argument("--curve", action="store_true", help="check-ins follow the day's curve (--rate at the busiest "
                                                       "hour, none at night)")
    p.add_argument("--history-days", type=int, default=0, help="first send each kiosk's signed counts of the last "
                                                              "N days (default 0; at most 120)")
    p.add_argument("--history-scans", type=int, default=40, help="a kiosk's scans on an average past day (default 40)")
    from kiosk.testing import campaign

    campaign.add_arguments(p)  # --campaign: an inspection campaign's visits (docs/inspection.md)


def run(args) -> int:
    from kiosk.centre.admin_units import AdminDataError
    from kiosk.testing.city import City, CitySimulator
    from kiosk.commands.monitor import broker_settings
    from kiosk.secrets import SecretError

    settings = broker_settings(args)
    venues = args.venues or args.kiosks
    share = args.kiosk_share if args.kiosk_share is not None else (0.2 if args.venues else 1.0)
    if venues < 1 or args.duration < 0 or args.rate < 0 or args.counts_every < 1 or not 0 <= share <= 1:
        raise UsageError("--venues/--kiosks and --counts-every must be at least 1; --rate and --duration not "
                         "negative; --kiosk-share between 0 and 1")
    if not 0 <= args.history_days <= 120 or args.health_seconds < 0 or args.history_scans < 0:
        raise UsageError("--history-days: 0 to 120; --health-seconds and --history-scans: not negative")
    try:
        city = City.build(venues, share, seed=args.seed, districts=args.districts, offline=args.offline,
                          silent=args.silent, camera_down=args.camera_down, display_down=args.display_down,
                          prefix=args.prefix, admin=args.admin or None, province=args.province,
                          key_seed=args.seed)
        city.write(args.write_registry or None, args.write_venues or None)
    except AdminDataError:
        raise
    except (OSError, KeyError, ValueError) as exc:
        raise UsageError(f"cannot build the city: {exc}") from None
    if args.campaign:
        from kiosk.testing import campaign

        try:
            done = campaign.from_args(args, city)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        print(f"campaign {done['campaign_id']}: {'created' if done['created'] else 'already there'}, "
              f"{done['visits']} visits recorded", file=sys.stderr)
    try:
        sim = CitySimulator(args.broker, city, connections=args.connections, qos=args.qos, seed=args.seed,
                            mqtt_config=settings)
    except (SecretError, ValueError, OSError) as exc:
        raise UsageError(str(exc)) from None
    try:
        sim.connect()
    except ConnectionError:
        print(f"kiosk simulate: cannot reach the broker at {args.broker}", file=sys.stderr)
        return 1
    try:
        t0 = time.monotonic()
        if args.history_days:
            sim.seed_history(args.history_days, args.history_scans)
        sim.announce()
        stop = threading.Event()
        if args.live:
            signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            sim.run(args.rate, float("inf") if args.live else args.duration, counts_every=args.counts_every,
                    checkins=None if args.live else args.checkins, health_every=args.health_seconds,
                    curve=args.curve, stop=stop)
        except KeyboardInterrupt:
            pass
        sim.finish()
        elapsed = time.monotonic() - t0
    finally:
        sim.close()
    totals = {**sim.totals(), "seconds": round(elapsed, 3),
              "messages_per_second": round(sim.messages / max(elapsed, 1e-9))}
    if args.json:
        print(json.dumps(totals))
    else:
        print(f"{totals['venues']} venues, {totals['kiosks']} kiosks: {totals['checkins']} check-ins "
              f"({totals['accepted']} accepted, {totals['rejected']} rejected, {totals['duplicates']} duplicates), "
              f"{totals['messages']} messages in {totals['seconds']} s ({totals['messages_per_second']}/s)")
    return 0
