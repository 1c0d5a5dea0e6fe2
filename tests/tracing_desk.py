"""Test support for the authority's desk without a broker: three kiosks, the keys, the answer store, a case request.

Two kiosks stand at the two entrances of V1 (the side door keeps names only), one at V2. The case
checked in at V1's main door; the kiosks answer through their real responders (:func:`answer_all`),
and :func:`investigation` opens the request as ``kiosk trace collect`` does.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from datetime import datetime, timedelta

from kiosk.wire import signing
from kiosk.authority import keys as authority_keys
from kiosk.authority import registry as registry_mod
from kiosk.authority import requests
from kiosk.authority.investigation import Investigation
from kiosk.authority.store import AnswerStore, path_for
from kiosk.wire import trace as P

from tracing_fleet import VN, FakeKiosk, Person, write_registry

CASE = Person("Trần Thị Bình", "001085001234", "1985-03-04", "0911000001")
NEAR = Person("Nguyễn Văn An", "001090000001", "1990-01-01", "0911000002")
SIDE = Person("Lê Thị Cúc", "001090000002", "1990-01-02", "0911000003")
AT = (datetime.now(VN) - timedelta(days=2)).replace(hour=12, minute=0, second=0, microsecond=0)
VENUE = {"id": "V1", "name": "Nhà sách", "address": "1 Tràng Tiền", "district": "Quận Hoàn Kiếm",
         "ward": "Phường Tràng Tiền"}
OTHER = {"id": "V2", "name": "Chợ", "address": "2 Đồng Xuân", "district": "Quận Hoàn Kiếm", "ward": "Phường Đồng Xuân"}


@contextmanager
def open_desk(tmp_path):
    """Three kiosks (two entrances of V1, one at V2), the authority's keys and store, a case request kept."""
    keys = authority_keys.keygen(tmp_path / "authority")
    ring = signing.KeyRing.of({"health-authority": keys.sign.public_key()})
    main_door = FakeKiosk("hn-hk", "k1", VENUE, tmp_path / "k1")
    side_door = FakeKiosk("hn-hk", "k1b", VENUE, tmp_path / "k1b", fields=("name",))
    market = FakeKiosk("hn-hk", "k2", OTHER, tmp_path / "k2")
    main_door.visit(CASE, AT)
    main_door.visit(NEAR, AT + timedelta(minutes=10))
    side_door.visit(SIDE, AT - timedelta(seconds=20))  # 20 s before the case: "within a minute", never "-0.0"
    side_door.visit(NEAR, AT + timedelta(minutes=9))
    market.visit(SIDE, AT)
    kiosks = [main_door, side_door, market]
    rows = registry_mod.load(write_registry(tmp_path / "registry.json", kiosks))
    responders = {k.device: k.responder(ring) for k in kiosks}
    store = AnswerStore(path_for(tmp_path / "authority"))
    req = requests.case_request(keys, P.FLEET_TOPIC, AT - timedelta(days=1), AT + timedelta(days=1),
                                [CASE.identity], rows, 30)
    store.add_request(req, P.FLEET_TOPIC, "mqtt://127.0.0.1:9", "kiosk-trace-x", published=signing.iso())
    try:
        yield {"keys": keys, "kiosks": kiosks, "rows": rows, "responders": responders, "store": store, "req": req,
               "tmp": tmp_path}
    finally:
        store.close()
        for r in responders.values():
            r.close()
        for k in kiosks:
            k.ledger.close()


def answer_all(desk, req) -> list[tuple[str, bytes]]:
    """Every kiosk's responder handles ``req`` as it arrived on the fleet topic: their (topic, message) answers."""
    out = []
    for r in desk["responders"].values():
        out += r.handle(P.FLEET_TOPIC, json.dumps(req).encode())
    return out


def investigation(desk) -> Investigation:
    """The case request opened from the desk's store, as ``kiosk trace collect`` opens it."""
    return Investigation(desk["store"], desk["store"].request(desk["req"]["id"]), desk["rows"], desk["keys"])
