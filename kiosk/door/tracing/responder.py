"""The kiosk's side of contact tracing: one trace request in, one signed answer out.

:meth:`TraceResponder.handle` is pure apart from the ledger file: it takes a
request's topic and bytes and returns the replies to publish, so it is tested
without a broker and wired to any transport (:mod:`kiosk.door.tracing.service`).

Checks, in a fixed order, each failure a refusal with a stable reason
(:mod:`kiosk.wire.trace`): the signature with the health authority's key
(``[tracing] authority_key``; none configured = every request refused), the
request's shape, its freshness and expiry, a replay (the nonce in memory, the
request id in the audit across restarts), then whether this kiosk has a visit
log at all (``log-off``) and, for a case or a contacts round, an entry sealed to
this kiosk.

Three kinds of request: ``place`` (every visit at the named venues, district or
ward in a window), ``case`` (the case's own visits here, found by its pseudonym,
and everyone who checked in within the margin of them) and ``contacts`` (the
second round of a case: everyone who checked in within the margin of the case's
check-ins at this venue's other entrances, times the authority seals to this kiosk).

Every request, answered or refused, is written to the trace audit before the
answer goes out, and counted (:meth:`stats`). Refusals of messages that did not
verify are rate-limited: anyone who can publish on the broker could otherwise
make a thousand kiosks answer each junk message.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from datetime import timedelta
from typing import Any, Callable, Iterable, Mapping

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk.wire import reasons, signing
from kiosk.errors import KioskError, SignatureRefused
from kiosk.door.record.visits import VISIT_FIELDS, AuditEntry, VisitArchive, parse_utc, utc_text
from kiosk.wire import trace as P

log = logging.getLogger(__name__)

Reply = tuple[str, bytes]


def _norm(text: str) -> str:
    return " ".join(text.split()).casefold()


class RefusalBudget:
    """A token bucket for replies to unverified messages (``burst`` at once, then one per ``every_s``)."""

    def __init__(self, burst: int = 20, every_s: float = 3.0, clock: Callable[[], float] = time.monotonic):
        self.burst, self.every_s, self.clock = burst, every_s, clock
        self._tokens, self._at = float(burst), clock()

    def take(self) -> bool:
        now = self.clock()
        self._tokens = min(self.burst, self._tokens + (now - self._at) / self.every_s)
        self._at = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False


class TraceResponder:
    """Answers the health authority's signed trace requests from this kiosk's visit log."""

    def __init__(self, *, site: str, device: str, venue: Mapping[str, str], device_key: Ed25519PrivateKey,
                 authority: signing.KeyRing, archive: VisitArchive | None, pseudonymize: Callable[[str], str],
                 visit_log: bool, fields: Iterable[str] | None = None, max_age_s: float = 86400.0,
                 clock: Callable[[], float] = time.time, budget: RefusalBudget | None = None):
        self.site, self.device = site, device
        self.venue = {k: venue.get(k, "") for k in ("id", "name", "address", "province", "district", "ward",
                                                    "district_code", "ward_code")}
        self._key = device_key
        self._box_key = P.box_private_key(device_key)
        self.kid = signing.kid_of(device_key.public_key())
        self.authority = authority
        self.archive = archive
        self.pseudonymize = pseudonymize
        self.visit_log = bool(visit_log)
        # The personal fields the visit log keeps, told to the authority so an empty field reads as
        # "not kept here" or "the code carried none" (None: not known, e.g. in tests of old answers).
        self.fields = None if fields is None else [f for f in VISIT_FIELDS if f in set(fields)]
        self.clock = clock
        self.guard = signing.ReplayGuard(max_age_s, clock=clock)
        self.budget = budget or RefusalBudget()
        self.topics = (P.FLEET_TOPIC, P.site_topic(site))
        self._lock = threading.Lock()
        self._stats: dict[str, Any] = {"answered": 0, "refused": 0, "refused_by_reason": {}, "replies_suppressed": 0,
                                       "last_request": None}

    # -- the one entry point -------------------------------------------------------

    def handle(self, topic: str, payload: bytes) -> list[Reply]:
        """The replies (topic, bytes) to one inbound message; [] for topics that are not trace requests."""
        if topic not in self.topics:
            return []
        with self._lock:  # one request at a time: the audit and the replay memory stay consistent
            return self._handle(topic, payload)

    def _handle(self, topic: str, payload: bytes) -> list[Reply]:
        now = self.clock()
        try:
            verified = signing.verify(payload, topic, self.authority, max_bytes=P.REQUEST_MAX_BYTES)
            req = P.parse_request(verified.payload)
            self.guard.check(verified.payload)
            if self.archive is not None and self.archive.seen(req.id):
                raise SignatureRefused(reasons.REPLAYED, "request id answered before")
        except SignatureRefused as exc:
            return self._refuse(topic, P.claimed_id(payload), None, exc.reason, None, verified=False, now=now)
        signer = verified.signer.kid
        if not self.visit_log:
            return self._refuse(topic, req.id, req.kind, P.LOG_OFF, signer, verified=True, now=now)
        if self.archive is None:
            return self._refuse(topic, req.id, req.kind, P.UNAVAILABLE, signer, verified=True, now=now)
        try:
            if req.kind == P.CASE:
                records = self._case(req)
            elif req.kind == P.CONTACTS:
                records = self._contacts(req)
            else:
                records = self._place(req)
        except SignatureRefused as exc:
            return self._refuse(topic, req.id, req.kind, exc.reason, signer, verified=True, now=now)
        except (KioskError, OSError, sqlite3.Error) as exc:  # a ledger fault is a refusal, never a crash
            log.warning("trace request %s: cannot read the visit log: %s", req.id, exc)
            return self._refuse(topic, req.id, req.kind, P.UNAVAILABLE, signer, verified=True, now=now)
        in_scope, rows = records
        body = {"request": req.id, "site": self.site, "device": self.device, "kind": req.kind,
                "venue": self.venue, "in_scope": in_scope, "records": rows}
        if self.fields is not None:
            body["fields"] = self.fields
        answer = {"v": P.VERSION, "request": req.id, "site": self.site, "device": self.device,
                  "outcome": P.ANSWERED, "reason": P.OK, "ts": signing.iso(now),
                  "sealed": P.seal(body, req.reply_key)}
        self._audit(topic, req.id, req.kind, P.ANSWERED, P.OK, signer, True, len(rows), now)
        log.info("trace request %s (%s) from %s answered: %d records", req.id, req.kind, signer, len(rows))
        out_topic = P.answer_topic(req.id, self.site, self.device)
        return [(out_topic, signing.sign_bytes(answer, out_topic, self._key))]

    # -- queries -------------------------------------------------------------------

    def in_scope(self, req: P.TraceRequest) -> bool:
        """Whether a place request names this kiosk's venue, district or ward (names or codes, any case)."""
        if self.venue["id"] in req.venues:
            return True
        if not (req.district or req.ward):
            return False
        ok = True
        if req.district:
            ok &= _norm(req.district) in {_norm(self.venue["district"]), _norm(self.venue["district_code"])} - {""}
        if req.ward:
            ok &= _norm(req.ward) in {_norm(self.venue["ward"]), _norm(self.venue["ward_code"])} - {""}
        return ok

    def _place(self, req: P.TraceRequest) -> tuple[bool, list[dict]]:
        if not self.in_scope(req):
            return False, []
        assert self.archive is not None
        rows = self.archive.between(req.start, req.end, req.verdicts)
        return True, [_record(r, "visit") for r in rows]

    def _entry(self, req: P.TraceRequest) -> object:
        """This kiosk's sealed entry of a case or contacts request, opened."""
        assert req.case is not None
        sealed = req.case.get(self.kid)
        if sealed is None:
            raise SignatureRefused(P.NOT_ADDRESSED)
        return P.unseal(sealed, self._box_key, 64 * 1024)

    def _case(self, req: P.TraceRequest) -> tuple[bool, list[dict]]:
        assert self.archive is not None
        identities = P.parse_case_entry(self._entry(req), req.id)
        pseudonyms = {self.pseudonymize(i) for i in identities}
        own = self.archive.of_visitor(pseudonyms, req.start, req.end, req.verdicts)
        around = [(parse_utc(v["time"]), v["time"], v["local"]) for v in own]
        return True, [_record(r, "case") for r in own] + self._around(req, around, pseudonyms)

    def _contacts(self, req: P.TraceRequest) -> tuple[bool, list[dict]]:
        """The second round: visits within the margin of check-ins the case made at this venue's other doors."""
        times = P.parse_contacts_entry(self._entry(req), req.id)
        around = [(t, utc_text(t), None) for t in times]
        return bool(times), self._around(req, around, set())

    def _around(self, req: P.TraceRequest, case_visits: list[tuple], exclude: set[str]) -> list[dict]:
        """Every visit whose check-in is within the margin of one of ``case_visits``, the closest one kept."""
        assert self.archive is not None
        contacts: dict[tuple, dict] = {}
        for at, utc, local in case_visits:
            for r in self.archive.between(at - req.margin, at + req.margin + _TICK, req.verdicts):
                if r["pseudonym"] in exclude:
                    continue
                gap = (parse_utc(r["time"]) - at).total_seconds() / 60
                key = (r["time"], r["pseudonym"])
                if key not in contacts or abs(gap) < abs(contacts[key]["overlap_minutes"]):
                    contacts[key] = {**_record(r, "contact"), "case_time": utc, "overlap_minutes": round(gap, 1)}
                    if local:
                        contacts[key]["case_local"] = local
        return sorted(contacts.values(), key=lambda c: c["time"])

    # -- refusals, audit, counters ---------------------------------------------------

    def _refuse(self, topic: str, request_id: str | None, kind: str | None, reason: str, signer: str | None,
                verified: bool, now: float) -> list[Reply]:
        self._audit(topic, request_id, kind, P.REFUSED, reason, signer, verified, 0, now)
        log.info("trace request %s refused: %s", request_id or "(no id)", reason)
        if request_id is None or (not verified and not self.budget.take()):
            self._stats["replies_suppressed"] += 1
            return []
        out_topic = P.answer_topic(request_id, self.site, self.device)
        answer = {"v": P.VERSION, "request": request_id, "site": self.site, "device": self.device,
                  "outcome": P.REFUSED, "reason": reason, "ts": signing.iso(now)}
        return [(out_topic, signing.sign_bytes(answer, out_topic, self._key))]

    def _audit(self, topic: str, request_id: str | None, kind: str | None, outcome: str, reason: str,
               signer: str | None, verified: bool, records: int, now: float) -> None:
        s = self._stats
        s[outcome] += 1
        if outcome == P.REFUSED:
            s["refused_by_reason"][reason] = s["refused_by_reason"].get(reason, 0) + 1
        s["last_request"] = signing.iso(now)
        if self.archive is None:
            return
        try:
            self.archive.audit(AuditEntry(signing.iso(now), request_id, topic, kind, outcome, reason, signer,
                                          verified, records))
        except (KioskError, OSError, sqlite3.Error) as exc:
            log.warning("trace audit: cannot write the ledger: %s", exc)

    def stats(self) -> dict:
        """Counters since start, for the kiosk's health: answered, refused (by reason), replies suppressed."""
        with self._lock:
            s = dict(self._stats)
            s["refused_by_reason"] = dict(s["refused_by_reason"])
        return s

    def close(self) -> None:
        if self.archive is not None:
            self.archive.close()


_TICK = timedelta(milliseconds=1)  # the margin's end is included (times are kept to the millisecond)


def _record(row: Mapping[str, object], role: str) -> dict:
    """A visit record for an answer: its role and the fields the ledger holds (no empty ones)."""
    return {"role": role, **{k: v for k, v in row.items() if v is not None}}
