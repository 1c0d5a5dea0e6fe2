"""Health probes (issue 23 item 2): ``/healthz`` and ``/readyz`` without a session, one word per check.

An ingest worker on a real mosquitto and a real PostgreSQL: the readiness probe fails while the broker is
stopped and again while the database is stopped, says which with one word, and recovers when each comes
back (the worker then stores what kiosks send). Asked on the metrics listener and on the dashboard's app.
On SQLite, a store file deleted under the running centre is not ready either.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest
from starlette.testclient import TestClient

from kiosk.centre.accounts import Accounts
from kiosk.centre.health import Health
from kiosk.centre.metrics import CentreMetrics, MetricsListener
from kiosk.centre.queries import Centre
from kiosk.centre.store import open_store
from kiosk.centre.watch import IngestWorker
from kiosk.centre.web import create_app
from kiosk.testing.city import CitySimulator
from centre_helpers import registry_of, small_city, wait_for
from centre_pg import PostgresServer
from test_centre_metrics import parse, value
from test_centre_web_security import login


def get(port: int, path: str) -> tuple[int, dict, dict]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
            return r.status, json.loads(r.read()), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read()), dict(e.headers)


@pytest.fixture
def own_postgres():
    """A PostgreSQL of this test's own, to stop and start."""
    server = PostgresServer()
    yield server
    server.stop()


def test_readiness_fails_while_the_broker_or_the_store_is_stopped(broker, own_postgres):
    city = small_city(venues=6, share=1.0)
    url = own_postgres.new_database()
    store = open_store(url)
    store.load_fleet(registry_of(city))
    worker = IngestWorker(broker.url, store, registry_of(city), client_id="centre-health", flush_seconds=0.1)
    health = Health(store, worker, cache_seconds=0.0, timeout=1.0)
    metrics = CentreMetrics(worker=worker, health=health, role="ingest")
    listener = MetricsListener(metrics, health, "127.0.0.1", 0)
    listener.start()
    acc = Accounts()
    acc.add("city", "a password for the city")
    app = TestClient(create_app(Centre(store), acc, secure_cookies=False, health=health, metrics=metrics))
    port = listener.port
    worker.start()

    def ready() -> dict:
        return get(port, "/readyz")[1]

    def stored() -> float:
        return value(parse(get_text(port, "/metrics")), "kiosk_centre_messages_stored_total")

    sim = None
    try:
        assert wait_for(lambda: ready() == {"status": "ready", "broker": "ok", "store": "ok"}, 20, 0.1)
        status, body, headers = get(port, "/readyz")
        assert status == 200 and headers["Server"] == "kiosk-centre"  # no version in a header either
        assert app.get("/readyz").json() == {"status": "ready", "broker": "ok", "store": "ok"}

        broker.stop()
        assert wait_for(lambda: ready() == {"status": "not ready", "broker": "down", "store": "ok"}, 20, 0.1)
        assert get(port, "/readyz")[0] == 503 and app.get("/readyz").status_code == 503
        assert get(port, "/healthz")[:2] == (200, {"status": "alive"})  # alive all the same: no restart needed
        broker.start()
        assert wait_for(lambda: ready()["status"] == "ready", 30, 0.1), ready()

        assert login(app, "city", "a password for the city").status_code == 303
        assert app.get("/api/v1/overview").status_code == 200
        own_postgres.halt()
        assert wait_for(lambda: ready() == {"status": "not ready", "broker": "ok", "store": "down"}, 20, 0.1)
        r = app.get("/readyz")
        assert r.status_code == 503 and r.json() == {"status": "not ready", "broker": "ok", "store": "down"}
        # The dashboard says the store is down, in a sentence, on the API and the pages: never a 500.
        r = app.get("/api/v1/overview")
        assert r.status_code == 503 and "store cannot be reached" in r.json()["error"]
        r = app.get("/", follow_redirects=False)
        assert r.status_code == 503 and "store cannot be reached" in r.text and "Traceback" not in r.text
        assert app.get("/healthz").json() == {"status": "alive"}
        scraped = parse(get_text(port, "/metrics"))
        assert value(scraped, "kiosk_centre_store_errors_total", operation="probe") >= 1
        own_postgres.resume()
        assert wait_for(lambda: ready() == {"status": "ready", "broker": "ok", "store": "ok"}, 20, 0.1)
        # The same session answers again at once: reads and the session's own writes reconnect.
        assert app.get("/api/v1/overview").status_code == 200

        # Back in service: what kiosks send now is stored.
        before = stored()
        sim = CitySimulator(broker.url, city, connections=1)
        sim.connect()
        sim.announce()
        sim.finish()
        assert wait_for(lambda: store.query("SELECT COUNT(*) AS n FROM kiosk_info")[0]["n"] == len(city.kiosks),
                        30, 0.1)
        assert stored() >= before + len(city.kiosks)
    finally:
        if sim is not None:
            sim.close()
        worker.stop()
        listener.stop()
        store.close()


def get_text(port: int, path: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
        return r.read().decode()


def test_a_sqlite_store_deleted_under_the_centre_is_not_ready(tmp_path):
    path = tmp_path / "centre.sqlite3"
    store = open_store(path)
    health = Health(store, cache_seconds=0.0)
    app = TestClient(create_app(Centre(store), Accounts(), secure_cookies=False, health=health))
    try:
        assert app.get("/readyz").json() == {"status": "ready", "store": "ok"}
        path.unlink()
        r = app.get("/readyz")
        assert r.status_code == 503 and r.json() == {"status": "not ready", "store": "down"}
        assert app.get("/healthz").status_code == 200
    finally:
        store.close()


def test_probes_are_checked_once_per_interval_whatever_the_number_asking(tmp_path):
    from kiosk.testing.clock import FakeClock

    store = open_store(tmp_path / "centre.sqlite3")
    clock = FakeClock(10.0)
    health = Health(store, cache_seconds=2.0, clock=clock)
    probes = []
    real = store.probe
    store.probe = lambda timeout: (probes.append(timeout), real(timeout))
    try:
        for _ in range(50):
            assert health.answer("/readyz") == (200, b'{"status": "ready", "store": "ok"}')
        assert len(probes) == 1
        clock.advance(2.0)
        health.answer("/readyz")
        assert len(probes) == 2
    finally:
        store.close()


def test_a_worker_whose_ingest_thread_died_is_not_alive(tmp_path):
    city = small_city(venues=2, share=1.0)
    store = open_store(tmp_path / "centre.sqlite3")
    worker = IngestWorker("mqtt://127.0.0.1:9", store, registry_of(city))
    health = Health(store, worker)
    assert health.answer("/healthz") == (200, b'{"status": "alive"}')  # not started yet: nothing has died
    worker.start()
    try:
        assert health.answer("/healthz")[0] == 200
        worker._stop.set()  # what a stage thread's exit looks like from outside: it is gone
        worker._arrived.set()
        assert wait_for(lambda: not worker._stage.is_alive(), 10)
        assert health.answer("/healthz") == (503, b'{"status": "stopped"}')
    finally:
        worker.stop()
        store.close()
