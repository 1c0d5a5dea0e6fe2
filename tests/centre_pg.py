"""A real PostgreSQL server for the centre's tests: Debian's binaries, initdb in a temporary directory.

One server per test session (a fresh database per test), on a free port and a unix socket in
its own directory; never the machine's own server, never a mock. As root, the server runs as
the ``postgres`` user (PostgreSQL refuses to run as root). Import the fixtures from a test file:
``from centre_pg import postgres_server, pg_url  # noqa: F401``.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid

import pytest


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    assert found, f"PostgreSQL's {name} not found under /usr/lib/postgresql/*/bin (apt install postgresql)"
    return found[-1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """``password_auth``: TCP connections must give a password (SCRAM), as a city's server asks; the unix
    socket stays trusted for the test's own set-up (:meth:`add_role`)."""

    def __init__(self, password_auth: bool = False):
        self.dir = tempfile.mkdtemp(prefix="centre-pg-")
        self.port = _free_port()
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            import pwd

            user = "postgres" if _has_user("postgres") else "nobody"
            pw = pwd.getpwnam(user)
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            self.as_user = ["runuser", "-u", user, "--"]
        data = os.path.join(self.dir, "data")
        auth = ["--auth-local=trust", "--auth-host=scram-sha-256"] if password_auth else ["--auth=trust"]
        subprocess.run([*self.as_user, _bin("initdb"), "-D", data, "-U", "postgres", *auth, "-E", "UTF8",
                        "--no-sync", "-N"], check=True, capture_output=True)
        self._command = [*self.as_user, _bin("postgres"), "-D", data, "-p", str(self.port), "-k", self.dir,
                         "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
                         "-c", "full_page_writes=off", "-c", "max_connections=60", "-c", "shared_buffers=64MB"]
        self.proc = subprocess.Popen(self._command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        if password_auth:  # the set-up's own connections go through the socket
            self.url = f"postgresql://postgres@/postgres?host={self.dir}&port={self.port}"
        self._wait()

    def _wait(self) -> None:
        import psycopg

        deadline = time.monotonic() + 30
        while True:
            try:
                psycopg.connect(self.url, connect_timeout=1).close()
                return
            except psycopg.OperationalError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the test PostgreSQL did not start")
                time.sleep(0.1)

    def new_database(self, owner: str = "") -> str:
        """A fresh database's URL (as the set-up connects)."""
        return self.database_url(self.create_database(owner))

    def create_database(self, owner: str = "") -> str:
        """A fresh database (owned by ``owner``, else by postgres); its name."""
        import psycopg

        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.url, autocommit=True) as c:
            c.execute(f"CREATE DATABASE {name}" + (f" OWNER {owner}" if owner else ""))
        return name

    def database_url(self, name: str, user: str = "postgres", password: str = "") -> str:
        """A URL of database ``name``: over TCP (with ``password`` when given), else as the set-up connects."""
        if password or "?" not in self.url:
            from urllib.parse import quote

            who = f"{user}:{quote(password, safe='')}" if password else user
            return f"postgresql://{who}@127.0.0.1:{self.port}/{name}"
        return f"postgresql://{user}@/{name}?host={self.dir}&port={self.port}"

    def add_role(self, name: str, password: str) -> None:
        """A login role with a password (for the TCP connections of a ``password_auth`` server)."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.url, autocommit=True) as c:
            c.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(name), sql.Literal(password)))

    def halt(self) -> None:
        """Stop the server at once, keeping its data (:meth:`resume` starts it again on the same port).

        PostgreSQL's fast shutdown (SIGINT to the postmaster, not through runuser): open sessions are ended, as
        when a database server is stopped under a running centre."""
        import signal

        with open(os.path.join(self.dir, "data", "postmaster.pid")) as f:
            os.kill(int(f.readline()), signal.SIGINT)
        self.proc.wait(30)

    def resume(self) -> None:
        self.proc = subprocess.Popen(self._command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._wait()

    def stop(self) -> None:
        """Fast shutdown (SIGINT to the postmaster): a smart one (SIGTERM) waits for every session a test left
        open, which cost the suite 10-20 s at its end; then the data directory goes."""
        try:
            self.halt()
        except (OSError, ValueError, subprocess.TimeoutExpired):  # not running, or no pid file: make sure
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def _has_user(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


@pytest.fixture(scope="session")
def postgres_server():
    server = PostgresServer()
    yield server
    server.stop()


@pytest.fixture
def pg_url(postgres_server) -> str:
    """A fresh, empty database on the session's PostgreSQL server."""
    return postgres_server.new_database()
