#!/usr/bin/env python3
"""Benchmark contact tracing: one kiosk answering against 21 days of a busy venue, the authority collecting 1,000.

    .venv/bin/python scripts/bench_tracing.py [--per-day 5000] [--days 21] [--kiosks 1000] [--repeat 5]

Each figure is the median of ``--repeat`` runs, with a baseline measured in the
same run on the same data: the bare SQL query for the kiosk's answers, the bare
sealed-box decryption for the authority's collection. The authority's figures
include keeping every answer in its durable answer store (batches of 20, the
broker's in-flight window, one transaction each) and rebuilding the list from it.
Results go in docs/performance.md (## Contact tracing).
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import nacl.public  # noqa: E402

from kiosk.wire import signing  # noqa: E402
from kiosk.authority import requests  # noqa: E402
from kiosk.authority import f1  # noqa: E402
from kiosk.authority.collect import Collector  # noqa: E402
from kiosk.authority.investigation import Investigation  # noqa: E402
from kiosk.authority.store import AnswerStore  # noqa: E402
from kiosk.authority.keys import AuthorityKeys  # noqa: E402
from kiosk.authority.registry import RegisteredKiosk  # noqa: E402
from kiosk.door.record import Ledger  # noqa: E402
from kiosk.door.record.visits import VisitArchive, utc_text  # noqa: E402
from kiosk.trust.pseudonym import Pseudonyms  # noqa: E402
from kiosk.wire import trace as P  # noqa: E402
from kiosk.door.tracing.responder import TraceResponder  # noqa: E402

SURNAMES = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Vũ", "Đặng", "Bùi", "Đỗ", "Hồ"]
GIVEN = ["Văn An", "Thị Bình", "Minh Châu", "Quốc Dũng", "Thu Hà", "Đức Huy", "Ngọc Lan", "Thanh Tùng"]


def median_s(fn, repeat: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def fill(path: Path, per_day: int, days: int, pseudonyms: Pseudonyms, case_identity: str, now: datetime) -> list[datetime]:
    """A busy venue's visit log, written in bulk (the query is measured, not the filling); returns the case's visits."""
    Ledger(path, visit_log=True).close()  # create and migrate
    rng = random.Random(14)
    start = now - timedelta(days=days)
    rows, case_times = [], []
    seq = 0
    for d in range(days):
        opening = start + timedelta(days=d, hours=1)  # 08:00 Hanoi, 13 hours of opening
        for i in range(per_day):
            seq += 1
            at = opening + timedelta(seconds=rng.uniform(0, 13 * 3600))
            n = rng.randrange(10**8)
            rows.append((seq, utc_text(at), at.isoformat(timespec="milliseconds"), "V1", "k1",
                         pseudonyms.of(f"vn-id:0010900{n:05d}"), "accept", "ok", "cccd",
                         f"{rng.choice(SURNAMES)} {rng.choice(GIVEN)}", None, None, "1990-01-01",
                         f"0010900{n:05d}", "0912345678"))
        if d % 2 == 0:  # the case came every other day
            seq += 1
            at = opening + timedelta(hours=5)
            case_times.append(at)
            rows.append((seq, utc_text(at), at.isoformat(timespec="milliseconds"), "V1", "k1",
                         pseudonyms.of(case_identity), "accept", "ok", "cccd", "Trần Thị Bình", None, None,
                         "1985-03-04", "001085001234", "0911000001"))
    db = sqlite3.connect(path)
    with db:
        db.executemany("INSERT INTO visits (seq, at, local, venue_id, device_id, pseudonym, verdict, reason, format,"
                       " name, family_name, given_name, birth_date, id_number, phone)"
                       " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
    db.close()
    return case_times


def bench_kiosk(args, keys: AuthorityKeys, out: list) -> None:
    now = datetime.now(timezone.utc)
    device_key = signing.generate_key()
    pseudonyms = Pseudonyms(b"k" * 32)
    case_identity = "vn-id:001085001234"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ledger.sqlite3"
        case_times = fill(path, args.per_day, args.days, pseudonyms, case_identity, now)
        ring = signing.KeyRing.of({"authority": keys.sign.public_key()})
        me = RegisteredKiosk("s", "k1", "V1", signing.kid_of(device_key.public_key()), device_key.public_key())
        responder = TraceResponder(site="s", device="k1", venue={"id": "V1", "name": "Busy venue"},
                                   device_key=device_key, authority=ring, archive=VisitArchive(path),
                                   pseudonymize=pseudonyms.of, visit_log=True, max_age_s=86400)
        db = sqlite3.connect(path)
        lo, hi = now - timedelta(days=args.days + 1), now
        noon = case_times[len(case_times) // 2]

        def answer(req):
            # A fresh request each run: the same one twice is a replay.
            return responder.handle(P.FLEET_TOPIC, json.dumps(req()).encode())

        def sql(lo_, hi_):
            return lambda: db.execute("SELECT * FROM visits WHERE at >= ? AND at < ? ORDER BY at",
                                      (utc_text(lo_), utc_text(hi_))).fetchall()

        def case_sql():
            own = db.execute("SELECT * FROM visits WHERE pseudonym = ? AND at >= ? AND at < ?",
                             (pseudonyms.of(case_identity), utc_text(lo), utc_text(hi))).fetchall()
            return [db.execute("SELECT * FROM visits WHERE at >= ? AND at <= ?",
                               (utc_text(t - timedelta(minutes=30)), utc_text(t + timedelta(minutes=30)))).fetchall()
                    for t in case_times] + [own]

        def contacts_sql():
            return [db.execute("SELECT * FROM visits WHERE at >= ? AND at <= ?",
                               (utc_text(t - timedelta(minutes=30)), utc_text(t + timedelta(minutes=30)))).fetchall()
                    for t in case_times]

        times = [utc_text(t) for t in case_times]
        cases = [
            (f"contacts round, {len(case_times)} case check-ins, margin 30 min",
             lambda: requests.contacts_request(keys, P.FLEET_TOPIC, requests.case_request(
                 keys, P.FLEET_TOPIC, lo, hi, [case_identity], [me]), [me], {me.kid: times}), contacts_sql),
            (f"place, whole {args.days} days", lambda: requests.place_request(keys, P.FLEET_TOPIC, lo, hi, ["V1"]), sql(lo, hi)),
            ("place, 2-hour window", lambda: requests.place_request(keys, P.FLEET_TOPIC, noon - timedelta(hours=1),
                                                                    noon + timedelta(hours=1), ["V1"]),
             sql(noon - timedelta(hours=1), noon + timedelta(hours=1))),
            (f"case, {args.days} days, margin 30 min", lambda: requests.case_request(keys, P.FLEET_TOPIC, lo, hi,
                                                                           [case_identity], [me]), case_sql),
        ]
        for name, make, baseline in cases:
            base_s, _ = median_s(baseline, args.repeat)
            s, replies = median_s(lambda: answer(make), args.repeat)
            msg = json.loads(replies[0][1])
            body = P.unseal(msg["sealed"], keys.box)
            out.append((f"kiosk answers: {name}", len(body["records"]), s, base_s, "bare SQL query",
                        f"{len(replies[0][1]) / 1e6:.2f} MB answer"))
        responder.close()
        db.close()


def bench_collect(args, keys: AuthorityKeys, out: list) -> None:
    rng = random.Random(7)
    kiosks, device_keys = [], []
    for i in range(args.kiosks):
        k = signing.generate_key()
        device_keys.append(k)
        kiosks.append(RegisteredKiosk(f"site{i // 50}", f"k{i}", f"V{i}", signing.kid_of(k.public_key()), k.public_key()))
    now = datetime.now(timezone.utc)
    t_req = time.perf_counter()
    req = requests.case_request(keys, P.FLEET_TOPIC, now - timedelta(days=14), now, ["vn-id:001085001234"], kiosks)
    t_req = time.perf_counter() - t_req
    data = json.dumps(req).encode()
    out.append((f"authority seals a case request to {args.kiosks} kiosks", args.kiosks, t_req, None, "",
                f"{len(data) / 1e3:.0f} kB request"))
    # The kiosk side of that big request: verify + parse + open its own entry (no visits).
    ring = signing.KeyRing.of({"authority": keys.sign.public_key()})
    s, _ = median_s(lambda: (signing.verify(data, P.FLEET_TOPIC, ring, max_bytes=P.REQUEST_MAX_BYTES),
                             P.unseal(req["case"][kiosks[0].kid], P.box_private_key(device_keys[0]))), args.repeat)
    base_s, _ = median_s(lambda: json.loads(data), args.repeat)
    out.append((f"kiosk verifies and opens a {args.kiosks}-kiosk case request", 1, s, base_s, "bare JSON parse", ""))
    answers = []
    for k, key in zip(kiosks, device_keys):
        records = [{"role": "contact", "time": utc_text(now), "local": now.isoformat(), "venue_id": k.venue_id,
                    "device_id": k.device, "pseudonym": f"{rng.getrandbits(256):064x}", "verdict": "accept",
                    "name": f"{rng.choice(SURNAMES)} {rng.choice(GIVEN)}", "id_number": f"0010900{rng.randrange(10**5):05d}",
                    "case_time": utc_text(now), "overlap_minutes": 5.0} for _ in range(rng.randrange(0, 6))]
        body = {"request": req["id"], "site": k.site, "device": k.device, "venue": {"id": k.venue_id},
                "in_scope": True, "records": records}
        topic = P.answer_topic(req["id"], k.site, k.device)
        msg = {"v": 1, "request": req["id"], "site": k.site, "device": k.device, "outcome": "answered", "reason": "ok",
               "ts": signing.iso(), "sealed": P.seal(body, keys.box.public_key)}
        answers.append((topic, signing.sign_bytes(msg, topic, key)))

    def collect_all():
        col = Collector(req, P.FLEET_TOPIC, kiosks, keys.box)
        for t, d in answers:
            col.accept(t, d)
        assert col.complete()
        return col.f1()

    def bare_decrypt():
        box = nacl.public.SealedBox(keys.box)
        return [box.decrypt(P.unb64(json.loads(d)["sealed"], "sealed")) for _, d in answers]

    base_s, _ = median_s(bare_decrypt, args.repeat)
    s, rows = median_s(collect_all, args.repeat)
    out.append((f"authority collects {args.kiosks} answers in memory (verify, open, merge)", len(rows), s, base_s,
                "bare sealed-box decrypt", ""))

    with tempfile.TemporaryDirectory() as tmp:
        runs = iter(range(10**6))

        def fresh_store():
            store = AnswerStore(Path(tmp) / f"store-{next(runs)}.sqlite3")
            store.add_request(req, P.FLEET_TOPIC, "mqtt://broker", "kiosk-trace-bench", published=signing.iso())
            return store

        def collect_durable():
            store = fresh_store()
            inv = Investigation(store, store.request(req["id"]), kiosks, keys)
            for i in range(0, len(answers), 20):  # the broker's in-flight window: one transaction per batch
                inv.accept_batch(answers[i:i + 20])
            table = f1.table(inv.rows_raw(), timezone.utc)
            store.close()
            return table

        s, rows = median_s(collect_durable, args.repeat)
        out.append((f"authority collects {args.kiosks} answers into its store (+ fsync per 20) and lists them",
                    len(rows), s, base_s, "bare sealed-box decrypt", ""))

        store = fresh_store()
        Investigation(store, store.request(req["id"]), kiosks, keys).accept_batch(answers)

        def rebuild():
            inv = Investigation(store, store.request(req["id"]), kiosks, keys)
            return f1.table(inv.rows_raw(), timezone.utc)

        s, rows = median_s(rebuild, args.repeat)
        out.append((f"authority rebuilds the list from {args.kiosks} kept answers (collect again)", len(rows), s,
                    base_s, "bare sealed-box decrypt", ""))
        store.close()
    visits = {k.kid: [utc_text(now)] for k in kiosks[:: max(1, len(kiosks) // 20)]}
    s, second = median_s(lambda: requests.contacts_request(keys, P.FLEET_TOPIC, req, kiosks, visits), args.repeat)
    out.append((f"authority seals a second round to {args.kiosks} kiosks ({len(visits)} asked)", args.kiosks, s, None,
                "", f"{len(json.dumps(second)) / 1e3:.0f} kB request"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-day", type=int, default=5000)
    ap.add_argument("--days", type=int, default=21)
    ap.add_argument("--kiosks", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    sign = signing.generate_key()
    keys = AuthorityKeys(sign, nacl.public.PrivateKey.generate())
    out: list = []
    bench_kiosk(args, keys, out)
    bench_collect(args, keys, out)
    print(f"{args.days} days x {args.per_day} visits/day at one venue; {args.kiosks} kiosks; median of {args.repeat}")
    print(f"| {'measurement':58} | {'records':>7} | {'time':>9} | {'baseline':>9} | {'ratio':>6} | baseline is | note |")
    print(f"|{'-' * 60}|{'-' * 9}|{'-' * 11}|{'-' * 11}|{'-' * 8}|---|---|")
    for name, n, s, base, base_name, note in out:
        ratio = f"{s / base:5.1f}x" if base else "-"
        b = f"{base * 1000:7.1f} ms" if base else "-"
        print(f"| {name:58} | {n:7d} | {s * 1000:7.1f} ms | {b:>9} | {ratio:>6} | {base_name} | {note} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
