"""A real mosquitto that uses a password file and an ACL (what `kiosk fleet` generates), and small MQTT clients.

conftest's ``Broker`` starts and stops it; this module only writes the config that
points at the generated files and gives tests a client that reports what the broker
answered (CONNACK, SUBACK, PUBACK) and what arrived.
"""

from __future__ import annotations

import getpass
import threading
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from conftest import Broker, free_port


def start_secured_broker(folder: Path, password_file: Path, acl_file: Path, generated: Path | None = None) -> Broker:
    """mosquitto on a free port with logins required, the given password file and ACL.

    ``generated``: the ``kiosk.conf`` that `kiosk fleet` wrote, used as it is (its password file and
    ACL paths pointed at the given files), so the broker runs with every setting it makes.
    """
    from kiosk.ops.fleet import ACL_FILE, PASSWORD_FILE

    port = free_port()
    conf = folder / "mosquitto-secured.conf"
    if generated is not None:
        settings = generated.read_text(encoding="utf-8")
        assert PASSWORD_FILE in settings and ACL_FILE in settings
        settings = settings.replace(PASSWORD_FILE, str(password_file)).replace(ACL_FILE, str(acl_file))
    else:
        settings = (f"per_listener_settings false\nallow_anonymous false\n"
                    f"password_file {password_file}\nacl_file {acl_file}\n")
    # per_listener_settings must come before the listener; the generated file sets it first.
    conf.write_text(f"{settings}\nlistener {port} 127.0.0.1\nuser {getpass.getuser()}\n", encoding="utf-8")
    broker = Broker(port=port, conf=conf)
    broker.start()
    return broker


class Client:
    """An MQTT 5 client: connect, subscribe, publish at QoS 1, each waited for with a deadline."""

    def __init__(self, broker: Broker, username: str | None, password: str | None, name: str):
        self.messages: list[tuple[str, bytes]] = []
        self.arrived = threading.Condition()
        self._events: dict[str, threading.Event] = {k: threading.Event() for k in ("connect", "subscribe", "publish")}
        self.answers: dict[str, object] = {}
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=name, protocol=mqtt.MQTTv5)
        if username is not None:
            self.client.username_pw_set(username, password)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_publish = self._on_publish
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        self.answers["connect"] = reason_code
        self._events["connect"].set()

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties):
        self.answers["subscribe"] = reason_codes
        self._events["subscribe"].set()

    def _on_publish(self, client, userdata, mid, reason_code, properties):
        self.answers["publish"] = reason_code
        self._events["publish"].set()

    def _on_message(self, client, userdata, message):
        with self.arrived:
            self.messages.append((message.topic, message.payload))
            self.arrived.notify_all()

    def _wait(self, what: str, timeout: float = 10.0):
        assert self._events[what].wait(timeout), f"no answer to {what} within {timeout} s"
        self._events[what].clear()
        return self.answers[what]

    def connected(self) -> bool:
        """True when the broker accepted the login, False when it refused it."""
        return not self._wait("connect").is_failure

    def subscribe(self, topic: str) -> None:
        self.client.subscribe(topic, qos=1)
        self._wait("subscribe")

    def publish(self, topic: str, payload: bytes, retain: bool = False):
        """Publish at QoS 1 and return the PUBACK reason code (MQTT 5 says when the ACL dropped it)."""
        self.client.publish(topic, payload, qos=1, retain=retain)
        return self._wait("publish")

    def wait_for(self, topic: str, payload: bytes, timeout: float = 10.0) -> None:
        with self.arrived:
            assert self.arrived.wait_for(lambda: (topic, payload) in self.messages, timeout), \
                f"{topic} {payload!r} did not arrive; got {self.messages}"

    def received(self, topic: str) -> list[bytes]:
        with self.arrived:
            return [p for t, p in self.messages if t == topic]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
