"""Publishing to the centre over MQTT: see docs/mqtt.md for the topic contract.

:class:`kiosk.door.publish.mqtt.MqttPublisher` (``MqttPublisher(mqtt_config, device_config,
venue, ledger, info)``, paho imported with it) is the MQTT implementation of :class:`Telemetry`;
:func:`kiosk.door.assembly.open_publisher` picks it or the null one from the config.
"""

from __future__ import annotations

from kiosk.door.publish.base import NullTelemetry, Telemetry
from kiosk.wire.topics import Topics

__all__ = ["Telemetry", "NullTelemetry", "Topics"]
