"""One investigation: a request and, for a case, the contacts rounds it led to, backed by the answer store.

Every believed answer is committed to the :class:`~kiosk.authority.store.AnswerStore`
(a batch per transaction) before the caller acknowledges it to the broker, and the
F1 list is always built from everything the store holds. For a case, it works out
which other entrances of the venues the case visited have not been asked yet
(:mod:`kiosk.authority.rounds`) and signs the next round.
"""

from __future__ import annotations

import threading
from typing import Iterable

from kiosk.errors import SignatureRefused
from kiosk.wire import trace as P
from kiosk.authority import rounds
from kiosk.authority.collect import Collector, KioskAnswer, expected_kiosks
from kiosk.authority.registry import RegisteredKiosk
from kiosk.authority.store import AnswerStore, NewAnswer, StoredRequest


class Investigation:
    """One request and, for a case, its contacts rounds: what the desk received, kept in the store."""

    def __init__(self, store: AnswerStore, request: StoredRequest, rows: Iterable[RegisteredKiosk], keys):
        self.store = store
        self.main = request
        self.rows = list(rows)
        self.keys = keys
        self.venue_of = rounds.venues_of(self.rows)
        self._lock = threading.RLock()
        self.collectors: dict[str, Collector] = {}
        self.rounds: list[StoredRequest] = []
        self.unreadable = 0  # stored answers that no longer open (e.g. the box key was replaced)
        self.collectors[request.id] = Collector(request.body, request.topic, self.rows, keys.box)
        self._load(request)
        if request.kind == P.CASE:
            store.forget_unpublished(request.id)  # their check-ins are asked again
            for r in store.rounds(request.id):
                self._add_round(r)

    def _load(self, request: StoredRequest) -> None:
        col = self.collectors[request.id]
        for stored in self.store.answers(request.id):
            try:
                col.restore(stored)
            except SignatureRefused:
                self.unreadable += 1

    def _add_round(self, r: StoredRequest) -> Collector:
        asked = self._asked(r)
        required = {(k.site, k.device) for k in self.rows if k.kid in asked}
        col = Collector(r.body, r.topic, self.rows, self.keys.box, required=required)
        with self._lock:
            self.collectors[r.id] = col
            self.rounds.append(r)
        self._load(r)
        return col

    def _asked(self, r: StoredRequest) -> dict[str, list[str]]:
        try:
            asked = P.unseal(r.asked, self.keys.box) if r.asked else {}
        except SignatureRefused:
            return {}
        return asked if isinstance(asked, dict) else {}

    # -- messages ----------------------------------------------------------------

    def filters(self) -> list[str]:
        """The answer topics to subscribe: the request's and every round's."""
        with self._lock:
            return [P.answer_filter(rid) for rid in self.collectors]

    def accept_batch(self, messages: list[tuple[str, bytes]]) -> list[tuple[KioskAnswer | None, str]]:
        """Verify, open and keep a batch of messages, the believed ones in one store transaction.

        Returns, per message, the answer (None when not believed) and "new", "upgraded", "known",
        "not-believed" or "unknown-request" (a round this store does not know: another machine made it,
        so the message is left to that machine). Raises when the store cannot be written: nothing of
        the batch is acknowledged then.
        """
        checked: list[KioskAnswer | None | str] = []
        for topic, payload in messages:
            where = P.parse_answer_topic(topic)
            col = self.collectors.get(where[0]) if where else None
            if where and col is None:
                checked.append("unknown-request")
            else:
                checked.append(col.check(topic, payload) if col else None)
        believed = [a for a in checked if isinstance(a, KioskAnswer)]
        states = iter(self.store.add_answers([
            NewAnswer(a.request_id, a.site, a.device, a.outcome, a.reason, a.ts, a.signer, a.topic, a.message)
            for a in believed]))
        out = []
        for a in checked:
            if not isinstance(a, KioskAnswer):
                out.append((None, a or "not-believed"))
                continue
            state = next(states)
            self.collectors[a.request_id].add(a)
            out.append((a, state))
        return out

    # -- rounds ------------------------------------------------------------------

    def case_visits(self) -> list[rounds.CaseVisit]:
        main = self.collectors[self.main.id]
        with main._lock:
            answers = list(main.answers.values())
        return rounds.case_visits(answers, self.venue_of)

    def addressed(self) -> list[RegisteredKiosk]:
        """The kiosks the case request addressed, as the registry has them now."""
        return expected_kiosks(self.main.body, self.main.topic, self.rows)

    def unasked(self) -> dict[str, list[str]]:
        """Case check-ins some other entrance of their venue has not been asked about yet."""
        if self.main.kind != P.CASE:
            return {}
        wanted = rounds.windows(self.case_visits(), self.addressed(), self.venue_of)
        with self._lock:
            asked = [self._asked(r) for r in self.rounds]
        return rounds.unasked(wanted, asked)

    def make_round(self, visits: dict[str, list[str]], ttl_s: float) -> StoredRequest:
        """Sign the next contacts round and keep it (not yet published)."""
        from kiosk.authority.requests import contacts_request

        body = contacts_request(self.keys, self.main.topic, self.main.body, self.addressed(), visits, ttl_s)
        with self._lock:
            number = 2 + len(self.rounds)
        asked = P.seal(visits, self.keys.box.public_key)  # the case's movements: sealed even in the desk's store
        self.store.add_request(body, self.main.topic, self.main.broker, self.main.client_id,
                               case_request=self.main.id, round=number, asked=asked)
        stored = self.store.request(body["id"])
        assert stored is not None
        return stored

    def add_round(self, r: StoredRequest) -> Collector:
        return self._add_round(r)

    # -- state -------------------------------------------------------------------

    def all_collectors(self) -> list[Collector]:
        with self._lock:
            return list(self.collectors.values())

    def complete(self) -> bool:
        """Every kiosk that matters answered, and no case check-in is left unasked."""
        return all(c.complete() for c in self.all_collectors()) and not self.unasked()

    def answers(self) -> list[KioskAnswer]:
        out = []
        for c in self.all_collectors():
            with c._lock:
                out += list(c.answers.values())
        return out

    def rows_raw(self) -> list[dict]:
        """The merged F1 rows from everything kept (see :func:`kiosk.authority.f1.merge`)."""
        from kiosk.authority.f1 import merge

        main = self.collectors[self.main.id]
        with main._lock:
            first = list(main.answers.values())
        case_pseudonyms = {(a.kiosk, r.get("pseudonym")) for a in first for r in a.records
                           if r.get("role") == "case" and r.get("pseudonym")}
        # A later round's kiosk may have seen the case itself come in: it is the case, not a contact.
        return merge(self.answers(), exclude=case_pseudonyms)
