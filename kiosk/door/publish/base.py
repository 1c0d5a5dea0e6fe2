"""The publishing seam: the kiosk talks to a :class:`Telemetry`, never to paho.

Like Frigate's ``Communicator``: MQTT is one implementation
(:class:`kiosk.door.publish.mqtt.MqttPublisher`); :class:`NullTelemetry` stands in
when publishing is switched off, and drains the outbox so it never fills.

Inbound messages (contract 6): ``subscribe(topic_filter, handler)`` calls
``handler(topic, payload_bytes)`` on the network thread, re-subscribed on every
connect; a handler must only enqueue (``Kiosk.post``), never block.
``send(topic, payload)`` is for replies (cmd-result, trace answers): QoS 1,
best effort, not through the outbox.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from typing import Callable

log = logging.getLogger(__name__)

#: ``handler(topic, payload)`` for an inbound message; runs on the network thread.
Handler = Callable[[str, bytes], None]


class Telemetry(ABC):
    """Publishes the ledger's outbox and the kiosk's state to the centre, and hands inbound messages on."""

    #: False for the null telemetry: the status bar hides the MQTT item, the status LED ignores it.
    enabled = True

    @property
    @abstractmethod
    def connected(self) -> bool:
        """True while the centre is reachable (the status bar's MQTT mark)."""

    @abstractmethod
    def start(self) -> None:
        """Begin connecting in the background; never blocks on the network."""

    @abstractmethod
    def wake(self) -> None:
        """New outbox rows or changed counts: publish soon."""

    @abstractmethod
    def stop(self) -> None:
        """Say offline (if connected) and disconnect; idempotent."""

    def set_health(self, health: dict) -> None:
        """The kiosk's health right now, for the retained ``health`` topic (docs/mqtt.md).

        Called by the supervisor about once a second with the keys of
        :func:`kiosk.door.publish.payloads.health_payload`. Must stay cheap (store and
        maybe wake); the default ignores it.
        """

    def subscribe(self, topic_filter: str, handler: Handler) -> None:
        """Call ``handler(topic, payload)`` for every message matching ``topic_filter`` (MQTT wildcards)."""

    def send(self, topic: str, payload: bytes, retain: bool = False) -> bool:
        """Publish one reply now (QoS 1, best effort, not kept in the outbox); False when it could not go."""
        return False

    def __enter__(self) -> "Telemetry":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class NullTelemetry(Telemetry):
    """Publishing is off (``[mqtt] enabled = false``): outbox rows are discarded at once, counters stay."""

    enabled = False

    def __init__(self, ledger=None):
        self._ledger = ledger

    @property
    def connected(self) -> bool:
        return False

    def start(self) -> None:
        self.wake()

    def wake(self) -> None:
        # Nobody will ever send them; keeping them would only fill the outbox and count drops.
        if self._ledger is not None:
            while batch := self._ledger.pending(1000):
                if not self._ledger.ack_many(m.id for m in batch):
                    break  # the ledger is out of service: try again on the next wake

    def stop(self) -> None:
        pass
