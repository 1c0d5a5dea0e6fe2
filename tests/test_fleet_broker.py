"""The broker files `kiosk fleet` writes, loaded by a real mosquitto: each kiosk only under its own topics.

Synchronisation without sleeps: after a publish the ACL should drop, the same client
publishes on a topic it may use; the broker handles one client's messages in order,
so once the allowed one has reached the centre, the dropped one would have too.
"""

from __future__ import annotations

import tomllib

import pytest

from kiosk import cli
from secured_broker import Client, start_secured_broker

FLEET = """site,device,venue_id,venue_name,venue_qr
hcm-q1,gate-01,V1,Chợ Bến Thành,https://qr.example/V1
hcm-q1,gate-02,V2,Bưu điện,https://qr.example/V2
hn-hk,gate-01,V3,Nhà sách,https://qr.example/V3
"""


@pytest.fixture
def fleet_broker(tmp_path, capsys):
    src = tmp_path / "fleet.csv"
    src.write_text(FLEET, encoding="utf-8")
    out = tmp_path / "out"
    assert cli.main(["fleet", str(src), "--out", str(out)]) == 0, capsys.readouterr().err
    capsys.readouterr()
    broker = start_secured_broker(tmp_path, out / "broker" / "passwd", out / "broker" / "acl")
    clients: list[Client] = []

    def login(name: str, username: str | None = None, password: str | None = None) -> Client:
        if username is None and name != "anonymous":
            if name == "centre":
                username, password = "centre", (out / "broker" / "centre-password").read_text().strip()
            else:
                device = tomllib.loads((out / name / "kiosk" / "device.toml").read_text(encoding="utf-8"))
                username, password = device["mqtt"]["username"], device["credentials"]["mqtt_password"]
        c = Client(broker, username, password, f"test-{name}")
        clients.append(c)
        return c

    yield login
    for c in clients:
        c.close()
    broker.stop()


def test_kiosk_a_cannot_publish_under_kiosk_b(fleet_broker):
    centre = fleet_broker("centre")
    assert centre.connected()
    centre.subscribe("checkin/v1/#")
    a = fleet_broker("hcm-q1-gate-01")
    assert a.connected()
    assert a.publish("checkin/v1/hcm-q1/gate-02/counts", b"forged by A").is_failure  # PUBACK: not authorised
    assert a.publish("checkin/v1/hn-hk/gate-01/events", b"forged by A").is_failure
    assert not a.publish("checkin/v1/hcm-q1/gate-01/counts", b"A's own").is_failure
    centre.wait_for("checkin/v1/hcm-q1/gate-01/counts", b"A's own")
    assert centre.received("checkin/v1/hcm-q1/gate-02/counts") == []
    assert centre.received("checkin/v1/hn-hk/gate-01/events") == []


def test_anonymous_and_wrong_passwords_are_refused(fleet_broker):
    assert not fleet_broker("anonymous").connected()
    assert not fleet_broker("hcm-q1-gate-01-wrong", "hcm-q1-gate-01", "not-the-password").connected()


def test_centre_commands_reach_only_their_kiosk(fleet_broker):
    centre = fleet_broker("centre")
    a, b = fleet_broker("hcm-q1-gate-01"), fleet_broker("hcm-q1-gate-02")
    assert centre.connected() and a.connected() and b.connected()
    # B tries to read A's commands: the broker never delivers them.
    b.subscribe("checkin/v1/hcm-q1/gate-01/cmd/#")
    b.subscribe("checkin/v1/hcm-q1/gate-02/cmd/#")
    a.subscribe("checkin/v1/hcm-q1/gate-01/cmd/#")
    assert not centre.publish("checkin/v1/hcm-q1/gate-01/cmd/notice", b"for A").is_failure
    assert not centre.publish("checkin/v1/hcm-q1/gate-02/cmd/notice", b"for B").is_failure
    a.wait_for("checkin/v1/hcm-q1/gate-01/cmd/notice", b"for A")
    b.wait_for("checkin/v1/hcm-q1/gate-02/cmd/notice", b"for B")  # after A's, in order
    assert b.received("checkin/v1/hcm-q1/gate-01/cmd/notice") == []
    # A kiosk cannot command another one.
    assert a.publish("checkin/v1/hcm-q1/gate-02/cmd/notice", b"A commands B").is_failure


def test_trust_and_trace_topics(fleet_broker):
    centre = fleet_broker("centre")
    a, other_site = fleet_broker("hcm-q1-gate-01"), fleet_broker("hn-hk-gate-01")
    assert centre.connected() and a.connected() and other_site.connected()
    for topic in ("checkin/v1/trust/bundle", "checkin/v1/hcm-q1/trust/bundle", "checkin/v1/trace/request",
                  "checkin/v1/hcm-q1/trace/request"):
        a.subscribe(topic)
    other_site.subscribe("checkin/v1/hcm-q1/trust/bundle")
    other_site.subscribe("checkin/v1/trace/request")
    # Kiosks cannot publish bundles or trace requests: only the centre can.
    assert a.publish("checkin/v1/trust/bundle", b"forged bundle", retain=True).is_failure
    assert a.publish("checkin/v1/trace/request", b"forged request").is_failure
    assert not centre.publish("checkin/v1/hcm-q1/trust/bundle", b"site bundle").is_failure
    assert not centre.publish("checkin/v1/trace/request", b"request").is_failure
    a.wait_for("checkin/v1/hcm-q1/trust/bundle", b"site bundle")
    a.wait_for("checkin/v1/trace/request", b"request")
    other_site.wait_for("checkin/v1/trace/request", b"request")  # after the site bundle, in order
    assert other_site.received("checkin/v1/hcm-q1/trust/bundle") == []  # another site's bundle
    # A kiosk answers a trace request under its own name only.
    centre.subscribe("checkin/v1/trace/#")
    assert a.publish("checkin/v1/trace/r1/hn-hk/gate-01", b"posing as another kiosk").is_failure
    assert not a.publish("checkin/v1/trace/r1/hcm-q1/gate-01", b"answer").is_failure
    centre.wait_for("checkin/v1/trace/r1/hcm-q1/gate-01", b"answer")
    assert centre.received("checkin/v1/trace/r1/hn-hk/gate-01") == []
