"""The ledger: counters, unique visitors, outbox bounds and the visit log, on a real SQLite file."""

from __future__ import annotations

import json
import sqlite3
import uuid
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiosk.door.decide.checkin import Checkin
from kiosk.door.verify import Holder
from kiosk.door.record import Ledger

VN = ZoneInfo("Asia/Ho_Chi_Minh")
NOON = datetime(2021, 9, 14, 5, 0, tzinfo=timezone.utc)  # 12:00 in Hanoi


def checkin(verdict="accept", reason="ok", fmt="eu-dcc", pseudonym="p1", at=NOON, duplicate=False, holder=None):
    return Checkin(id=uuid.uuid4().hex, at=at, verdict=verdict, reason=reason, format=fmt, valid=verdict == "accept",
                   signed=True, pseudonym=pseudonym, holder=holder, captured_at=0.0, source="camera", duplicate=duplicate)


@pytest.fixture
def ledger(tmp_path):
    with Ledger(tmp_path / "ledger.sqlite3", tz=VN) as led:
        yield led


def test_counts_by_verdict_reason_format_and_hour(ledger):
    ledger.record(checkin(pseudonym="a"))
    ledger.record(checkin(pseudonym="b", fmt="pc-covid", at=NOON + timedelta(hours=2)))
    ledger.record(checkin(verdict="reject", reason="expired", pseudonym="c"))
    ledger.record(checkin(verdict="reject", reason="policy:test-too-old", fmt="eu-dcc", pseudonym=None))
    c = ledger.counts("2021-09-14")
    assert (c["accepted"], c["rejected"], c["duplicates"], c["overrides"]) == (2, 2, 0, 0)
    assert c["by_reason"] == {"ok": 2, "expired": 1, "policy:test-too-old": 1}
    assert c["by_format"] == {"eu-dcc": 3, "pc-covid": 1}
    assert c["hourly"][12] == 1 and c["hourly"][14] == 1 and sum(c["hourly"]) == 2
    assert c["unique_visitors"] == 2  # rejected people are not visitors
    assert c["seq"] == 4


def test_duplicate_is_never_a_second_accepted_visitor(ledger):
    ledger.record(checkin(pseudonym="same"))
    ledger.record(checkin(pseudonym="same", reason="duplicate", duplicate=True))
    ledger.record(checkin(pseudonym="same", verdict="reject", reason="duplicate", duplicate=True))
    # after the duplicate window the same person is accepted again: a second entry, still one unique visitor
    ledger.record(checkin(pseudonym="same", at=NOON + timedelta(hours=1)))
    c = ledger.counts("2021-09-14")
    assert (c["accepted"], c["rejected"], c["duplicates"]) == (2, 0, 2)
    assert c["unique_visitors"] == 1
    assert c["by_reason"] == {"ok": 2, "duplicate": 2}


def test_recording_the_same_checkin_twice_counts_it_once(ledger):
    ci = checkin()
    first = ledger.record(ci)
    assert ledger.record(ci) == first
    assert ledger.counts("2021-09-14")["accepted"] == 1
    assert ledger.outbox_size() == 1


def test_override_counted_separately(ledger):
    seq = ledger.record_override(at=NOON)
    c = ledger.counts("2021-09-14")
    assert (c["accepted"], c["overrides"], c["by_reason"]) == (0, 1, {"override": 1})
    (msg,) = ledger.pending()
    assert msg.seq == seq and json.loads(msg.payload)["reason"] == "override"


def test_day_follows_the_venue_time_zone(ledger):
    late = datetime(2021, 9, 14, 17, 30, tzinfo=timezone.utc)  # 00:30 on the 15th in Hanoi
    ledger.record(checkin(at=late))
    assert ledger.counts("2021-09-14")["accepted"] == 0
    c = ledger.counts(date(2021, 9, 15))
    assert c["accepted"] == 1 and c["hourly"][0] == 1


def test_unique_visitors_per_day(ledger):
    ledger.record(checkin(pseudonym="x"))
    ledger.record(checkin(pseudonym="x", at=NOON + timedelta(days=1)))
    assert ledger.counts("2021-09-14")["unique_visitors"] == 1
    assert ledger.counts("2021-09-15")["unique_visitors"] == 1


def test_event_messages_carry_no_personal_data(ledger):
    ledger.record(checkin(pseudonym="secret-pseudonym", holder=Holder(name="Nguyễn Văn A", id_number="001099012345")))
    from kiosk.door.publish.payloads import event_payload

    (msg,) = ledger.pending()
    assert "Nguy" not in msg.payload and "001099" not in msg.payload and "secret" not in msg.payload
    event = event_payload(msg)  # the ledger keeps the domain event; publish renders the wire form
    assert set(event) == {"id", "seq", "time", "verdict", "reason", "format"}
    assert event["time"] == "2021-09-14T05:00:00.000Z"


def test_outbox_in_order_and_ack(ledger):
    seqs = [ledger.record(checkin(pseudonym=str(i))) for i in range(5)]
    assert [m.seq for m in ledger.pending(10)] == seqs
    assert [m.seq for m in ledger.pending(2, after_seq=seqs[1])] == seqs[2:4]
    ledger.ack(ledger.pending(1)[0].id)
    assert ledger.ack_many(m.id for m in ledger.pending(2)) == 2
    assert [m.seq for m in ledger.pending(10)] == seqs[3:]
    assert ledger.outbox_size() == 2
    assert ledger.ack_many(["no-such-id"]) == 0


def test_full_outbox_drops_oldest_events_and_keeps_counters(tmp_path):
    with Ledger(tmp_path / "l.db", outbox_max=100, tz=VN) as led:
        for i in range(250):
            led.record(checkin(pseudonym=str(i)))
        c = led.counts("2021-09-14")
        pending = led.pending(1000)
        assert len(pending) <= 100 == led.outbox_max
        assert c["accepted"] == 250  # counters are never dropped
        # The loss is reported in today's counts (the ones the kiosk publishes now).
        assert led.counts()["dropped_events"] + len(pending) == 250
        assert [m.seq for m in pending] == list(range(251 - len(pending), 251))  # the newest are kept


def test_survives_reopen(tmp_path):
    path = tmp_path / "l.db"
    with Ledger(path, tz=VN) as led:
        for i in range(3):
            led.record(checkin(pseudonym=str(i)))
    with Ledger(path, tz=VN) as led:
        assert led.counts("2021-09-14")["accepted"] == 3
        assert led.last_seq == 3 and led.outbox_size() == 3
        assert led.record(checkin()) == 4
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_sequence_numbers_never_reused_after_outbox_empties(tmp_path):
    path = tmp_path / "l.db"
    with Ledger(path, tz=VN) as led:
        led.record(checkin())
        led.ack_many(m.id for m in led.pending())
    with Ledger(path, tz=VN) as led:
        assert led.record(checkin()) == 2


def test_visit_log_off_by_default(ledger):
    ledger.record(checkin(holder=Holder(name="Nguyễn Văn A")))
    assert list(ledger.visits(date(2021, 9, 1), date(2021, 9, 30))) == []


def test_visit_log_keeps_only_allowed_fields_and_purges(tmp_path):
    holder = Holder(name="Nguyễn Văn A", birth_date="1990-01-02", id_number="001099012345")
    with Ledger(tmp_path / "l.db", visit_log=True, visit_log_fields=["name"], retention_days=21, tz=VN) as led:
        now = datetime.now(timezone.utc)
        led.record(checkin(at=now - timedelta(days=30), holder=holder, pseudonym="old"))
        led.record(checkin(at=now - timedelta(days=1), holder=holder, pseudonym="recent"))
        start, end = (now - timedelta(days=40)).date(), now.date()
        assert len(list(led.visits(start, end))) == 2
        assert led.purge(now) == 1
        (row,) = led.visits(start, end)
        assert row["pseudonym"] == "recent" and row["name"] == "Nguyễn Văn A"
        assert row["birth_date"] is None and row["id_number"] is None
    raw = (tmp_path / "l.db").read_bytes() + b"".join(p.read_bytes() for p in tmp_path.glob("l.db-*"))
    assert b"001099012345" not in raw  # a field the config does not allow never reaches the disk


def test_visit_log_purged_on_open(tmp_path):
    path = tmp_path / "l.db"
    old = datetime.now(timezone.utc) - timedelta(days=25)
    with Ledger(path, visit_log=True, tz=VN) as led:
        led.record(checkin(at=old))
    with Ledger(path, visit_log=True, tz=VN) as led:
        assert list(led.visits(old.date() - timedelta(days=1), date.today())) == []


def test_bad_verdict_rejected_without_a_trace(ledger):
    with pytest.raises(ValueError):
        ledger.record(checkin(verdict="maybe"))
    assert ledger.outbox_size() == 0 and ledger.last_seq == 0


def test_unwritable_ledger_is_a_clear_error(tmp_path):
    from kiosk.door.record import LedgerError

    (tmp_path / "file").write_text("x")
    with pytest.raises(LedgerError, match="cannot open ledger"):
        Ledger(tmp_path / "file" / "l.db")


def test_ledger_file_is_private(tmp_path):
    import stat

    with Ledger(tmp_path / "l.db") as led:
        led.record(checkin())
    for f in tmp_path.glob("l.db*"):
        assert stat.S_IMODE(f.stat().st_mode) & 0o077 == 0, f


def test_write_failure_is_a_ledger_error_and_records_nothing(tmp_path):
    from kiosk.door.record import LedgerError

    with Ledger(tmp_path / "l.db", tz=VN) as led:
        led.record(checkin())
        led._db.execute("PRAGMA query_only = ON")  # every write now fails, as on a read-only or full disk
        with pytest.raises(LedgerError, match="cannot record"):
            led.record(checkin())
        led._db.execute("PRAGMA query_only = OFF")
        assert led.counts("2021-09-14")["accepted"] == 1 and led.outbox_size() == 1
        assert led.record(checkin()) == 2

_event = st.tuples(
    st.sampled_from(["accept", "reject", "duplicate-accept", "duplicate-reject", "override"]),
    st.sampled_from(["eu-dcc", "pc-covid", "cccd"]),
    st.one_of(st.none(), st.sampled_from(["p1", "p2", "p3", "p4"])),
    st.integers(min_value=0, max_value=47 * 60),  # minutes after 00:00 local on the 14th: two days
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=st.lists(_event, max_size=30))
def test_counters_match_a_simple_model(tmp_path_factory, events):
    start = datetime(2021, 9, 14, tzinfo=VN)
    model: dict[str, dict] = {}
    with Ledger(tmp_path_factory.mktemp("h") / "l.db", tz=VN) as led:
        for kind, fmt, who, minute in events:
            at = start + timedelta(minutes=minute)
            day = at.date().isoformat()
            m = model.setdefault(day, {"accepted": 0, "rejected": 0, "duplicates": 0, "overrides": 0,
                                       "visitors": set(), "hourly": [0] * 24})
            if kind == "override":
                led.record_override(at=at)
                m["overrides"] += 1
                continue
            verdict = "reject" if kind.endswith("reject") else "accept"
            dup = kind.startswith("duplicate")
            led.record(checkin(verdict=verdict, reason="duplicate" if dup else "ok" if verdict == "accept" else "expired",
                               fmt=fmt, pseudonym=who, at=at, duplicate=dup))
            if dup:
                m["duplicates"] += 1
            elif verdict == "accept":
                m["accepted"] += 1
                m["hourly"][at.hour] += 1
            else:
                m["rejected"] += 1
            if verdict == "accept" and who:
                m["visitors"].add(who)
        for day, m in model.items():
            c = led.counts(day)
            assert (c["accepted"], c["rejected"], c["duplicates"], c["overrides"]) == \
                (m["accepted"], m["rejected"], m["duplicates"], m["overrides"])
            assert c["unique_visitors"] == len(m["visitors"]) and c["hourly"] == m["hourly"]
            assert sum(c["by_reason"].values()) == m["accepted"] + m["rejected"] + m["duplicates"] + m["overrides"]
        assert led.outbox_size() == len(events) == led.last_seq
