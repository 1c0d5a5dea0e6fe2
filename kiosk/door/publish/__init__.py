"""Publishing to the centre over MQTT: see docs/mqtt.md for the topic contract.

``Publisher(mqtt_config, device_config, venue, ledger, info)`` is the MQTT
implementation of :class:`Telemetry`; :func:`open_publisher` picks it or the
null one from the config.
"""

from __future__ import annotations

from kiosk.door.publish.base import NullTelemetry, Telemetry
from kiosk.wire.topics import Topics


def open_publisher(cfg, ledger, info: dict | None = None, device_key=None) -> Telemetry:
    """The telemetry the config asks for (not started): MQTT, or the null one when ``[mqtt] enabled = false``.

    ``device_key`` signs every message; None loads it from ``[device] key_file`` (made on first start).
    """
    if not cfg.mqtt.enabled:
        return NullTelemetry(ledger)
    from pathlib import Path

    from kiosk.door.publish import device_key as keys
    from kiosk.door.publish.mqtt import MqttPublisher
    from kiosk.door.publish.payloads import info_from_config

    base = Path(cfg.source_path).parent if cfg.source_path else None
    key = device_key or keys.load_or_create(cfg)
    return MqttPublisher(cfg.mqtt, cfg.device, cfg.venue, ledger, {**info_from_config(cfg), **(info or {})},
                         base_dir=base, device_key=key)


def __getattr__(name: str):
    # ``from kiosk.door.publish import Publisher`` without importing paho for NullTelemetry users.
    if name in ("Publisher", "MqttPublisher"):
        from kiosk.door.publish.mqtt import MqttPublisher

        return MqttPublisher
    raise AttributeError(name)


__all__ = ["Telemetry", "NullTelemetry", "Topics", "open_publisher", "Publisher"]
