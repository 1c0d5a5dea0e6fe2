"""The publishing seam: the pipeline talks to a :class:`Telemetry`, never to paho.

Like Frigate's ``Communicator``: MQTT is one implementation
(:class:`kiosk.publish.mqtt.MqttPublisher`); :class:`NullTelemetry` stands in
when publishing is switched off.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from typing import Callable

log = logging.getLogger(__name__)


class Telemetry(ABC):
    """Publishes the ledger's outbox and the kiosk's state to the centre."""

    #: Called as ``on_command(name, payload_text)`` for an enabled inbound command;
    #: runs on the network thread, so keep it short (hand over to the main loop).
    on_command: Callable[[str, str], None] | None = None

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

        Called from the pipeline's main loop about once a second with the keys
        ``camera_ok`` (bool), ``camera_error`` (str, '' when fine), ``capture_fps``,
        ``decode_fps`` (float), ``verdict_latency_p95_ms``, ``clock_synced``,
        ``trust_age_days`` (float/bool or None when unknown) and ``uptime_s`` (float).
        Must stay cheap (store and maybe wake); the default ignores it.
        """

    def __enter__(self) -> "Telemetry":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class NullTelemetry(Telemetry):
    """Publishing is off (``[mqtt] enabled = false``): outbox messages are discarded, counters stay."""

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
                self._ledger.ack_many(m.id for m in batch)

    def stop(self) -> None:
        pass
