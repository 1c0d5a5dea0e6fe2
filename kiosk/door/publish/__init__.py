"""Publishing to the centre over MQTT: see docs/mqtt.md for the topic contract.

``Publisher(mqtt_config, device_config, venue, ledger, info)`` is the MQTT
implementation of :class:`Telemetry`; :func:`kiosk.door.assembly.open_publisher`
picks it or the null one from the config.
"""

from __future__ import annotations

from kiosk.door.publish.base import NullTelemetry, Telemetry
from kiosk.wire.topics import Topics


def __getattr__(name: str):
    # ``from kiosk.door.publish import Publisher`` without importing paho for NullTelemetry users.
    if name in ("Publisher", "MqttPublisher"):
        from kiosk.door.publish.mqtt import MqttPublisher

        return MqttPublisher
    raise AttributeError(name)


__all__ = ["Telemetry", "NullTelemetry", "Topics", "Publisher"]
