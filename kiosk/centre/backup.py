"""Backups that restore (``kiosk centre backup`` / ``kiosk centre restore``), for both stores.

SQLite: the online backup API (:meth:`sqlite3.Connection.backup`) copies a consistent snapshot
while the centre keeps writing (WAL: the copy holds a read transaction, writers go on). The copy
is made beside the backup file under a temporary name, its dashboard sessions are wiped, it is
checked (``PRAGMA integrity_check``), synced and only then renamed into place.

PostgreSQL: ``pg_dump --format=custom`` (Debian's postgresql-client), a consistent snapshot of a
running database, without the sessions' rows. A password in the store URL never reaches a command
line (where ``ps`` shows it): it goes into a password file of this process's own (mode 0600,
``PGPASSFILE``), deleted afterwards; without one, libpq finds it as usual (``PGPASSFILE``, the
systemd credential the units set, ``~/.pgpass``, peer authentication).

Restore never leaves a half-restored store, and refuses to overwrite one that holds figures
unless told (``force``):

* SQLite: the backup is checked, copied into a temporary file beside the store, brought to this
  centre's schema there (an older backup is migrated), then copied over the store with the backup
  API in one transaction (a reader sees the old store or the new one, never a mix).
* PostgreSQL: ``pg_restore`` turns the archive into SQL that ``psql`` runs inside one transaction
  which first drops every table of the store's schema, under the migrations' advisory lock; the
  ``COMMIT`` is sent only once ``pg_restore`` finished without an error, so a truncated or corrupt
  archive rolls everything back. The restored store is then migrated to this centre's schema.

Either way every dashboard session ends (everyone logs in again). A backup of one kind restores
into a store of the same kind only.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from kiosk.centre import migrations
from kiosk.errors import KioskValueError

SQLITE_MAGIC = b"SQLite format 3\x00"
PG_MAGIC = b"PGDMP"
# Tables whose rows are not figures: a store holding only these counts as empty (a restore may overwrite it).
NOT_FIGURES = {"web_sessions", "readiness_probe", "schema_version"}


class BackupError(KioskValueError):
    """A backup or restore that could not be made; nothing was changed."""


@dataclass
class Outcome:
    kind: str  # "sqlite" or "postgres"
    path: str
    bytes: int
    schema_version: int  # of the backup (restore: before migrating)
    tables: int = 0
    rows: int = 0
    migrated_to: int = 0


def is_postgres(url: str) -> bool:
    return str(url).startswith(("postgresql://", "postgres://"))


def sqlite_path(url: str) -> str:
    url = str(url)
    if url.startswith("sqlite:///"):
        url = url[len("sqlite:///"):]
    if not url or url == ":memory:" or "://" in url:
        raise BackupError(f"--db {url!r}: a SQLite file path, sqlite:///path or postgresql://... "
                          "(a store in memory has nothing to back up)")
    return url


# -- backup -------------------------------------------------------------------------------------------

def backup(url: str, out: str | Path) -> Outcome:
    """Write a backup of the store at ``url`` to ``out`` (which must not exist: a backup is never overwritten)."""
    out = Path(out)
    if out.exists() or out.is_symlink():
        raise BackupError(f"--out {out}: already exists; a backup never overwrites another (name each one, "
                          "e.g. centre-$(date +%F).backup)")
    if not out.parent.is_dir():
        raise BackupError(f"--out {out}: no folder {out.parent}")
    partial = out.with_name(f".{out.name}.partial-{os.getpid()}")
    try:
        if is_postgres(url):
            version = _pg_backup(url, partial)
            kind = "postgres"
        else:
            version = _sqlite_backup(sqlite_path(url), partial)
            kind = "sqlite"
        _sync(partial)
        os.replace(partial, out)
        _sync_dir(out.parent)
    finally:
        partial.unlink(missing_ok=True)
    return Outcome(kind, str(out), out.stat().st_size, version)


def _sqlite_backup(path: str, partial: Path) -> int:
    if not Path(path).is_file():
        raise BackupError(f"--db {path}: no such store file")
    src = _sqlite_open(path, "rw")  # rw, never created: a WAL store's reader may need to write its -shm
    try:
        version = _sqlite_version(src)
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
        dst = sqlite3.connect(partial, isolation_level=None)
        try:
            src.backup(dst)  # one step: a consistent snapshot; the centre's writers carry on (WAL)
            dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
            if _sqlite_has(dst, "web_sessions"):
                dst.execute("PRAGMA secure_delete=ON")  # the hashes are zeroed, not just unlinked
                dst.execute("DELETE FROM web_sessions")
            _sqlite_check(dst, str(partial))
        finally:
            dst.close()
    except sqlite3.Error as exc:
        raise BackupError(f"backup of {path} failed: {exc}") from None
    finally:
        src.close()
    return version


def _pg_backup(url: str, partial: Path) -> int:
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=10) as conn:
            version = _pg_version(conn)
    except psycopg.Error as exc:
        raise BackupError(f"cannot connect to PostgreSQL: {_first_line(exc)}") from None
    with _libpq(url) as (conninfo, env):
        _run([_pg_bin("pg_dump"), "--format=custom", "--exclude-table-data=web_sessions", f"--file={partial}",
              f"--dbname={conninfo}"], env, "pg_dump")
        _run([_pg_bin("pg_restore"), "--list", str(partial)], env, "pg_restore --list")  # the archive reads back
    os.chmod(partial, 0o600)
    return version


# -- restore ------------------------------------------------------------------------------------------

def kind_of(path: str | Path) -> str:
    """``sqlite`` or ``postgres``: which store a backup file is of (BackupError when it is neither)."""
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError as exc:
        raise BackupError(f"cannot read the backup {path}: {exc.strerror}") from None
    if head.startswith(SQLITE_MAGIC):
        return "sqlite"
    if head.startswith(PG_MAGIC):
        return "postgres"
    raise BackupError(f"{path}: not a backup of the centre's store (neither a SQLite file nor a pg_dump archive)")


def restore(url: str, path: str | Path, force: bool = False) -> Outcome:
    """Replace the store at ``url`` with the backup ``path`` (see the module); the store must hold no
    figures unless ``force``."""
    kind = kind_of(path)
    want = "postgres" if is_postgres(url) else "sqlite"
    if kind != want:
        raise BackupError(f"{path} is a {kind} backup; it restores into a {kind} store only, not {want} "
                          f"(--db {'postgresql://...' if kind == 'postgres' else 'a file path'})")
    if kind == "sqlite":
        return _sqlite_restore(sqlite_path(url), Path(path), force)
    return _pg_restore(url, Path(path), force)


def _refuse_unless_empty(holding: list[str], where: str, force: bool) -> None:
    if holding and not force:
        shown = ", ".join(holding[:5]) + (f" and {len(holding) - 5} more" if len(holding) > 5 else "")
        raise BackupError(f"{where} is not empty ({shown} hold rows): restoring would replace it; stop the centre, "
                          "make a backup of it first, then run restore again with --force")


def _sqlite_restore(target: str, path: Path, force: bool) -> Outcome:
    from kiosk.centre.store import SQLiteStore

    try:
        src = _sqlite_open(str(path), "ro")
        try:
            _sqlite_check(src, str(path))
            if not _sqlite_has(src, "fleet"):
                raise BackupError(f"{path}: a SQLite file, but not a backup of the centre's store (no fleet table)")
            version = _sqlite_version(src)
        finally:
            src.close()
        if Path(target).exists():
            t = _sqlite_open(target, "rw")
            try:
                _refuse_unless_empty(_sqlite_holding(t), target, force)
            finally:
                t.close()
        folder = Path(target).resolve().parent
        folder.mkdir(parents=True, exist_ok=True)
        staged = Path(tempfile.mkstemp(prefix=".restore-", suffix=".sqlite3", dir=folder)[1])
        try:
            src, dst = _sqlite_open(str(path), "ro"), sqlite3.connect(staged, isolation_level=None)
            try:
                src.backup(dst)
            finally:
                src.close()
                dst.close()
            store = SQLiteStore(staged)  # brought to this centre's schema here, not in the live file
            try:
                migrated = migrations.version_of(store)
                store.execute("DELETE FROM web_sessions")  # everyone logs in again
            finally:
                store.close()
            staged_db, live = _sqlite_open(str(staged), "ro"), sqlite3.connect(target, isolation_level=None,
                                                                                timeout=30)
            try:
                staged_db.backup(live)  # one transaction on the live file: its readers see old or new
                tables, rows = _sqlite_count(live)
            finally:
                staged_db.close()
                live.close()
        finally:
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(str(staged) + suffix).unlink(missing_ok=True)
    except sqlite3.Error as exc:
        raise BackupError(f"restore into {target} failed, the store is as it was: {exc}") from None
    return Outcome("sqlite", target, path.stat().st_size, version, tables, rows, migrated)


def _pg_restore(url: str, path: Path, force: bool) -> Outcome:
    import psycopg

    from kiosk.centre.store import MIGRATION_LOCK, open_store

    with _libpq(url) as (conninfo, env):
        toc = _run([_pg_bin("pg_restore"), "--list", str(path)], env, "pg_restore --list")
        if " TABLE " not in toc or " fleet " not in toc:
            raise BackupError(f"{path}: a pg_dump archive, but not of the centre's store (no fleet table)")
        try:
            with psycopg.connect(url, connect_timeout=10) as conn:
                holding = _pg_holding(conn)
        except psycopg.Error as exc:
            raise BackupError(f"cannot connect to PostgreSQL: {_first_line(exc)}") from None
        _refuse_unless_empty(holding, "the database", force)
        # One transaction: drop every table of the store's schema, create and fill them from the archive.
        # COMMIT is sent only after pg_restore ended well: a truncated archive leaves psql without it, and
        # PostgreSQL rolls the open transaction back when psql goes.
        prefix = (f"\\set ON_ERROR_STOP 1\nBEGIN;\nSELECT pg_advisory_xact_lock({MIGRATION_LOCK});\n"
                  "DO $$DECLARE t record; BEGIN FOR t IN SELECT tablename FROM pg_tables "
                  "WHERE schemaname = current_schema() LOOP "
                  "EXECUTE format('DROP TABLE IF EXISTS %I CASCADE', t.tablename); END LOOP; END$$;\n")
        with tempfile.TemporaryFile() as psql_err, tempfile.TemporaryFile() as dump_err:
            psql = subprocess.Popen([_pg_bin("psql"), "--no-psqlrc", "--quiet", "--set=ON_ERROR_STOP=1",
                                     f"--dbname={conninfo}", "--file=-"], stdin=subprocess.PIPE,
                                    stdout=subprocess.DEVNULL, stderr=psql_err, env=env)
            dump = subprocess.Popen([_pg_bin("pg_restore"), "--no-owner", "--no-privileges", "--file=-", str(path)],
                                    stdout=subprocess.PIPE, stderr=dump_err, env=env)
            try:
                psql.stdin.write(prefix.encode())
                shutil.copyfileobj(dump.stdout, psql.stdin, 1 << 20)
                dump_rc = dump.wait()
                if dump_rc == 0:
                    psql.stdin.write(b"COMMIT;\n")
                psql.stdin.close()
            except BrokenPipeError:  # psql stopped at an error: its message says which
                dump.kill()
                dump_rc = dump.wait()
            psql_rc = psql.wait()
            if dump_rc != 0 or psql_rc != 0:
                psql_err.seek(0)
                dump_err.seek(0)
                why = _first_line(dump_err.read().decode(errors="replace")) if dump_rc else \
                    _first_line(psql_err.read().decode(errors="replace"))
                raise BackupError(f"restore failed, the database is as it was: {why or 'exit ' + str(psql_rc)}")
    # The archive's version, before this centre's migrations bring it up to date.
    try:
        with psycopg.connect(url, connect_timeout=10) as conn:
            version = _pg_version(conn)
    except psycopg.Error as exc:
        raise BackupError(f"cannot connect to PostgreSQL: {_first_line(exc)}") from None
    store = open_store(url)
    try:
        store.execute("DELETE FROM web_sessions")
        tables, rows = _pg_count(store)
        migrated = migrations.version_of(store)
    finally:
        store.close()
    return Outcome("postgres", url, path.stat().st_size, version, tables, rows, migrated)


# -- SQLite helpers -----------------------------------------------------------------------------------

def _sqlite_open(path: str, mode: str) -> sqlite3.Connection:
    from urllib.parse import quote

    try:
        return sqlite3.connect(f"file:{quote(os.path.abspath(path))}?mode={mode}", uri=True, isolation_level=None,
                               timeout=30)
    except sqlite3.Error as exc:
        raise BackupError(f"cannot open {path}: {exc}") from None


def _sqlite_has(db, table: str) -> bool:
    return bool(db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)).fetchall())


def _sqlite_tables(db) -> list[str]:
    return [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                     "AND name NOT LIKE 'sqlite_%' ORDER BY name")]


def _sqlite_version(db) -> int:
    if not _sqlite_has(db, "schema_version"):
        return 0
    return int(db.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()[0])


def _sqlite_check(db, name: str) -> None:
    try:
        result = db.execute("PRAGMA integrity_check").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{name}: not a sound SQLite file: {exc}") from None
    if result != "ok":
        raise BackupError(f"{name}: damaged (integrity_check: {result})")


def _sqlite_holding(db) -> list[str]:
    return [t for t in _sqlite_tables(db)
            if t not in NOT_FIGURES and db.execute(f'SELECT 1 FROM "{t}" LIMIT 1').fetchall()]


def _sqlite_count(db) -> tuple[int, int]:
    tables = _sqlite_tables(db)
    return len(tables), sum(db.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0] for t in tables)


# -- PostgreSQL helpers -------------------------------------------------------------------------------

def _pg_tables(conn) -> list[str]:
    return [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
                                       "ORDER BY tablename").fetchall()]


def _pg_holding(conn) -> list[str]:
    from psycopg import sql

    return [t for t in _pg_tables(conn) if t not in NOT_FIGURES and
            conn.execute(sql.SQL("SELECT 1 FROM {} LIMIT 1").format(sql.Identifier(t))).fetchall()]


def _pg_version(conn) -> int:
    if conn.execute("SELECT to_regclass('schema_version')").fetchone()[0] is None:
        return 0
    return int(conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()[0])


def _pg_count(store) -> tuple[int, int]:
    tables = [r["tablename"] for r in store.query("SELECT tablename FROM pg_tables WHERE schemaname = "
                                                  "current_schema()")]
    return len(tables), sum(int(store.query(f'SELECT COUNT(*) AS n FROM "{t}"')[0]["n"]) for t in tables)


@contextmanager
def _libpq(url: str):
    """(conninfo without the password, environment) for PostgreSQL's own tools: a password of the URL
    goes into a password file of our own (mode 0600, removed afterwards), never onto a command line."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    try:
        params = conninfo_to_dict(url)
    except Exception as exc:  # psycopg.ProgrammingError: the URL does not parse
        raise BackupError(f"--db: not a PostgreSQL URL: {_first_line(exc)}") from None
    password = params.pop("password", None)
    env = dict(os.environ)
    folder = None
    try:
        if password is not None:
            folder = tempfile.mkdtemp(prefix="kiosk-centre-pg-")  # mode 0700
            passfile = os.path.join(folder, "pgpass")
            fd = os.open(passfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            escaped = password.replace("\\", "\\\\").replace(":", "\\:")
            with os.fdopen(fd, "w") as f:
                f.write(f"*:*:*:*:{escaped}\n")
            env["PGPASSFILE"] = passfile
            params.pop("passfile", None)
        yield make_conninfo(**params), env
    finally:
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)


def _pg_bin(name: str) -> str:
    """PostgreSQL's client program ``name`` (Debian: postgresql-client, in PATH and under /usr/lib/postgresql)."""
    found = shutil.which(name)
    if found:
        return found
    import glob

    versions = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if versions:
        return versions[-1]
    raise BackupError(f"{name} not found: install PostgreSQL's client programs (apt install postgresql-client)")


def _run(cmd: list[str], env: dict, what: str) -> str:
    try:
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    except OSError as exc:
        raise BackupError(f"{what}: {exc.strerror}") from None
    if done.returncode != 0:
        raise BackupError(f"{what} failed: {_first_line(done.stderr) or 'exit ' + str(done.returncode)}")
    return done.stdout


def _first_line(text) -> str:
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return lines[0] if lines else ""


def _sync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
