"""Home Assistant discovery configs, checked against the MQTT discovery schema Home Assistant documents.

The allowed keys and values below are those of home-assistant.io/integrations/sensor.mqtt and
binary_sensor.mqtt (2025.10 and later: ``default_entity_id``, ``object_id`` deprecated). The value
templates are rendered with Jinja, as Home Assistant renders them, against the kiosk's real payloads.
"""

from __future__ import annotations

import re

import pytest

from kiosk.door.publish import discovery
from kiosk.wire.topics import Topics

jinja2 = pytest.importorskip("jinja2")

COMMON = {"name", "unique_id", "default_entity_id", "state_topic", "value_template", "availability", "device",
          "device_class", "expire_after", "force_update", "icon", "qos", "enabled_by_default", "entity_category"}
SENSOR = COMMON | {"unit_of_measurement", "state_class", "suggested_display_precision", "last_reset_value_template"}
BINARY_SENSOR = COMMON | {"payload_on", "payload_off", "off_delay"}
STATE_CLASSES = {"measurement", "measurement_angle", "total", "total_increasing"}
DEVICE_KEYS = {"identifiers", "connections", "name", "manufacturer", "model", "model_id", "sw_version", "hw_version",
               "serial_number", "configuration_url", "suggested_area", "via_device"}
AVAILABILITY_KEYS = {"topic", "payload_available", "payload_not_available", "value_template"}


class Venue:
    name = "Nhà sách Tràng Tiền"


@pytest.fixture
def configs():
    return dict(discovery.messages(Topics("hn-hk", "kiosk-01"), Venue(), {"hardware": "Raspberry Pi 4"}))


def test_every_config_uses_only_documented_keys(configs):
    for topic, conf in configs.items():
        m = re.fullmatch(r"homeassistant/(sensor|binary_sensor)/(checkin_[A-Za-z0-9_-]+)/([a-z_]+)/config", topic)
        assert m, topic
        domain = m.group(1)
        allowed = SENSOR if domain == "sensor" else BINARY_SENSOR
        assert set(conf) <= allowed, (topic, set(conf) - allowed)
        assert "object_id" not in conf  # deprecated by Home Assistant 2025.10
        assert re.fullmatch(rf"{domain}\.[a-z0-9_]+", conf["default_entity_id"]), conf["default_entity_id"]
        assert set(conf["device"]) <= DEVICE_KEYS and conf["device"]["identifiers"]
        if "availability" in conf:
            assert set(conf["availability"]) <= AVAILABILITY_KEYS
    ids = [c["unique_id"] for c in configs.values()]
    assert len(ids) == len(set(ids))
    entity_ids = [c["default_entity_id"] for c in configs.values()]
    assert len(entity_ids) == len(set(entity_ids))


def test_daily_counters_are_total_increasing(configs):
    """They drop to 0 at midnight: total_increasing reads that as a reset; 'total' would need last_reset."""
    counters = {t: c for t, c in configs.items() if t.startswith("homeassistant/sensor/")}
    assert {t.split("/")[3] for t in counters} == {"accepted", "rejected", "duplicates", "overrides", "unique_visitors"}
    for conf in counters.values():
        assert conf["state_class"] == "total_increasing" and conf["state_class"] in STATE_CLASSES
        assert "last_reset_value_template" not in conf


def render(template: str, payload: dict) -> str:
    return jinja2.Environment().from_string(template).render(value_json=payload).strip()


def test_templates_read_the_kiosks_payloads(configs):
    counts = {"day": "2021-10-05", "accepted": 12, "rejected": 3, "duplicates": 2, "overrides": 1,
              "unique_visitors": 12, "seq": 40, "sig": "..."}
    for topic, conf in configs.items():
        if topic.startswith("homeassistant/sensor/"):
            assert render(conf["value_template"], counts) == str(counts[topic.split("/")[3]])
    camera = configs["homeassistant/binary_sensor/checkin_hn-hk_kiosk-01/camera_problem/config"]
    assert render(camera["value_template"], {"camera_ok": False}) == camera["payload_on"]
    assert render(camera["value_template"], {"camera_ok": True}) == camera["payload_off"]
    out = configs["homeassistant/binary_sensor/checkin_hn-hk_kiosk-01/out_of_service/config"]
    assert render(out["value_template"], {"camera_ok": True, "ledger_ok": False}) == "PROBLEM"
    assert render(out["value_template"], {"camera_ok": True, "ledger_ok": True}) == "OK"
    assert render(out["value_template"], {"camera_ok": True}) == "OK"  # an older kiosk without ledger_ok


def test_entity_ids_are_valid_for_odd_site_names():
    confs = dict(discovery.messages(Topics("HN.Hoàn-Kiếm", "K 01"), Venue(), {}))
    for conf in confs.values():
        assert re.fullmatch(r"(sensor|binary_sensor)\.[a-z0-9_]+", conf["default_entity_id"]), conf["default_entity_id"]
