"""Shared test helpers: a recording MQTT subscriber, waiting on a condition, config builders, a kiosk's command gate.

Every wait is on a condition with a deadline (``wait_for``), never a bare sleep.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from kiosk import config
from kiosk.door.decide.checkin import Checkin
from kiosk.testing.visitors import DEMO_KEYS
from kiosk.wire.broker import parse_url


def wait_for(cond, timeout=10.0, step=0.02) -> bool:
    """Poll ``cond`` until it is true or ``timeout`` seconds passed; returns its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(step)
    return cond()


class Collector:
    """A plain subscriber that records (topic, payload, retain) of everything it gets.

    The constructor returns once the broker acknowledged the subscription, so
    anything published afterwards is seen.
    """

    def __init__(self, url: str, topic: str = "#", persistent: bool = False):
        self.messages: list[tuple[str, bytes, bool]] = []
        self.lock = threading.Lock()
        address = parse_url(url)
        # persistent: the broker queues QoS 1 messages for us while we (or it) are away
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"collector-{uuid.uuid4().hex[:8]}",
                                  clean_session=not persistent)
        self.client.reconnect_delay_set(0.1, 0.5)
        self.client.on_message = self._on_message
        subscribed = threading.Event()
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda *a: subscribed.set()
        self.client.connect(address.host, address.port)
        self.client.loop_start()
        assert subscribed.wait(5)

    def _on_message(self, client, userdata, msg) -> None:
        with self.lock:
            self.messages.append((msg.topic, msg.payload, msg.retain))

    def of(self, suffix: str) -> list[bytes]:
        with self.lock:
            return [p for t, p, _ in self.messages if t.endswith(suffix)]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def make_config(tmp_path: Path, url: str, mqtt_extra: str = "", **mqtt_keys) -> config.Config:
    """A publisher's config ([device], [venue], [mqtt]) with fast reconnects, written to tmp_path/kiosk.toml."""
    keys = {"counts_min_interval_seconds": 0.1, "reconnect_min_seconds": 0.2, "reconnect_max_seconds": 1.0,
            "keepalive": 5, **mqtt_keys}
    text = (f'[device]\nsite="hn-hk"\nid="kiosk-01"\nstate_dir="{tmp_path}/state"\n'
            f'[venue]\nid="HN-HK-000123"\nname="Chợ Đồng Xuân"\nqr_content="VENUE-QR-CONTENT"\n'
            f'province="Thành phố Hà Nội"\ndistrict="Quận Hoàn Kiếm"\nward="Phường Đồng Xuân"\n'
            f'[mqtt]\nurl="{url}"\n' + "".join(f"{k}={v}\n" for k, v in keys.items()) + mqtt_extra)
    path = tmp_path / "kiosk.toml"
    path.write_text(text)
    return config.parse(text, str(path))


def kiosk_config(tmp_path: Path, broker_url: str = "mqtt://127.0.0.1:9", extra: str = "", policy: str = "",
                 camera: str = 'source = "none"\nrearm_seconds = 3', signals_extra: str = "",
                 screen: str = "enabled = false") -> config.Config:
    """A whole kiosk's config (demo trust keys, mock pins, no screen); ``extra`` goes into [mqtt]."""
    text = f"""
[device]
site = "test-site"
id = "kiosk-t1"
state_dir = "{tmp_path / 'state'}"

[venue]
id = "V-1"
name = "Phòng khám Đa khoa"
qr_content = "https://example.vn/venue/V-1"

[camera]
{camera}

[trust]
paths = ["{DEMO_KEYS}"]

[policy]
{policy}

[signals]
pin_factory = "mock"
green_led = 17
red_led = 27
buzzer = 22
relay = 23
button = 24
{signals_extra}

[screen]
{screen}

[mqtt]
url = "{broker_url}"
reconnect_min_seconds = 0.2
reconnect_max_seconds = 1
counts_min_interval_seconds = 0
{extra}
"""
    path = tmp_path / "kiosk.toml"
    path.write_text(text, encoding="utf-8")
    return config.load(path)


def checkin(verdict="accept", reason="ok", pseudonym="p", duplicate=False, at=None, signed=True) -> Checkin:
    """A decided check-in, as the desk makes them."""
    return Checkin(id=uuid.uuid4().hex, at=at or datetime.now(timezone.utc), verdict=verdict, reason=reason,
                   format="eu-dcc", valid=True, signed=signed, pseudonym=pseudonym, holder=None, captured_at=0.0,
                   source="camera", duplicate=duplicate, opens_door=verdict == "accept" and signed)


def device_keyring(cfg):
    """The KeyRing a centre would hold for this kiosk: its device public key (made on first start)."""
    from kiosk.wire import signing
    from kiosk.door.publish.device_key import key_path, public_path

    return signing.KeyRing.load([public_path(key_path(cfg.device, cfg.resolve))], owner=f"{cfg.device.site}/{cfg.device.id}")


def verified(payload: bytes, topic: str, keys) -> dict:
    """The payload of a signed message (raises SignatureRefused when it does not verify)."""
    from kiosk.wire import signing

    return signing.verify(json.loads(payload), topic, keys).payload


def signed_dcc(family: str = "Trần", given: str = "Thị Bình", dob: str = "1988-03-14") -> str:
    """A correctly signed EU DCC (vaccination) from the demo keys, valid now (the one place tests make them)."""
    from datetime import timedelta

    from kiosk.issuing.dcc import issue_dcc

    now = datetime.now(timezone.utc)
    return issue_dcc(DEMO_KEYS / "dcc-signer.key.pem", DEMO_KEYS / "dcc-signer.crt.pem", kind="vaccination",
                     family=family, given=given, dob=dob, at=now, last_dose=now - timedelta(days=60))


def pc_covid(id_number: str = "001088012345", name: str = "Nguyễn Văn An") -> str:
    """An unsigned PC-Covid personal QR (format-checked only)."""
    return f"{id_number}|{name}|01/02/1988|CCCD|QID-7F3A9C21|0123456789<0912345678<1<<"


def code(text: str, source: str = "camera", at: float = 0.0):
    from device.scanners import CodeSeen

    return CodeSeen(text, at, source)


class GateResponder:
    """A kiosk's command gate (notices enabled) on a real broker connection: the real
    :class:`kiosk.door.remote.gate.CommandGate` behind a plain paho client, answering on ``cmd-result``."""

    def __init__(self, broker, centre_public, device_key, tmp_path, topics=None):
        from kiosk.door.remote.gate import CommandGate, notice_action
        from kiosk.wire import signing
        from kiosk.wire.topics import Topics

        self.notices: list[str] = []
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="responder")
        self.gate = CommandGate(topics or Topics("hn-hk", "kiosk-01"), signing.KeyRing.of({"centre": centre_public}),
                                ["notice"], {"notice": notice_action(self.notices.append)}, device_key,
                                lambda t, p: self.client.publish(t, p, qos=1), 300,
                                state_file=tmp_path / "floor.json")
        self.ready = threading.Event()
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(self.gate.topic_filter, qos=1)
        self.client.on_subscribe = lambda *a: self.ready.set()
        self.client.on_message = lambda c, u, m: self.gate.handle(m.topic, m.payload)
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()
        assert self.ready.wait(10)

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()
