"""Backups that restore (issue 23 item 4): ``kiosk centre backup`` and ``kiosk centre restore`` on SQLite and a
real PostgreSQL (one that asks for passwords, as a city's does).

A store with a small signed city is backed up with the command, restored into a fresh store with the
command, and the API answers the same figures. A store holding figures is not overwritten unless
``--force``; a damaged backup leaves the store as it was; a backup never overwrites a file; a password in
the store URL never reaches a command line; a SQLite backup taken while the centre writes is a consistent
snapshot; a backup of the last release restores and is brought to this centre's schema.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import threading
import time
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from helpers import wait_for
from kiosk.centre import backup as backup_module
from kiosk.centre import migrations
from kiosk.centre.accounts import Accounts
from kiosk.centre.ingest import Batch
from kiosk.centre.queries import Centre, Settings
from kiosk.centre.store import open_store
from kiosk.centre.web import create_app
from kiosk.cli import main
from centre_helpers import seeded_city
from centre_pg import PostgresServer
from test_centre_migrations import feed, release_store_module
from centre_helpers import small_city

PASSWORD = "a long dashboard password"
DB_PASSWORD = "s3cret:with\\odd chars"


@pytest.fixture(scope="module")
def pg_with_passwords():
    server = PostgresServer(password_auth=True)
    server.add_role("centre", DB_PASSWORD)
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgres"])
def new_store(request, tmp_path):
    """A function making the URL of a fresh, empty store of the parameter's kind (a password in PostgreSQL's)."""
    if request.param == "sqlite":
        n = iter(range(100))
        return lambda: str(tmp_path / f"store-{next(n)}.sqlite3")
    server = request.getfixturevalue("pg_with_passwords")

    def make() -> str:
        return server.database_url(server.create_database(owner="centre"), user="centre", password=DB_PASSWORD)
    return make


@pytest.fixture(scope="module")
def city_accounts():
    acc = Accounts()
    acc.add("city", PASSWORD)
    return acc


def api(store, accounts, now: float, cookie: str | None = None) -> tuple[dict, str]:
    """The city account's API answers over ``store`` at the time ``now`` (and the session cookie used)."""
    centre = Centre(store, Settings(clock=lambda: now, grace_hour=0))
    app = create_app(centre, accounts, secure_cookies=False)
    with TestClient(app) as c:
        if cookie is None:
            token = re.search(r'name="csrf" value="([^"]+)"', c.get("/login").text).group(1)
            assert c.post("/login", data={"name": "city", "password": PASSWORD, "csrf": token},
                          follow_redirects=False).status_code == 303
            cookie = c.cookies.get("centre_session")
        else:
            c.cookies.set("centre_session", cookie)
        me = c.get("/api/v1/me")
        if me.status_code != 200:
            return {"me": me.status_code}, cookie
        districts = c.get("/api/v1/districts").json()["districts"]
        overview = c.get("/api/v1/overview").json()
        paths = ["/api/v1/overview", "/api/v1/inspection?limit=5000", "/api/v1/kiosks", "/api/v1/history?days=40",
                 "/api/v1/refused", "/api/v1/report", "/api/v1/hourly",
                 *(f"/api/v1/districts/{d}" for d in districts)]
        out = {p: c.get(p).json() for p in paths}
        venues = [r["venue_id"] for r in c.get("/api/v1/kiosks").json()["kiosks"]][:5]
        out.update({f"/api/v1/venues/{v}": c.get(f"/api/v1/venues/{v}").json() for v in venues})
        assert overview["totals"]["scans"] > 0 and out["/api/v1/history?days=40"]["history"][0]["scans"] >= 0
        return out, cookie


def kiosk(*argv) -> int:
    return main(["centre", *argv])


def test_a_backup_restores_into_a_fresh_store_with_the_same_figures(new_store, city_accounts, tmp_path, capsys,
                                                                      monkeypatch):
    url = new_store()
    store = open_store(url)
    seeded_city(store, venues=40, history_days=6)
    now = time.time()
    before, cookie = api(store, city_accounts, now)
    store.close()
    calls = record_programs(monkeypatch)
    out = tmp_path / "centre.backup"
    assert kiosk("backup", "--db", url, "--out", str(out)) == 0
    said = capsys.readouterr().out
    assert f"schema version {migrations.LATEST}" in said and str(out) in said and "s3cret" not in said
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no partial file left
    fresh = new_store()
    assert kiosk("restore", "--db", fresh, str(out)) == 0  # FILE after the options, as documented
    assert "every dashboard session ended" in capsys.readouterr().out
    restored = open_store(fresh)
    try:
        assert api(restored, city_accounts, now)[0] == before
        # The session made on the original store is not in the backup: nobody is logged in by a restore.
        assert api(restored, city_accounts, now, cookie=cookie)[0] == {"me": 401}
    finally:
        restored.close()
    if "postgresql://" in url:
        assert {"pg_dump", "pg_restore", "psql"} <= {Path(c["argv"][0]).name for c in calls}
        for c in calls:  # what ps would show, and the password file each program was given
            assert "s3cret" not in " ".join(c["argv"])
            assert c["passfile_mode"] == 0o600
            assert not os.path.exists(c["passfile"])  # removed afterwards


def record_programs(monkeypatch) -> list[dict]:
    """Record every program backup.py runs: its command line and the password file in its environment."""
    calls: list[dict] = []
    real_run, real_popen = subprocess.run, subprocess.Popen

    def note(argv, env):
        passfile = (env or {}).get("PGPASSFILE", "")
        calls.append({"argv": list(argv), "passfile": passfile,
                      "passfile_mode": stat.S_IMODE(os.stat(passfile).st_mode) if passfile else None})

    def run(argv, *a, **kw):
        note(argv, kw.get("env"))
        return real_run(argv, *a, **kw)

    class Popen(real_popen):
        def __init__(self, argv, *a, **kw):
            note(argv, kw.get("env"))
            super().__init__(argv, *a, **kw)

    monkeypatch.setattr(backup_module.subprocess, "run", run)
    monkeypatch.setattr(backup_module.subprocess, "Popen", Popen)
    return calls


def _figures(url: str, now: float) -> dict:
    store = open_store(url)
    try:
        c = Centre(store, Settings(clock=lambda: now, grace_hour=0))
        return {"overview": c.overview(), "kiosks": c.kiosks(), "history": c.history(days=40)}
    finally:
        store.close()


def test_restore_refuses_a_store_with_figures_unless_forced(new_store, tmp_path, capsys):
    first, second = new_store(), new_store()
    for url, venues, seed in ((first, 20, 1), (second, 30, 2)):
        s = open_store(url)
        seeded_city(s, venues=venues, history_days=3, seed=seed)
        s.close()
    out = tmp_path / "first.backup"
    assert kiosk("backup", "--db", first, "--out", str(out)) == 0
    now = time.time()
    kept = _figures(second, now)
    capsys.readouterr()
    assert kiosk("restore", "--db", second, str(out)) == 2
    err = capsys.readouterr().err
    assert "is not empty" in err and "--force" in err and "fleet" in err
    assert _figures(second, now) == kept
    assert kiosk("restore", "--db", second, str(out), "--force") == 0
    assert _figures(second, now) == _figures(first, now)


def test_a_damaged_backup_leaves_the_store_as_it_was(new_store, tmp_path, capsys):
    url, other = new_store(), new_store()
    for u, seed in ((url, 3), (other, 4)):
        s = open_store(u)
        seeded_city(s, venues=25, history_days=4, seed=seed)
        s.close()
    good = tmp_path / "good.backup"
    assert kiosk("backup", "--db", other, "--out", str(good)) == 0
    data = good.read_bytes()
    now = time.time()
    kept = _figures(url, now)
    damaged = {"cut in the middle": data[: len(data) * 2 // 3], "a page overwritten": _scribbled(data),
               "not a backup": b"hello, I am a text file\n" * 100}
    for what, content in damaged.items():
        bad = tmp_path / f"bad-{len(content)}.backup"
        bad.write_bytes(content)
        capsys.readouterr()
        assert kiosk("restore", "--db", url, str(bad), "--force") != 0, what
        err = capsys.readouterr().err
        assert err.startswith("kiosk centre: ") and "Traceback" not in err, (what, err)
        assert _figures(url, now) == kept, what


def _scribbled(data: bytes) -> bytes:
    """``data`` with 4 KiB of its middle overwritten."""
    mid = len(data) // 2
    return data[:mid] + bytes(range(256)) * 16 + data[mid + 4096:]


def test_a_backup_never_overwrites_a_file(tmp_path, capsys):
    url = str(tmp_path / "centre.sqlite3")
    open_store(url).close()
    out = tmp_path / "centre.backup"
    out.write_text("last night's backup")
    assert kiosk("backup", "--db", url, "--out", str(out)) == 2
    assert "already exists" in capsys.readouterr().err
    assert out.read_text() == "last night's backup"
    assert kiosk("backup", "--db", str(tmp_path / "missing.sqlite3"), "--out", str(tmp_path / "x.backup")) == 2
    assert "no such store file" in capsys.readouterr().err
    assert not (tmp_path / "missing.sqlite3").exists()  # a backup never creates the store it was asked about


def test_a_sqlite_backup_taken_while_the_centre_writes_is_a_consistent_snapshot(tmp_path):
    """Each batch writes a day's row and its hourly curve in one transaction: every backup taken while
    batches are written holds both or neither of each day."""
    url = str(tmp_path / "centre.sqlite3")
    store = open_store(url)
    stop = threading.Event()
    written = [0]

    def writer():
        day = 0
        while not stop.is_set():
            b = Batch()
            d = f"2026-{1 + day // 28:02d}-{1 + day % 28:02d}"
            b.daily[("s", "k", d)] = ("s", "k", d, "V-1", 5, 0, 0, 0, 5, 0, 1, None, 0.0)
            b.hourly[("s", "k", d)] = ("s", "k", d, 1, *([0] * 23), 5)
            store.write(b)
            written[0] += 1
            day = (day + 1) % 300
    t = threading.Thread(target=writer)
    t.start()
    try:
        assert wait_for(lambda: written[0] > 20, timeout=30.0)
        for i in range(5):
            out = tmp_path / f"b{i}.backup"
            backup_module.backup(url, out)
            copy = open_store(tmp_path / f"copy{i}.sqlite3")
            copy.close()
            backup_module.restore(str(tmp_path / f"copy{i}.sqlite3"), out)
            c = open_store(tmp_path / f"copy{i}.sqlite3")
            n_daily = c.query("SELECT COUNT(*) AS n FROM daily")[0]["n"]
            assert n_daily == c.query("SELECT COUNT(*) AS n FROM hourly")[0]["n"] and n_daily > 0
            c.close()
    finally:
        stop.set()
        t.join()
        store.close()


def test_a_backup_of_the_last_release_restores_and_is_upgraded(new_store, tmp_path, capsys):
    old_module = release_store_module(tmp_path)
    url = new_store()
    old = old_module.open_store(url)
    city = small_city(venues=10, share=1.0)
    feed([old], city)
    scans = old.query("SELECT SUM(accepted) AS n FROM daily")[0]["n"]
    old.close()
    out = tmp_path / "release.backup"
    assert kiosk("backup", "--db", url, "--out", str(out)) == 0
    assert "schema version 0" in capsys.readouterr().out
    fresh = new_store()
    assert kiosk("restore", "--db", fresh, str(out)) == 0
    assert f"upgraded to schema version {migrations.LATEST}" in capsys.readouterr().out
    s = open_store(fresh)
    try:
        assert migrations.version_of(s) == migrations.LATEST
        assert s.query("SELECT SUM(accepted) AS n FROM daily")[0]["n"] == scans > 0
    finally:
        s.close()
