"""``kiosk simulate --broker URL --kiosks N --rate R --duration S``: many kiosks' telemetry against a broker."""

from __future__ import annotations

import json
import sys
import time

from kiosk.cli import UsageError


def add_arguments(p) -> None:
    from kiosk.commands.monitor import add_broker_arguments

    add_broker_arguments(p)
    p.add_argument("--kiosks", type=int, default=100, help="simulated kiosks (default 100)")
    p.add_argument("--rate", type=float, default=10.0, help="check-ins per second across the fleet; 0 = as fast as possible")
    p.add_argument("--duration", type=float, default=10.0, help="seconds to run (default 10)")
    p.add_argument("--connections", type=int, default=8, help="MQTT connections the kiosks share (default 8)")
    p.add_argument("--qos", type=int, choices=(0, 1), default=1, help="QoS of events and counts (default 1)")
    p.add_argument("--offline", type=int, default=0, help="kiosks that go offline at the end (inspection list demo)")
    p.add_argument("--camera-down", type=int, default=0, help="kiosks that report a dead camera (inspection list demo)")
    p.add_argument("--counts-every", type=int, default=1, help="a kiosk republishes counts every N check-ins (default 1)")
    p.add_argument("--prefix", default="sim", help="site/venue name prefix (default sim)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", action="store_true", help="print the totals as JSON")


def run(args) -> int:
    from kiosk.commands.monitor import broker_settings
    from kiosk.monitor.simulate import FleetSimulator
    from kiosk.secrets import SecretError

    settings = broker_settings(args)
    if args.kiosks < 1 or args.duration < 0 or args.rate < 0 or args.counts_every < 1:
        raise UsageError("--kiosks and --counts-every must be at least 1; --rate and --duration not negative")
    try:
        sim = FleetSimulator(args.broker, args.kiosks, connections=args.connections, qos=args.qos, seed=args.seed,
                             prefix=args.prefix, mqtt_config=settings,
                             camera_down=max(0, args.camera_down))
    except (SecretError, ValueError, OSError) as exc:
        raise UsageError(str(exc)) from None
    try:
        sim.connect()
    except ConnectionError:
        print(f"kiosk simulate: cannot reach the broker at {args.broker}", file=sys.stderr)
        return 1
    try:
        t0 = time.monotonic()
        sim.announce()
        sim.run(args.rate, args.duration, counts_every=args.counts_every)
        sim.finish(offline=min(args.offline, args.kiosks))
        elapsed = time.monotonic() - t0
    finally:
        sim.close()
    totals = {**sim.totals(), "seconds": round(elapsed, 3), "messages_per_second": round(sim.messages / max(elapsed, 1e-9))}
    if args.json:
        print(json.dumps(totals))
    else:
        print(f"{totals['kiosks']} kiosks: {totals['checkins']} check-ins ({totals['accepted']} accepted, "
              f"{totals['rejected']} rejected, {totals['duplicates']} duplicates), {totals['messages']} messages "
              f"in {totals['seconds']} s ({totals['messages_per_second']}/s)")
    return 0
