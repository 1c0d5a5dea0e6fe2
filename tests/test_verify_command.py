"""``kiosk verify``: the operators' and the monitor's contract (JSON lines, exit codes)."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from kiosk.issuing import dcc as issuing
from kiosk.cli import main
from kiosk.door.verify import dcc
from kiosk.issuing.declaration import IssuerKey, issue

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2021, 11, 20, 8, 0, tzinfo=timezone.utc)


def _key(*args, **kw):
    """An issuer key valid since 2020: the tests' clock is in 2021."""
    kw.setdefault("not_before", datetime(2020, 1, 1, tzinfo=timezone.utc))
    return IssuerKey.generate(*args, **kw)

CCCD = "001088012345|012345678|Nguyễn Văn An|01021988|Nam|12 Tràng Tiền, Hoàn Kiếm, Hà Nội|15082021"


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    d = tmp_path_factory.mktemp("keys")
    hd = _key("Ed25519")
    hd.save(d / "hd.key.pem", d / "hd.crt.pem")
    dsc = _key("ES256", dcc_types=("vaccination",))
    dsc.save(d / "dsc.key.pem", d / "dsc.crt.pem")
    return d, hd, dsc


def _run(capsys, *argv):
    rc = main(["verify", *argv])
    out = capsys.readouterr()
    return rc, [json.loads(line) for line in out.out.splitlines()], out.err


def _decl(hd, status="green"):
    return issue(hd, status=status, declared_at=NOW - timedelta(hours=1), valid_until=NOW + timedelta(hours=5),
                 declaration_id="D-1", subject_id="s-1")


def test_accepts_with_trust_and_clock(capsys, keys):
    d, hd, dsc = keys
    vaccination = issuing.issue_dcc(dsc, family="A", given="B", dob="1990-01-01", at=NOW - timedelta(days=1))
    rc, lines, _ = _run(capsys, "--trust", str(d / "hd.crt.pem"), "--trust", str(d / "dsc.crt.pem"),
                        "--at", "2021-11-20T08:00:00Z", _decl(hd), vaccination, CCCD)
    assert rc == 0
    assert [(x["format"], x["valid"], x["verdict"], x["reason"], x["signed"]) for x in lines] == [
        ("health-declaration", True, "accept", "ok", True),
        ("eu-dcc", True, "accept", "ok", True),
        ("cccd", True, "accept", "ok", False),
    ]
    assert lines[1]["facts"]["type"] == "vaccination"
    assert "only the format" in lines[2]["detail"]
    # No personal data in the output: not the name, the birth date nor the ID number.
    text = json.dumps(lines, ensure_ascii=False)
    assert "Nguyễn" not in text and "001088012345" not in text and "1990-01-01" not in text


def test_any_reject_exits_1_with_stable_reasons(capsys, keys):
    d, hd, _ = keys
    rc, lines, _ = _run(capsys, "--trust", str(d), "--at", "2021-11-20T08:00:00Z",
                        _decl(hd), "https://example.com", "HC1:", _decl(_key("Ed25519")))
    assert rc == 1
    assert [(x["format"], x["verdict"], x["reason"]) for x in lines] == [
        ("health-declaration", "accept", "ok"), ("unknown", "reject", "unknown-format"),
        ("eu-dcc", "reject", "malformed"), ("health-declaration", "reject", "unknown-key")]


def test_clock_decides_expiry(capsys, keys):
    d, hd, _ = keys
    rc, lines, _ = _run(capsys, "--trust", str(d / "hd.crt.pem"), "--at", "2021-11-21T08:00:00+07:00", _decl(hd))
    assert rc == 1 and lines[0]["reason"] == "expired" and lines[0]["valid"] is False


def test_stdin_one_payload_per_line_through_the_real_command(keys):
    d, hd, _ = keys
    stdin = "\r\n".join([_decl(hd), "", CCCD, "\xff not utf-8 \x00"]).encode("utf-8") + b"\n\xff\xfe\n"
    proc = subprocess.run([sys.executable, "-m", "kiosk", "verify", "--trust", str(d), "--at", "2021-11-20T08:00Z"],
                          input=stdin, capture_output=True, timeout=60, cwd=ROOT)
    lines = [json.loads(x) for x in proc.stdout.decode().splitlines()]
    assert proc.returncode == 1, proc.stderr
    assert [x["reason"] for x in lines] == ["ok", "ok", "unknown-format", "unknown-format"]
    assert b"Traceback" not in proc.stderr


def test_config_brings_trust_and_policy(tmp_path, capsys, keys):
    d, hd, _ = keys
    cfg = tmp_path / "kiosk.toml"
    cfg.write_text(f"""[device]\nsite = "s"\nid = "d"\n[venue]\nid = "v"\nname = "n"\nqr_content = "q"\n
[trust]\npaths = ["{d}"]\n[policy]\naccept_unsigned = false\naccept_statuses = ["green"]\n""")
    rc, lines, _ = _run(capsys, "--config", str(cfg), "--at", "2021-11-20T08:00:00Z", _decl(hd), _decl(hd, "red"), CCCD)
    assert rc == 1
    assert [(x["verdict"], x["reason"]) for x in lines] == [
        ("accept", "ok"), ("reject", "policy:status"), ("reject", "unsigned")]
    assert lines[2]["valid"] is True  # the card itself is fine: the venue does not take unsigned codes


@pytest.mark.parametrize("argv,message", [
    (["--at", "yesterday", "x"], "ISO 8601"),
    (["--trust", "/nonexistent/trust.pem", "x"], "cannot read"),
    (["--config", "/nonexistent/kiosk.toml", "x"], "configuration error"),
])
def test_usage_and_config_errors_exit_2(capsys, argv, message):
    rc = main(["verify", *argv])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and "Traceback" not in err


def test_garbage_trust_file_exits_2(tmp_path, capsys):
    (tmp_path / "t.pem").write_bytes(base64.b64encode(b"\x00" * 50))
    rc = main(["verify", "--trust", str(tmp_path / "t.pem"), "x"])
    assert rc == 2 and str(tmp_path / "t.pem") in capsys.readouterr().err


def test_verifier_treats_a_naive_clock_as_utc(keys):
    from kiosk.trust.store import TrustStore
    from kiosk.door.verify.verifier import Verifier

    d, hd, _ = keys
    v = Verifier(TrustStore.load([d / "hd.crt.pem"]))
    assert v.check(_decl(hd), at=NOW.replace(tzinfo=None)).valid
    assert v.check(_decl(hd), at=(NOW + timedelta(hours=6)).replace(tzinfo=None)).reason == "expired"


def test_empty_stdin_verifies_nothing_and_exits_0(keys):
    proc = subprocess.run([sys.executable, "-m", "kiosk", "verify"], input=b"", capture_output=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 0 and proc.stdout == b""
