"""Payloads a real kiosk publishes validate against docs/schemas/*.json (the documented contract)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from kiosk.door.assembly import open_ledger, open_publisher
from helpers import Collector, checkin, make_config, wait_for

SCHEMAS = Path(__file__).resolve().parent.parent / "docs" / "schemas"


def validator(name: str) -> Draft202012Validator:
    schema = json.loads((SCHEMAS / f"{name}.schema.json").read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def test_every_published_payload_matches_its_schema(tmp_path, broker):
    cfg = make_config(tmp_path, broker.url)
    sub = Collector(broker.url, "checkin/#")
    with open_ledger(cfg) as ledger:
        pub = open_publisher(cfg, ledger)
        pub.start()
        try:
            # what the pipeline's main loop reports (kiosk/door/kiosk.py), camera working, then unplugged
            pub.set_health({"camera_ok": True, "camera_error": "", "capture_fps": 30.0, "decode_fps": 29.6,
                            "verdict_latency_p95_ms": None, "clock_synced": None, "trust_age_days": None,
                            "uptime_s": 2.5})
            # the connect-time counts first (seq 0), so the check-ins below make a second, newer one
            assert wait_for(lambda: pub.connected and sub.of("/counts"))
            ledger.record(checkin(pseudonym="a"))
            ledger.record(checkin(pseudonym="a", reason="duplicate", duplicate=True))
            ledger.record(checkin(verdict="reject", reason="policy:test-too-old", pseudonym=None))
            ledger.record_override()
            pub.wake()
            assert wait_for(lambda: len(sub.of("/events")) == 4 and json.loads(sub.of("/counts")[-1])["seq"] == 4)
            pub.set_health({"camera_ok": False, "camera_error": "camera disappeared", "capture_fps": 0.0,
                            "decode_fps": 0.0, "verdict_latency_p95_ms": 48.25, "clock_synced": True,
                            "trust_age_days": 0.5, "uptime_s": 3.0})
            assert wait_for(lambda: len(sub.of("/health")) == 2)
        finally:
            pub.stop()
    assert wait_for(lambda: b"offline" in sub.of("/status"))
    sub.close()
    checked = {"status": 0, "counts": 0, "events": 0, "info": 0, "health": 0}
    for topic, payload, _ in sub.messages:
        leaf = topic.rsplit("/", 1)[1]
        if leaf == "status":
            validator("status").validate(payload.decode())
        else:
            validator({"events": "event"}.get(leaf, leaf)).validate(json.loads(payload))
        checked[leaf] += 1
    assert checked["status"] >= 2 and checked["counts"] >= 2 and checked["events"] == 4 and checked["info"] == 1
    assert checked["health"] == 2


HEALTH_OK = {"camera_ok": True, "camera_error": "", "capture_fps": 30.0, "decode_fps": 29.5,
             "verdict_latency_p95_ms": None, "clock_synced": None, "trust_age_days": None, "uptime_s": 1, "outbox": 0,
             "ts": "2021-09-14T05:58:03.120Z"}


@pytest.mark.parametrize("name,bad", [
    ("event", {"id": "x", "seq": 0, "time": "yesterday", "verdict": "maybe", "reason": "ok", "format": "eu-dcc"}),
    ("event", {"id": "5d0c1b7e9a0f4f6e8c2b3a4d5e6f7a8b", "seq": 1, "time": "2021-09-14T05:58:03.120Z",
               "verdict": "accept", "reason": "ok", "format": "eu-dcc", "name": "Nguyễn Văn A"}),  # personal data
    ("status", "maybe"),
    ("counts", {"day": "2021-09-14"}),
    ("health", {**HEALTH_OK, "camera_ok": "yes", "capture_fps": -1}),
    ("health", {**HEALTH_OK, "last_visitor": "Nguyễn Văn A"}),  # personal data
])
def test_schemas_reject_what_the_contract_forbids(name, bad):
    assert list(validator(name).iter_errors(bad))


def test_documented_examples_are_valid():
    """The JSON examples in docs/mqtt.md follow the schemas too."""
    text = (SCHEMAS.parent / "mqtt.md").read_text()
    blocks = [b.split("```", 1)[0] for b in text.split("```json\n")[1:]]
    names = {"day": "counts", "verdict": "event", "venue_qr_sha256": "info", "camera_ok": "health",
             "nonce": "command", "result": "cmd-result"}
    seen = set()
    for block in blocks:
        data = json.loads(block.replace("…", "0" * 56))
        name = next(v for k, v in names.items() if k in data)
        validator(name).validate(data)
        seen.add(name)
    assert seen == {"counts", "event", "info", "health", "command", "cmd-result"}


def test_health_schema_accepts_a_healthy_kiosk():
    validator("health").validate(HEALTH_OK)  # so the rejections above are for the one bad field
