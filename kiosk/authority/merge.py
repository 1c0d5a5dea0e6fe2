"""Taking the answers another machine with the same keys collected (``kiosk trace import``).

Every copied answer is checked again as the broker's message would be (its kiosk's registered
key, the request it answers), so a copied store is believed no more than the broker is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from kiosk.authority.collect import Collector
from kiosk.authority.registry import RegisteredKiosk
from kiosk.authority.store import AnswerStore, NewAnswer


@dataclass
class Taken:
    """What an import brought: new requests, new answers of those seen, and the answers not believed by reason."""

    requests_new: int = 0
    answers_new: int = 0
    answers_seen: int = 0
    not_believed: dict[str, int] = field(default_factory=dict)


def take_answers(ours: AnswerStore, theirs: AnswerStore, rows: Iterable[RegisteredKiosk], box) -> Taken:
    """Copy ``theirs``' requests and believed answers into ``ours``; ``box`` opens the answers."""
    rows = list(rows)
    taken = Taken()
    # Case requests before their rounds, so a round always finds its case.
    for r in sorted(theirs.all_requests(), key=lambda r: r.round):
        taken.requests_new += ours.add_request(r.body, r.topic, r.broker, r.client_id, r.case_request, r.round,
                                               r.asked, r.published)
        col = Collector(r.body, r.topic, rows, box)
        batch = []
        for a in theirs.answers(r.id):
            taken.answers_seen += 1
            got = col.check(a.topic, a.message)  # a copy is believed only as the broker's message would be
            if got is not None:
                batch.append(NewAnswer(got.request_id, got.site, got.device, got.outcome, got.reason, got.ts,
                                       got.signer, got.topic, got.message))
        taken.answers_new += sum(s != "known" for s in ours.add_answers(batch))
        for reason, n in col.rejected.items():
            taken.not_believed[reason] = taken.not_believed.get(reason, 0) + n
    return taken
