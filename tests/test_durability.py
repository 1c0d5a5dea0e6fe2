"""A kiosk killed mid-stream (SIGKILL, as close to a power cut as a test gets) loses no committed check-in."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

from kiosk.door.record import Ledger

ROOT = Path(__file__).resolve().parent.parent

WRITER = textwrap.dedent("""
    import sys, uuid
    from datetime import datetime, timezone
    from kiosk.door.decide.checkin import Checkin
    from kiosk.door.record import Ledger
    led = Ledger(sys.argv[1])
    i = 0
    while True:
        i += 1
        verdict = "reject" if i % 5 == 0 else "accept"
        ci = Checkin(id=uuid.uuid4().hex, at=datetime.now(timezone.utc), verdict=verdict,
                     reason="ok" if verdict == "accept" else "expired", format="eu-dcc", valid=True, signed=True,
                     pseudonym=f"p{i % 50}", holder=None, captured_at=0.0, source="camera", duplicate=False)
        seq = led.record(ci)
        # Only after record() returned may the kiosk signal: this line is the visitor seeing the verdict.
        print(seq, verdict, flush=True)
""")


def test_sigkill_mid_stream_loses_nothing_committed(tmp_path):
    path = tmp_path / "ledger.sqlite3"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True,
                            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    signalled = []
    try:
        for line in proc.stdout:
            seq, verdict = line.split()
            signalled.append((int(seq), verdict))
            if len(signalled) >= 150:
                break
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert len(signalled) >= 150
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    recorded = dict(db.execute("SELECT seq, verdict FROM checkins").fetchall())
    db.close()
    for seq, verdict in signalled:  # every verdict a visitor saw is in the ledger
        assert recorded.get(seq) == verdict
    with Ledger(path) as led:
        c = led.counts()
        # counters agree with the events, including any committed after the last line we read
        assert c["accepted"] == sum(1 for v in recorded.values() if v == "accept")
        assert c["rejected"] == sum(1 for v in recorded.values() if v == "reject")
        assert led.outbox_size() == len(recorded)
        assert [m.seq for m in led.pending(100000)] == sorted(recorded)
        assert led.record_override() == max(recorded) + 1  # numbering carries on, never reused
