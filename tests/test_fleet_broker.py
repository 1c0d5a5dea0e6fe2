"""The broker files `kiosk fleet` writes, loaded by a real mosquitto with the generated kiosk.conf: each
kiosk only under its own topics, the tracer on trace topics only, and a session's queue bounded.

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
    broker = start_secured_broker(tmp_path, out / "broker" / "passwd", out / "broker" / "acl",
                                  generated=out / "broker" / "kiosk.conf")
    clients: list[Client] = []

    def login(name: str, username: str | None = None, password: str | None = None) -> Client:
        if username is None and name != "anonymous":
            if name in ("centre", "tracer"):
                username, password = name, (out / "broker" / f"{name}-password").read_text().strip()
            else:
                device = tomllib.loads((out / name / "kiosk" / "device.toml").read_text(encoding="utf-8"))
                username, password = device["mqtt"]["username"], device["credentials"]["mqtt_password"]
        c = Client(broker, username, password, f"test-{name}")
        clients.append(c)
        return c

    login.broker = broker
    login.out = out
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


def test_the_tracer_publishes_requests_and_reads_answers_only(fleet_broker):
    """The health authority's desk: no counts, health or events of any kiosk, no commands, no bundles."""
    centre, tracer = fleet_broker("centre"), fleet_broker("tracer")
    a = fleet_broker("hcm-q1-gate-01")
    assert centre.connected() and tracer.connected() and a.connected()
    a.subscribe("checkin/v1/hcm-q1/gate-01/cmd/#")
    a.subscribe("checkin/v1/trace/request")
    a.subscribe("checkin/v1/hcm-q1/trace/request")
    a.subscribe("checkin/v1/trust/bundle")
    for topic in ("checkin/v1/#", "checkin/v1/+/+/counts", "checkin/v1/hcm-q1/gate-01/health",
                  "checkin/v1/trace/r1/+/+"):
        tracer.subscribe(topic)
    # What a kiosk publishes about itself never reaches the tracer, retained or not...
    assert not a.publish("checkin/v1/hcm-q1/gate-01/counts", b"counts", retain=True).is_failure
    assert not a.publish("checkin/v1/hcm-q1/gate-01/health", b"health", retain=True).is_failure
    assert not a.publish("checkin/v1/hcm-q1/gate-01/events", b"events").is_failure
    # ...while its trace answer does (published after them by the same client: they would have come first).
    assert not a.publish("checkin/v1/trace/r1/hcm-q1/gate-01", b"answer").is_failure
    tracer.wait_for("checkin/v1/trace/r1/hcm-q1/gate-01", b"answer")
    # (once per matching subscription: checkin/v1/# is accepted, but the ACL filters every message)
    assert {t for t, _ in tracer.messages} == {"checkin/v1/trace/r1/hcm-q1/gate-01"}
    # A new subscription gets no retained counts or health either.
    tracer.subscribe("checkin/v1/hcm-q1/gate-01/counts")
    # The tracer cannot command a kiosk, send a bundle or pose as a kiosk; it can ask every kiosk or a site.
    assert tracer.publish("checkin/v1/hcm-q1/gate-01/cmd/notice", b"tracer commands").is_failure
    assert tracer.publish("checkin/v1/trust/bundle", b"tracer bundle").is_failure
    assert tracer.publish("checkin/v1/hcm-q1/gate-01/counts", b"tracer counts").is_failure
    assert tracer.publish("checkin/v1/trace/r1/hcm-q1/gate-02", b"tracer answers").is_failure
    assert not tracer.publish("checkin/v1/trace/request", b"fleet request").is_failure
    assert not tracer.publish("checkin/v1/hcm-q1/trace/request", b"site request").is_failure
    a.wait_for("checkin/v1/trace/request", b"fleet request")
    a.wait_for("checkin/v1/hcm-q1/trace/request", b"site request")
    assert [t for t, _ in a.messages] == ["checkin/v1/trace/request", "checkin/v1/hcm-q1/trace/request"]
    assert {t for t, _ in tracer.messages} == {"checkin/v1/trace/r1/hcm-q1/gate-01"}


def test_an_abandoned_persistent_session_holds_at_most_the_generated_queue(fleet_broker):
    """Someone logs in with a kiosk's password, keeps a session (clean session off) and goes away: the
    broker holds at most max_queued_messages for it (plus what counts as in flight), not everything.

    mosquitto's own C clients publish and read the 100,000 messages (paho would take minutes).
    """
    import subprocess
    import threading
    import tomllib

    from kiosk.ops import broker as broker_files

    conf = (fleet_broker.out / "broker" / "kiosk.conf").read_text()
    cap = broker_files.MAX_QUEUED_MESSAGES
    assert f"max_queued_messages {cap}\n" in conf
    assert f"max_queued_bytes {broker_files.MAX_QUEUED_BYTES}\n" in conf
    device = tomllib.loads((fleet_broker.out / "hcm-q1-gate-01" / "kiosk" / "device.toml").read_text())
    kiosk_login = ["-u", device["mqtt"]["username"], "-P", device["credentials"]["mqtt_password"]]
    centre_login = ["-u", "centre", "-P", (fleet_broker.out / "broker" / "centre-password").read_text().strip()]
    server = ["-h", "127.0.0.1", "-p", str(fleet_broker.broker.port), "-q", "1"]
    topic = "checkin/v1/hcm-q1/gate-01/cmd/notice"
    session = ["mosquitto_sub", *server, *kiosk_login, "-c", "-i", "abandoned", "-t", "checkin/v1/hcm-q1/gate-01/cmd/#"]
    subprocess.run([*session, "-E"], check=True, timeout=30)  # subscribed, then gone: the session stays
    flood = cap + 5_000
    subprocess.run(["mosquitto_pub", *server, *centre_login, "-t", topic, "-l"], check=True, timeout=300,
                   input="".join(f"{n}\n" for n in range(flood)).encode())
    back = subprocess.Popen(session, stdout=subprocess.PIPE)  # the same session resumed
    received, arrived = [], threading.Condition()

    def read():
        for line in back.stdout:
            with arrived:
                received.append(line.rstrip(b"\n"))
                arrived.notify_all()
    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        with arrived:
            assert arrived.wait_for(lambda: len(received) >= cap, 120), f"{len(received)} delivered"
        # The queue drained: one more command now arrives after everything that was kept.
        subprocess.run(["mosquitto_pub", *server, *centre_login, "-t", topic, "-m", "last"], check=True, timeout=30)
        with arrived:
            assert arrived.wait_for(lambda: b"last" in received, 60)
            kept = received.index(b"last")
            assert cap <= kept <= cap + broker_files.MAX_INFLIGHT_MESSAGES < flood
            assert received[0] == b"0"  # the oldest are kept; what came beyond the limit was dropped
    finally:
        back.terminate()
        back.wait(10)
