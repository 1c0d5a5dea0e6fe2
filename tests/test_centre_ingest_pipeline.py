"""Coalescing before verifying, and the worker's pipeline: the same figures, forgeries still refused, nothing lost."""

from __future__ import annotations

import json
import random
import time

import kiosk.centre.ingest as ingest_module
from kiosk.centre.ingest import Ingest
from kiosk.centre.store import open_store
from kiosk.centre.watch import IngestWorker
from kiosk.testing.city import CitySimulator
from kiosk.wire.signing import generate_key, sign_bytes
from centre_helpers import centre_over, registry_of, small_city, wait_for
from test_centre_ingest import announce, scans


def counting_verifications(monkeypatch) -> list:
    """Every signature check the ingest makes, recorded as (topic, seq claimed)."""
    calls = []
    real = ingest_module.verify_parsed

    def spy(body, sig, topic, keys):
        calls.append((topic, body.get("seq")))
        return real(body, sig, topic, keys)

    monkeypatch.setattr(ingest_module, "verify_parsed", spy)
    return calls


def figures(centre) -> tuple:
    rows = sorted((k["site"], k["device"], k["scans"], k["accepted"], k["last_seq"], k["status"], k["camera_ok"])
                  for k in centre.kiosks())
    return centre.overview()["totals"], rows


def test_coalescing_gives_the_figures_of_verifying_every_message(monkeypatch):
    city = small_city(venues=6, share=1.0)
    now = time.time()
    messages = []
    rng = random.Random(4)
    for _ in range(4):  # several counts and events per kiosk in one batch: most are superseded
        messages += scans(city, rng, n=3)
    results = []
    calls = counting_verifications(monkeypatch)
    for coalesce in (False, True):
        store = open_store()
        centre, _ = centre_over(store, city)
        ingest = Ingest(registry_of(city), coalesce=coalesce)
        announce(ingest, city, now)
        for topic, payload in messages:
            assert ingest.handle(topic, payload, now)
        store.write(ingest.take())
        results.append((figures(centre), ingest.stats))
        checks, calls[:] = len(calls), []
        if coalesce:
            assert checks < len(messages) / 2  # the newest counts and event per kiosk, not all of them
    (plain, plain_stats), (coalesced, stats) = results
    assert coalesced == plain
    assert stats.refused == plain_stats.refused == 0
    assert stats.superseded > 0 and stats.applied + stats.superseded == plain_stats.applied


def _counts(k, day, **over):
    return {**k.counts(day, time.time()), **over}


def test_a_forged_newest_counts_is_refused_and_the_genuine_one_applies():
    city = small_city(venues=4, share=1.0)
    store = open_store()
    centre, _ = centre_over(store, city)
    ingest = Ingest(registry_of(city), coalesce=True)
    day = announce(ingest, city)
    k, other = city.kiosks[0], city.kiosks[1]
    store.write(ingest.take())
    rng = random.Random(3)
    k.check_in(rng, city.local_now(), day, city.local_now().hour)
    genuine = k.signed("counts", k.counts(day, time.time()))
    huge = _counts(k, day, seq=10 ** 15, accepted=999_999)
    forgeries = [
        (sign_bytes(huge, k.topic("counts"), generate_key()), "unknown-key"),
        (sign_bytes(huge, k.topic("counts"), other.key), "wrong-kiosk"),
        (json.dumps({**json.loads(genuine), "seq": 10 ** 15 - 1, "accepted": 999_999}).encode(), "bad-signature"),
        (json.dumps(huge).encode(), "unsigned"),
    ]
    # forgeries on both sides of the genuine message in arrival order
    ingest.handle(k.topic("counts"), forgeries[0][0])
    ingest.handle(k.topic("counts"), genuine)
    for payload, _ in forgeries[1:]:
        ingest.handle(k.topic("counts"), payload)
    store.write(ingest.take())
    (row,) = [r for r in centre.kiosks() if r["device"] == k.device]
    assert row["scans"] == k.scans and row["accepted"] == k.accepted < 999_999
    refused = centre.refused()
    assert refused["by_reason"] == {reason: 1 for _, reason in forgeries}
    assert ingest.stats.refused == len(forgeries)


def test_a_flood_of_huge_seq_forgeries_costs_one_check_each_and_hides_nothing(monkeypatch):
    city = small_city(venues=2, share=1.0)
    store = open_store()
    centre, _ = centre_over(store, city)
    ingest = Ingest(registry_of(city), coalesce=True)
    day = announce(ingest, city)
    store.write(ingest.take())
    k = city.kiosks[0]
    k.check_in(random.Random(5), city.local_now(), day, city.local_now().hour)
    calls = counting_verifications(monkeypatch)
    stranger = generate_key()
    flood = [sign_bytes(_counts(k, day, seq=10 ** 12 + i, accepted=10 ** 6), k.topic("counts"), stranger)
             for i in range(50)]
    event = k.signed("events", {"id": "e", "seq": k.seq, "time": k.last_scan, "verdict": "accept", "reason": "ok",
                                "format": "qr"})
    forged_event = sign_bytes({"id": "f", "seq": 10 ** 12, "time": k.last_scan, "verdict": "accept",
                               "reason": "ok", "format": "qr"}, k.topic("events"), stranger)
    for p in flood[:25]:
        ingest.handle(k.topic("counts"), p)
    ingest.handle(k.topic("counts"), k.signed("counts", k.counts(day, time.time())))
    ingest.handle(k.topic("events"), forged_event)
    ingest.handle(k.topic("events"), event)
    for p in flood[25:]:
        ingest.handle(k.topic("counts"), p)
    store.write(ingest.take())
    assert len(calls) == len(flood) + 3  # every forgery once, the genuine counts and event once
    (row,) = [r for r in centre.kiosks() if r["device"] == k.device]
    assert row["scans"] == k.scans and row["last_seq"] == k.seq
    assert centre.refused()["by_reason"] == {"unknown-key": len(flood) + 1}


def test_a_forgery_superseded_by_a_genuine_newer_message_is_not_checked(monkeypatch):
    """The documented trade-off: it could change nothing, so it costs nothing and is not counted as refused."""
    city = small_city(venues=2, share=1.0)
    ingest = Ingest(registry_of(city), coalesce=True)
    day = announce(ingest, city)
    ingest.take()
    k = city.kiosks[0]
    calls = counting_verifications(monkeypatch)
    ingest.handle(k.topic("counts"), sign_bytes(_counts(k, day, seq=0), k.topic("counts"), generate_key()))
    k.check_in(random.Random(6), city.local_now(), day, city.local_now().hour)
    ingest.handle(k.topic("counts"), k.signed("counts", k.counts(day, time.time())))
    batch = ingest.take()
    assert len(calls) == 1 and ingest.stats.refused == 0 and ingest.stats.superseded == 1
    assert batch.daily[(k.site, k.device, day)][10] == k.seq


def test_info_and_health_claiming_the_future_do_not_hide_the_genuine_ones():
    city = small_city(venues=2, share=1.0, camera_down=1)
    store = open_store()
    centre, _ = centre_over(store, city)
    ingest = Ingest(registry_of(city), coalesce=True)
    k = next(k for k in city.kiosks if k.condition == "camera-down")
    now = time.time()
    future = now + 10 * 365 * 86400
    stranger = generate_key()
    ingest.handle(k.topic("health"), k.signed("health", k.health(now)))
    ingest.handle(k.topic("health"), sign_bytes({**k.health(future), "camera_ok": True}, k.topic("health"), stranger))
    ingest.handle(k.topic("info"), sign_bytes({**k.info(future), "venue_name": "FAKE"}, k.topic("info"), stranger))
    ingest.handle(k.topic("info"), k.signed("info", k.info(now)))
    store.write(ingest.take())
    (row,) = [r for r in centre.kiosks() if r["device"] == k.device]
    assert row["camera_ok"] == 0 and row["venue_name"] != "FAKE"
    assert centre.refused()["by_reason"] == {"unknown-key": 2}


def test_malformed_claims_keep_their_reasons_when_coalescing():
    city = small_city(venues=2, share=1.0)
    ingest = Ingest(registry_of(city), coalesce=True)
    k = city.kiosks[0]
    bad_day = {"day": "yesterday", "seq": 1}
    assert not ingest.handle(k.topic("counts"), k.signed("counts", bad_day))  # its own key: malformed
    assert not ingest.handle(k.topic("counts"), json.dumps(bad_day).encode())  # no signature: unsigned
    assert not ingest.handle(k.topic("events"), b"[1, 2]")  # not an object
    assert sorted(ingest.batch.refused) == sorted([(k.topic("counts"), "malformed"), (k.topic("counts"), "unsigned"),
                                                   (k.topic("events"), "malformed")])
    assert ingest.batch.refused[(k.topic("counts"), "malformed")][0] == 1
    assert ingest.stats.refused == 3 and not ingest.take().daily


def test_stop_loses_nothing_in_flight_and_a_restart_resumes(broker, tmp_path):
    """Small batches and a small inbox (paho's thread held while it is full); stopped mid-stream, resumed."""
    city = small_city(venues=6, share=1.0)
    registry = registry_of(city)
    store = open_store(tmp_path / "centre.sqlite3")
    centre, _ = centre_over(store, city)

    def worker():
        w = IngestWorker(broker.url, store, registry, client_id="centre-pipeline", flush_seconds=0.05, batch_max=7)
        received = [0]
        on_message = w.client.on_message

        def counted(client, userdata, message):
            received[0] += 1
            on_message(client, userdata, message)

        w.client.on_message = counted
        w.start()
        assert w.connected.wait(5)
        return w, received

    w, received = worker()
    sim = CitySimulator(broker.url, city, connections=1)
    sim.connect()
    sim.announce()
    sim.run(0, 0, checkins=300)
    assert wait_for(lambda: received[0] > 100, 15)
    w.stop()  # mid-stream: whatever paho took in is written, the rest waits in the session
    assert w.ingest.stats.messages == received[0] == w.written
    assert w.ingest.stats.refused == 0
    w2, received2 = worker()
    sim.finish()
    sim.close()
    want = sum(k.scans for k in city.kiosks)
    assert wait_for(lambda: w2.flush() is not None and centre.overview()["totals"]["scans"] == want, 20)
    w2.stop()
    assert w2.written == w2.ingest.stats.messages == received2[0]
    assert {r["device"]: r["last_seq"] for r in centre.kiosks()} == {k.device: k.seq for k in city.kiosks}


def test_a_verifier_pool_gives_the_same_figures_and_refusals():
    from kiosk.centre.verifiers import VerifierPool

    city = small_city(venues=4, share=1.0)
    day = city.local_now().date().isoformat()
    k, other = city.kiosks[0], city.kiosks[1]
    messages = scans(city, random.Random(8), n=2)
    huge = _counts(k, day, seq=10 ** 15, accepted=999_999)
    messages += [(k.topic("counts"), sign_bytes(huge, k.topic("counts"), other.key)),
                 (k.topic("counts"), json.dumps(huge).encode())]
    registry = registry_of(city)
    results = []
    pool = VerifierPool(registry.keys, 2)
    try:
        for verifier in (None, pool):
            store = open_store()
            centre, _ = centre_over(store, city)
            ingest = Ingest(registry, coalesce=True, verifier=verifier)
            announce(ingest, city)
            for topic, payload in messages:
                ingest.handle(topic, payload)
            store.write(ingest.take())
            results.append((figures(centre)[1], centre.refused()["by_reason"], ingest.stats.superseded))
    finally:
        pool.close()
    assert results[0] == results[1]
    assert results[0][1] == {"wrong-kiosk": 1, "unsigned": 1}
