"""Counts that survive restarts: the duplicate window lives in the ledger.

A property test drives random scan / restart sequences through the real desk
(verifier, policy) and a real SQLite ledger against a model of the counters;
a restart drops the ledger without closing it, as a SIGKILL would. The SIGKILL
run of the real ``kiosk run`` process is in :func:`test_sigkill_restarts_count_each_visitor_once`.
"""

from __future__ import annotations

import hashlib
import hmac
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import pc_covid
from kiosk.door.decide.checkin import CheckinDesk, LedgerWindow
from kiosk.door.record import Ledger
from kiosk.door.decide.policy import Policy
from kiosk.trust.store import TrustStore
from kiosk.door.verify.verifier import Verifier

ROOT = Path(__file__).resolve().parent.parent
WINDOW_S = 1800.0
DAY = datetime(2021, 9, 14, 0, 0, tzinfo=timezone.utc)
VISITORS = [pc_covid(f"00108800{i:04d}") for i in range(6)]
KEY = b"test-pseudonym-key"


class World:
    """The kiosk's deciding and recording stages on one ledger file, with a wall clock the test moves."""

    def __init__(self, path: Path):
        self.path = path
        self.now = DAY + timedelta(hours=1)
        self.verifier = Verifier(TrustStore.empty())
        self.open()

    def open(self) -> None:
        self.ledger = Ledger(self.path, tz=timezone.utc, duplicate_window_s=WINDOW_S, clock=lambda: self.now)
        self.desk = CheckinDesk(self.verifier, Policy(), lambda ident: hmac.new(KEY, ident.encode(), hashlib.sha256).hexdigest(),
                                duplicate_window_s=WINDOW_S, window=LedgerWindow(self.ledger))

    def scan(self, text: str) -> None:
        checkin = self.desk.admit(text, captured_at=0.0, now=self.now)
        self.ledger.record(checkin)

    def kill(self) -> None:
        self.ledger = None  # no close(): the next process opens what was committed, as after SIGKILL
        self.open()


ops = st.lists(st.one_of(
    st.tuples(st.just("scan"), st.integers(0, len(VISITORS) - 1), st.integers(0, 1200)),
    st.tuples(st.just("restart"), st.just(0), st.integers(0, 60)),
), min_size=1, max_size=40)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops)
def test_counts_match_the_model_across_restarts(tmp_path_factory, sequence):
    world = World(tmp_path_factory.mktemp("ledger") / "ledger.sqlite3")
    admitted_at: dict[int, datetime] = {}
    model = {"accepted": 0, "duplicates": 0}
    distinct = set()
    for op, visitor, seconds in sequence:
        world.now += timedelta(seconds=seconds)
        if op == "restart":
            world.kill()
            continue
        first = admitted_at.get(visitor)
        if first is not None and (world.now - first).total_seconds() < WINDOW_S:
            model["duplicates"] += 1
        else:
            model["accepted"] += 1
            admitted_at[visitor] = world.now
        distinct.add(visitor)
        world.scan(VISITORS[visitor])
    got = world.ledger.counts(DAY.date())
    assert (got["accepted"], got["duplicates"]) == (model["accepted"], model["duplicates"])
    assert got["unique_visitors"] == len(distinct)
    world.ledger.close()


def test_a_restart_inside_the_window_counts_a_rescan_as_a_duplicate(tmp_path):
    world = World(tmp_path / "ledger.sqlite3")
    world.scan(VISITORS[0])
    world.kill()
    world.now += timedelta(minutes=29)
    world.scan(VISITORS[0])
    world.kill()
    world.now += timedelta(minutes=2)  # 31 minutes after the admission: a new visit
    world.scan(VISITORS[0])
    c = world.ledger.counts(DAY.date())
    assert (c["accepted"], c["duplicates"], c["unique_visitors"]) == (2, 1, 1)


def test_sigkill_restarts_count_each_visitor_once(tmp_path):
    """The real ``kiosk run`` on a looped folder of N distinct visitors, SIGKILLed and restarted."""
    sys.path.insert(0, str(ROOT / "scripts"))
    import bench_restart

    result = bench_restart.run(tmp_path, visitors=8, kills=3, seed=7)
    assert result["accepted"] == 8, result
    assert result["duplicates"] >= 8, "every visitor was seen again after a restart"
    assert result["kills"] == 3
