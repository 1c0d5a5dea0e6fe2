"""Contact tracing in the running kiosk: a real kiosk built by ``assemble``, a real broker, the authority's tool.

Visitors check in through the real flow (replayed frames of the demo's codes,
real decoders and verifiers, the real ledger with its visit log on). The
health authority asks with ``kiosk trace request`` / ``kiosk trace collect``;
the kiosk's own tracing service (wired by the assembly behind its publisher)
answers, its health counts the answer, and an unsigned request is refused.
A subscriber to ``#`` checks that no visitor's personal data crossed the
broker in clear.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from helpers import device_keyring, kiosk_config, verified, wait_for
from kiosk.wire import signing
from kiosk.authority import keys as authority_keys
from kiosk.cli import main
from kiosk.testing.visitors import replay_frames, samples
from kiosk.door.record.visits import utc_text
from kiosk.wire import trace as P
from kiosk.door.tracing.service import TraceService

from tracing_fleet import Capture, read_f1

FIELDS = ("name", "birth_date", "id_number", "phone", "subject_id")
HEALTH = "checkin/v1/test-site/kiosk-t1/health"
DEADLINE = 30.0


def tracing_config(tmp_path: Path, broker_url: str, authority_pub: Path, mqtt_enabled: bool = True):
    """A whole kiosk's config with the visit log on (every personal field) and the authority's key provisioned."""
    extra = (f"enabled = {'true' if mqtt_enabled else 'false'}\nhealth_interval_seconds = 1\n"
             f"[ledger]\nvisit_log = true\nvisit_log_fields = {json.dumps(list(FIELDS))}\n"
             f'[tracing]\nauthority_key = "{authority_pub}"\n')
    return kiosk_config(tmp_path, broker_url, extra=extra)


class RunningKiosk:
    """The assembled kiosk on its own thread, fed the demo's codes; stopped (and joined) on close."""

    def __init__(self, cfg, items):
        from device.frames import ReplaySource
        from gpiozero.pins.mock import MockFactory

        from kiosk.door.assembly import assemble

        self.checkins = []
        self._lock = threading.Lock()
        # fps=0: every frame decoded, whatever the machine's speed.
        source = ReplaySource(replay_frames(items, frames_per_code=3, gap_frames=2), fps=0)
        self.kiosk = assemble(cfg, source=source, pin_factory=MockFactory(), headless=True, on_checkin=self._seen)
        self.result: list[int] = []
        self.thread = threading.Thread(target=lambda: self.result.append(self.kiosk.run(until_exhausted=False)),
                                       name="kiosk-under-test", daemon=True)
        self.thread.start()

    def _seen(self, checkin, seq, code):
        with self._lock:
            self.checkins.append(checkin)

    def seen(self) -> list:
        with self._lock:
            return list(self.checkins)

    def close(self) -> None:
        self.kiosk.stop()
        self.thread.join(DEADLINE)
        assert not self.thread.is_alive(), "the kiosk did not stop"
        assert self.result == [0]


@pytest.fixture
def authority(tmp_path):
    keys_dir = tmp_path / "authority"
    assert main(["trace", "keygen", str(keys_dir)]) == 0
    return keys_dir


def registry_for(cfg, path: Path) -> Path:
    """The fleet registry row the authority holds for this kiosk (its device key, made at first start)."""
    from kiosk.door.publish.device_key import key_path, public_path

    pub = public_path(key_path(cfg.device, cfg.resolve))
    row = {"site": cfg.device.site, "device": cfg.device.id, "venue_id": cfg.venue.id,
           "kid": signing.kid_of(signing.load_public_key(pub)), "public_key": pub.read_text(), "revoked": False}
    path.write_text(json.dumps({"version": 1, "kiosks": [row]}))
    return path


def health_messages(capture: Capture, keys) -> list[dict]:
    """Every health the kiosk published, verified with its device key."""
    return [verified(p, t, keys) for t, p in capture.on(HEALTH)]


def latest_health(capture: Capture, keys, cond) -> dict:
    found: list[dict] = []

    def check():
        found[:] = [h for h in health_messages(capture, keys) if cond(h)]
        return bool(found)

    assert wait_for(check, DEADLINE), f"no published health met the condition; last: {health_messages(capture, keys)[-1:]}"
    return found[-1]


def personal_strings(checkins) -> set[str]:
    """Everything about the visitors that must never cross the broker in clear."""
    out = set()
    for c in checkins:
        out.add(c.pseudonym)
        h = c.holder
        if h is None:
            continue
        for value in (h.name, h.family_name, h.given_name, h.id_number, h.phone, h.birth_date, h.subject_id):
            if value and len(value) >= 4:
                out.add(value)
    return {s for s in out if s}


def test_the_kiosk_answers_a_signed_place_request_with_exactly_its_check_ins(tmp_path, broker, authority):
    cfg = tracing_config(tmp_path, broker.url, authority / authority_keys.SIGN_PUB)
    capture = Capture(broker.port)
    items = samples()
    started = datetime.now(timezone.utc)
    running = RunningKiosk(cfg, items)
    try:
        k = running.kiosk
        services = k.stages.services
        assert len(services) == 1 and isinstance(services[0], TraceService), "the assembly wires tracing"
        service = services[0]
        # every visitor is checked in through the real flow
        assert wait_for(lambda: len(running.seen()) == len(items), DEADLINE), running.seen()
        checkins = running.seen()
        accepted = [c for c in checkins if c.verdict == "accept"]
        assert len(accepted) >= 2 and any(c.holder and c.holder.name for c in accepted)
        assert {(c.verdict, c.reason) for c in checkins} == {(s.verdict, s.reason) for s in items}
        # the kiosk listens for requests before the authority asks (requests are not retained)
        assert wait_for(lambda: all(k.stages.publisher.subscribed(t) for t in service.responder.topics), DEADLINE)
        device_keys = device_keyring(cfg)
        before = latest_health(capture, device_keys, lambda h: True)
        assert (before["trace_answered"], before["trace_refused"]) == (0, 0)

        # -- the authority asks for the venue and the window, signed; collects and opens the answers
        registry = registry_for(cfg, tmp_path / "registry.json")
        request_file = tmp_path / "request.json"
        window = ["--from", (started - timedelta(minutes=5)).isoformat(timespec="minutes"),
                  "--to", (datetime.now(timezone.utc) + timedelta(minutes=5)).isoformat(timespec="minutes")]
        assert main(["trace", "request", "--keys", str(authority), "--broker", broker.url, "--registry",
                     str(registry), "--venue", cfg.venue.id, "--out", str(request_file), *window]) == 0
        rid = json.loads(request_file.read_text())["request"]["id"]
        prefix = tmp_path / "f1"
        assert main(["trace", "collect", "--request", str(request_file), "--keys", str(authority), "--registry",
                     str(registry), "--wait", str(DEADLINE), "--out", str(prefix)]) == 0
        rows = read_f1(f"{prefix}.csv")
        # the F1 list names the accepted visitors the kiosk saw (a signed declaration carries no name; the
        # CCCD duplicate is the PC-Covid visitor again, one row)
        assert sorted(r["name"] for r in rows) == sorted({(c.holder.name if c.holder else "") or "" for c in accepted})
        assert {r["venue_id"] for r in rows} == {cfg.venue.id}
        # the kiosk told the authority which fields it keeps: a row without a name says why
        why = {"health-declaration": "no name, phone, ID number, birth date: a health declaration code carries none; "
                                     "reach them through the declaration's issuer (declaration subject and issuer "
                                     "columns)",
               "eu-dcc": "no phone, ID number: an EU DCC code carries none", "pc-covid": "", "cccd": "no phone: a CCCD "
               "chip-card code carries none"}
        assert {r["format"] for r in rows} >= {"health-declaration", "eu-dcc"}
        assert all(r["missing"] == why[r["format"]] for r in rows), [(r["format"], r["missing"]) for r in rows]
        # the declaration's subject and issuer, as the kiosk read them from the signed code
        subjects = {(c.holder.subject_id, c.holder.subject_issuer) for c in accepted
                    if c.format == "health-declaration"}
        assert {(r["subject_id"], r["subject_issuer"]) for r in rows if r["format"] == "health-declaration"} == subjects
        assert all(r["subject_id"] == "" for r in rows if r["format"] != "health-declaration")

        # the raw answer: signed by this kiosk, bound to its topic, sealed to the authority; exactly the check-ins
        topic = P.answer_topic(rid, cfg.device.site, cfg.device.id)
        answers = capture.on(topic)
        assert len(answers) == 1
        answer = verified(answers[0][1], topic, device_keys)
        assert (answer["outcome"], answer["reason"], answer["request"]) == ("answered", "ok", rid)
        body = P.unseal(answer["sealed"], authority_keys.load(authority).box)
        assert body["in_scope"] is True and body["venue"]["id"] == cfg.venue.id
        got = sorted((r["time"], r["verdict"], r["reason"], r["format"], r["pseudonym"], r.get("name"),
                      r.get("id_number")) for r in body["records"])
        want = sorted((utc_text(c.at), c.verdict, c.reason, c.format, c.pseudonym,
                       c.holder.name if c.holder else None, c.holder.id_number if c.holder else None)
                      for c in accepted)
        assert got == want
        assert {r["role"] for r in body["records"]} == {"visit"}

        # the kiosk's published health counts the answer
        answered = latest_health(capture, device_keys, lambda h: h["trace_answered"] == 1)
        assert answered["trace_refused"] == 0

        # -- an unsigned request: a refusal, counted
        keys = authority_keys.load(authority)
        now = time.time()
        unsigned = signing.stamp({"v": 1, "id": "a" * 32, "kind": "place", "venues": [cfg.venue.id],
                                  "from": signing.iso(now - 3600), "to": signing.iso(now), "verdicts": ["accept"],
                                  "reply_key": P.b64(bytes(keys.box.public_key))}, ttl_s=3600)
        capture.publish(P.FLEET_TOPIC, json.dumps(unsigned).encode())
        refusal_topic = P.answer_topic("a" * 32, cfg.device.site, cfg.device.id)
        assert wait_for(lambda: capture.on(refusal_topic), DEADLINE), "no refusal"
        refusal = verified(capture.on(refusal_topic)[0][1], refusal_topic, device_keys)
        assert (refusal["outcome"], refusal["reason"]) == ("refused", "unsigned") and "sealed" not in refusal
        refused = latest_health(capture, device_keys, lambda h: h["trace_refused"] == 1)
        assert refused["trace_answered"] == 1
        assert [(e.request_id, e.outcome, e.reason) for e in service.responder.archive.audit_log()] == [
            (rid, "answered", "ok"), ("a" * 32, "refused", "unsigned")]
    finally:
        running.close()
        capture.close()

    # nothing personal crossed the broker in clear: not a name, an ID number, a phone, a pseudonym
    carried = b"\n".join(t.encode() + b" " + p for t, p in capture.messages)
    assert carried.count(b"/health") and carried.count(b"checkin/v1/trace/")
    for secret in personal_strings(checkins):
        for form in {secret.encode(), json.dumps(secret).encode()[1:-1]}:
            assert form not in carried, f"{secret!r} crossed the broker in clear"
    assert b"vn-id:" not in carried


def test_a_kiosk_without_mqtt_has_no_tracing_and_still_checks_people_in(tmp_path, authority, caplog):
    cfg = tracing_config(tmp_path, "mqtt://127.0.0.1:9", authority / authority_keys.SIGN_PUB, mqtt_enabled=False)
    items = [s for s in samples() if s.verdict == "accept"][:2] + [s for s in samples() if s.verdict == "reject"][:1]
    caplog.set_level(logging.WARNING)
    running = RunningKiosk(cfg, items)
    try:
        k = running.kiosk
        assert k.stages.services == []
        assert wait_for(lambda: len(running.seen()) == len(items), DEADLINE)
        assert wait_for(lambda: k.supervisor.last_health.get("trace_answered") == 0, DEADLINE)
        assert k.supervisor.last_health["trace_refused"] == 0
    finally:
        running.close()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]
    assert not any("tracing" in r.getMessage() for r in caplog.records)
    # the visits are in the visit log all the same (the venue can still export them)
    from kiosk.door.record.visits import VisitArchive

    archive = VisitArchive(cfg.ledger_path)
    try:
        lo, hi = datetime.now(timezone.utc) - timedelta(hours=1), datetime.now(timezone.utc) + timedelta(hours=1)
        assert len(archive.between(lo, hi, None)) == len(items)
    finally:
        archive.close()
