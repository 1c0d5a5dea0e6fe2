"""Signed ingest (issue 12.5, centre side): only a kiosk's own signed messages change the centre's figures."""

from __future__ import annotations

import json
import random
import time

from kiosk.centre.registry import FleetRegistry, RegistryError
from kiosk.centre.store import open_store
from kiosk.wire.signing import generate_key, public_pem, sign_bytes
from centre_helpers import centre_over, small_city

import pytest


def announce(ingest, city, now=None):
    now = time.time() if now is None else now
    day = city.local_now().date().isoformat()
    for k in city.kiosks:
        ingest.handle(k.topic("status"), b"online")
        ingest.handle(k.topic("info"), k.signed("info", k.info(now)))
        ingest.handle(k.topic("health"), k.signed("health", k.health(now)))
        ingest.handle(k.topic("counts"), k.signed("counts", k.counts(day, now)))
    return day


def scans(city, rng, n=3):
    local = city.local_now()
    day = local.date().isoformat()
    out = []
    for k in city.kiosks:
        for _ in range(n):
            out.append((k.topic("events"), k.signed("events", k.check_in(rng, local, day, local.hour))))
        out.append((k.topic("counts"), k.signed("counts", k.counts(day, time.time()))))
    return out


def test_signed_counts_count_and_forgeries_change_nothing():
    city = small_city()
    store = open_store()
    centre, ingest = centre_over(store, city)
    announce(ingest, city)
    for topic, payload in scans(city, random.Random(1)):
        assert ingest.handle(topic, payload)
    store.write(ingest.take())
    before = centre.overview()["totals"]
    assert before["scans"] == sum(k.scans for k in city.kiosks) > 0

    k = city.kiosks[0]
    day = city.local_now().date().isoformat()
    forged = {**k.counts(day, time.time()), "seq": 10 ** 15, "accepted": 999_999}
    other = generate_key()
    attacks = [
        (k.topic("counts"), json.dumps(forged).encode(), "unsigned"),
        (k.topic("counts"), sign_bytes(forged, k.topic("counts"), other), "unknown-key"),
        # the kiosk's real signature, figures changed after signing
        (k.topic("counts"), json.dumps({**json.loads(k.signed("counts", k.counts(day, time.time()))),
                                        "seq": 10 ** 15, "accepted": 999_999}).encode(), "bad-signature"),
        # kiosk 1's key signing for kiosk 0's topic
        (k.topic("counts"), sign_bytes(forged, k.topic("counts"), city.kiosks[1].key), "wrong-kiosk"),
        # a message signed for another topic (replayed from kiosk 0's health onto its counts)
        (k.topic("counts"), k.signed("health", forged), "bad-signature"),
        ("checkin/v1/hn-999/invented-1/counts", json.dumps(forged).encode(), "unknown-kiosk"),
        ("checkin/v1/hn-999/invented-2/status", b"online", "unknown-kiosk"),
        ("checkin/v1/hn-999/invented-3/info", json.dumps({"venue_id": "FAKE"}).encode(), "unknown-kiosk"),
        (k.topic("health"), b"not json", "malformed"),
    ]
    for topic, payload, _ in attacks:
        assert not ingest.handle(topic, payload)
    store.write(ingest.take())
    assert centre.overview()["totals"] == before
    refused = centre.refused()
    want: dict[str, int] = {}
    for _, _, reason in attacks:
        want[reason] = want.get(reason, 0) + 1
    assert refused["by_reason"] == want
    assert refused["total"] == len(attacks)
    topics = {(t["topic"], t["reason"]) for t in refused["topics"]}
    assert ("checkin/v1/hn-999/invented-1/counts", "unknown-kiosk") in topics
    assert (k.topic("counts"), "unsigned") in topics
    assert len(centre.kiosks()) == len(city.kiosks)  # invented kiosks are not in the picture


def test_revoked_key_and_rotation():
    city = small_city(venues=4, share=1.0)
    reg = city.registry()
    k0, k1 = city.kiosks[0], city.kiosks[1]
    reg["kiosks"][0]["revoked"] = True  # kiosk 0 lost
    new_key = generate_key()  # kiosk 1 rotated: a second row with a new kid
    reg["kiosks"].append({**reg["kiosks"][1], "kid": "", "public_key": public_pem(new_key).decode()})
    registry = FleetRegistry.from_json(reg)
    from kiosk.centre.ingest import Ingest

    ingest = Ingest(registry)
    day = city.local_now().date().isoformat()
    assert not ingest.handle(k0.topic("counts"), k0.signed("counts", k0.counts(day, time.time())))
    assert ingest.stats.refused == 1 and list(ingest.batch.refused)[0][1] == "revoked"
    assert ingest.handle(k1.topic("counts"), k1.signed("counts", k1.counts(day, time.time())))  # old key still listed
    k1.key = new_key
    assert ingest.handle(k1.topic("counts"), k1.signed("counts", k1.counts(day, time.time())))


def test_late_and_repeated_counts_never_go_back():
    city = small_city(venues=2, share=1.0)
    store = open_store()
    centre, ingest = centre_over(store, city)
    k = city.kiosks[0]
    day = announce(ingest, city)
    rng = random.Random(2)
    snapshots = []
    for _ in range(5):
        k.check_in(rng, city.local_now(), day, city.local_now().hour)
        snapshots.append(k.signed("counts", k.counts(day, time.time())))
    ingest.handle(k.topic("counts"), snapshots[-1])
    store.write(ingest.take())
    for s in [snapshots[1], snapshots[-1], snapshots[0]]:  # late, repeated, older: another worker's batch
        ingest.handle(k.topic("counts"), s)
        store.write(ingest.take())
    (row,) = [r for r in centre.kiosks() if r["device"] == k.device]
    assert row["scans"] == 5 and row["scans"] == k.scans


def test_status_is_only_a_hint():
    """An unsigned "offline" makes a kiosk offline (a hint) but never its age; "online" never revives a silent one."""
    city = small_city(venues=2, share=1.0)
    store = open_store()
    centre, ingest = centre_over(store, city, offline_hours=1.0, grace_hour=23)
    k0, k1 = city.kiosks
    then = time.time() - 3 * 86400
    ingest.handle(k0.topic("health"), k0.signed("health", k0.health(then)))  # its last signed word: 3 days ago
    ingest.handle(k0.topic("status"), b"offline")
    ingest.handle(k1.topic("health"), k1.signed("health", k1.health(time.time() - 7200)))
    ingest.handle(k1.topic("status"), b"online")  # a forged or stale will says online
    store.write(ingest.take())
    rows = {r["device"]: r for r in centre.inspection()["rows"]}
    assert rows[k0.device]["why"] == "offline"
    assert rows[k0.device]["for_seconds"] >= 3 * 86400 - 60  # the true age, not "since the centre started"
    assert rows[k1.device]["why"] == "silent"
    assert not any(r["online"] for r in centre.kiosks())


def test_registry_errors_name_the_file(tmp_path):
    p = tmp_path / "fleet.json"
    p.write_text('{"version": 1, "kiosks": [{"site": "a", "device": "b", "public_key": "junk"}]}')
    with pytest.raises(RegistryError, match=r"fleet.json: kiosks\[0\]"):  # the first row, by its JSON index
        FleetRegistry.load(p)
    p.write_text("{")
    with pytest.raises(RegistryError, match="fleet.json: not JSON"):
        FleetRegistry.load(p)
    with pytest.raises(RegistryError, match="cannot read"):
        FleetRegistry.load(tmp_path / "missing.json")
