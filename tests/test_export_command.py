"""``kiosk export``: the visit log as CSV, only allowed fields, clear messages otherwise."""

from __future__ import annotations

import csv
import io
import stat
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from kiosk.door.decide.checkin import Checkin
from kiosk.cli import main
from kiosk.door.verify import Holder
from kiosk.config import load
from kiosk.door.assembly import open_ledger


def write_config(tmp_path, ledger_extra=""):
    path = tmp_path / "kiosk.toml"
    path.write_text(f'[device]\nsite="hn"\nid="k1"\nstate_dir="{tmp_path}/state"\n'
                    f'[venue]\nid="V"\nname="N"\nqr_content="q"\n[ledger]\n{ledger_extra}')
    return path


def visit(at, name="Nguyễn Văn A", phone=None):
    return Checkin(id=uuid.uuid4().hex, at=at, verdict="accept", reason="ok", format="cccd", valid=True, signed=False,
                   pseudonym="ab" * 32,
                   holder=Holder(name=name, birth_date="1990-01-02", id_number="001099012345", phone=phone),
                   captured_at=0.0, source="camera")


def test_export_writes_allowed_fields_only(tmp_path, capsys):
    path = write_config(tmp_path, 'visit_log=true\nvisit_log_fields=["name"]\n')
    now = datetime.now(timezone.utc)
    with open_ledger(load(path)) as led:
        led.record(visit(now - timedelta(days=2), "Trần Thị B"))
        led.record(visit(now))
    out = tmp_path / "visits.csv"
    day = now.astimezone().date()
    assert main(["export", "--config", str(path), "--from", str(day - timedelta(days=7)), "--to", str(day),
                 "--out", str(out)]) == 0
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert [r["name"] for r in rows] == ["Trần Thị B", "Nguyễn Văn A"]
    assert set(rows[0]) == {"local_time", "utc_time", "venue_id", "device_id", "pseudonym", "verdict", "reason",
                            "format", "name", "family_name", "given_name"}
    assert {(r["venue_id"], r["device_id"]) for r in rows} == {("V", "k1")}
    assert "001099012345" not in out.read_text()
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert "2 visits" in capsys.readouterr().err
    # a range that excludes the older visit
    assert main(["export", "--config", str(path), "--from", str(day), "--to", str(day)]) == 0
    assert capsys.readouterr().out.count("Nguyễn Văn A") == 1


def test_export_time_window_is_local_and_times_carry_their_offset(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TZ", "Asia/Ho_Chi_Minh")
    time.tzset()
    try:
        path = write_config(tmp_path, 'visit_log=true\nvisit_log_fields=["name", "phone"]\n')
        base = datetime.now(timezone.utc).replace(hour=1, minute=0, second=0, microsecond=0)  # 08:00 in Hanoi
        with open_ledger(load(path)) as led:
            for minutes, name in ((-1, "Trước"), (0, "Đúng giờ"), (59, "Trong"), (60, "Sau")):
                led.record(visit(base + timedelta(minutes=minutes), name, phone="0912345678"))
        local_day = base.astimezone().date()
        assert main(["export", "--config", str(path), "--from", f"{local_day}T08:00", "--to", f"{local_day} 09:00"]) == 0
        rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
        assert [r["name"] for r in rows] == ["Đúng giờ", "Trong"]
        assert rows[0]["local_time"] == f"{local_day}T08:00:00.000+07:00"
        assert rows[0]["utc_time"] == base.strftime("%Y-%m-%dT%H:%M:%S.000Z")
        assert rows[0]["phone"] == "0912345678"
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_export_with_visit_log_off_says_so(tmp_path, capsys):
    path = write_config(tmp_path)
    assert main(["export", "--config", str(path), "--from", "2021-09-01", "--to", "2021-09-30"]) == 1
    assert "visit log is off" in capsys.readouterr().err


def test_export_before_first_run(tmp_path, capsys):
    path = write_config(tmp_path, "visit_log=true\n")
    assert main(["export", "--config", str(path), "--from", "2021-09-01", "--to", "2021-09-30"]) == 1
    assert "no ledger" in capsys.readouterr().err


@pytest.mark.parametrize("start,end,msg", [("2021-13-01", "2021-09-30", "expected a local date-time"),
                                           ("2021-09-14T25:00", "2021-09-30", "expected a local date-time"),
                                           ("2021-09-30", "2021-09-01", "not after --from"),
                                           ("2021-09-14T10:00", "2021-09-14T09:00", "not after --from")])
def test_export_bad_dates(tmp_path, capsys, start, end, msg):
    path = write_config(tmp_path, "visit_log=true\n")
    assert main(["export", "--config", str(path), "--from", start, "--to", end]) == 2
    err = capsys.readouterr().err
    assert msg in err and "Traceback" not in err


def test_export_never_hands_a_spreadsheet_a_formula(tmp_path, capsys):
    """PC-Covid codes are unsigned: a printed code can carry a 'name' that a spreadsheet would run."""
    path = write_config(tmp_path, 'visit_log=true\nvisit_log_fields=["name", "phone"]\n')
    now = datetime.now(timezone.utc)
    with open_ledger(load(path)) as led:
        led.record(visit(now, '=HYPERLINK("http://evil.example","x")', phone="+84912345678"))
    day = now.astimezone().date()
    assert main(["export", "--config", str(path), "--from", str(day), "--to", str(day)]) == 0
    (row,) = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert row["name"] == '\'=HYPERLINK("http://evil.example","x")' and row["phone"] == "'+84912345678"


def test_export_gives_a_declarations_subject_with_its_issuer_only_when_kept(tmp_path, capsys):
    path = write_config(tmp_path, 'visit_log=true\nvisit_log_fields=["subject_id"]\n')
    now = datetime.now(timezone.utc)
    declared = Checkin(id=uuid.uuid4().hex, at=now, verdict="accept", reason="ok", format="health-declaration",
                       valid=True, signed=True, pseudonym="cd" * 32,
                       holder=Holder(subject_id="subj-42", subject_issuer="0a" * 8), captured_at=0.0, source="camera")
    with open_ledger(load(path)) as led:
        led.record(declared)
        led.record(visit(now + timedelta(seconds=1)))
    day = now.astimezone().date()
    assert main(["export", "--config", str(path), "--from", str(day), "--to", str(day + timedelta(days=1))]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(r["format"], r["subject_id"], r["subject_issuer"]) for r in rows] == [
        ("health-declaration", "subj-42", "0a" * 8), ("cccd", "", "")]
    assert "name" not in rows[0] and "Nguyễn" not in str(rows)
