"""What the fleet says about itself, for ``kiosk update rollout``: each kiosk's signed info, health and answers.

An MQTT client of the centre's. Only messages that verify with the fleet registry's active key of the
kiosk they claim to come from count (the same rule as the centre's ingest); the rest are ignored.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field

Kiosk = tuple[str, str]  # (site, device)
LEAVES = ("info", "health", "status", "cmd-result")


@dataclass
class KioskState:
    """The latest signed info and health of one kiosk, numbered in the order they arrived."""

    version: str | None = None
    info_n: int = 0
    health: dict | None = None
    health_n: int = 0
    status: str | None = None
    results: dict = field(default_factory=dict)  # command id -> (result, reason)


class FleetWatch:
    """The fleet's signed ``info``, ``health`` and ``cmd-result`` (and plain ``status``) as they arrive.

    Only messages that verify with the registry's active key of the kiosk they claim to come from
    count; anything else is ignored. ``changed`` is notified on every message that counted.
    """

    def __init__(self, url: str, entries, mqtt_config=None):
        from kiosk.wire import signing
        from kiosk.wire.broker import make_client

        keys = []
        for e in entries:
            if not e.revoked:
                keys.append((f"{e.site}/{e.device}", signing.public_key_from_pem(e.public_key.encode(), e.kid)))
        self.ring = signing.KeyRing.of(keys)
        self.state: dict[Kiosk, KioskState] = {}
        self.changed = threading.Condition()
        self.connected = threading.Event()
        self.last_message_at = 0.0
        self._n = 0
        self.client, self.address = make_client(f"centre-rollout-{uuid.uuid4().hex[:8]}", url, mqtt_config)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *a: self.connected.set()  # the retained state comes after the SUBACK
        self.client.on_message = self._on_message

    def start(self) -> None:
        self.client.connect_async(self.address.host, self.address.port, keepalive=30)
        self.client.loop_start()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def settle(self, quiet_seconds: float, connect_timeout: float) -> bool:
        """Connected, and the retained state is in (no message for ``quiet_seconds``); False: no broker."""
        if not self.connected.wait(connect_timeout):
            return False
        start = time.monotonic()
        while time.monotonic() - max(self.last_message_at, start) < quiet_seconds:
            time.sleep(0.05)
        return True

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            return
        client.subscribe([(f"checkin/v1/+/+/{leaf}", 1) for leaf in LEAVES])

    def _on_message(self, client, userdata, msg) -> None:
        from kiosk.wire import signing

        if msg.topic.count("/") != 4:
            return
        _, _, site, device, leaf = msg.topic.split("/")
        self.last_message_at = time.monotonic()
        if leaf == "status":
            value = msg.payload.decode("utf-8", "replace")
            body = None
        else:
            try:
                verified = signing.verify(msg.payload, msg.topic, self.ring)
            except signing.SignatureRefused:
                return
            if verified.owner != f"{site}/{device}":
                return  # another kiosk's key: it cannot speak for this one
            body = verified.payload
        with self.changed:
            self._n += 1
            s = self.state.setdefault((site, device), KioskState())
            if leaf == "status":
                s.status = value
            elif leaf == "info" and isinstance(body.get("version"), str):
                s.version, s.info_n = body["version"], self._n
            elif leaf == "health":
                s.health, s.health_n = body, self._n
            elif leaf == "cmd-result" and isinstance(body.get("id"), str):
                s.results[body["id"]] = (body.get("result"), body.get("reason"))
            self.changed.notify_all()

    def mark(self) -> int:
        """A point in the arrival order: what arrives later is newer than it."""
        with self.changed:
            return self._n

    def of(self, kiosk: Kiosk) -> KioskState:
        with self.changed:
            return self.state.get(kiosk) or KioskState()

    def send(self, kiosk: Kiosk, key, body: dict, expires_in: float) -> str:
        """Publish a signed ``update`` command to ``kiosk`` (QoS 1); returns the command's id."""
        from kiosk.wire.commands import UPDATE, signed

        topic, message, command_id = signed(UPDATE, body, kiosk[0], kiosk[1], key, expires_in)
        info = self.client.publish(topic, message, qos=1, retain=False)
        info.wait_for_publish(10)
        if not info.is_published():
            raise OSError(f"the broker at {self.address} did not acknowledge the command to {kiosk[0]}/{kiosk[1]}")
        return command_id


def healthy(health: dict | None, allowed: frozenset[str] = frozenset()) -> tuple[bool, str]:
    """Whether a kiosk's signed health says it can check visitors in: (verdict, what is wrong)."""
    if not health:
        return False, "no health"
    wrong = [f for f in ("camera_ok", "ledger_ok", "display_ok") if health.get(f) is False]
    if health.get("camera_ok") is not True and "camera_ok" not in wrong:
        wrong.append("camera_ok")
    degraded = [w for w in health.get("degraded") or [] if w not in allowed]
    problems = [f"{f} false" for f in wrong] + ([f"degraded {','.join(degraded)}"] if degraded else [])
    return not problems, "; ".join(problems)
