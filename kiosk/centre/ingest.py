"""Ingest: kiosk messages in, verified rows out (the first stage of the centre: ingest -> store -> statistics).

Every ``counts``, ``info``, ``health`` and ``events`` message must verify with its own
kiosk's key from the fleet registry (:func:`kiosk.wire.signing.verify`, topic-bound), or it
changes nothing: it is counted as refused, per topic and reason. ``status`` is the
kiosk's unsigned last will, so it is only a hint (offline / online), believed for a
registered kiosk and never for facts such as how long it has been offline.

What survives goes into a :class:`Batch`, coalesced per kiosk (and day): the newest
counts by ``(day, seq)``, the newest info and health by the kiosk's own signed ``ts``,
and for ``kiosk_seen`` the latest time, highest event ``seq`` and latest scan.
The store writes a batch with idempotent upserts, so a message delivered twice, late,
or to two workers of one shared subscription never changes a figure twice.

Coalescing before verifying (``Ingest(coalesce=True)``, what the worker runs): a signed
message is parsed once and kept as a *candidate* with what it claims (its day and seq,
its ts, ...); :meth:`Ingest.take` then verifies, per kiosk, only the candidates that can
still change a figure: for each key the newest claim first, and if that one fails its
check it is refused (counted with its reason) and the next newest is tried, until one
passes. So a forged message claiming a huge ``seq`` or a far-future ``ts`` cannot hide
the genuine one, and each candidate is verified at most once: an attacker's flood costs
at most one verification per message it sends, as without coalescing. Candidates below
a verified winner are not verified at all (counted as ``superseded``): a valid one could
not have changed anything. The trade-off: a forged message superseded in its batch by a
genuine newer one is not counted as refused (nothing of it reaches a figure either way).
A message whose claims do not even parse is verified at once, so its refusal reason is
the same as without coalescing (a signature reason first, ``malformed`` for a kiosk's
own signed message that breaks the contract).

Plausible claims only (issue 19.1, :mod:`kiosk.centre.plausible`): a claim no real kiosk could
make (a count beyond what one kiosk can scan since midnight, a ``ts`` in the future, a health
figure of 1e308, ...) is checked while the message is read, before it becomes a candidate. Such
a message is verified at once like a malformed one: signed by the kiosk's own key it is refused
as ``implausible`` and the kiosk is recorded for the inspection list (``Batch.implausible``);
otherwise it keeps its signature reason (an unsigned one is ``unsigned``, whatever it claims).
So an implausible newest claim never hides the genuine one below it, and never reaches the store,
where a far-future ``ts`` or a huge ``seq`` would win the newest-first guards against the
genuine kiosk. Every refusal is also logged, at most once per kiosk and reason a minute
(:class:`RefusalLog`): a flood is a line a minute, never a traceback per message.
"""

from __future__ import annotations

import json
import logging
import re
import time
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime

from kiosk.centre.plausible import HEALTH_FLAGS, MAX_COUNT, Implausible, Limits, health_numbers
from kiosk.centre.registry import FleetRegistry
from kiosk.errors import SignatureRefused
from kiosk.wire.reasons import MALFORMED, REFUSALS, UNKNOWN_KEY
from kiosk.wire.signing import MAX_MESSAGE_BYTES, verify_parsed

# Centre-side refusal reasons, beside kiosk.wire.signing's (unsigned, unknown-key, bad-signature, malformed).
UNKNOWN_KIOSK = "unknown-kiosk"  # site/device not in the fleet registry
REVOKED = "revoked"  # signed with a key the registry marks revoked (a lost kiosk)
WRONG_KIOSK = "wrong-kiosk"  # a valid signature, but by another kiosk's key
NOT_KIOSK_TOPIC = "not-a-kiosk-topic"
IMPLAUSIBLE = "implausible"  # the kiosk's own valid signature on a claim no real kiosk could make
SIGNED_LEAVES = ("counts", "info", "health", "events")
# The labels refusals are counted under in the metrics: a bounded set whatever a sender puts in a topic.
REFUSAL_REASONS = frozenset((*REFUSALS, UNKNOWN_KIOSK, REVOKED, WRONG_KIOSK, NOT_KIOSK_TOPIC, IMPLAUSIBLE))
TOPIC_KINDS = frozenset((*SIGNED_LEAVES, "status"))
MAX_REFUSED_TOPICS = 10_000  # distinct (topic, reason) counters kept in memory between flushes
MAX_SEQ = MAX_COUNT  # JSON's safe integers
REFUSAL_LOG_SECONDS = 60.0  # a refusal is logged at most once per kiosk and reason in this long
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}\Z")
COUNT_FIELDS = ("accepted", "rejected", "duplicates", "overrides", "unique_visitors", "dropped_events")
INFO_FIELDS = ("venue_id", "venue_name", "address", "province", "district", "ward", "province_code",
               "district_code", "ward_code", "venue_qr_sha256", "kid", "version")
_INT = {int}
_NUMBER = (int, float)
_UNPRINTED = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}

log = logging.getLogger(__name__)


def epoch(text) -> float:
    """Epoch seconds of an ISO 8601 time (``...Z`` or with an offset); ValueError otherwise."""
    if not isinstance(text, str) or len(text) > 40:
        raise ValueError("time")
    t = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    if t.tzinfo is None:
        raise ValueError("time without a zone")
    try:
        return t.timestamp()
    except OverflowError:  # year 1 in a zone east of UTC: a time, but none a kiosk stamps
        raise Implausible("time") from None


def _count(value, what: str = "count") -> int:
    """``value`` when it is a count: ValueError when it is not a number (malformed), Implausible when it
    is one no kiosk counts (negative, fractional, not finite, beyond JSON's safe integers)."""
    if type(value) is int and 0 <= value < MAX_SEQ:  # type(), not isinstance: a bool is no count
        return value
    if type(value) in _NUMBER:
        raise Implausible(what)
    raise ValueError(what)


def _counts_of(values, what: str = "hourly") -> tuple[tuple, int]:
    """``values`` (a list of counts) as a tuple, and the largest (see :func:`_count`)."""
    if not values:
        return (), 0
    if {*map(type, values)} != _INT:
        for v in values:
            _count(v, what)
    peak = max(values)
    if min(values) < 0 or peak >= MAX_SEQ:
        for v in values:
            _count(v, what)
    return tuple(values), peak


def _text(value, limit: int = 200) -> str:
    """A kiosk's text as the store keeps it: at most ``limit`` characters, no control characters
    (a NUL cannot be stored in PostgreSQL, an escape sequence would repaint ``kiosk monitor``'s terminal)."""
    text = value if type(value) is str else "" if value is None else str(value)
    text = text[:limit]
    if not text.isprintable():
        text = "".join(ch for ch in text if ch == " " or unicodedata.category(ch) not in _UNPRINTED)
    return text


def _flag(value) -> int | None:
    return None if value is None else int(bool(value)) if isinstance(value, bool) else None


@dataclass
class Batch:
    """Rows waiting for the store, coalesced so each key appears once (an upsert per key per batch)."""

    info: dict = field(default_factory=dict)
    status: dict = field(default_factory=dict)
    health: dict = field(default_factory=dict)
    seen: dict = field(default_factory=dict)  # (site, device) -> [last_ts, last_seq, last_scan]
    daily: dict = field(default_factory=dict)  # (site, device, day) -> row
    hourly: dict = field(default_factory=dict)
    refused: dict = field(default_factory=dict)  # (topic, reason) -> [n, last_at]
    implausible: dict = field(default_factory=dict)  # (site, device) -> [first_at, last_at, n, what] (centre's clock)
    messages: int = 0
    applied: int = 0  # of ``messages``, verified and applied (set when the batch is taken)

    def __len__(self) -> int:
        return (len(self.info) + len(self.status) + len(self.health) + len(self.seen) + len(self.daily)
                + len(self.refused) + len(self.implausible))


@dataclass
class IngestStats:
    messages: int = 0
    applied: int = 0  # verified (or, without verification, read) and applied to a batch
    refused: int = 0
    ignored: int = 0  # a leaf the centre does not read (cmd-result, ...) or not a kiosk topic
    superseded: int = 0  # coalescing: not verified, a verified newer message of its kiosk made it moot
    implausible: int = 0  # refused as implausible (also in ``refused``)
    # (topic kind, reason) -> refused messages, for the metrics: both from bounded sets (refusal_labels)
    refusals: dict = field(default_factory=dict)
    taken: int = 0  # ``applied`` when the last batch was taken (Batch.applied is the difference)


def refusal_labels(topic: str, reason: str) -> tuple[str, str]:
    """(topic kind, reason) of a refusal as the metrics count it: ``counts``, ``info``, ``health``, ``events``,
    ``status`` or ``other``; a known reason or ``other``. Never the topic itself: a sender choosing its topics
    must not choose how many series the centre keeps."""
    parts = topic.split("/", 4)
    kind = parts[4] if len(parts) == 5 and parts[0] == "checkin" and parts[4] in TOPIC_KINDS else "other"
    return kind, reason if reason in REFUSAL_REASONS else "other"


class RefusalLog:
    """The journal's view of refusals: at most one line per kiosk and reason every ``interval`` seconds.

    A flood (an unsigned message a millisecond, a thousand invented kiosks) is a few lines a minute,
    each saying how many more were refused since; memory stays bounded by ``max_kiosks`` keys, beyond
    which the refusals of further kiosks share one line per reason.
    """

    def __init__(self, interval: float = REFUSAL_LOG_SECONDS, max_kiosks: int = 1000):
        self.interval = interval
        self.max_kiosks = max_kiosks
        self._last: dict[tuple, list] = {}  # (kiosk, reason) -> [logged at, refused since]
        self._swept = float("-inf")

    def note(self, topic: str, reason: str, now: float, what: str = "") -> None:
        parts = topic.split("/", 4)
        kiosk = "/".join(parts[2:4]) if len(parts) == 5 and parts[0] == "checkin" else "(not a kiosk topic)"
        key = (kiosk, reason)
        e = self._last.get(key)
        if e is None and len(self._last) >= self.max_kiosks:
            if now - self._swept >= self.interval:  # once an interval: a flood of new names costs no sweep each
                self._swept = now
                self._last = {k: v for k, v in self._last.items() if now - v[0] < self.interval}
            if len(self._last) >= self.max_kiosks:
                key = ("(other kiosks)", reason)
                e = self._last.get(key)
        if e is not None and now - e[0] < self.interval:
            e[1] += 1
            return
        more = f" ({e[1]} more from it in the last {now - e[0]:.0f} s)" if e is not None and e[1] else ""
        self._last[key] = [now, 0]
        # %r: a topic is the sender's text, never a line of its own in the journal
        log.warning("centre: refused %r: %s%s%s", topic, reason, f" ({what})" if what else "", more)


class Candidate:
    """One signed message, parsed (not yet verified), with the rows it would write and what it claims."""

    __slots__ = ("leaf", "topic", "kiosk", "owner", "body", "sig", "now", "order", "ok", "key", "seq", "heard",
                 "row", "hourly", "payload")

    def __init__(self, leaf: str, topic: str, kiosk: tuple, owner: str, body: dict, sig, now: float, order: int,
                 payload: bytes = b""):
        self.leaf, self.topic, self.kiosk, self.owner, self.payload = leaf, topic, kiosk, owner, payload
        self.body, self.sig, self.now, self.order = body, sig, now, order
        self.ok: bool | None = None  # None: not verified yet
        self.key = None  # the batch key it supersedes others on: (site, device[, day]); None for events
        self.seq = 0  # the order claimed within its key: counts' seq, info's and health's ts
        self.heard: tuple = ()  # (ts, seq, scan) for kiosk_seen
        self.row: tuple = ()
        self.hourly: tuple | None = None


class Ingest:
    """Verifies kiosk messages against the fleet registry and collects the accepted ones in a batch.

    One thread at a time calls :meth:`handle` and :meth:`take` (the worker's ingest stage).
    ``coalesce=False`` (the default) verifies each message in :meth:`handle`, which then says
    whether it was applied; ``coalesce=True`` verifies in :meth:`take` only the candidates
    that can still change a figure (see the module's docstring), and :meth:`handle` says
    whether a message became a candidate (it may still be refused when the batch is taken).
    """

    def __init__(self, registry: FleetRegistry, verify_signatures: bool = True, coalesce: bool = False,
                 verifier=None, limits: Limits | None = Limits()):
        self.registry = registry
        # None only in the benchmark's "checks off" row: types and the store's ranges are still checked
        self.limits = limits
        self.verifier = verifier  # coalescing: a kiosk.centre.verifiers.VerifierPool checks the likely winners
        self.verify_signatures = verify_signatures  # False only in the benchmark's "without verification" row
        self.coalesce = coalesce
        self.batch = Batch()
        self.stats = IngestStats()
        self._pending: dict[tuple, list[Candidate]] = {}  # (site, device) -> candidates, in arrival order
        self._order = 0
        self.log = RefusalLog()

    def take(self) -> Batch:
        """The batch so far (pending candidates verified and applied first); a fresh one takes its place."""
        if self._pending:
            self._resolve()
        b, self.batch = self.batch, Batch()
        b.applied, self.stats.taken = self.stats.applied - self.stats.taken, self.stats.applied
        return b

    def refuse(self, topic: str, reason: str, now: float, what: str = "") -> bool:
        """Count ``topic``'s message as refused for ``reason`` (and log it, rate-limited); False."""
        stats = self.stats
        stats.refused += 1
        labels = refusal_labels(topic, reason)
        stats.refusals[labels] = stats.refusals.get(labels, 0) + 1
        self.log.note(topic, reason, now, what)
        key = (topic, reason)
        refused = self.batch.refused
        r = refused.get(key)
        if r is None:
            if len(refused) >= MAX_REFUSED_TOPICS:  # a flood of invented topics stays bounded
                key = ("(other topics)", reason)
                r = refused.get(key)
            if r is None:
                r = refused[key] = [0, now]
        r[0] += 1
        r[1] = now
        return False

    def handle(self, topic: str, payload: bytes, now: float | None = None) -> bool:
        """Take one message in; False when it changes nothing (refused, or not read).

        Without coalescing True means applied; with it, a candidate for :meth:`take` to verify.
        """
        now = time.time() if now is None else now
        stats = self.stats
        stats.messages += 1
        self.batch.messages += 1
        parts = topic.split("/", 4)
        if len(parts) < 5 or parts[0] != "checkin" or parts[1] != "v1":
            stats.ignored += 1
            return False
        _, _, site, device, leaf = parts
        kiosk = self.registry.kiosk(site, device)
        if leaf == "status":
            if kiosk is None:
                return self.refuse(topic, UNKNOWN_KIOSK, now)
            if payload != b"online" and payload != b"offline":
                return self.refuse(topic, MALFORMED, now)
            self.batch.status[(site, device)] = (site, device, payload.decode(), now)
            stats.applied += 1
            return True
        if leaf not in SIGNED_LEAVES:
            stats.ignored += 1  # cmd/..., cmd-result, trace answers: not figures
            return False
        if kiosk is None:
            return self.refuse(topic, UNKNOWN_KIOSK, now)
        # signing.parse's checks, inline: the size cap, JSON, an object
        if len(payload) > MAX_MESSAGE_BYTES:
            return self.refuse(topic, MALFORMED, now)
        try:
            body = json.loads(payload)
        except (ValueError, RecursionError):
            return self.refuse(topic, MALFORMED, now)
        if type(body) is not dict:
            return self.refuse(topic, MALFORMED, now)
        self._order += 1
        c = Candidate(leaf, topic, (site, device), kiosk.owner, body, body.pop("sig", None), now, self._order,
                      payload)
        try:
            _READ[leaf](c, kiosk.venue_id, self.limits)
        except Implausible as exc:
            # Verified at once, like a malformed message: the kiosk's own signature makes it implausible
            # (and the kiosk a case for inspection); without one it keeps its signature's reason.
            if self._verified(c):
                if self.limits is None:
                    return self.refuse(topic, MALFORMED, now)
                return self._implausible(c, f"{leaf}.{exc.what}")
            return False
        except (ValueError, TypeError, KeyError, AttributeError, ArithmeticError, RecursionError):
            # It changes nothing whatever its signature; verified all the same, so the reason is
            # the signature's when it has no valid one, "malformed" for the kiosk's own breach of contract.
            if self._verified(c):
                return self.refuse(topic, MALFORMED, now)
            return False
        if not self.coalesce:
            if not self._verified(c):
                return False
            self._apply(c)
            stats.applied += 1
            return True
        p = self._pending.get(c.kiosk)
        if p is None:
            self._pending[c.kiosk] = [c]
        else:
            p.append(c)
        return True

    def _implausible(self, c: Candidate, what: str) -> bool:
        """Refuse ``c`` as implausible and note its kiosk for the inspection list (the centre's clock)."""
        self.stats.implausible += 1
        r = self.batch.implausible.get(c.kiosk)
        if r is None:
            self.batch.implausible[c.kiosk] = [c.now, c.now, 1, what]
        else:
            r[1], r[2], r[3] = c.now, r[2] + 1, what
        return self.refuse(c.topic, IMPLAUSIBLE, c.now, what)

    # -- verification -------------------------------------------------------------------------
    def _verified(self, c: Candidate) -> bool:
        """Check ``c`` once (refusing it with its reason when it fails); True when it is the kiosk's own."""
        if c.ok is not None:
            return c.ok
        if not self.verify_signatures:
            c.ok = True
            return True
        try:
            owner = verify_parsed(c.body, c.sig, c.topic, self.registry.keys).signer.owner
        except SignatureRefused as exc:
            return self._judge(c, False, exc.reason)
        return self._judge(c, True, owner)

    def _judge(self, c: Candidate, ok: bool, owner_or_reason: str) -> bool:
        """Record a check's result on ``c`` (refusing it with its reason); True when it is the kiosk's own."""
        c.ok = False
        if not ok:
            reason = owner_or_reason
            if reason == UNKNOWN_KEY and isinstance(c.sig, dict) and c.sig.get("kid") in self.registry.revoked_kids:
                reason = REVOKED
            self.refuse(c.topic, reason, c.now)
        elif owner_or_reason != c.owner:
            self.refuse(c.topic, WRONG_KIOSK, c.now)
        else:
            c.ok = True
        return c.ok

    def _check_likely_winners(self, pending: dict) -> None:
        """With a verifier pool: check at once, elsewhere, the candidates :meth:`_resolve` will check first
        (each key's newest claim, each kiosk's highest event seq); fallbacks are checked here as they come."""
        likely = []
        for cands in pending.values():
            tops: dict = {}
            for c in cands:
                if c.key is None:
                    k, rank = "events", (c.heard[1], 0)
                else:
                    k, rank = (c.leaf, c.key), (c.seq, -c.order if c.leaf == "counts" else c.order)
                if k not in tops or rank > tops[k][0]:
                    tops[k] = (rank, c)
            likely += [c for _, c in tops.values()]
        for c, (ok, what) in zip(likely, self.verifier.check([(c.topic, c.payload) for c in likely])):
            self._judge(c, ok, what)

    def _resolve(self) -> None:
        """Verify and apply the pending candidates that can change a figure, newest claim first per key."""
        pending, self._pending = self._pending, {}
        if self.verifier is not None and self.verify_signatures:
            self._check_likely_winners(pending)
        for kiosk in sorted(pending):  # one key order for every worker's batches: fewer lock waits in the store
            cands = pending[kiosk]
            if len(cands) == 1:
                if self._verified(cands[0]):
                    self._apply(cands[0])
                    self.stats.applied += 1
                continue
            groups: dict = {}
            for c in cands:
                if c.key is not None:
                    groups.setdefault((c.leaf, c.key), []).append(c)
            for (leaf, _), group in groups.items():
                # counts: the highest seq, the first to arrive of equals; info, health: the latest ts, the
                # last of equals (as applying them one by one in arrival order would leave them).
                rank = (lambda c: (c.seq, -c.order)) if leaf == "counts" else (lambda c: (c.seq, c.order))
                best = self._newest_valid(group, rank)
                if best is not None:
                    self._apply(best)
                if leaf == "counts":  # the hourly curve: the newest valid counts that has one
                    curves = [c for c in group if c.hourly is not None]
                    if curves and (best is None or best.hourly is None):
                        best = self._newest_valid(curves, rank)
                        if best is not None:
                            self._apply_hourly(best)
            # kiosk_seen: the latest time, highest event seq and latest scan of any valid message
            for i in (1, 0, 2):
                known = self.batch.seen.get(kiosk)
                known = None if known is None else known[i]
                for c in sorted((c for c in cands if c.ok is not False and c.heard[i] is not None),
                                key=lambda c: c.heard[i], reverse=True):
                    if known is not None and c.heard[i] <= known:
                        break
                    if self._verified(c):
                        self._heard(kiosk, c.heard)
                        break
            for c in cands:
                if c.ok is None:
                    self.stats.superseded += 1
                elif c.ok:
                    self.stats.applied += 1

    def _newest_valid(self, group: list[Candidate], rank) -> Candidate | None:
        for c in sorted(group, key=rank, reverse=True):
            if self._verified(c):
                return c
        return None

    # -- applying verified candidates -----------------------------------------------------------
    def _apply(self, c: Candidate) -> None:
        key, b = c.key, self.batch
        if c.leaf == "counts":
            old = b.daily.get(key)
            if old is None or c.seq > old[10]:
                b.daily[key] = c.row
            if c.hourly is not None:
                self._apply_hourly(c)
        elif c.leaf == "info":
            old = b.info.get(key)
            if old is None or old[-1] <= c.seq:
                b.info[key] = c.row
        elif c.leaf == "health":
            old = b.health.get(key)
            if old is None or old[-1] <= c.seq:
                b.health[key] = c.row
        self._heard(c.kiosk, c.heard)

    def _apply_hourly(self, c: Candidate) -> None:
        old = self.batch.hourly.get(c.key)
        if old is None or c.seq > old[3]:
            self.batch.hourly[c.key] = c.hourly

    def _heard(self, kiosk: tuple, heard: tuple) -> None:
        ts, seq, scan = heard
        s = self.batch.seen.get(kiosk)
        if s is None:
            self.batch.seen[kiosk] = [ts, seq, scan]
            return
        if ts > s[0]:
            s[0] = ts
        if seq > s[1]:
            s[1] = seq
        if scan is not None and (s[2] is None or scan > s[2]):
            s[2] = scan


# -- reading a message's claims and rows (before verification; they count only once it passes) ----

def _read_counts(c: Candidate, venue_id: str, limits: Limits | None) -> None:
    (site, device), b = c.kiosk, c.body
    day, seq = b["day"], _count(b["seq"], "seq")
    if type(day) is not str or not _DAY.match(day):
        raise ValueError("day")
    figures = [_count(b.get(f, 0), f) for f in COUNT_FIELDS]
    ts = epoch(b["ts"]) if b.get("ts") else c.now
    scan = epoch(b["last_scan"]) if b.get("last_scan") else None
    hourly = b.get("hourly")
    hourly, peak = _counts_of(hourly) if type(hourly) is list and len(hourly) == 24 else (None, 0)
    if limits is not None:
        limits.counts(day, figures, seq, ts, scan, hourly, peak, c.now)
    c.key = (site, device, day)
    c.seq = seq
    c.row = (site, device, day, venue_id, *figures, seq, scan, ts)
    if hourly is not None:
        c.hourly = (site, device, day, seq, *hourly)
    c.heard = (ts, 0, scan)


def _read_events(c: Candidate, venue_id: str, limits: Limits | None) -> None:
    seq = _count(c.body["seq"], "seq")
    t = epoch(c.body["time"])
    if limits is not None:
        limits.event(seq, t, c.now)
    c.heard = (t, seq, t)


def _read_info(c: Candidate, venue_id: str, limits: Limits | None) -> None:
    """The kiosk's own description. Its place (district, ward) is kept as what the kiosk claims and never
    files it anywhere: the venue registry does (issue 19.2); its venue is the fleet registry's row."""
    (site, device), i = c.kiosk, c.body
    ts = epoch(i["ts"]) if i.get("ts") else c.now
    if limits is not None:
        limits.when(ts, c.now, "ts")
    text = [_text(i.get(f) or "") for f in INFO_FIELDS]
    c.key = c.kiosk
    c.seq = ts
    c.row = (site, device, venue_id, *text, ts)
    c.heard = (ts, 0, None)


def _read_health(c: Candidate, venue_id: str, limits: Limits | None) -> None:
    (site, device), h = c.kiosk, c.body
    camera_ok = h["camera_ok"]
    if not isinstance(camera_ok, bool):
        raise ValueError("camera_ok")
    ts = epoch(h["ts"])
    degraded = h.get("degraded") or []
    if not isinstance(degraded, list):
        raise ValueError("degraded")
    numbers = health_numbers(h)  # a message a minute per kiosk: always checked, nothing out of range is stored
    if limits is not None:
        limits.when(ts, c.now, "ts")
    flags = {f: _flag(h.get(f)) for f in HEALTH_FLAGS}
    words = [_text(w, 32) for w in degraded[:16]]
    error = _text(h.get("camera_error") or "")
    age = numbers["trust_age_hours"]
    # The documented fields only, as checked (unknown ones are ignored, as the contract says consumers do)
    kept = {**numbers, **{f: None if v is None else bool(v) for f, v in flags.items()}, "camera_ok": camera_ok,
            "camera_error": error, "degraded": words, "ts": h["ts"]}
    c.key = c.kiosk
    c.seq = ts
    c.row = (site, device, int(camera_ok), error, flags["display_ok"], flags["clock_synced"], flags["trust_stale"],
             None if age is None else float(age), ",".join(words), json.dumps(kept, ensure_ascii=False), ts)
    c.heard = (ts, 0, None)


_READ = {"counts": _read_counts, "events": _read_events, "info": _read_info, "health": _read_health}
