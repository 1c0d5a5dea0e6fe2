#!/usr/bin/env python3
"""Centre benchmark: signed ingest into PostgreSQL, one and two workers, and the dashboard's queries.

1. Signature cost: kiosk.wire.signing.verify on a telemetry message, against json.loads alone.
1b. The plausibility checks' cost (issue 19): the ingest stage in one process (Ingest.handle and
   take, batches of a worker's size), checks off against on, alternating rounds in the same run.
2. Ingest: M signed messages (events + counts of K kiosks) queued on a real mosquitto for an
   absent persistent session, then drained: a bare paho subscriber that only parses the JSON
   (baseline), one centre worker with verification, one without, and two workers in one MQTT 5
   shared subscription, each worker its own process writing one PostgreSQL in batches.
3. Queries on a city of V venues (a share with kiosks) with D days of history: the district page
   and its API (HTTP through uvicorn) p95, and the whole city's inspection list; the city overview before
   (the old query, same store) and after (the rollup the ingest keeps: issue 21.8).
   ``--only-rollup-write``: what keeping the rollup costs the store's writes (on and off, alternating).
4. The metrics' cost (issue 23): one worker draining the same queue with its metrics listener scraped
   (``/metrics`` and ``/readyz`` every second: fifteen times Prometheus's usual rate) against the same
   worker without metrics, in alternating rounds of the same run; and the dashboard's read of the fleet's
   state per district (what a scrape of a dashboard process costs the store) at K kiosks.

Usage: .venv/bin/python scripts/bench_centre.py [--venues 200000] [--kiosk-share 0.2] [--days 30]
       [--messages 200000] [--kiosks 20000] [--skip-checks] [--skip-ingest] [--skip-queries]
       [--skip-metrics] [--metrics-rounds 3] [--only-metrics] [--only-rollup-write]
Needs Debian's postgresql and mosquitto (started here in a temporary directory, free ports).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def p95(xs):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * 0.95))]


def start_broker(tmp: Path):
    from conftest import free_port

    port = free_port()
    conf = tmp / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\n"
                    f"max_inflight_messages 0\nuser {__import__('getpass').getuser()}\n")
    proc = subprocess.Popen(["/usr/sbin/mosquitto", "-c", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    import socket

    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    return proc, port


def make_messages(n: int, kiosks: int):
    from kiosk.testing.city import City

    city = City.build(kiosks, 1.0, seed=7)
    rng = random.Random(7)
    local = city.local_now()
    day = local.date().isoformat()
    msgs = []
    while len(msgs) < n:
        k = city.kiosks[rng.randrange(len(city.kiosks))]
        msgs.append((k.topic("events"), k.signed("events", k.check_in(rng, local, day, local.hour))))
        msgs.append((k.topic("counts"), k.signed("counts", k.counts(day, time.time()))))
    return city, msgs[:n]


def publish_all(port: int, msgs, qos=1):
    import paho.mqtt.client as mqtt

    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"pub-{os.getpid()}-{time.time()}")
    c.max_inflight_messages_set(2000)
    c.max_queued_messages_set(0)
    c.connect("127.0.0.1", port)
    c.loop_start()
    sent = []
    for i, (t, p) in enumerate(msgs):
        if i >= 30_000:  # paho's message ids wrap at 65,535: keep fewer than that outstanding
            sent[i - 30_000].wait_for_publish(120)
        sent.append(c.publish(t, p, qos=qos))
        if sent[-1].rc:
            raise RuntimeError(f"publish: {mqtt.error_string(sent[-1].rc)}")
    sent[-1].wait_for_publish(120)
    c.disconnect()
    c.loop_stop()


def _session(port, client_id, topic, on_message=None):
    import paho.mqtt.client as mqtt
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 3600
    if on_message:
        c.on_message = on_message
    c.connect("127.0.0.1", port, clean_start=False, properties=props)
    c.subscribe(topic, qos=1)
    return c


def baseline_proc(port, client_id, topic, expect, out):
    """A bare paho subscriber that only parses the JSON."""
    n = [0]
    t = [None, None]

    def on_message(client, userdata, m):
        if t[0] is None:
            t[0] = time.perf_counter()
        json.loads(m.payload)
        n[0] += 1
        if n[0] >= expect:
            t[1] = time.perf_counter()
            client.disconnect()

    c = _session(port, client_id, topic, on_message)
    c.loop_forever()
    out.put({"n": n[0], "seconds": t[1] - t[0], "rss_mb": _rss(), "process_cpu_s": round(time.process_time(), 2)})


def worker_proc(port, client_id, group, db, registry_json, expect, verify, out, coalesce=True, batch_max=20_000,
                verify_processes=0, checks=True, metrics_every=0.0):
    """One centre ingest worker (its own process, the product's settings): verify, batch, write PostgreSQL.

    ``metrics_every``: the worker's metrics listener runs and a thread of this process scrapes ``/metrics``
    and asks ``/readyz`` this often (seconds), as Prometheus and a load balancer would."""
    from kiosk.centre.plausible import Limits
    from kiosk.centre.registry import FleetRegistry
    from kiosk.centre.store import open_store
    from kiosk.centre.watch import IngestWorker

    store = open_store(db)
    reg = FleetRegistry.from_json(json.loads(registry_json))
    w = IngestWorker(f"mqtt://127.0.0.1:{port}", store, reg, share_group=group, client_id=client_id,
                     session_expiry=3600, verify_signatures=verify, batch_max=batch_max, coalesce=coalesce,
                     verify_processes=verify_processes, limits=Limits() if checks else None)
    first = [None]
    handle = w.ingest.handle

    def timed(topic, payload, now=None):
        if first[0] is None:
            first[0] = time.perf_counter()
        return handle(topic, payload, now)

    w.ingest.handle = timed
    scrapes = [0]
    if metrics_every:
        import threading
        import urllib.request

        from kiosk.centre.health import Health
        from kiosk.centre.metrics import CentreMetrics, MetricsListener

        health = Health(store, w)
        listener = MetricsListener(CentreMetrics(worker=w, health=health, role="ingest"), health, "127.0.0.1", 0)
        listener.start()
        done = threading.Event()

        def scraper():
            while not done.wait(metrics_every):
                for path in ("/metrics", "/readyz"):
                    try:
                        with urllib.request.urlopen(f"http://127.0.0.1:{listener.port}{path}", timeout=10) as r:
                            r.read()
                    except OSError:  # a 503 before the broker is connected: asked all the same
                        pass
                scrapes[0] += 1
        threading.Thread(target=scraper, daemon=True).start()
    w.start()
    while w.ingest.stats.messages < expect:
        time.sleep(0.005)
    threads = {"paho": w.client._thread.native_id, "ingest": w._stage.native_id, "write": w._writer.native_id}
    cpu = {name: _thread_cpu(tid) for name, tid in threads.items()}  # before stop(): the threads end there
    w.stop()  # the last batch is written before the clock stops
    end = time.perf_counter()
    st = w.ingest.stats
    if metrics_every:
        done.set()
        listener.stop()
    out.put({"n": st.messages, "seconds": end - first[0], "rss_mb": _rss(), "refused": st.refused,
             "superseded": st.superseded, "written": w.written, "cpu_s": cpu,
             "process_cpu_s": round(time.process_time(), 2), "scrapes": scrapes[0]})
    store.close()


def _thread_cpu(tid: int) -> float:
    """CPU seconds of one of this process's threads (user + system, from /proc)."""
    return round(_stat_cpu(f"/proc/self/task/{tid}/stat"), 2)


def _rss() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def drain(port, msgs, targets, expect_each, kwargs=None):
    """Queue ``msgs`` for the (already subscribed, now absent) sessions, then run ``targets`` to drain."""
    # Fresh interpreters, as the product's workers are: a forked one would count the bench's 200,000 signed
    # messages and the city's keys in its peak RSS (the round of 2026-12-01 forked; at 20,000 messages
    # that was a few MB, at 200,000 about 250 MB).
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    publish_all(port, msgs)
    procs = [ctx.Process(target=fn, args=(*args, out), kwargs=kwargs or {}) for fn, args in targets]
    t0 = time.perf_counter()
    busy0, broker0 = _machine_cpu(), _proc_cpu(BROKER_PID[0])
    for p in procs:
        p.start()
    res = [out.get(timeout=600) for _ in procs]
    wall = time.perf_counter() - t0
    (busy1, total1), (busy, total) = _machine_cpu(), busy0
    res[0]["machine_busy_cores"] = round((busy1 - busy) / (total1 - total) * os.cpu_count(), 2)
    res[0]["broker_cpu_s"] = round(_proc_cpu(BROKER_PID[0]) - broker0, 2)
    for p in procs:
        p.join(30)
    return res, wall


BROKER_PID = [0]


def _machine_cpu() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine, from /proc/stat (every process: the other jobs' too)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    return sum(v) - idle, sum(v)


def _proc_cpu(pid: int) -> float:
    return _stat_cpu(f"/proc/{pid}/stat")


def _stat_cpu(path: str) -> float:
    """User + system CPU seconds from a /proc stat file (a process's or a thread's); 0 when it is gone."""
    try:
        with open(path) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def prepare_session(port, client_id, topic):
    c = _session(port, client_id, topic)
    c.loop_start()
    time.sleep(0.3)
    c.disconnect()
    c.loop_stop()


def bench_ingest(args, pg, tmp):
    from kiosk.centre.store import open_store

    proc, port = start_broker(tmp)
    BROKER_PID[0] = proc.pid
    try:
        print(f"signing {args.messages} telemetry messages of {args.kiosks} kiosks ...", flush=True)
        city, msgs = make_messages(args.messages, args.kiosks)
        reg = json.dumps(city.registry())
        rows = []
        topic = "checkin/v1/+/+/#"
        prepare_session(port, "baseline", topic)
        res, _ = drain(port, msgs, [(baseline_proc, (port, "baseline", topic, len(msgs)))], len(msgs))
        base = len(msgs) / res[0]["seconds"]
        print(f"  baseline: {res[0]}", flush=True)
        rows.append(("bare paho subscriber, json.loads only (baseline)", base, res[0]["rss_mb"]))
        def fresh_db():
            from kiosk.centre.registry import FleetRegistry

            db = pg.new_database()
            s = open_store(db)
            s.load_fleet(FleetRegistry.from_json(json.loads(reg)))
            s.close()
            return db

        bm = args.batch_max
        one = off = None
        for name, verify, coalesce, procs, checks in (
                ("without signature check", False, True, 0, True),
                ("with signature check, no coalescing", True, False, 0, True),
                ("with signature check, plausibility checks off", True, True, 0, False),
                ("with signature check (plausibility checks on: the product)", True, True, 0, True),
                ("with signature check, 1 verifier process", True, True, 1, True)):
            db = fresh_db()
            cid = f"w1-{verify}-{coalesce}-{procs}-{checks}"
            prepare_session(port, cid, topic)
            res, _ = drain(port, msgs, [(worker_proc, (port, cid, "", db, reg, len(msgs), verify))], len(msgs),
                           {"coalesce": coalesce, "batch_max": bm, "verify_processes": procs, "checks": checks})
            rate = len(msgs) / res[0]["seconds"]
            rows.append((f"1 worker -> PostgreSQL, {name}", rate, res[0]["rss_mb"]))
            print(f"  {rows[-1][0]}: {res[0]}", flush=True)
            if verify and coalesce and not procs:
                if checks:
                    one = rate
                else:
                    off = rate
        db = fresh_db()
        shared = "$share/bench/" + topic
        for i in range(2):
            prepare_session(port, f"w2-{i}", shared)
        # each member gets about half (the broker's split is not exact): each stops when most of its half is in
        each = len(msgs) // 2 - min(2000, len(msgs) // 20)
        res, wall = drain(port, msgs, [(worker_proc, (port, f"w2-{i}", "bench", db, reg, each, True))
                                       for i in range(2)], len(msgs), {"batch_max": bm})
        print(f"  2 workers: {res}", flush=True)
        total = sum(r["n"] for r in res)
        two = total / max(r["seconds"] for r in res)
        rows.append(("2 workers, one shared subscription, with signature check", two,
                     max(r["rss_mb"] for r in res)))
        print("\n| ingest (messages queued on mosquitto, then drained) | msg/s | ratio to baseline | peak RSS MB |")
        print("|---|---:|---:|---:|")
        for name, rate, rss in rows:
            print(f"| {name} | {rate:,.0f} | {rate / base:.2f} | {rss:.0f} |")
        print(f"\ntwo workers / one worker (both verifying): {two / one:.2f}x")
        print(f"one worker, plausibility checks on / off: {one / off:.3f} (cost {1 - one / off:+.1%}; separate "
              f"drains, so the machine's noise is in it: see the in-process table for the checks alone)")
    finally:
        proc.terminate()
        proc.wait()


def bench_metrics(args, pg, tmp):
    """One worker with its metrics scraped every second against one without, alternating, same messages."""
    from kiosk.centre.registry import FleetRegistry
    from kiosk.centre.store import open_store

    proc, port = start_broker(tmp)
    BROKER_PID[0] = proc.pid
    try:
        print(f"metrics: signing {args.messages} telemetry messages of {args.kiosks} kiosks ...", flush=True)
        city, msgs = make_messages(args.messages, args.kiosks)
        reg = json.dumps(city.registry())
        topic = "checkin/v1/+/+/#"
        rates: dict[str, list[float]] = {"without metrics": [], "with metrics, scraped every second": []}
        cpu: dict[str, list[float]] = {name: [] for name in rates}  # the worker process's CPU µs a message
        db = None
        for r in range(args.metrics_rounds):
            for name, every in (("without metrics", 0.0), ("with metrics, scraped every second", 1.0))[::1 if r % 2
                                                                                                         else -1]:
                db = pg.new_database()
                s = open_store(db)
                s.load_fleet(FleetRegistry.from_json(json.loads(reg)))
                s.close()
                cid = f"m{r}-{int(every)}"
                prepare_session(port, cid, topic)
                res, _ = drain(port, msgs, [(worker_proc, (port, cid, "", db, reg, len(msgs), True))], len(msgs),
                               {"batch_max": args.batch_max, "metrics_every": every})
                rate = len(msgs) / res[0]["seconds"]
                rates[name].append(rate)
                cpu[name].append(res[0]["process_cpu_s"] / len(msgs) * 1e6)
                print(f"  round {r + 1}, {name}: {rate:,.0f} msg/s ({res[0]['seconds']:.1f} s, "
                      f"{res[0]['scrapes']} scrapes, process CPU {res[0]['process_cpu_s']} s)", flush=True)
        off = statistics.median(rates["without metrics"])
        on = statistics.median(rates["with metrics, scraped every second"])
        print(f"\n| one worker -> PostgreSQL, {len(msgs):,} messages, {args.metrics_rounds} rounds each, alternating "
              f"| median msg/s | rounds msg/s | median process CPU µs/msg |")
        print("|---|---:|---|---:|")
        for name, xs in rates.items():
            print(f"| {name} | {statistics.median(xs):,.0f} | {', '.join(f'{x:,.0f}' for x in xs)} "
                  f"| {statistics.median(cpu[name]):.0f} |")
        cpu_on = statistics.median(cpu["with metrics, scraped every second"])
        cpu_off = statistics.median(cpu["without metrics"])
        print(f"\nwith metrics / without: rate {on / off:.3f} (cost {1 - on / off:+.1%}); CPU a message "
              f"{cpu_on / cpu_off:.3f} ({cpu_on / cpu_off - 1:+.1%})")
        # What a scrape of a dashboard process costs the store: the fleet's state per district, at K kiosks.
        from kiosk.centre.metrics import FleetGauges
        from kiosk.centre.queries import Centre

        store = open_store(db)
        gauges = FleetGauges(Centre(store), cache_seconds=0.0)
        times = []
        for _ in range(7):
            gauges.rows()
            times.append(gauges.last_read_seconds * 1000)
        print(f"fleet state per district at {args.kiosks:,} kiosks (a dashboard scrape, at most once per 5 s): "
              f"median {statistics.median(times):.1f} ms, max {max(times):.1f} ms")
        # What one scrape costs a worker's process, in CPU: rendering its metrics, and a readiness probe (a new
        # connection, a row written and rolled back).
        from kiosk.centre.metrics import CentreMetrics
        from kiosk.centre.watch import IngestWorker

        w = IngestWorker(f"mqtt://127.0.0.1:{port}", store, FleetRegistry.from_json(json.loads(reg)))
        metrics = CentreMetrics(worker=w, role="ingest")
        for name, fn in (("render /metrics", metrics.render), ("readiness probe", lambda: store.probe(2.0))):
            fn()
            started, n = time.process_time(), 50
            for _ in range(n):
                fn()
            print(f"{name}: {(time.process_time() - started) / n * 1000:.2f} ms of CPU each (mean of {n})")
        store.close()
    finally:
        proc.terminate()
        proc.wait()


def bench_checks(args, rounds: int = 7, batch: int = 2500):
    """The plausibility checks' cost on the ingest stage itself: Ingest.handle + take (coalescing, verifying
    the candidates that can win), checks off against on over the same messages, in alternating rounds.

    Measured in CPU seconds of this process (``time.process_time``: libsodium's checks run in this thread), so
    the other jobs on a shared machine weigh less; the ratio is the median of the rounds' ratios.
    """
    from kiosk.centre.ingest import Ingest
    from kiosk.centre.plausible import Limits
    from kiosk.centre.registry import FleetRegistry

    n, kiosks = min(args.messages, 40_000), min(args.kiosks, 4000)
    print(f"\nplausibility checks: {n:,} signed messages (events and counts) of {kiosks:,} kiosks, batches of "
          f"{batch:,}, {rounds} rounds each way, alternating ...", flush=True)
    city, msgs = make_messages(n, kiosks)
    reg = FleetRegistry.from_json(city.registry())

    def once(limits, verify: bool) -> float:
        ingest = Ingest(reg, coalesce=True, verify_signatures=verify, limits=limits)
        handle, take = ingest.handle, ingest.take
        now = time.time()
        t = time.process_time()
        for i, (topic, payload) in enumerate(msgs):
            if i % 1000 == 0:
                now = time.time()  # as the worker: one clock reading per chunk
            handle(topic, payload, now)
            if i % batch == batch - 1:
                take()
        take()
        cpu = time.process_time() - t
        assert ingest.stats.refused == 0, ingest.batch.refused
        return cpu / n * 1e6

    rows = []
    for verify in (True, False):
        off, on = [], []
        for _ in range(rounds):
            off.append(once(None, verify))
            on.append(once(Limits(), verify))
        ratio = statistics.median(o / c for o, c in zip(off, on))  # rate on / rate off
        rows.append((verify, statistics.median(off), statistics.median(on), ratio))
    print("\n| ingest stage, in process (CPU) | checks off: us/msg | checks on: us/msg | rate on / off |"
          "\n|---|---:|---:|---:|")
    for verify, off, on, ratio in rows:
        what = "with signature check (the product)" if verify else "without signature check (parse + checks only)"
        print(f"| {what} | {off:.1f} | {on:.1f} | {ratio:.3f} |")


def python_inspection(centre) -> int:
    """The inspection list as the centre built it before (the same run's baseline): every kiosk and venue
    row fetched, the problems found, sorted and sliced in Python."""
    from kiosk.centre.queries import Scope

    s = centre.settings
    now = s.now()
    rows = []
    for r in centre._kiosk_rows(Scope()):
        if not r["registered"]:
            rows.append(("unknown-venue", r))
        if r["last_ts"] is None:
            rows.append(("never-heard", r))
            continue
        if r["status"] == "offline":
            if now - r["last_ts"] >= s.offline_hours * 3600:
                rows.append(("offline", r))
            continue
        if not r["online"]:
            rows.append(("silent", r))
            continue
        for why, bad in (("camera-down", r["camera_ok"] == 0), ("display-down", r["display_ok"] == 0),
                         ("clock-unsynced", r["clock_synced"] == 0), ("trust-stale", r["trust_stale"] == 1)):
            if bad:
                rows.append((why, r))
    for v in centre.venues(Scope()):
        if v["registered"] and v["scans"] == 0:
            rows.append(("no-scans-today", v))
    rows.sort(key=lambda x: (x[1]["district"], x[1]["ward"], x[0], x[1].get("venue_name") or x[1].get("name"),
                             x[1]["venue_id"]))
    return len(rows[:500])


def bench_signature(n=5000):
    """Per message: parsing, the canonical bytes, the key ring, and Ed25519 through OpenSSL and libsodium."""
    from kiosk.wire import signing
    from kiosk.centre.registry import FleetRegistry
    from kiosk.wire.signing import verify

    city, msgs = make_messages(n, 100)
    reg = FleetRegistry.from_json(city.registry())

    def per(fn) -> float:  # the median of 3 rounds: the machine is shared
        rounds = []
        for _ in range(3):
            t = time.perf_counter()
            for topic, p in msgs:
                fn(topic, p)
            rounds.append((time.perf_counter() - t) / n * 1e6)
        return statistics.median(rounds)

    def before(topic, p):  # verify as it was: the same envelope, cryptography's (OpenSSL) Ed25519
        obj = signing.parse(p)
        sig = obj["sig"]
        body = {k: v for k, v in obj.items() if k != "sig"}
        reg.keys.get(sig["kid"]).key.verify(signing.unb64(sig["value"]), signing.signed_bytes(topic, body))

    parsed = {p: signing.parse(p) for _, p in msgs}
    rows = [("json.loads (baseline)", per(lambda t, p: json.loads(p))),
            ("signing.parse (size cap + json)", per(lambda t, p: signing.parse(p))),
            ("canonical re-serialisation", per(lambda t, p: signing.signed_bytes(
                t, {k: v for k, v in parsed[p].items() if k != "sig"}))),
            ("key ring lookup", per(lambda t, p: reg.keys.get(parsed[p]["sig"]["kid"]))),
            ("verify before: parse + canonical + OpenSSL Ed25519", per(before)),
            ("kiosk.wire.signing.verify now: parse + canonical + libsodium Ed25519 (key cached)",
             per(lambda t, p: verify(p, t, reg.keys)))]
    print("\n| per telemetry message | us |\n|---|---:|")
    for name, us in rows:
        print(f"| {name} | {us:.1f} |")
    print(f"\nverification caps one core at about {1e6 / rows[-1][1]:,.0f} messages/s "
          f"(before: {1e6 / rows[-2][1]:,.0f}); {rows[-2][1] / rows[-1][1]:.2f}x")


def bench_queries(args, pg):
    from kiosk.centre.ingest import Batch
    from kiosk.centre.queries import Centre, Settings
    from kiosk.centre.registry import FleetRegistry
    from kiosk.testing.city import City, seed_history
    from kiosk.centre.store import open_store

    print(f"\nbuilding a city of {args.venues} venues ({args.kiosk_share:.0%} with kiosks), {args.days} days ...",
          flush=True)
    city = City.build(args.venues, args.kiosk_share, seed=3, offline=args.venues // 200,
                      camera_down=args.venues // 400, display_down=args.venues // 400, silent=args.venues // 400)
    db = pg.new_database()
    store = open_store(db)
    t = time.perf_counter()
    store.load_fleet(FleetRegistry.from_json(city.registry()))
    store.import_venues(city.venues)
    t_seed = time.perf_counter()
    seed_history(store, city, args.days, scans_per_day=40)
    seed_s = time.perf_counter() - t_seed
    now = time.time()
    past_day = (city.local_now().date() - __import__("datetime").timedelta(days=3)).isoformat()
    day = city.local_now().date().isoformat()
    b = Batch()
    rng = random.Random(1)
    for k in city.kiosks:
        ts = now - 3 * 86400 if k.condition == "offline" else now
        b.status[(k.site, k.device)] = (k.site, k.device, "offline" if k.condition == "offline" else "online", now)
        b.health[(k.site, k.device)] = (k.site, k.device, int(k.condition != "camera-down"), "",
                                        int(k.condition != "display-down"), 1, 0, 30.0, "", "{}", ts)
        b.seen[(k.site, k.device)] = [ts, 0, None]
        n = rng.randrange(0, 80) if k.condition != "offline" else 0
        b.daily[(k.site, k.device, day)] = (k.site, k.device, day, k.venue.venue_id, n, 0, 0, 0, n, 0, n, None, now)
    store.write(b)
    store.execute("ANALYZE")
    print(f"loaded in {time.perf_counter() - t:.0f} s", flush=True)
    # The clock stands still at load time: the benchmark outlasts --stale-minutes, and every kiosk would
    # turn silent half-way (the run of 2026-12-01 measured its last rows so: 201,506 rows, not 163,506).
    centre = Centre(store, Settings(grace_hour=0, history_cache_seconds=60, clock=lambda: now))
    districts = centre.districts()
    import threading

    import uvicorn

    from centre_helpers import Browser
    from kiosk.centre.accounts import Accounts
    from kiosk.centre.web import create_app

    acc = Accounts({})
    acc.add("city", "benchmark-password", None)
    from conftest import free_port

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(centre, acc, secure_cookies=False), host="127.0.0.1",
                                           port=port, log_level="warning", access_log=False, lifespan="off"))
    th = threading.Thread(target=server.run, daemon=True)
    th.start()
    while not server.started:
        time.sleep(0.05)
    br = Browser(f"http://127.0.0.1:{port}")
    br.login("city", "benchmark-password")
    rows = []

    def measure(name, fn, n=40):
        fn()  # warm (and the history cache)
        times = []
        for i in range(n):
            t = time.perf_counter()
            fn(i)
            times.append((time.perf_counter() - t) * 1000)
        rows.append((name, statistics.median(times), p95(times)))

    cold = []
    for d in districts[:5]:
        centre._cache.clear()
        t = time.perf_counter()
        br.request(f"/district/{d}")
        cold.append((time.perf_counter() - t) * 1000)
    measure("district page (HTML; its 3 charts are separate <img> requests)", lambda i=0: br.request(f"/district/{districts[i % len(districts)]}"))
    measure("district API /api/v1/districts/{d}", lambda i=0: br.json(f"/api/v1/districts/{districts[i % len(districts)]}"))
    measure("district chart /charts/history.svg", lambda i=0: br.request(
        f"/charts/history.svg?district={districts[i % len(districts)]}"))
    measure("baseline: city inspection list built in Python (before: every venue joined, sorted, sliced)",
            lambda i=0: python_inspection(centre), n=5)
    measure("city inspection page (HTML, first 500 rows)", lambda i=0: br.request("/inspection"))
    measure("city inspection API (first 500 rows)", lambda i=0: br.json("/api/v1/inspection?limit=500"))
    measure("district inspection page (HTML)", lambda i=0: br.request(
        f"/inspection?district={districts[i % len(districts)]}"), n=15)
    measure("city inspection API, page 100 (offset 49,500)",
            lambda i=0: br.json("/api/v1/inspection?limit=500&offset=49500"), n=15)
    measure("city inspection list, first 500 rows (query layer)", lambda i=0: centre.inspection(limit=500), n=15)
    measure("city inspection list, every row (query layer)", lambda i=0: centre.inspection(), n=5)
    measure("city inspection CSV, every row (HTTP)", lambda i=0: br.request("/inspection.csv"), n=5)
    measure("city overview API", lambda i=0: br.json("/api/v1/overview"), n=15)
    # Issue 21.8: the city overview before (every venue joined with every kiosk on each request, measured
    # here on the same store) and after (the rollup the ingest keeps).
    from kiosk.centre.queries import Scope

    city_rows = []

    def city_case(name, fn, n=30):
        fn()
        times = []
        for _ in range(n):
            t = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t) * 1000)
        city_rows.append((name, statistics.median(times), p95(times)))

    city_case("before: city overview, the old query (query layer)", lambda: centre._ward_rows(Scope()), n=10)
    city_case("after: city overview from the rollup (query layer)", lambda: centre.overview())
    city_case("after: city overview API /api/v1/overview", lambda: br.json("/api/v1/overview"))
    city_case("after: city overview page / (HTML)", lambda: br.request("/"))
    city_case("after: a past day's overview API ?day=", lambda: br.json(f"/api/v1/overview?day={past_day}"))
    city_case("after: district API /api/v1/districts/{d}", lambda: br.json(f"/api/v1/districts/{districts[0]}"))
    city_case("after: daily report CSV /report.csv", lambda: br.request("/report.csv"))
    t = time.perf_counter()
    store.refresh_rollup()
    recompute_s = time.perf_counter() - t
    total = centre.inspection()["total"]
    server.should_exit = True
    th.join(10)
    print(f"\n| {args.venues:,} venues, {len(city.kiosks):,} kiosks, {args.days} days | median ms | p95 ms |")
    print("|---|---:|---:|")
    for name, med, p in rows:
        print(f"| {name} | {med:.0f} | {p:.0f} |")
    print(f"\n| city overview, {args.venues:,} venues, {args.days} days of history | median ms | p95 ms |")
    print("|---|---:|---:|")
    for name, med, p in city_rows:
        print(f"| {name} | {med:.1f} | {p:.1f} |")
    before_p95 = city_rows[0][2]
    print(f"\nrollup: p95 {before_p95:.0f} ms -> {city_rows[2][2]:.0f} ms on the API "
          f"({before_p95 / max(0.1, city_rows[2][2]):.0f}x); history written through the ingest's upserts "
          f"(rollup deltas) in {seed_s:.0f} s; the whole rollup recomputed (a registry load) in {recompute_s:.1f} s")
    print(f"\ndistrict page with a cold history cache: median {statistics.median(cold):.0f} ms, max {max(cold):.0f} ms; "
          f"inspection rows in the whole city: {total:,}")
    store.close()


def bench_rollup_write(args, pg, kiosks: int = 10_000, days: int = 4, rounds: int = 2):
    """What the rollup costs the store's writes: the same counts written with it and without it (its deltas
    replaced by none), alternating rounds in one run (issue 21.8)."""
    from kiosk.centre import rollup
    from kiosk.centre.registry import FleetRegistry
    from kiosk.testing.city import City, seed_history
    from kiosk.centre.store import open_store

    real = rollup.deltas
    city = City.build(kiosks * 5, 0.2, seed=3)
    print(f"\n| writing {days} days of counts of {len(city.kiosks):,} kiosks (PostgreSQL) | rows/s |")
    print("|---|---:|")
    try:
        for r in range(rounds):
            for on in (True, False):
                rollup.deltas = real if on else (lambda q, daily: [])
                store = open_store(pg.new_database())
                store.load_fleet(FleetRegistry.from_json(city.registry()))
                store.import_venues(city.venues)
                t = time.perf_counter()
                n = seed_history(store, city, days)
                print(f"| round {r + 1}, rollup {'kept' if on else 'off (before)'} | {n / (time.perf_counter() - t):,.0f} |")
                store.close()
    finally:
        rollup.deltas = real


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--venues", type=int, default=200_000)
    ap.add_argument("--kiosk-share", type=float, default=0.2)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--messages", type=int, default=200_000)
    ap.add_argument("--kiosks", type=int, default=20_000)
    ap.add_argument("--batch-max", type=int, default=20_000, help="ingest: the workers' batch_max (the product's "
                    "default; the round of 2026-12-01 used 5,000)")
    ap.add_argument("--skip-ingest", action="store_true")
    ap.add_argument("--skip-checks", action="store_true", help="skip the plausibility checks' in-process table")
    ap.add_argument("--skip-queries", action="store_true")
    ap.add_argument("--skip-metrics", action="store_true", help="skip the metrics' cost (section 4)")
    ap.add_argument("--metrics-rounds", type=int, default=3, help="section 4: rounds of each (alternating)")
    ap.add_argument("--only-metrics", action="store_true", help="run section 4 alone")
    ap.add_argument("--only-rollup-write", action="store_true", help="run the rollup's write cost alone")
    args = ap.parse_args()
    from centre_pg import PostgresServer

    print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    pg = PostgresServer()
    tmp = Path(tempfile.mkdtemp(prefix="bench-centre-"))
    try:
        if args.only_metrics:
            bench_metrics(args, pg, tmp)
            return 0
        if args.only_rollup_write:
            bench_rollup_write(args, pg)
            return 0
        bench_signature()
        if not args.skip_checks:
            bench_checks(args)
        if not args.skip_ingest:
            bench_ingest(args, pg, tmp)
        if not args.skip_queries:
            bench_queries(args, pg)
        if not args.skip_metrics:
            bench_metrics(args, pg, tmp)
    finally:
        pg.stop()
    return 0



# -- 5. inspection campaigns (issue 21) -------------------------------------------------------------------
def bench_campaigns(args, pg):
    """An inspector's day list and a campaign's report at city scale (PostgreSQL, through HTTP).

    The city of section 3 (V venues, D days of history) with the registry's kinds and positions; three
    inspectors per district; a campaign of the city's markets (every district, D days) whose visits of
    every day but the last are recorded. Baselines measured in the same run: the report counted in Python
    from every plan row and visit (what a spreadsheet of the raw visits does), and the day list filtered in
    Python from the campaign's whole plan.
    """
    from centre_helpers import Browser
    from conftest import free_port
    from kiosk.centre import campaigns, inspection_report
    from kiosk.centre.accounts import Accounts
    from kiosk.testing.campaign import places_of
    from kiosk.centre.queries import Centre, Settings
    from kiosk.centre.registry import FleetRegistry
    from kiosk.testing.city import City, seed_history
    from kiosk.centre.store import open_store
    from kiosk.centre.venue_places import load_places
    from kiosk.centre.visits import CHECKLIST, OUTCOMES
    from kiosk.centre.web import create_app
    import threading

    import uvicorn

    print(f"\ncampaigns: building a city of {args.venues:,} venues, {args.days} days of history ...", flush=True)
    t0 = time.perf_counter()
    city = City.build(args.venues, args.kiosk_share, seed=3, offline=args.venues // 200)
    store = open_store(pg.new_database())
    store.load_fleet(FleetRegistry.from_json(city.registry()))
    store.import_venues(city.venues)
    seed_history(store, city, args.days, scans_per_day=40)
    load_places(store, places_of(city.venues))
    now = time.time()
    centre = Centre(store, Settings(grace_hour=0, clock=lambda: now))
    districts = centre.districts()
    acc = Accounts({})
    acc.add("city", "benchmark-password", None)
    for i, d in enumerate(districts):
        for j in range(3):
            acc.add(f"insp-{i}-{j}", "benchmark-password", role="inspector", districts=(d,))
    today = centre.settings.today()
    from datetime import date, timedelta

    first = (date.fromisoformat(today) - timedelta(args.days - 1)).isoformat()
    c = campaigns.Campaign("c-bench-markets", "Markets", first, today, tuple(districts), ("Chợ",), 0.1,
                           tuple(sorted(campaigns.inspectors(acc))), "city", now)
    t = time.perf_counter()
    c, _ = campaigns.create(centre, c, campaigns.inspectors(acc))
    made_s = time.perf_counter() - t
    plan = store.query("SELECT venue_id, inspector, day FROM campaign_plan WHERE campaign_id = ?", [c.campaign_id])
    rng = random.Random(5)
    rows = []
    for n, r in enumerate(plan):
        if r["day"] == today or rng.random() < 0.05:
            continue  # today's visits are still to make; a few were missed
        rows.append((f"v-bench-{n:08d}", c.campaign_id, r["venue_id"], r["inspector"], now - 86400, r["day"],
                     *(int(rng.random() > 0.15) for _ in CHECKLIST), rng.choice(("match", "match", "differs", "")),
                     "", rng.choices(OUTCOMES, (0.6, 0.25, 0.1, 0.05))[0], "", None, None, None, now))
    cols = ("visit_id, campaign_id, venue_id, inspector, at, day, " + ", ".join(CHECKLIST)
            + ", code_check, photo_sha256, outcome, note, lat, lon, accuracy, received_at")
    for i in range(0, len(rows), 500):
        chunk = rows[i:i + 500]
        store.execute(f"INSERT INTO visits ({cols}) VALUES " + ", ".join(
            "(" + ", ".join("?" for _ in chunk[0]) + ")" for _ in chunk), [v for r in chunk for v in r])
    store.execute("ANALYZE")
    print(f"loaded in {time.perf_counter() - t0:.0f} s: {len(plan):,} venues planned ({made_s:.1f} s to draw and "
          f"store the plan), {len(rows):,} visits", flush=True)

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(centre, acc, secure_cookies=False), host="127.0.0.1",
                                           port=port, log_level="warning", access_log=False, lifespan="off"))
    th = threading.Thread(target=server.run, daemon=True)
    th.start()
    while not server.started:
        time.sleep(0.05)
    url = f"http://127.0.0.1:{port}"
    official = Browser(url)
    official.login("city", "benchmark-password")
    phones = []
    for i in range(0, len(districts), max(1, len(districts) // 8)):
        b = Browser(url)
        b.login(f"insp-{i}-0", "benchmark-password")
        phones.append(b)
    days = c.days()
    out = []

    def measure(name, fn, n=40):
        fn(0)
        times = []
        for i in range(n):
            t = time.perf_counter()
            fn(i)
            times.append((time.perf_counter() - t) * 1000)
        out.append((name, statistics.median(times), p95(times)))

    def python_report(i):
        planned = store.query("SELECT venue_id, district, day FROM campaign_plan WHERE campaign_id = ?", [c.campaign_id])
        latest: dict = {}
        for v in store.query("SELECT * FROM visits WHERE campaign_id = ?", [c.campaign_id]):
            if v["venue_id"] not in latest or v["at"] > latest[v["venue_id"]]["at"]:
                latest[v["venue_id"]] = v
        per: dict = {}
        for r in planned:
            d = per.setdefault(r["district"], {"planned": 0, "visited": 0, **{o: 0 for o in OUTCOMES}})
            d["planned"] += 1
            if r["venue_id"] in latest:
                d["visited"] += 1
                d[latest[r["venue_id"]]["outcome"]] += 1
        return per

    def python_day(i):
        who = f"insp-{(i * 7) % len(districts)}-0"
        return [r for r in store.query("SELECT * FROM campaign_plan WHERE campaign_id = ?", [c.campaign_id])
                if r["inspector"] == who and r["day"] == days[i % len(days)]]

    measure("inspector's day list, /field/day page (HTML)",
            lambda i: phones[i % len(phones)].request(f"/field/day?day={days[i % len(days)]}"))
    measure("inspector's day list, /api/v1/field/day",
            lambda i: phones[i % len(phones)].json(f"/api/v1/field/day?day={days[i % len(days)]}"))
    measure("baseline: the day list filtered in Python from the whole plan", python_day, n=10)
    measure("campaign report, /api/v1/inspection-report (city, every district)",
            lambda i: official.json(f"/api/v1/inspection-report?campaign_id={c.campaign_id}"))
    measure("campaign report, query layer (in process, as the baseline)",
            lambda i: inspection_report.report(store, [c.campaign_id]))
    measure("campaign report, one district",
            lambda i: official.json(f"/api/v1/inspection-report?campaign_id={c.campaign_id}&district="
                                    f"{districts[i % len(districts)]}"))
    measure("campaign report page (HTML)", lambda i: official.request(f"/inspection-report?campaign_id={c.campaign_id}"),
            n=20)
    measure("campaign report XLSX", lambda i: official.opener.open(
        f"{url}/inspection-report.xlsx?campaign_id={c.campaign_id}", timeout=60).read(), n=10)
    measure("baseline: the report counted in Python from every plan row and visit", python_report, n=5)
    total = inspection_report.report(store, [c.campaign_id])["total"]
    server.should_exit = True
    th.join(10)
    print(f"\n| {args.venues:,} venues, {args.days} days; campaign of {total['planned']:,} venues, "
          f"{len(rows):,} visits, {len(acc.by_name) - 1} inspectors | median ms | p95 ms |")
    print("|---|---:|---:|")
    for name, med, p in out:
        print(f"| {name} | {med:.0f} | {p:.0f} |")
    day_p95 = max(p for name, _, p in out if name.startswith("inspector's"))
    report_p95 = max(p for name, _, p in out if name.startswith("campaign report, /api"))
    layer = next(med for name, med, _ in out if name.startswith("campaign report, query layer"))
    base_med = next(med for name, med, _ in out if name.startswith("baseline: the report"))
    print(f"\ntargets: day list p95 {day_p95:.0f} ms (<= 150: {'met' if day_p95 <= 150 else 'MISSED'}), "
          f"campaign report p95 {report_p95:.0f} ms (<= 300: {'met' if report_p95 <= 300 else 'MISSED'}); "
          f"the query layer's median against the Python baseline's (both in process): "
          f"{layer:.0f} ms against {base_med:.0f} ms ({base_med / max(layer, 1e-9):.1f}x)")
    store.close()


def campaigns_only() -> int:
    """``--only-campaigns``: section 5 alone (it needs PostgreSQL only)."""
    ap = argparse.ArgumentParser(description="bench_centre.py section 5: inspection campaigns")
    ap.add_argument("--only-campaigns", action="store_true")
    ap.add_argument("--venues", type=int, default=200_000)
    ap.add_argument("--kiosk-share", type=float, default=0.2)
    ap.add_argument("--days", type=int, default=30)
    args = ap.parse_args()
    from centre_pg import PostgresServer

    print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    pg = PostgresServer()
    try:
        bench_campaigns(args, pg)
    finally:
        pg.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(campaigns_only() if "--only-campaigns" in sys.argv else main())
