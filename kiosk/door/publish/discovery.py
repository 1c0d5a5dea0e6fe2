"""Home Assistant MQTT discovery: a building's existing dashboard picks the kiosk up.

Retained config messages under ``homeassistant/`` describe sensors that read
the kiosk's own ``counts``, ``status`` and ``health`` topics; nothing new is published.

Keys follow Home Assistant's MQTT discovery schema as documented for the
``sensor`` and ``binary_sensor`` platforms (home-assistant.io/integrations/sensor.mqtt):

* daily counters reset to 0 at midnight, so they are ``state_class:
  total_increasing`` (a drop is read as a reset); ``total`` would need a
  ``last_reset`` and breaks the long-term statistics without one;
* ``default_entity_id`` (``<domain>.<slug>``) names the entity;
  ``object_id`` is deprecated since Home Assistant 2025.10 and stops working in 2026.4.
"""

from __future__ import annotations

import re
from typing import Iterator

from kiosk import __version__
from kiosk.wire.topics import Topics

DISCOVERY_PREFIX = "homeassistant"

# (object id, name, value template, unit)
_COUNTERS = (
    ("accepted", "Accepted today", "{{ value_json.accepted }}", "visitors"),
    ("rejected", "Rejected today", "{{ value_json.rejected }}", "scans"),
    ("duplicates", "Duplicates today", "{{ value_json.duplicates }}", "scans"),
    ("overrides", "Guard overrides today", "{{ value_json.overrides }}", "visitors"),
    ("unique_visitors", "Unique visitors today", "{{ value_json.unique_visitors }}", "visitors"),
)

# (object id, name, template giving PROBLEM/OK from the health message)
_PROBLEMS = (
    ("camera_problem", "Camera problem", "{{ 'OK' if value_json.camera_ok else 'PROBLEM' }}"),
    # ledger_ok arrived with health v1.1: an older kiosk without it is not "out of service".
    ("out_of_service", "Out of service",
     "{{ 'PROBLEM' if value_json.ledger_ok is defined and not value_json.ledger_ok else 'OK' }}"),
)


def node_id(topics: Topics) -> str:
    """The kiosk's discovery node id: ``checkin_<site>_<device>`` with only safe characters."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", f"checkin_{topics.site}_{topics.device}")


def _entity_id(domain: str, node: str, obj: str) -> str:
    # Entity ids are lower-case snake case; a '-' in a site or device name is not allowed there.
    return f"{domain}." + re.sub(r"[^a-z0-9_]", "_", f"{node}_{obj}".lower())


def messages(topics: Topics, venue, info: dict) -> Iterator[tuple[str, dict]]:
    """(topic, config payload) for each Home Assistant entity of this kiosk."""
    node = node_id(topics)
    device = {"identifiers": [node], "name": f"Check-in kiosk {venue.name}", "manufacturer": "checkin-kiosk",
              "model": info.get("hardware", ""), "sw_version": __version__}
    availability = {"topic": topics.status, "payload_available": "online", "payload_not_available": "offline"}
    for obj, name, template, unit in _COUNTERS:
        yield f"{DISCOVERY_PREFIX}/sensor/{node}/{obj}/config", {
            "name": name, "unique_id": f"{node}_{obj}", "default_entity_id": _entity_id("sensor", node, obj),
            "state_topic": topics.counts, "value_template": template, "unit_of_measurement": unit,
            "state_class": "total_increasing", "availability": availability, "device": device}
    yield f"{DISCOVERY_PREFIX}/binary_sensor/{node}/online/config", {
        "name": "Online", "unique_id": f"{node}_online", "default_entity_id": _entity_id("binary_sensor", node, "online"),
        "state_topic": topics.status, "payload_on": "online", "payload_off": "offline", "device_class": "connectivity",
        "device": device}
    for obj, name, template in _PROBLEMS:
        yield f"{DISCOVERY_PREFIX}/binary_sensor/{node}/{obj}/config", {
            "name": name, "unique_id": f"{node}_{obj}", "default_entity_id": _entity_id("binary_sensor", node, obj),
            "state_topic": topics.health, "value_template": template, "payload_on": "PROBLEM", "payload_off": "OK",
            "device_class": "problem", "availability": availability, "device": device}
