"""The centre's signed commands to one kiosk: the key, the keys an answer must verify with, the exchange.

``kiosk command`` (:mod:`kiosk.commands.command`) parses and prints; the work is here.
:func:`send` publishes a signed command (:func:`kiosk.wire.commands.signed`) on
``checkin/v1/S/D/cmd/NAME`` and, when asked, waits for the kiosk's signed answer on
``.../cmd-result``, checked with the kiosk's key(s) when they are given.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from kiosk.wire import signing
from kiosk.wire.broker import make_client
from kiosk.wire.topics import cmd_result_of


class AnswerKeysError(ValueError):
    """The registry named for checking the answer is missing, or lists no active key for the kiosk."""


def public_path(private: Path) -> Path:
    """``centre-key.pem`` -> ``centre-key.pub.pem`` (the device key's naming)."""
    stem = private.name[:-4] if private.name.endswith(".pem") else private.name
    return private.with_name(stem + ".pub.pem")


def make_centre_key(private: Path, public: Path) -> str:
    """Write a new command key (``private`` mode 0600, ``public`` beside it); its kid.
    OSError when a file cannot be written."""
    key = signing.generate_key()
    signing.write_private_key(private, key)
    signing.write_public_key(public, key)
    return signing.kid_of(key.public_key())


def answer_keys(site: str, device: str, kiosk_key: str | None, registry_file: str | None) -> signing.KeyRing | None:
    """The keys the kiosk's answer must verify with (its public key file, its registered keys), or None
    to leave the answer unchecked. Raises :class:`AnswerKeysError`, or ``SigningKeyError`` for a bad key file."""
    owner = f"{site}/{device}"
    keys = []
    if kiosk_key:
        keys.append(signing.load_public_key(kiosk_key))
    if registry_file:
        from kiosk.wire import registry

        if not Path(registry_file).exists():
            raise AnswerKeysError(f"--registry: no such file {registry_file}")
        rows = registry.active(registry.load(registry_file), site, device)
        if not rows:
            raise AnswerKeysError(f"{registry_file}: no active key for {owner}")
        keys += [signing.public_key_from_pem(r.public_key.encode(), f"{registry_file}: {owner}") for r in rows]
    return signing.KeyRing.of([(owner, k) for k in keys]) if keys else None


@dataclass(frozen=True)
class Outcome:
    """How a command went: ``stage`` is where it stopped ("unreachable", "unsubscribed",
    "unacknowledged", "sent" without waiting, "unanswered", "answered"); ``why`` the broker's
    refusal (of the login, of the ``cmd-result`` subscription) or why the command was not
    acknowledged (the connection dropped); ``forged`` the reason an answer failed its signature
    check; ``result`` the answer. Nothing is published when the stage is "unreachable" or
    "unsubscribed"."""

    stage: str
    address: str = ""
    why: str = ""
    forged: str = ""
    result: dict | None = None


def _publish_failure(rc: int, exc: Exception) -> str:
    """Why paho gave up on a publish, in words."""
    import paho.mqtt.client as mqtt

    if rc in (mqtt.MQTT_ERR_NO_CONN, mqtt.MQTT_ERR_CONN_LOST):
        return "the connection to the broker dropped before the command was sent"
    if rc == mqtt.MQTT_ERR_QUEUE_SIZE:
        return "the client's outgoing queue is full"
    return str(exc)


def send(broker_url: str, settings, topic: str, message: bytes, command_id: str, *, wait: float, timeout: float,
         ring: signing.KeyRing | None, before_publish=lambda client: None) -> Outcome:
    """Publish ``message`` (QoS 1, not retained) and, with ``wait`` > 0, wait that long for the answer
    to ``command_id``. ``make_client``'s errors (a secret, a URL) are raised before anything is sent;
    a broker that cannot be reached, refuses the answers' subscription, or drops the connection is
    an :class:`Outcome`, never an exception. ``before_publish(client)`` runs just before the publish
    (a seam for tests that cut the broker there)."""
    result_topic = cmd_result_of(topic)
    connected, subscribed, answered = threading.Event(), threading.Event(), threading.Event()
    answer: dict = {}

    def on_connect(client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            answer["refused_by_broker"] = str(reason_code)
            connected.set()
            return
        connected.set()
        if wait:
            client.subscribe(result_topic, qos=1)
        else:
            subscribed.set()

    def on_subscribe(client, userdata, mid, reason_codes, properties):
        refused = [rc for rc in reason_codes if rc.is_failure]  # SUBACK 0x80 (3.1.1) or a v5 reason >= 0x80
        if refused:
            answer["subscription_refused"] = str(refused[0])
        subscribed.set()

    def on_message(client, userdata, msg):
        try:
            obj = signing.parse(msg.payload)
        except signing.SignatureRefused:
            return
        if obj.get("id") != command_id:
            return  # another command's answer
        if ring is not None:
            try:
                obj = signing.verify(msg.payload, msg.topic, ring).payload
            except signing.SignatureRefused as exc:
                answer.setdefault("forged", exc.reason)
                return
        answer["result"] = {k: v for k, v in obj.items() if k != signing.SIG_FIELD}
        answered.set()

    client, address = make_client(f"centre-command-{uuid.uuid4().hex[:8]}", broker_url, settings)
    client.on_connect, client.on_subscribe, client.on_message = on_connect, on_subscribe, on_message
    client.connect_async(address.host, address.port, keepalive=30)
    client.loop_start()
    where = str(address)
    try:
        deadline = time.monotonic() + timeout
        if not connected.wait(timeout) or "refused_by_broker" in answer:
            return Outcome("unreachable", where, why=answer.get("refused_by_broker", "no answer"))
        if not subscribed.wait(max(0.1, deadline - time.monotonic())):
            return Outcome("unsubscribed", where)
        if "subscription_refused" in answer:  # no answer could ever reach us: the command is not sent
            return Outcome("unsubscribed", where, why=answer["subscription_refused"])
        before_publish(client)
        info = client.publish(topic, message, qos=1, retain=False)
        try:
            info.wait_for_publish(max(0.1, deadline - time.monotonic()))
            published = info.is_published()
        except (RuntimeError, ValueError) as exc:
            # paho raises when the publish failed outright: the connection dropped between the
            # subscription and the publish (MQTT_ERR_NO_CONN), or its queue is full
            return Outcome("unacknowledged", where, why=_publish_failure(info.rc, exc))
        if not published:
            return Outcome("unacknowledged", where, why="no acknowledgement in time")
        if not wait:
            return Outcome("sent", where)
        if not answered.wait(wait):
            return Outcome("unanswered", where, forged=answer.get("forged", ""))
        return Outcome("answered", where, result=answer["result"])
    finally:
        client.disconnect()
        client.loop_stop()
