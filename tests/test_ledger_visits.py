"""The visit record (schema step 3): times, venue and device, only the allowed personal fields, retention."""

from __future__ import annotations

import sqlite3
import uuid
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from kiosk.door.decide.checkin import Checkin
from kiosk.door.verify import Holder
from kiosk.door.record import Ledger
from kiosk.door.record.schema import DDL
from kiosk.door.record.visits import VisitArchive

VN = ZoneInfo("Asia/Ho_Chi_Minh")
DCC_HOLDER = Holder(name="Trần Thị Bình", birth_date="1985-03-04", id_number=None, phone=None,
                    family_name="Trần", given_name="Thị Bình")
PC_HOLDER = Holder(name="Nguyễn Văn An", birth_date="1990-01-02", id_number="001099012345", phone="0912345678")


def checkin(at, holder, pseudonym="p", verdict="accept"):
    return Checkin(id=uuid.uuid4().hex, at=at, verdict=verdict, reason="ok", format="pc-covid", valid=True,
                   signed=False, pseudonym=pseudonym, holder=holder, captured_at=0.0, source="camera")


def test_visit_record_has_both_times_venue_device_and_allowed_fields(tmp_path):
    at = datetime.now(timezone.utc).replace(microsecond=0)
    with Ledger(tmp_path / "l.db", visit_log=True, visit_log_fields=["name", "phone"], tz=VN,
                venue_id="HN-HK-000123", device_id="kiosk-001") as led:
        led.record(checkin(at, PC_HOLDER, "pa"))
        led.record(checkin(at + timedelta(seconds=1), DCC_HOLDER, "pb"))
        a, b = led.visits(at - timedelta(minutes=1), at + timedelta(minutes=1))
    assert a["time"] == at.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    assert a["local"] == at.astimezone(VN).isoformat(timespec="milliseconds")  # +07:00
    assert a["local"].endswith("+07:00")
    assert (a["venue_id"], a["device_id"], a["pseudonym"], a["verdict"]) == ("HN-HK-000123", "kiosk-001", "pa", "accept")
    assert (a["name"], a["phone"], a["birth_date"], a["id_number"]) == ("Nguyễn Văn An", "0912345678", None, None)
    # DCC: the display name is family name first, and the parts are kept apart
    assert (b["name"], b["family_name"], b["given_name"]) == ("Trần Thị Bình", "Trần", "Thị Bình")
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("l.db*"))
    assert b"001099012345" not in raw and b"1990-01-02" not in raw


def test_name_parts_stay_out_when_the_name_is_not_allowed(tmp_path):
    at = datetime.now(timezone.utc)
    with Ledger(tmp_path / "l.db", visit_log=True, visit_log_fields=["birth_date"], tz=VN) as led:
        led.record(checkin(at, DCC_HOLDER))
        (row,) = led.visits(at - timedelta(minutes=1), at + timedelta(minutes=1))
    assert row["birth_date"] == "1985-03-04"
    assert (row["name"], row["family_name"], row["given_name"]) == (None, None, None)
    assert "Thị Bình".encode() not in b"".join(p.read_bytes() for p in tmp_path.glob("l.db*"))


def test_a_version_1_ledger_is_upgraded_and_keeps_its_visits(tmp_path):
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.executescript(DDL + "PRAGMA user_version = 1;")
    db.execute("INSERT INTO visits (seq, at, pseudonym, verdict, reason, format, name) VALUES "
               "(1, '2099-01-01T00:00:00.000Z', 'p', 'accept', 'ok', 'cccd', 'Lê Văn C')")
    db.commit()
    db.close()
    with Ledger(path, visit_log=True, tz=VN, venue_id="V", device_id="D") as led:
        (old,) = led.visits(datetime(2098, 12, 31, tzinfo=timezone.utc), datetime(2099, 1, 2, tzinfo=timezone.utc))
        assert old["name"] == "Lê Văn C" and old["local"] is None  # the export fills the local time in
    archive = VisitArchive(path)
    assert archive.audit_totals() == {"answered": 0, "refused": 0}
    archive.close()
    (version,) = sqlite3.connect(path).execute("PRAGMA user_version").fetchone()
    assert version >= 3


def test_a_version_3_ledger_gains_the_declaration_subject_and_keeps_its_visits(tmp_path):
    from kiosk.door.record import schema

    path = tmp_path / "v3.db"
    db = sqlite3.connect(path)
    for number, step in enumerate(schema.STEPS[:3], 1):
        db.executescript(f"{step}\nPRAGMA user_version = {number};")
    db.execute("INSERT INTO visits (seq, at, pseudonym, verdict, reason, format, phone) VALUES "
               "(1000, '2099-01-01T00:00:00.000Z', 'p', 'accept', 'ok', 'pc-covid', '0912')")
    db.commit()
    db.close()
    subject = Holder(subject_id="s-9", subject_issuer="0a" * 8)
    with Ledger(path, visit_log=True, visit_log_fields=["subject_id"], tz=VN) as led:
        led.record(checkin(datetime(2099, 1, 1, 0, 1, tzinfo=timezone.utc), subject))
        old, new = led.visits(datetime(2098, 12, 31, tzinfo=timezone.utc), datetime(2099, 1, 2, tzinfo=timezone.utc))
    assert (old["phone"], old["subject_id"]) == ("0912", None)
    assert (new["subject_id"], new["subject_issuer"], new["phone"]) == ("s-9", "0a" * 8, None)
    (version,) = sqlite3.connect(path).execute("PRAGMA user_version").fetchone()
    assert version == schema.VERSION


def test_retention_purges_visits_but_not_the_trace_audit(tmp_path):
    now = datetime.now(timezone.utc)
    with Ledger(tmp_path / "l.db", visit_log=True, retention_days=21, tz=VN) as led:
        led.record(checkin(now - timedelta(days=22), PC_HOLDER, "old"))
        led.record(checkin(now - timedelta(days=20), PC_HOLDER, "kept"))
        assert led.purge(now) == 1
        assert [r["pseudonym"] for r in led.visits(now - timedelta(days=30), now)] == ["kept"]
