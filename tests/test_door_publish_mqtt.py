"""The MQTT publisher against a real mosquitto: retained state, outbox drain, outages, commands, secrets."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pytest

from helpers import Collector, checkin, device_keyring, make_config, verified, wait_for  # noqa: F401 (re-exported)
from kiosk.config import parse
from kiosk.door.assembly import open_ledger, open_publisher
from kiosk.door.publish import NullTelemetry
from kiosk.wire.broker import make_client, parse_url
from kiosk.testing.clock import FakeClock


@pytest.fixture
def kiosk(tmp_path, broker):
    """(config, ledger, make_publisher): publishers made here are stopped after the test."""
    made = []
    cfg = make_config(tmp_path, broker.url)
    ledger = open_ledger(cfg)

    def make(cfg=cfg):
        p = open_publisher(cfg, ledger)
        made.append(p)
        return p

    yield cfg, ledger, make
    for p in made:
        p.stop()
    ledger.close()


def test_publishes_state_and_events_then_empties_outbox(kiosk, broker):
    cfg, ledger, make = kiosk
    sub = Collector(broker.url)
    pub = make()
    pub.start()
    assert wait_for(lambda: pub.connected)
    for i in range(10):
        ledger.record(checkin(pseudonym=str(i % 4)))
        pub.wake()
    assert wait_for(lambda: ledger.outbox_size() == 0 and len(sub.of("/events")) == 10)
    assert sub.of("/status")[0] == b"online"
    info = json.loads(sub.of("/info")[0])
    assert info["venue_id"] == "HN-HK-000123" and info["venue_name"] == "Chợ Đồng Xuân"
    assert "VENUE-QR-CONTENT" not in json.dumps(info)
    assert [json.loads(p)["seq"] for p in sub.of("/events")] == list(range(1, 11))
    assert wait_for(lambda: json.loads(sub.of("/counts")[-1])["accepted"] == 10)
    assert json.loads(sub.of("/counts")[-1])["unique_visitors"] == 4
    pub.stop()
    assert wait_for(lambda: sub.of("/status")[-1] == b"offline")
    sub.close()


def test_broker_down_at_start_then_outbox_drains_in_order(kiosk, broker):
    cfg, ledger, make = kiosk
    sub = Collector(broker.url, "checkin/v1/+/+/events", persistent=True)
    broker.stop()
    pub = make()
    pub.start()  # must not block or raise with no broker
    seqs = [ledger.record(checkin(pseudonym=str(i))) for i in range(30)]
    pub.wake()
    time.sleep(0.5)
    assert not pub.connected and ledger.outbox_size() == 30
    broker.start()
    assert wait_for(lambda: ledger.outbox_size() == 0, timeout=10)
    assert wait_for(lambda: len(sub.of("/events")) >= 30)
    got = [json.loads(p)["seq"] for p in sub.of("/events")]
    assert got == seqs
    sub.close()


def test_retained_state_republished_on_every_connect(kiosk, broker):
    cfg, ledger, make = kiosk
    pub = make()
    pub.start()
    assert wait_for(lambda: pub.connected)
    ledger.record(checkin())
    pub.wake()
    assert wait_for(lambda: ledger.outbox_size() == 0)
    broker.stop()
    for f in Path(broker.conf).parent.glob("*.db"):  # the broker forgets every retained message
        f.unlink()
    assert wait_for(lambda: not pub.connected)
    broker.start()
    # A first subscriber may join before or after the kiosk republished (then it gets the state live,
    # retain flag off): it only tells us when the broker has the state again.
    probe = Collector(broker.url)
    assert wait_for(lambda: pub.connected and probe.of("/status") and probe.of("/info") and probe.of("/counts"))
    probe.close()
    sub = Collector(broker.url)  # joins after the republish: everything it gets is the broker's retained copy
    assert wait_for(lambda: sub.of("/status") and sub.of("/info") and sub.of("/counts"))
    assert sub.of("/status")[-1] == b"online"
    assert json.loads(sub.of("/counts")[-1])["accepted"] == 1
    assert all(retain for _, _, retain in sub.messages)
    sub.close()


def test_counts_on_change_are_rate_limited(tmp_path, broker):
    cfg = make_config(tmp_path, broker.url, counts_min_interval_seconds=1.0)
    clock = FakeClock()  # the publisher's intervals move only when the test says so
    with open_ledger(cfg) as ledger:
        sub = Collector(broker.url, "checkin/v1/+/+/counts")
        pub = open_publisher(cfg, ledger, clock=clock)
        pub.start()
        try:
            assert wait_for(lambda: len(sub.of("/counts")) == 1)  # on connect
            t0 = clock()
            for _ in range(40):  # a check-in every 1/16 s for 2.5 s
                ledger.record(checkin())
                pub.wake()
                clock.advance(0.0625)
            clock.advance(1.0)  # the last change's turn
            pub.wake()
            assert wait_for(lambda: json.loads(sub.of("/counts")[-1])["accepted"] == 40, timeout=5)
            elapsed = clock() - t0
            assert len(sub.of("/counts")) - 1 <= elapsed / 1.0  # not one per check-in: one a second at most
        finally:
            pub.stop()
            sub.close()


def test_events_can_be_switched_off(tmp_path, broker):
    cfg = make_config(tmp_path, broker.url, "events=false\n")
    with open_ledger(cfg) as ledger:
        sub = Collector(broker.url)
        pub = open_publisher(cfg, ledger)
        pub.start()
        try:
            for _ in range(5):
                ledger.record(checkin())
            pub.wake()
            assert wait_for(lambda: sub.of("/counts") and json.loads(sub.of("/counts")[-1])["accepted"] == 5)
            assert wait_for(lambda: ledger.outbox_size() == 0)
            assert sub.of("/events") == []
        finally:
            pub.stop()
            sub.close()


def test_subscribed_handlers_get_their_messages_across_reconnects(tmp_path, broker):
    cfg = make_config(tmp_path, broker.url)
    got = []
    base = "checkin/v1/hn-hk/kiosk-01/cmd/"
    with open_ledger(cfg) as ledger:
        pub = open_publisher(cfg, ledger)
        pub.subscribe(base + "notice", lambda topic, payload: got.append((topic, payload)))
        pub.start()
        client, address = make_client("centre", broker.url)
        client.connect(address.host, address.port)
        client.loop_start()
        try:
            assert wait_for(lambda: pub.subscribed(base + "notice"))
            client.publish(base + "reload-trust", b"", qos=1).wait_for_publish(5)  # nobody subscribed to it
            client.publish(base + "notice", "Kiểm tra lúc 14:00".encode(), qos=1).wait_for_publish(5)
            assert wait_for(lambda: got)
            assert got == [(base + "notice", "Kiểm tra lúc 14:00".encode())]
            broker.stop()
            assert wait_for(lambda: not pub.connected)
            broker.start()
            client.reconnect()
            assert wait_for(lambda: pub.connected and pub.subscribed(base + "notice")), "re-subscribed on connect"
            client.publish(base + "notice", b"again", qos=1).wait_for_publish(5)
            assert wait_for(lambda: len(got) == 2) and got[-1][1] == b"again"
        finally:
            client.disconnect()
            client.loop_stop()
            pub.stop()


def test_every_kiosk_message_is_signed_by_the_device_key(kiosk, broker):
    from kiosk.wire import reasons, signing

    cfg, ledger, make = kiosk
    sub = Collector(broker.url)
    pub = make()
    pub.set_health({"camera_ok": True})
    pub.start()
    ledger.record(checkin())
    pub.wake()
    assert wait_for(lambda: sub.of("/events") and sub.of("/health") and sub.of("/info") and sub.of("/counts"))
    keys = device_keyring(cfg)
    for topic, payload, _ in sub.messages:
        if topic.endswith("/status"):
            assert payload in (b"online", b"offline")  # the last will cannot be signed
            continue
        body = verified(payload, topic, keys)
        assert body["ts" if not topic.endswith("/events") else "time"]
    info = verified(sub.of("/info")[0], "checkin/v1/hn-hk/kiosk-01/info", keys)
    assert info["kid"] == next(iter(keys)).kid
    assert (info["province"], info["district"], info["ward"]) == ("Thành phố Hà Nội", "Quận Hoàn Kiếm", "Phường Đồng Xuân")
    # Replayed onto another kiosk's topic, or with a figure changed, it no longer verifies.
    counts = json.loads(sub.of("/counts")[-1])
    with pytest.raises(signing.SignatureRefused) as refused:
        signing.verify(counts, "checkin/v1/hn-hk/kiosk-02/counts", keys)
    assert refused.value.reason == reasons.BAD_SIGNATURE
    with pytest.raises(signing.SignatureRefused):
        signing.verify({**counts, "accepted": counts["accepted"] + 100}, "checkin/v1/hn-hk/kiosk-01/counts", keys)


def test_device_key_made_once_at_first_start_and_kept(tmp_path):
    from kiosk.door.publish.device_key import key_path, load_or_create, public_path

    cfg = make_config(tmp_path, "mqtt://127.0.0.1:9")
    first = load_or_create(cfg.device, cfg.resolve)
    path = Path(key_path(cfg.device, cfg.resolve))
    assert path.stat().st_mode & 0o777 == 0o600 and public_path(path).is_file()
    assert load_or_create(cfg.device, cfg.resolve).kid == first.kid  # the second start loads the same key


def test_send_publishes_a_reply_at_once(kiosk, broker):
    cfg, ledger, make = kiosk
    sub = Collector(broker.url, "checkin/v1/hn-hk/kiosk-01/cmd-result")
    pub = make()
    assert pub.send("checkin/v1/hn-hk/kiosk-01/cmd-result", b"{}") is False  # not connected yet: best effort
    pub.start()
    assert wait_for(lambda: pub.connected)
    assert pub.send("checkin/v1/hn-hk/kiosk-01/cmd-result", b'{"result":"ok"}')
    assert wait_for(lambda: sub.of("/cmd-result") == [b'{"result":"ok"}'])
    assert ledger.outbox_size() == 0, "a reply does not go through the outbox"
    sub.close()


def test_home_assistant_discovery(tmp_path, broker):
    cfg = make_config(tmp_path, broker.url, "ha_discovery=true\n")
    with open_ledger(cfg) as ledger:
        sub = Collector(broker.url, "homeassistant/#")
        pub = open_publisher(cfg, ledger)
        pub.start()
        try:
            assert wait_for(lambda: len(sub.messages) >= 6)
            configs = {t: json.loads(p) for t, p, _ in sub.messages}
            accepted = configs["homeassistant/sensor/checkin_hn-hk_kiosk-01/accepted/config"]
            assert accepted["state_topic"] == "checkin/v1/hn-hk/kiosk-01/counts"
            assert accepted["availability"]["topic"] == "checkin/v1/hn-hk/kiosk-01/status"
            online = configs["homeassistant/binary_sensor/checkin_hn-hk_kiosk-01/online/config"]
            assert online["device_class"] == "connectivity"
        finally:
            pub.stop()
            sub.close()


def test_password_from_credential_never_logged(tmp_path, broker, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "mqtt-password").write_text("pa55-w0rd-never-logged\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    cfg = make_config(tmp_path, broker.url, 'username="kiosk-01"\npassword_file="credential:mqtt-password"\n')
    with open_ledger(cfg) as ledger:
        pub = open_publisher(cfg, ledger)
        assert pub._client._password == b"pa55-w0rd-never-logged"
        pub._client.enable_logger(logging.getLogger("paho"))  # even paho's debug log must not show it
        pub.start()
        try:
            assert wait_for(lambda: pub.connected)
        finally:
            pub.stop()
    assert "pa55-w0rd" not in caplog.text
    assert "connected to" in caplog.text


def test_tls_settings_from_config(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("")  # make_client only sets TLS up; the handshake is the broker's business
    cfg = make_config(tmp_path, "mqtts://broker.example:8883", f'ca_file="{ca}"\n')
    with pytest.raises(Exception):  # an empty CA file is refused by ssl at set-up, not at connect time
        make_client("x", cfg.mqtt.url, cfg.mqtt)
    client, address = make_client("x", "mqtts://broker.example", None)
    assert address.port == 8883 and address.tls and client._ssl_context is not None


@pytest.mark.parametrize("url", ["http://x", "mqtt://", "mqtt://user:pw@host", "mqtt://host/path"])
def test_bad_broker_urls(url):
    with pytest.raises(ValueError):
        parse_url(url)


def test_null_telemetry_discards_outbox(tmp_path):
    cfg = make_config(tmp_path, "mqtt://localhost:1", "enabled=false\n")
    with open_ledger(cfg) as ledger:
        ledger.record(checkin())
        t = open_publisher(cfg, ledger)
        assert isinstance(t, NullTelemetry) and not t.connected
        t.start()
        assert ledger.outbox_size() == 0 and ledger.counts()["accepted"] == 1
        t.subscribe("checkin/v1/#", lambda topic, payload: None)  # accepted, and nothing ever arrives
        assert t.send("checkin/v1/hn-hk/kiosk-01/cmd-result", b"{}") is False


def test_full_outbox_while_offline_reports_the_loss(tmp_path, broker):
    base = make_config(tmp_path, broker.url)
    cfg = parse(Path(base.source_path).read_text() + "[ledger]\noutbox_max=100\n", base.source_path)
    broker.stop()
    with open_ledger(cfg) as ledger:
        pub = open_publisher(cfg, ledger)
        pub.start()
        try:
            for i in range(250):
                ledger.record(checkin(pseudonym=str(i)))
            pub.wake()
            kept = ledger.outbox_size()
            broker.start()
            sub = Collector(broker.url)
            assert wait_for(lambda: ledger.outbox_size() == 0)
            assert wait_for(lambda: sub.of("/counts") and json.loads(sub.of("/counts")[-1])["accepted"] == 250)
            c = json.loads(sub.of("/counts")[-1])
            assert c["dropped_events"] == 250 - kept and c["dropped_events"] > 0  # the loss is reported
            assert c["accepted"] == 250  # the counts are not lost
            sub.close()
        finally:
            pub.stop()
