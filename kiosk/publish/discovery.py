"""Home Assistant MQTT discovery: a building's existing dashboard picks the kiosk up.

Retained config messages under ``homeassistant/`` describe sensors that read
the kiosk's own ``counts``, ``status`` and ``health`` topics; nothing new is published.
"""

from __future__ import annotations

import re
from typing import Iterator

from kiosk import __version__
from kiosk.publish.topics import Topics

DISCOVERY_PREFIX = "homeassistant"

# (object id, name, value template, unit)
_SENSORS = (
    ("accepted", "Accepted today", "{{ value_json.accepted }}", "visitors"),
    ("rejected", "Rejected today", "{{ value_json.rejected }}", "scans"),
    ("duplicates", "Duplicates today", "{{ value_json.duplicates }}", "scans"),
    ("overrides", "Guard overrides today", "{{ value_json.overrides }}", "visitors"),
    ("unique_visitors", "Unique visitors today", "{{ value_json.unique_visitors }}", "visitors"),
)


def node_id(topics: Topics) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", f"checkin_{topics.site}_{topics.device}")


def messages(topics: Topics, venue, info: dict) -> Iterator[tuple[str, dict]]:
    """(topic, config payload) for each Home Assistant entity of this kiosk."""
    node = node_id(topics)
    device = {"identifiers": [node], "name": f"Check-in kiosk {venue.name}", "manufacturer": "checkin-kiosk",
              "model": info.get("hardware", ""), "sw_version": __version__}
    availability = {"topic": topics.status, "payload_available": "online", "payload_not_available": "offline"}
    for obj, name, template, unit in _SENSORS:
        yield f"{DISCOVERY_PREFIX}/sensor/{node}/{obj}/config", {
            "name": name, "unique_id": f"{node}_{obj}", "object_id": f"{node}_{obj}", "state_topic": topics.counts,
            "value_template": template, "unit_of_measurement": unit, "state_class": "total",
            "availability": availability, "device": device}
    yield f"{DISCOVERY_PREFIX}/binary_sensor/{node}/online/config", {
        "name": "Online", "unique_id": f"{node}_online", "object_id": f"{node}_online", "state_topic": topics.status,
        "payload_on": "online", "payload_off": "offline", "device_class": "connectivity", "device": device}
    yield f"{DISCOVERY_PREFIX}/binary_sensor/{node}/camera_problem/config", {
        "name": "Camera problem", "unique_id": f"{node}_camera_problem", "object_id": f"{node}_camera_problem",
        "state_topic": topics.health, "value_template": "{{ 'OK' if value_json.camera_ok else 'PROBLEM' }}",
        "payload_on": "PROBLEM", "payload_off": "OK", "device_class": "problem", "availability": availability,
        "device": device}
