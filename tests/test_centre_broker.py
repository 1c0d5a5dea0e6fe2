"""The centre against a real broker: poisoned retained state refused, no event missed while away, workers split."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from pathlib import Path

import paho.mqtt.client as mqtt

from kiosk.centre.store import open_store
from kiosk.centre.watch import IngestWorker
from kiosk.testing.city import CitySimulator
from centre_helpers import centre_over, registry_of, small_city, wait_for, write_city

ROOT = Path(__file__).resolve().parent.parent


def cli(*args, timeout=60):
    return subprocess.run([sys.executable, "-m", "kiosk", *args], capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT)


def publish_raw(url_port: int, items, retain=True):
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="attacker")
    c.connect("127.0.0.1", url_port)
    c.loop_start()
    infos = [c.publish(t, p, qos=1, retain=retain) for t, p in items]
    for i in infos:
        i.wait_for_publish(5)
    c.disconnect()
    c.loop_stop()


def test_poisoned_retained_counts_and_invented_kiosks_are_refused(broker, tmp_path):
    city = small_city(venues=10, share=0.5)
    reg, ven = write_city(city, tmp_path)
    sim = CitySimulator(broker.url, city, connections=2)
    sim.connect()
    sim.announce()
    sim.run(0, 0, checkins=40)
    sim.finish()
    sim.close()
    victim = city.kiosks[0]
    day = city.local_now().date().isoformat()
    poison = {**victim.counts(day, time.time()), "seq": 10 ** 15, "accepted": 999_999}
    publish_raw(broker.port, [(victim.topic("counts"), json.dumps(poison).encode())] + [
        (f"checkin/v1/hn-666/ghost-{i}/{leaf}", body) for i in range(3)
        for leaf, body in (("status", b"online"), ("info", b'{"venue_id":"GHOST","venue_name":"Ghost"}'),
                           ("counts", json.dumps({**poison, "accepted": 5000}).encode()))])
    out = cli("monitor", "--broker", broker.url, "--registry", str(reg), "--venues", str(ven), "--once", "--json",
              "--settle", "0.5")
    assert out.returncode == 0, out.stderr
    rep = json.loads(out.stdout)
    # The victim's retained counts are the poison now: the centre holds no figure from it at all.
    want = sum(k.scans for k in city.kiosks[1:])
    assert rep["totals"]["scans"] == want
    assert rep["totals"]["kiosks"] == len(city.kiosks)
    assert not any(k["site"] == "hn-666" for k in rep["kiosks"])
    assert rep["refused"]["by_reason"] == {"unsigned": 1, "unknown-kiosk": 9}
    assert {t["topic"] for t in rep["refused"]["topics"]} >= {victim.topic("counts"),
                                                             "checkin/v1/hn-666/ghost-0/counts"}
    # The real kiosk republishes: its own figures come back, the poison never did anything.
    sim = CitySimulator(broker.url, city, connections=1)
    sim.connect()
    sim.finish()
    sim.close()
    # (checked this time in a verifier process of its own, as --verify-processes 1 runs it)
    out = cli("monitor", "--broker", broker.url, "--registry", str(reg), "--once", "--json", "--settle", "0.5",
              "--verify-processes", "1")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["totals"]["scans"] == sum(k.scans for k in city.kiosks)


def _events_seen(worker):
    seen = []
    handle = worker.ingest.handle

    def spy(topic, payload, now=None):
        ok = handle(topic, payload, now)
        if ok and topic.endswith("/events"):
            seen.append((topic, json.loads(payload)["seq"]))
        return ok

    worker.ingest.handle = spy
    return seen


def test_events_published_while_the_centre_is_away_arrive_when_it_returns(broker, tmp_path):
    """Issue 12.7: a persistent session (stable client id, session expiry) loses no event; a clean one would."""
    city = small_city(venues=3, share=1.0)
    registry = registry_of(city)
    store = open_store(tmp_path / "centre.sqlite3")
    store.load_fleet(registry)

    def worker(client_id):
        w = IngestWorker(broker.url, store, registry, client_id=client_id, flush_seconds=0.1)
        seen = _events_seen(w)
        w.start()
        assert w.connected.wait(5)
        return w, seen

    w, seen = worker("centre-a")
    other, other_seen = worker("")  # no stable id: a fresh clean session each time (the old mistake)
    other.stop()
    sim = CitySimulator(broker.url, city, connections=1)
    sim.connect()
    sim.run(0, 0, checkins=30)
    assert wait_for(lambda: len(seen) == 30)
    w.stop()  # stopped mid-stream
    sim.run(0, 0, checkins=50)  # published while the centre is away
    sim.finish()
    w2, seen2 = worker("centre-a")
    assert wait_for(lambda: len(seen2) >= 50, 10), len(seen2)
    w2.stop()
    got = sorted({s for s in seen + seen2})
    want = sorted((k.topic("events"), seq) for k in city.kiosks for seq in range(1, k.seq + 1))
    assert got == want  # every event once the centre is back, none lost
    fresh, fresh_seen = worker("")
    assert not wait_for(lambda: fresh_seen, 1.0)
    fresh.stop()
    sim.close()


def test_shared_subscription_workers_write_one_store(broker, tmp_path):
    city = small_city(venues=8, share=1.0)
    store = open_store(tmp_path / "centre.sqlite3")
    centre, _ = centre_over(store, city)
    registry = registry_of(city)
    workers = [IngestWorker(broker.url, store, registry, share_group="centre", client_id=f"w{i}", flush_seconds=0.1)
               for i in range(2)]
    for w in workers:
        w.start()
        assert w.connected.wait(5)
    sim = CitySimulator(broker.url, city, connections=2)
    sim.connect()
    sim.announce()
    sim.run(0, 0, checkins=400)
    sim.finish()
    sim.close()
    want = sum(k.scans for k in city.kiosks)
    assert wait_for(lambda: [w.flush() for w in workers] and centre.overview()["totals"]["scans"] == want, 15)
    assert all(w.ingest.stats.applied > 0 for w in workers)  # the broker split the fleet
    for w in workers:
        w.stop()


def test_a_stolen_kiosks_retained_lies_are_refused_and_listed(broker, tmp_path):
    """Issue 19.1 and 19.3 through a real broker: a thief with a kiosk's device key retains impossible counts and
    health; ``kiosk monitor --once`` refuses them as implausible, lists the kiosk, and prints without a traceback."""
    city = small_city(venues=10, share=0.5)
    reg, ven = write_city(city, tmp_path)
    sim = CitySimulator(broker.url, city, connections=2)
    sim.connect()
    sim.announce()
    sim.run(0, 0, checkins=40)
    sim.finish()
    sim.close()
    victim, bystander = city.kiosks[0], city.kiosks[1]
    day = city.local_now().date().isoformat()
    now = time.time()
    lies = {**victim.counts(day, now), "accepted": 10 ** 12, "seq": victim.seq + 1}
    sick = {**victim.health(now), "trust_age_hours": 1e308, "ts": "9999-12-31T23:59:59.000Z"}
    unsigned = {**bystander.health(now), "trust_age_hours": 10 ** 400}
    publish_raw(broker.port, [(victim.topic("counts"), victim.signed("counts", lies)),
                              (victim.topic("health"), victim.signed("health", sick)),
                              (bystander.topic("health"), json.dumps(unsigned).encode())])
    args = ["monitor", "--broker", broker.url, "--registry", str(reg), "--venues", str(ven), "--once",
            "--settle", "0.5"]
    out = cli(*args, "--json")
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
    assert out.stderr.count("refused") == 2  # a line per kiosk and reason (its counts and health: one)
    rep = json.loads(out.stdout)
    assert rep["totals"]["scans"] == sum(k.scans for k in city.kiosks[1:])  # the lie counts for nothing
    assert rep["refused"]["by_reason"] == {"implausible": 2, "unsigned": 1}
    listed = [r for r in rep["inspection"] if r["why"] == "implausible"]
    assert [(r["site"], r["device"]) for r in listed] == [(victim.site, victim.device)]
    assert "health.trust_age_hours" in listed[0]["detail"] or "counts.scans" in listed[0]["detail"]
    table_out = cli(*args)
    assert table_out.returncode == 0 and "implausible" in table_out.stdout, table_out.stderr
    # The genuine kiosk publishes again: its figures are its own, nothing of the lie stuck
    sim = CitySimulator(broker.url, city, connections=1)
    sim.connect()
    sim.announce()
    sim.finish()
    sim.close()
    rep = json.loads(cli(*args, "--json").stdout)
    assert rep["totals"]["scans"] == sum(k.scans for k in city.kiosks)
    assert rep["refused"]["total"] == 0
