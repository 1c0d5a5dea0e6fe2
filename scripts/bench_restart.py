#!/usr/bin/env python3
"""Restart benchmark: a looped stream of N distinct visitors through ``kiosk run``, SIGKILLed and restarted.

The camera replays a folder of frames showing N distinct PC-Covid codes, in a
loop; the kiosk process is killed with SIGKILL at random moments (after it
recorded at least one new check-in) and started again on the same state
directory, K times; the last run goes on until every visitor has been seen
once more after the last restart. The duplicate window lives in the ledger,
so ``accepted`` must equal N exactly and every re-scan lands in ``duplicates``.

    .venv/bin/python scripts/bench_restart.py --visitors 30 --kills 6
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_kiosk import write_config  # noqa: E402 (the scripts folder is on the path: this script's own)


def pc_covid(i: int) -> str:
    return f"00108850{i:04d}|Nguyễn Văn Khách|01/02/1988|CCCD|QID-{i:08X}|0123456789<0912345678<1<<"


def write_frames(folder: Path, visitors: int) -> None:
    import cv2

    from kiosk.testing.visitors import blank_frame, render_frame

    folder.mkdir(parents=True, exist_ok=True)
    n = 0
    for i in range(visitors):
        for k in range(2):
            cv2.imwrite(str(folder / f"{n:05d}.png"), render_frame(pc_covid(i), seed=i * 10 + k))
            n += 1
        for _ in range(3):  # out of view long enough to be read again on the next loop
            cv2.imwrite(str(folder / f"{n:05d}.png"), blank_frame(seed=i))
            n += 1




def figures(ledger: Path) -> dict:
    """accepted / duplicates over every day in the ledger (read-only, while the kiosk writes)."""
    if not ledger.exists():
        return {"accepted": 0, "duplicates": 0}
    db = sqlite3.connect(f"file:{ledger}?mode=ro", uri=True, timeout=10)
    try:
        rows = dict(db.execute("SELECT name, SUM(n) FROM counters WHERE name IN ('accepted', 'duplicates') GROUP BY name"))
    except sqlite3.OperationalError:  # the first process has not made the schema yet
        rows = {}
    finally:
        db.close()
    return {"accepted": rows.get("accepted", 0), "duplicates": rows.get("duplicates", 0)}


def _wait(cond, timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(step)
    return cond()


def _start(cfg: Path) -> subprocess.Popen:
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy"}
    return subprocess.Popen([sys.executable, "-m", "kiosk", "run", "--config", str(cfg), "--headless"], cwd=ROOT,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def run(work: Path, visitors: int = 20, kills: int = 4, seed: int = 1, timeout: float = 120.0) -> dict:
    """Run the benchmark in ``work``; returns the ledger's figures and how many SIGKILLs were sent."""
    rng = random.Random(seed)
    folder = work / "frames"
    write_frames(folder, visitors)
    cfg = write_config(work, "restart", f'source = "folder"\npath = "{folder}"\nloop = true')
    ledger = work / "state" / "ledger.sqlite3"
    total = lambda: sum(figures(ledger).values())  # noqa: E731
    started = time.monotonic()
    sent = 0
    for _ in range(kills):
        before = total()
        proc = _start(cfg)
        if not _wait(lambda: total() > before or proc.poll() is not None, timeout):
            proc.kill()
            raise RuntimeError("the kiosk recorded nothing")
        time.sleep(rng.uniform(0.0, 1.5))  # kill it at a random point of the stream
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        sent += 1
        if proc.returncode != -signal.SIGKILL:
            raise RuntimeError(f"the kiosk exited by itself ({proc.returncode}): {proc.stderr.read().decode()[-2000:]}")
    before = total()
    proc = _start(cfg)
    # Two whole loops after the last restart: every visitor has been seen again.
    ok = _wait(lambda: total() >= before + 2 * visitors or proc.poll() is not None, timeout)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    if not ok:
        raise RuntimeError("the last run did not get through two loops in time")
    return {**figures(ledger), "visitors": visitors, "kills": sent, "seconds": round(time.monotonic() - started, 1)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--visitors", type=int, default=20)
    p.add_argument("--kills", type=int, default=4)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="kiosk-restart-") as tmp:
        r = run(Path(tmp), args.visitors, args.kills, args.seed)
    print("| visitors N | SIGKILLs | accepted | duplicates | accepted == N | seconds |")
    print("|---:|---:|---:|---:|:---:|---:|")
    print(f"| {r['visitors']} | {r['kills']} | {r['accepted']} | {r['duplicates']} | "
          f"{'yes' if r['accepted'] == r['visitors'] else 'NO'} | {r['seconds']} |")
    return 0 if r["accepted"] == r["visitors"] else 1


if __name__ == "__main__":
    sys.exit(main())
