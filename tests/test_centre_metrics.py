"""The centre's metrics (issue 23 item 1), scraped and parsed with prometheus_client's own parser.

The whole layout a city runs: two ingest workers (``kiosk centre --no-web``) in one shared subscription and
a dashboard process (``kiosk centre --no-ingest``), each with ``--metrics-listen``, on a real mosquitto and
a real PostgreSQL; a simulated city publishes its signed messages, an attacker invents kiosks and topics.
Scraped while the city publishes and after: counters only grow, every message is counted once
(received = verified + refused + ignored + superseded), what was verified is stored, refusals are counted
by topic kind and reason only (500 invented kiosks add no series), the fleet's state per district is the
city's, every metric the alert rules and the Grafana dashboard use is in the scrapes, and the dashboard's
own ``/metrics`` is for a city account only. In-process tests hold the smaller promises (bounded labels,
the fleet read cached, extreme stored values, the age of the oldest waiting message).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from kiosk.centre.accounts import Accounts
from kiosk.centre.ingest import REFUSAL_REASONS, TOPIC_KINDS, Ingest
from kiosk.centre.metrics import MAX_DISTRICTS, CentreMetrics, FleetGauges
from kiosk.centre.queries import Centre, Settings
from kiosk.centre.store import open_store
from kiosk.testing.city import CitySimulator
from centre_helpers import Browser, registry_of, small_city, wait_for, write_city, write_extremes
from centre_pg import postgres_server  # noqa: F401
from conftest import free_port
from kiosk.testing.clock import FakeClock

ROOT = Path(__file__).resolve().parent.parent
MONITORING = ROOT / "docs" / "monitoring"
PASSWORD = "metrics are for the city"


def scrape(port: int) -> dict[str, list]:
    """``/metrics`` on a metrics listener, parsed: sample name -> [(labels, value)]."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        assert r.headers["Content-Type"].startswith("text/plain")
        return parse(r.read().decode())


def parse(text: str) -> dict[str, list]:
    out: dict[str, list] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def value(samples: dict, name: str, **labels) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    return sum(v for ls, v in samples.get(name, []) if all(ls.get(k) == w for k, w in labels.items()))


def probe(port: int, path: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def names_used() -> set[str]:
    """Every metric name the alert rules and the Grafana dashboard use (Prometheus's own ``up`` aside)."""
    text = (MONITORING / "centre-alerts.yml").read_text()
    exprs = [t["expr"] for p in json.loads((MONITORING / "centre-grafana.json").read_text())["panels"]
             for t in p.get("targets", [])]
    return set(re.findall(r"\b(?:kiosk_centre|process)_[a-z_]+\b", text + "\n".join(exprs)))


class Centre3:
    """Two ingest workers and a dashboard process, as the systemd units run them."""

    def __init__(self, tmp: Path, broker_url: str, db: str, reg: Path, ven: Path):
        self.accounts = tmp / "accounts.json"
        acc = Accounts()
        acc.add("city", PASSWORD)
        acc.add("district", PASSWORD, "Quận Ba Đình")
        acc.save(self.accounts)
        self.ports = {"w1": free_port(), "w2": free_port(), "dash": free_port(), "web": free_port()}
        common = ["--db", db, "--registry", str(reg), "--venues", str(ven), "--timezone", "Asia/Ho_Chi_Minh"]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.logs = {k: tmp / f"{k}.log" for k in ("w1", "w2", "dash")}
        self.procs = []
        for w in ("w1", "w2"):
            self.procs.append(subprocess.Popen(
                [sys.executable, "-m", "kiosk", "centre", "--no-web", "--broker", broker_url, "--share-group", "g",
                 "--client-id", f"centre-{w}", "--metrics-listen", f"127.0.0.1:{self.ports[w]}", *common],
                stdout=subprocess.DEVNULL, stderr=self.logs[w].open("wb"), env=env, cwd=ROOT))
        self.procs.append(subprocess.Popen(
            [sys.executable, "-m", "kiosk", "centre", "--no-ingest", "--listen", f"127.0.0.1:{self.ports['web']}",
             "--metrics-listen", f"127.0.0.1:{self.ports['dash']}", "--accounts", str(self.accounts),
             "--insecure-cookies", *common], stdout=subprocess.DEVNULL, stderr=self.logs["dash"].open("wb"), env=env,
            cwd=ROOT))

    def ready(self) -> bool:
        for p, log in zip(self.procs, self.logs.values()):
            assert p.poll() is None, log.read_text()
        try:
            return all(probe(self.ports[k], "/readyz")[0] == 200 for k in ("w1", "w2", "dash"))
        except (urllib.error.URLError, ConnectionError):
            return False

    def log_text(self) -> str:
        return "\n".join(f"--- {k}\n{p.read_text()[-3000:]}" for k, p in self.logs.items())

    def stop(self) -> None:
        for p in self.procs:
            p.send_signal(signal.SIGTERM if p is not self.procs[-1] else signal.SIGINT)
        for p in self.procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def test_metrics_scraped_during_a_simulated_citys_ingest(broker, tmp_path, postgres_server):
    city = small_city(venues=40, share=0.6, offline=2, silent=1)
    reg, ven = write_city(city, tmp_path)
    db = postgres_server.new_database()
    open_store(db).close()  # migrated once, before three processes start on it
    centre = Centre3(tmp_path, broker.url, db, reg, ven)
    sim = None
    try:
        assert wait_for(centre.ready, 60, 0.2), "the centre's processes did not become ready"
        for k in ("w1", "w2", "dash"):
            assert probe(centre.ports[k], "/healthz") == (200, {"status": "alive"})
        assert probe(centre.ports["w1"], "/readyz") == (200, {"status": "ready", "broker": "ok", "store": "ok"})
        assert probe(centre.ports["dash"], "/readyz") == (200, {"status": "ready", "store": "ok"})

        sim = CitySimulator(broker.url, city, connections=2)
        sim.connect()
        announced = time.time()  # the silent kiosk's last message is an hour before this
        sim.announce()
        scrapes = []
        for _ in range(4):  # scraped while the city publishes
            sim.run(0, 0, checkins=60)
            scrapes.append([scrape(centre.ports[w]) for w in ("w1", "w2")])
        sim.finish()
        published = sim.messages
        attacks = attack(broker.port, city)
        sent = published + sum(attacks.values())

        def workers() -> list[dict]:
            return [scrape(centre.ports[w]) for w in ("w1", "w2")]

        names = ("kiosk_centre_messages_received_total", "kiosk_centre_messages_verified_total",
                 "kiosk_centre_messages_refused_total", "kiosk_centre_messages_ignored_total",
                 "kiosk_centre_messages_superseded_total", "kiosk_centre_messages_stored_total",
                 "kiosk_centre_batches_written_total", "kiosk_centre_batch_write_seconds_count",
                 "kiosk_centre_batches_dropped_total", "kiosk_centre_store_errors_total")
        final, both = [], {}

        def settled() -> bool:
            """Everything received, and taken through a batch (verified, refused, ignored or superseded)."""
            final[:] = workers()
            both.update({n: sum(value(s, n) for s in final) for n in names})
            return both["kiosk_centre_messages_received_total"] == sent and both[
                "kiosk_centre_messages_received_total"] == sum(both[n] for n in names[1:5]) and both[
                "kiosk_centre_messages_stored_total"] == both["kiosk_centre_messages_verified_total"]
        assert wait_for(settled, 60, 0.2), (both, sent)
        scrapes.append(final)
        # Counters only grow from scrape to scrape, in each worker.
        for name in ("kiosk_centre_messages_received_total", "kiosk_centre_messages_verified_total",
                     "kiosk_centre_messages_stored_total", "kiosk_centre_batches_written_total"):
            for w in range(2):
                seen = [value(s[w], name) for s in scrapes]
                assert seen == sorted(seen), (name, seen)
        # Every message counted once (settled), what was verified is stored, no batch lost.
        assert both["kiosk_centre_messages_stored_total"] == both["kiosk_centre_messages_verified_total"] > 0
        assert both["kiosk_centre_batch_write_seconds_count"] == both["kiosk_centre_batches_written_total"] > 0
        # (a write attempt may fail and be retried: two workers' transactions on the same rows can deadlock)
        assert both["kiosk_centre_batches_dropped_total"] == 0, centre.log_text()
        assert all(value(s, "kiosk_centre_messages_received_total") > 0 for s in final)  # the broker split them
        # Refusals by topic kind and reason: the attacker's 500 kiosks and odd topics add no series.
        refused = Counter()
        for s in final:
            for labels, v in s.get("kiosk_centre_messages_refused_total", []):
                refused[(labels["kind"], labels["reason"])] += v
        assert dict(refused) == {("status", "unknown-kiosk"): attacks["invented status"],
                                 ("counts", "unknown-kiosk"): attacks["invented counts"],
                                 ("counts", "unsigned"): attacks["unsigned"],
                                 ("counts", "implausible"): attacks["implausible"]}
        assert both["kiosk_centre_messages_ignored_total"] >= attacks["odd topics"]
        for s in final:
            assert value(s, "kiosk_centre_broker_connected") == 1
            assert value(s, "kiosk_centre_inbox_capacity") > 0 and value(s, "kiosk_centre_inbox_messages") >= 0
            assert 0 <= value(s, "kiosk_centre_oldest_waiting_message_seconds") < 60
            assert value(s, "kiosk_centre_info", role="ingest") == 1
            assert "kiosk_centre_kiosks" not in s  # the fleet's state: from the dashboard only (not N times)

        # The dashboard process: the fleet per district, as the city is.
        want = {}
        for k in city.kiosks:
            d = want.setdefault(k.venue.district, Counter())
            d["known"] += 1
            d[{"offline": "offline", "silent": "silent"}.get(k.condition, "online")] += 1

        def fleet() -> dict:
            s = scrape(centre.ports["dash"])
            got = {}
            for labels, v in s.get("kiosk_centre_kiosks_known", []):
                got.setdefault(labels["district"], Counter())["known"] = int(v)
            for labels, v in s.get("kiosk_centre_kiosks", []):
                if v:
                    got.setdefault(labels["district"], Counter())[labels["state"]] = int(v)
            return got
        assert wait_for(lambda: fleet() == want, 30, 0.2), (fleet(), want)
        dash = scrape(centre.ports["dash"])
        assert value(dash, "kiosk_centre_info", role="dashboard") == 1
        assert "kiosk_centre_messages_received_total" not in dash
        newest = dash["kiosk_centre_newest_kiosk_message_age_seconds"]
        since = time.time() - announced + 2
        assert {ls["district"] for ls, _ in newest} == set(want) and all(0 <= v <= since for _, v in newest)
        oldest = max(v for _, v in dash["kiosk_centre_oldest_kiosk_message_age_seconds"])
        assert 3600 - 2 <= oldest <= 3600 + since  # the silent kiosk, last heard an hour before the announce

        # Every metric the alert rules and the Grafana dashboard use exists in these scrapes.
        seen = set(dash) | {n for s in final for n in s}
        missing = names_used() - seen
        assert not missing, f"used by docs/monitoring but not exposed: {sorted(missing)}"

        # The dashboard's own /metrics: a city account's, nobody else's.
        web = Browser(f"http://127.0.0.1:{centre.ports['web']}")
        status, body, _ = web.request("/metrics")
        assert status == 401 and json.loads(body) == {"error": "login required"}
        assert web.login("district", PASSWORD) == 200
        assert web.request("/metrics")[0] == 403
        web = Browser(f"http://127.0.0.1:{centre.ports['web']}")
        assert web.login("city", PASSWORD) == 200
        status, body, headers = web.request("/metrics")
        assert status == 200 and {k.lower(): v for k, v in headers.items()}["content-type"].startswith("text/plain")
        assert value(parse(body), "kiosk_centre_kiosks_known") == len(city.kiosks)
        assert web.json("/readyz") == (200, {"status": "ready", "store": "ok"})  # no session needed
    finally:
        if sim is not None:
            sim.close()
        centre.stop()


def attack(port: int, city) -> dict[str, int]:
    """What a compromised kiosk or a stranger on the broker sends: counted, and refused or ignored."""
    import paho.mqtt.client as mqtt

    k = city.kiosks[0]
    day = city.local_now().date().isoformat()
    items = []
    for i in range(250):  # 500 invented kiosks' status and counts
        items.append((f"checkin/v1/evil-{i}/k-{i}/status", b"online"))
        items.append((f"checkin/v1/evil-{i}/k-{i}/counts", json.dumps({"day": day, "seq": 1}).encode()))
    for i in range(20):
        items.append((k.topic("counts"), json.dumps({**k.counts(day, time.time()), "seq": 900 + i}).encode()))
    boasts = [k.signed("counts", {**k.counts(day, time.time()), "seq": 10_000 + i, "accepted": 10 ** 9})
              for i in range(5)]
    items += [(k.topic("counts"), b) for b in boasts]
    odd = [(f"checkin/v1/{k.site}/{k.device}/whatever-{i}", b"x") for i in range(40)]
    items += odd
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="stranger")
    c.connect("127.0.0.1", port)
    c.loop_start()
    for info in [c.publish(t, p, qos=1) for t, p in items]:
        info.wait_for_publish(10)
    c.disconnect()
    c.loop_stop()
    return {"invented status": 250, "invented counts": 250, "unsigned": 20, "implausible": 5, "odd topics": 40}


# -- in process ----------------------------------------------------------------------------------------

def test_refusal_labels_stay_bounded_whatever_the_topics():
    city = small_city(venues=6, share=1.0)
    ingest = Ingest(registry_of(city))
    k = city.kiosks[0]
    for i in range(3000):
        ingest.handle(f"checkin/v1/s-{i}/d-{i}/{('counts', 'info', 'x' * (i % 7), 'status')[i % 4]}", b"{}")
        ingest.handle(f"not/a/kiosk/{i}", b"{}")
        ingest.handle(k.topic("counts"), b'{"sig": {"v": 1, "alg": "Ed25519", "kid": "' + str(i).encode() + b'"}}')
    ingest.take()
    labels = set(ingest.stats.refusals)
    assert labels <= {(kind, reason) for kind in (*TOPIC_KINDS, "other") for reason in (*REFUSAL_REASONS, "other")}
    assert len(labels) <= 4, labels
    assert sum(ingest.stats.refusals.values()) == ingest.stats.refused


class CountingStore:
    """A store that counts its queries (the fleet's read must be cached)."""

    def __init__(self, store):
        self.store, self.queries = store, 0
        self.dialect = store.dialect

    def query(self, sql, params=()):
        self.queries += 1
        return self.store.query(sql, params)


def test_the_fleet_is_read_once_per_cache_interval_and_survives_extreme_stored_values(tmp_path):
    store = open_store(tmp_path / "centre.sqlite3")
    city = small_city(venues=20, share=1.0)
    store.load_fleet(registry_of(city))
    store.import_venues(city.venues)
    write_extremes(store, city)  # NaN, infinities, text where numbers belong, in every kiosk's state
    counting = CountingStore(store)
    clock = FakeClock(100.0)
    fleet = FleetGauges(Centre(counting, Settings()), cache_seconds=5.0, clock=clock)
    metrics = CentreMetrics(centre=Centre(counting, Settings()))
    metrics.fleet = metrics.collector.fleet = fleet
    def fleet_samples() -> dict:
        return {n: v for n, v in parse(metrics.render()[0].decode()).items() if "kiosk_message" in n
                or n.startswith("kiosk_centre_kiosks")}

    first = fleet_samples()
    assert counting.queries == 1
    for _ in range(10):
        assert fleet_samples() == first
    assert counting.queries == 1
    clock.advance(5.0)
    metrics.render()
    assert counting.queries == 2
    assert value(first, "kiosk_centre_kiosks_known") == len(city.kiosks) + 10  # the odd kiosks write_extremes adds
    for name in ("kiosk_centre_newest_kiosk_message_age_seconds", "kiosk_centre_oldest_kiosk_message_age_seconds"):
        assert all(0 <= v < float("inf") for _, v in first.get(name, [])), name
    store.close()


def test_districts_beyond_the_label_cap_are_folded():
    rows = [{"district": f"D{i:04d}", "known": 1, "never_heard": 1, "offline": 0, "online": 0, "newest": None,
             "oldest": None} for i in range(MAX_DISTRICTS + 50)] + [
        {"district": "", "known": 2, "never_heard": 0, "offline": 2, "online": 0, "newest": 10.0, "oldest": 5.0}]
    folded = FleetGauges._fold(rows, now=100.0)
    names = [d["district"] for d in folded]
    assert len(names) == MAX_DISTRICTS + 1 and "(other)" in names and "(no district)" in names
    other = next(d for d in folded if d["district"] == "(other)")
    # "(no district)" sorts first and takes a label: D0000..D0498 are the rest of the cap, D0499..D0549 fold
    assert other["known"] == other["never_heard"] == 51
    none = next(d for d in folded if d["district"] == "(no district)")
    assert none["offline"] == 2 and none["newest"] == 90.0 and none["oldest"] == 95.0


def test_the_oldest_waiting_message_is_the_oldest_not_yet_stored(tmp_path):
    from kiosk.centre.watch import IngestWorker

    city = small_city(venues=4, share=1.0)
    store = open_store(tmp_path / "c.sqlite3")
    w = IngestWorker("mqtt://127.0.0.1:9", store, registry_of(city))
    assert w.oldest_waiting_seconds() == 0.0
    now = time.monotonic()
    w._inbox.extend([("checkin/v1/a/b/status", b"online", now - 30), ("checkin/v1/a/b/status", b"online", now - 2)])
    assert 30 <= w.oldest_waiting_seconds() < 35 and w.inbox_depth() == 2
    w.flush()  # written: nothing waits
    assert w.oldest_waiting_seconds() == 0.0 and w.inbox_depth() == 0
    assert w.received == 0  # not from the broker
    store.close()


def test_a_failed_pruning_is_a_store_error():
    from kiosk.centre.retention import Retention

    class Refusing:
        def prune(self, today, keep_days):
            raise OSError("the database is read-only")

    retention = Retention(Refusing(), Settings(), every_seconds=3600)
    metrics = CentreMetrics(retention=retention, role="ingest")
    retention.start()
    try:
        assert wait_for(lambda: retention.failures == 1, 10)
    finally:
        retention.stop()
    assert value(parse(metrics.render()[0].decode()), "kiosk_centre_store_errors_total", operation="prune") == 1
