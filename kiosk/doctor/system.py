"""Doctor checks of the system around the kiosk: clock, trust list, free disk, ledger."""

from __future__ import annotations

import os
import shutil
import sqlite3
import time
from datetime import datetime, timezone
from pathlib import Path

from device.clock import TIME_ERROR, clock_state
from kiosk.doctor.finding import FAIL, PASS, WARN, Context, Finding

# A clock before this is certainly wrong (a Pi has no battery clock and may boot in 1970 or at its last shutdown).
EARLIEST_PLAUSIBLE = datetime(2025, 1, 1, tzinfo=timezone.utc)
DISK_FAIL_MB, DISK_WARN_MB = 100, 500


def check_clock(ctx: Context, now: datetime | None = None, state: int | None = -1) -> Finding:
    """The system clock is set and kept synchronised (certificate validity depends on it)."""
    now = now or datetime.now(timezone.utc)
    state = clock_state() if state == -1 else state
    advice = ("enable time sync (`sudo timedatectl set-ntp true`) and let the kiosk reach an NTP server "
              "(UDP 123), e.g. the district's, set in /etc/systemd/timesyncd.conf")
    if now < EARLIEST_PLAUSIBLE:
        return Finding("clock", FAIL, f"the clock says {now:%Y-%m-%d %H:%M} UTC, which cannot be right: "
                       "certificates will be judged at the wrong time", advice)
    if state is None:
        return Finding("clock", WARN, f"{now:%Y-%m-%d %H:%M:%S} UTC; cannot tell whether it is synchronised", advice)
    if state == TIME_ERROR:
        return Finding("clock", WARN, f"{now:%Y-%m-%d %H:%M:%S} UTC, not synchronised (no NTP yet)", advice)
    return Finding("clock", PASS, f"{now:%Y-%m-%d %H:%M:%S} UTC, synchronised")


def check_trust(ctx: Context) -> Finding:
    """The trust list (signer certificates) is present, readable and not too old."""
    trust = ctx.config.trust
    if not trust.paths:
        return Finding("trust", WARN, "no trust list configured: signed codes (EU DCC, health declarations) are "
                       "rejected as unknown-key", "put the authority's signer certificates or trust list in a folder "
                       "and list it in [trust] paths")
    try:
        from kiosk.trust.store import TrustStore
    except Exception as exc:
        return Finding("trust", FAIL, f"trust module unavailable: {type(exc).__name__}: {exc}", "reinstall the kiosk")
    paths = [str(ctx.config.resolve(p)) for p in trust.paths]
    try:
        store = TrustStore.load(paths)
    except (ValueError, OSError) as exc:
        return Finding("trust", FAIL, str(exc), "replace the file with a fresh copy of the trust list")
    age = store.age_days
    if len(store) == 0:
        return Finding("trust", FAIL, "the trust list holds no signers", "replace it with the authority's current list")
    if age is None:
        return Finding("trust", WARN, f"{len(store)} signer(s), age unknown", "")
    if age > trust.max_age_days:
        return Finding("trust", WARN, f"{len(store)} signer(s), {age:.0f} days old (limit {trust.max_age_days})",
                       "update the trust list (copy the new files, then send the reload-trust command or restart the kiosk)")
    return Finding("trust", PASS, f"{len(store)} signer(s), {age:.0f} day(s) old")


def _existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_disk(ctx: Context) -> Finding:
    """Room for the ledger to grow (and SQLite's journal) on the state directory's file system."""
    where = _existing(ctx.config.ledger_path.parent)
    usage = shutil.disk_usage(where)
    free_mb = usage.free / 1e6
    pct = 100 * usage.free / usage.total if usage.total else 0
    msg = f"{free_mb:,.0f} MB free ({pct:.0f}%) on {where}"
    advice = "free space: `sudo journalctl --vacuum-size=20M`, `sudo apt-get clean`; use a larger SD card"
    if free_mb < DISK_FAIL_MB:
        return Finding("disk", FAIL, msg, advice)
    if free_mb < DISK_WARN_MB or pct < 5:
        return Finding("disk", WARN, msg, advice)
    return Finding("disk", PASS, msg)


def check_ledger(ctx: Context) -> Finding:
    """The ledger's folder is writable (with fsync), and an existing ledger is intact."""
    path = ctx.config.ledger_path
    folder = path.parent
    if not folder.is_dir():
        return Finding("ledger", FAIL, f"{folder} does not exist",
                       "kiosk.service creates it (StateDirectory=kiosk); outside systemd create it: "
                       f"`sudo install -d -o kiosk -g kiosk -m 0750 {folder}`")
    probe = folder / f".doctor-{os.getpid()}"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, b"doctor")
            os.fsync(fd)
        finally:
            os.close(fd)
            probe.unlink()
    except OSError as exc:
        return Finding("ledger", FAIL, f"cannot write in {folder}: {exc.strerror}",
                       f"the kiosk user must own it: `sudo chown -R kiosk:kiosk {folder}`; a read-only SD card "
                       "(check `dmesg`) must be replaced")
    if not path.exists():
        return Finding("ledger", PASS, f"{folder} writable; the ledger is created on first start")
    t0 = time.monotonic()
    try:
        # Read-only: safe while the kiosk runs (WAL lets readers in).
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=2)
        try:
            result = db.execute("PRAGMA quick_check").fetchone()[0]
        finally:
            db.close()
    except sqlite3.Error as exc:
        return Finding("ledger", FAIL, f"{path}: {exc}", "stop the kiosk, keep a copy of the file, and ask for help: "
                       "the ledger holds the check-ins not yet sent")
    if result != "ok":
        return Finding("ledger", FAIL, f"{path}: damaged ({result})", "stop the kiosk, keep a copy of the file, and ask for help")
    return Finding("ledger", PASS, f"{path}: writable, intact ({path.stat().st_size / 1e6:.1f} MB, "
                   f"checked in {time.monotonic() - t0:.1f} s)")
