"""A real PostgreSQL server for the tests, started from Debian's binaries, and a ``db_url`` fixture over both backends.

    def test_something(db_url):          # runs twice: on SQLite and on PostgreSQL (a fresh database each time)
        store = RunStore(db_url)

The server is started once per session: ``initdb`` into a temporary folder (as the ``postgres`` user, or ``nobody``,
when the tests run as root: PostgreSQL refuses to run as root), listening on a free port on 127.0.0.1 with password
authentication, without fsync (test data only). Each test gets its own database, dropped afterwards.
``TRANSFERLAB_TEST_POSTGRES_URL`` (a superuser URL, e.g. ``postgresql+psycopg://postgres:pw@db/postgres``) uses an
existing server instead. Without PostgreSQL (``apt-get install postgresql``; ``scripts/system-deps.sh`` does it) or
psycopg the PostgreSQL cases skip with the reason.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

BACKENDS = ["sqlite", "postgresql"]
EXTERNAL_ENV = "TRANSFERLAB_TEST_POSTGRES_URL"
USER, PASSWORD = "tl", "tl-test-password"


def find_bin_dir() -> Path | None:
    """The newest ``/usr/lib/postgresql/<version>/bin`` holding initdb and pg_ctl (Debian's layout), else None."""
    found = [Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/initdb")]
    found = [d for d in found if (d / "pg_ctl").exists()]
    return max(found, key=lambda d: float(d.parent.name) if d.parent.name.replace(".", "").isdigit() else 0,
               default=None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_as() -> pwd.struct_passwd | None:
    """The unprivileged account to run the server as when we are root; None when we are not root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise RuntimeError("running as root and neither a 'postgres' nor a 'nobody' account exists to run PostgreSQL as")


@dataclass
class PostgresServer:
    """A server the tests may create databases on; ``admin_url`` connects as a superuser."""

    admin_url: str
    bin_dir: Path | None = None
    folder: Path | None = None
    account: pwd.struct_passwd | None = None

    def url(self, database: str, *, password: str | None = None) -> str:
        from sqlalchemy.engine import make_url

        url = make_url(self.admin_url).set(database=database)
        if password is not None:
            url = url.set(password=password)
        return url.render_as_string(hide_password=False)

    def _admin(self):
        from sqlalchemy import create_engine
        from sqlalchemy.pool import NullPool

        return create_engine(self.admin_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)

    def create_database(self) -> str:
        name = f"tl_test_{uuid.uuid4().hex[:12]}"
        engine = self._admin()
        with engine.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        engine.dispose()
        return name

    def drop_database(self, name: str) -> None:
        engine = self._admin()
        with engine.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        engine.dispose()

    def _pg(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        kwargs = {}
        if self.account is not None:
            kwargs = dict(user=self.account.pw_uid, group=self.account.pw_gid, extra_groups=[])
        return subprocess.run([str(self.bin_dir / args[0]), *args[1:]], capture_output=True, text=True,
                              timeout=timeout, cwd=self.folder, **kwargs)

    @classmethod
    def start(cls) -> PostgresServer:
        """initdb + pg_ctl start in a fresh temporary folder. Raises RuntimeError with the reason when it cannot."""
        bin_dir = find_bin_dir()
        if bin_dir is None:
            raise RuntimeError("PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin/initdb): "
                               "apt-get install -y postgresql (scripts/system-deps.sh does it)")
        account = _run_as()
        # Not under pytest's tmp folder: that one is private to root, and the server runs as another user.
        folder = Path(tempfile.mkdtemp(prefix="tl-pg-"))
        server = cls(admin_url="", bin_dir=bin_dir, folder=folder, account=account)
        try:
            (folder / "pw").write_text(PASSWORD + "\n")
            if account is not None:
                for path in (folder, folder / "pw"):
                    os.chown(path, account.pw_uid, account.pw_gid)
            init = server._pg("initdb", "-D", str(folder / "data"), "-U", USER, f"--pwfile={folder / 'pw'}",
                              "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-sync",
                              "--locale=C")
            if init.returncode != 0:
                raise RuntimeError(f"initdb failed ({bin_dir}): {(init.stderr or init.stdout).strip()[-600:]}")
            port = _free_port()
            options = (f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off "
                       "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
            started = server._pg("pg_ctl", "-D", str(folder / "data"), "-l", str(folder / "server.log"), "-w",
                                 "-t", "60", "-o", options, "start", timeout=90)
            if started.returncode != 0:
                log = (folder / "server.log").read_text(errors="replace") if (folder / "server.log").exists() else ""
                raise RuntimeError(f"pg_ctl start failed: {(started.stderr or started.stdout).strip()[-300:]} "
                                   f"{log.strip()[-600:]}")
            server.admin_url = f"postgresql+psycopg://{USER}:{PASSWORD}@127.0.0.1:{port}/postgres"
            return server
        except BaseException:
            server.stop()
            raise

    def stop(self) -> None:
        if self.bin_dir is None or self.folder is None:
            return  # an external server: not ours to stop
        if (self.folder / "data" / "postmaster.pid").exists():
            self._pg("pg_ctl", "-D", str(self.folder / "data"), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server():
    """The session's PostgreSQL server; skips (with the reason) when there is none and none can be started."""
    pytest.importorskip("psycopg", reason="psycopg is not installed (pip install -r requirements.txt)")
    external = os.environ.get(EXTERNAL_ENV)
    if external:
        yield PostgresServer(admin_url=external)
        return
    try:
        server = PostgresServer.start()
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        pytest.skip(f"PostgreSQL is not available: {exc}")
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres_server):
    """A fresh, empty database on the session's server (dropped after the test, connections and all)."""
    name = postgres_server.create_database()
    yield postgres_server.url(name)
    postgres_server.drop_database(name)


def backend_url(request, backend: str, tmp_path: Path) -> str:
    """The URL of an empty database on ``backend``: SQLite at the default place under ``tmp_path``, or a fresh
    PostgreSQL database (through the ``postgres_url`` fixture, so the test skips when there is no server)."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'app' / 'runs.db'}"
    if backend == "postgresql":
        return request.getfixturevalue("postgres_url")
    raise ValueError(f"unknown backend {backend!r}; known: {BACKENDS}")


@pytest.fixture(params=BACKENDS)
def db_url(request, tmp_path):
    """An empty run database, once on SQLite and once on PostgreSQL."""
    return backend_url(request, request.param, tmp_path)
