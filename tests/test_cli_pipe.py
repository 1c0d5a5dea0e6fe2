"""Commands that print end quietly when their reader goes away (``kiosk export ... | head -1``).

Each command runs as its own process writing into a real pipe: either a shell
pipeline with ``head -1`` and more output than the pipe holds (so the reader is
certainly gone before the writer finishes), or a pipe whose reading end the
test closed before the command started (so the very first write finds it gone).
Either way: no "Broken pipe", no traceback, and the exit status a Unix tool
killed by SIGPIPE has (141), so ``set -o pipefail`` scripts see what happened.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from kiosk.door.decide.checkin import Checkin
from kiosk.door.verify import Holder
from kiosk.config import load
from kiosk.door.assembly import open_ledger

ROOT = Path(__file__).resolve().parent.parent
KIOSK = [sys.executable, "-m", "kiosk"]
SIGPIPE_STATUS = 141
NOISE = ("Broken pipe", "Traceback", "Exception ignored", "BrokenPipeError")


def env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


@pytest.fixture
def kiosk_with_visits(tmp_path) -> Path:
    """A kiosk config whose visit log holds 3,000 visits: about 600 kB of CSV, far more than a pipe holds."""
    path = tmp_path / "kiosk.toml"
    path.write_text(f'[device]\nsite="hn"\nid="k1"\nstate_dir="{tmp_path}/state"\n'
                    '[venue]\nid="V"\nname="N"\nqr_content="q"\n'
                    '[ledger]\nvisit_log=true\nvisit_log_fields=["name", "phone", "id_number", "birth_date"]\n')
    start = datetime.now(timezone.utc) - timedelta(hours=5)
    with open_ledger(load(path)) as ledger:
        for i in range(3000):
            ledger.record(Checkin(id=uuid.uuid4().hex, at=start + timedelta(seconds=5 * i), verdict="accept",
                                  reason="ok", format="cccd", valid=True, signed=False, pseudonym=f"{i:064x}",
                                  holder=Holder(name=f"Nguyễn Văn {i}", birth_date="1990-01-02",
                                                id_number=f"0010990{i:05d}", phone="0912345678"),
                                  captured_at=0.0, source="camera"))
    return path


def export_args(config: Path) -> list[str]:
    day = datetime.now().astimezone().date()
    return ["export", "--config", str(config), "--from", str(day - timedelta(days=1)), "--to", str(day)]


def test_export_into_head_ends_quietly_with_the_status_of_sigpipe(kiosk_with_visits):
    cmd = " ".join(f"'{a}'" for a in [*KIOSK, *export_args(kiosk_with_visits)])
    done = subprocess.run(["bash", "-c", f"set -o pipefail; {cmd} | head -1; echo \"status ${{PIPESTATUS[0]}}\" >&2"],
                          capture_output=True, text=True, env=env(), timeout=120)
    assert done.stdout.startswith("local_time,utc_time,venue_id") and done.stdout.count("\n") == 1
    assert f"status {SIGPIPE_STATUS}" in done.stderr
    assert not any(n in done.stderr for n in NOISE), done.stderr


def run_into_closed_pipe(args: list[str], stdin: str = "") -> subprocess.CompletedProcess:
    """Run a command whose standard output is a pipe nobody reads any more."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run([*KIOSK, *args], stdout=write_end, stderr=subprocess.PIPE, input=stdin, text=True,
                              env=env(), timeout=120)
    finally:
        os.close(write_end)


def test_export_into_a_closed_pipe(kiosk_with_visits):
    done = run_into_closed_pipe(export_args(kiosk_with_visits))
    assert done.returncode == SIGPIPE_STATUS
    assert not any(n in done.stderr for n in NOISE), done.stderr


def test_verify_and_decode_into_a_closed_pipe(tmp_path):
    # a few lines only: the error shows at the last flush, after the command returned
    done = run_into_closed_pipe(["verify"], stdin="not a code\n" * 5)
    assert done.returncode == SIGPIPE_STATUS and not any(n in done.stderr for n in NOISE), done.stderr
    image = tmp_path / "code.png"
    import segno

    segno.make("HELLO-KIOSK", error="m").save(image, scale=8, border=4)
    done = run_into_closed_pipe(["decode", str(image)])
    assert done.returncode == SIGPIPE_STATUS and not any(n in done.stderr for n in NOISE), done.stderr


def test_trace_collect_into_a_closed_pipe_still_writes_the_list(tmp_path):
    """The summary cannot be printed, but the F1 list is written before it."""
    import json

    from kiosk.authority import keys as authority_keys
    from kiosk.authority import requests
    from kiosk.authority.store import AnswerStore, path_for
    from kiosk.wire import trace as P

    keys = authority_keys.keygen(tmp_path / "keys")
    now = datetime.now(timezone.utc)
    req = requests.place_request(keys, P.FLEET_TOPIC, now - timedelta(hours=1), now, ["V1"])
    store = AnswerStore(path_for(tmp_path / "keys"))
    store.add_request(req, P.FLEET_TOPIC, "mqtt://127.0.0.1:9", "kiosk-trace-x", published="now")
    store.close()
    (tmp_path / "registry.json").write_text(json.dumps({"version": 1, "kiosks": []}))
    done = run_into_closed_pipe(["trace", "collect", "--request", req["id"], "--keys", str(tmp_path / "keys"),
                                 "--registry", str(tmp_path / "registry.json"), "--wait", "0",
                                 "--out", str(tmp_path / "f1")])
    assert done.returncode == SIGPIPE_STATUS and not any(n in done.stderr for n in NOISE), done.stderr
    assert (tmp_path / "f1.csv").read_text(encoding="utf-8-sig").startswith("role (case / contact / visit),")
    assert (tmp_path / "f1.xlsx").exists()


def test_a_broken_connection_is_still_an_error_not_silence(monkeypatch, capsys):
    """Only a closed output is quiet: a broken pipe elsewhere (a socket) is reported as before."""
    from kiosk import cli

    def broken(argv):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(cli, "_main", broken)
    assert cli.main(["verify"]) == 1
    assert "Broken pipe" in capsys.readouterr().err
