"""Test support for tracing: kiosks with known visit logs, each behind its own paho client, and a registry."""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from helpers import wait_for
from kiosk.wire import signing
from kiosk.door.decide.checkin import Checkin
from kiosk.door.verify import Holder
from kiosk.door.record import Ledger
from kiosk.door.record.visits import VisitArchive
from kiosk.trust.pseudonym import Pseudonyms
from kiosk.door.tracing.responder import TraceResponder
from kiosk.door.tracing.service import TraceService

VN = ZoneInfo("Asia/Ho_Chi_Minh")
ALL_FIELDS = ("name", "birth_date", "id_number", "phone")


def wait_until(predicate, timeout=20.0, what="condition"):
    if not wait_for(predicate, timeout=timeout):
        raise AssertionError(f"timed out waiting for {what}")


@dataclass(frozen=True)
class Person:
    name: str
    id_number: str
    birth_date: str
    phone: str

    @property
    def identity(self) -> str:
        return f"vn-id:{self.id_number}"

    @property
    def holder(self) -> Holder:
        return Holder(name=self.name, birth_date=self.birth_date, id_number=self.id_number, phone=self.phone)


@dataclass
class FakeKiosk:
    """One kiosk's state: its ledger file, device key, pseudonym key and responder."""

    site: str
    device: str
    venue: dict
    directory: Path
    visit_log: bool = True
    fields: tuple = ALL_FIELDS

    def __post_init__(self):
        self.directory.mkdir(parents=True, exist_ok=True)
        self.key = signing.generate_key()
        self.pseudonyms = Pseudonyms(uuid.uuid4().bytes + uuid.uuid4().bytes)
        self.ledger_path = self.directory / "ledger.sqlite3"
        self.ledger = Ledger(self.ledger_path, visit_log=self.visit_log, visit_log_fields=self.fields, tz=VN,
                             venue_id=self.venue["id"], device_id=self.device)

    def visit(self, person: Person, at, verdict="accept") -> None:
        self.ledger.record(Checkin(id=uuid.uuid4().hex, at=at, verdict=verdict, reason="ok", format="cccd",
                                   valid=True, signed=False, pseudonym=self.pseudonyms.of(person.identity),
                                   holder=person.holder, captured_at=0.0, source="camera"))

    def responder(self, authority: signing.KeyRing, **kw) -> TraceResponder:
        return TraceResponder(site=self.site, device=self.device, venue=self.venue, device_key=self.key,
                              authority=authority, archive=VisitArchive(self.ledger_path),
                              pseudonymize=self.pseudonyms.of, visit_log=self.visit_log, fields=self.fields, **kw)

    def registry_row(self) -> dict:
        return {"site": self.site, "device": self.device, "venue_id": self.venue["id"],
                "kid": signing.kid_of(self.key.public_key()),
                "public_key": signing.public_pem(self.key).decode(), "revoked": False}


def write_registry(path: Path, kiosks) -> Path:
    path.write_text(json.dumps({"version": 1, "kiosks": [k.registry_row() for k in kiosks]}))
    return path


class PahoTelemetry:
    """The publisher's inbound API (BRIEF contract 6) on a bare paho client, for tests."""

    def __init__(self, url_port: int, client_id: str, username: str | None = None, password: str | None = None):
        self._subs: list[tuple[str, object]] = []
        self._lock = threading.Lock()  # a filter added while connecting is subscribed by one side or the other
        self._connected = threading.Event()
        self._mids: dict[str, list[int]] = {}  # each filter's SUBSCRIBE packets
        self._granted: set[int] = set()  # the packets the broker granted
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        if username is not None:
            self.client.username_pw_set(username, password)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.client.connect_async("127.0.0.1", url_port)
        self.client.loop_start()

    def _subscribe(self, topic_filter: str) -> None:
        _, mid = self.client.subscribe(topic_filter, qos=1)
        self._mids.setdefault(topic_filter, []).append(mid)

    def _on_connect(self, client, userdata, flags, rc, props=None):
        with self._lock:
            subs = [f for f, _ in self._subs]
            self._connected.set()
        for f in subs:
            self._subscribe(f)

    def _on_subscribe(self, client, userdata, mid, rcs, props=None):
        if not any(rc.is_failure for rc in rcs):
            self._granted.add(mid)

    def _on_message(self, client, userdata, msg):
        for f, handler in self._subs:
            if mqtt.topic_matches_sub(f, msg.topic):
                handler(msg.topic, msg.payload)

    def subscribe(self, topic_filter, handler):
        with self._lock:
            self._subs.append((topic_filter, handler))
            connected = self._connected.is_set()
        if connected:
            self._subscribe(topic_filter)

    def _all_granted(self) -> bool:
        # Every filter, by its own SUBACK: a count of acknowledgements could be made up by one filter twice.
        return all(any(m in self._granted for m in self._mids.get(f, ())) for f, _ in self._subs)

    def send(self, topic, payload, retain=False):
        self.client.publish(topic, payload, qos=1, retain=retain)

    def wait_subscribed(self, timeout=10.0):
        wait_until(lambda: self._connected.is_set() and self._all_granted(), timeout,
                   "the test kiosk's subscriptions")

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


class Capture:
    """A subscriber to ``#``: everything the broker carried."""

    def __init__(self, port: int):
        self.messages: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="capture-all")
        self.client.on_connect = lambda c, u, f, rc, p=None: c.subscribe("#", qos=1)
        self.client.on_subscribe = lambda c, u, mid, rcs, p=None: self._ready.set()
        self.client.on_message = self._on_message
        self.client.connect_async("127.0.0.1", port)
        self.client.loop_start()
        assert self._ready.wait(10), "capture client did not subscribe"

    def _on_message(self, client, userdata, msg):
        with self._lock:
            self.messages.append((msg.topic, bytes(msg.payload)))

    def on(self, prefix: str) -> list[tuple[str, bytes]]:
        with self._lock:
            return [m for m in self.messages if m[0].startswith(prefix)]

    def publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(10)

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


class Gate:
    """A responder that holds every request until the test opens the gate (a kiosk slow to answer)."""

    def __init__(self, responder: TraceResponder):
        self.responder = responder
        self.open = threading.Event()
        self.waiting = threading.Event()

    def handle(self, topic, payload):
        self.waiting.set()
        assert self.open.wait(60), "the test never opened the gate"
        return self.responder.handle(topic, payload)

    def __getattr__(self, name):
        return getattr(self.responder, name)


def serve(kiosk: FakeKiosk, port: int, authority: signing.KeyRing, gate: bool = False, **kw):
    """The kiosk's responder behind its own paho client, as the running kiosk will wire it."""
    telemetry = PahoTelemetry(port, f"kiosk-{kiosk.site}-{kiosk.device}")
    responder = kiosk.responder(authority, **kw)
    service = TraceService(Gate(responder) if gate else responder, telemetry)
    service.start()
    telemetry.wait_subscribed()
    return service, telemetry


def read_f1(path) -> list[dict]:
    """The rows of an F1 CSV, keyed by the tool's column names (the headers are for people)."""
    import csv

    from kiosk.authority.f1 import COLUMNS

    with open(path, encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f))
    assert len(rows[0]) == len(COLUMNS), rows[0]
    return [dict(zip(COLUMNS, r)) for r in rows[1:]]


def stored_answers(keys_dir) -> list[tuple[str, str, str, str]]:
    """(request, site, device, outcome) of every answer in the desk's store, read as another process would."""
    import sqlite3

    from kiosk.authority.store import path_for

    path = path_for(keys_dir)
    if not path.exists():
        return []
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        return db.execute("SELECT request_id, site, device, outcome FROM answers ORDER BY 1, 2, 3").fetchall()
    except sqlite3.OperationalError:  # the collect has not made its tables yet
        return []
    finally:
        db.close()
