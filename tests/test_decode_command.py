"""``kiosk decode``: one JSON line per image, the live pipeline's cascade, no tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import segno

ROOT = Path(__file__).resolve().parent.parent


def kiosk(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kiosk", *args], capture_output=True, text=True, cwd=ROOT, timeout=60)


def test_decode_json_prints_one_line_per_image(tmp_path, testdata):
    code = tmp_path / "visitor.png"
    segno.make("HC1:NCFOXN%TS3DH3ZSUZK+.V0ETD%65NL", micro=False).save(code, scale=5)
    empty = tmp_path / "empty.png"
    segno.make("x").save(empty, scale=1, border=0, dark="white")  # an image with nothing readable
    photo = sorted((testdata / "photos").glob("*/*.png"))[0]
    expected = photo.with_suffix(".txt").read_text(encoding="utf-8").replace("\r\n", "\n").rstrip()
    r = kiosk("decode", "--json", str(code), str(empty), str(photo))
    assert r.returncode == 0, r.stderr
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    assert [x["file"] for x in lines] == [str(code), str(empty), str(photo)]
    assert lines[0]["codes"] == ["HC1:NCFOXN%TS3DH3ZSUZK+.V0ETD%65NL"]
    assert lines[1]["codes"] == []
    assert [c.rstrip() for c in lines[2]["codes"]] == [expected]
    assert all(isinstance(x["ms"], float) and x["ms"] >= 0 for x in lines)
    assert "Traceback" not in r.stderr


def test_unreadable_files_get_an_error_field_not_a_traceback(tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    r = kiosk("decode", "--json", str(tmp_path / "missing.png"), str(text), str(tmp_path))
    assert r.returncode == 0
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    assert [x["codes"] for x in lines] == [[], [], []]
    assert "no such file" in lines[0]["error"].lower()
    assert lines[1]["error"] == "not an image"
    assert "directory" in lines[2]["error"].lower()
    assert "Traceback" not in r.stderr and r.stderr.strip() == ""


def test_decode_plain_output_is_tab_separated(tmp_path):
    code = tmp_path / "c.png"
    segno.make("PCCOVID|123|Nguyễn Văn An", micro=False).save(code, scale=5)
    r = kiosk("decode", str(code))
    assert r.returncode == 0
    assert r.stdout.strip() == f"{code}\tPCCOVID|123|Nguyễn Văn An"


def test_decode_reads_a_dark_mode_code_in_one_go(tmp_path):
    """A still gets every rescue step at once; the first stage alone skips light-on-dark codes."""
    code = tmp_path / "dark.png"
    segno.make("HC1:DARKMODE", micro=False).save(code, scale=5, dark="white", light="black")
    r = kiosk("decode", "--json", str(code))
    assert json.loads(r.stdout)["codes"] == ["HC1:DARKMODE"]
