"""Database plumbing: default location, engines tuned for several processes, Alembic upgrades.

SQLite (the single-user default) is opened in WAL mode with a busy timeout so the app and the
worker process can read and write the same file. Transactions that write start with
``BEGIN IMMEDIATE`` on SQLite: they take the write lock up front instead of failing half-way
when another process wrote in between (the classic "database is locked" on lock upgrade).

PostgreSQL (a team's shared database, ``postgresql+psycopg://user:password@host/db``) gets a pool that checks
connections before use (``pool_pre_ping``) and recycles them, a connect timeout, and migrations serialized by an
advisory lock, so an app and several workers starting at once upgrade the schema exactly once.
A database that cannot be reached raises :class:`DatabaseUnavailable` with a one-line message (password masked).
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import re
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, exc, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import StaticPool

from tlcore.paths import home
from tlcore.runs.errors import DatabaseUnavailable

DB_URL_ENV = "TRANSFERLAB_DB_URL"
BUSY_TIMEOUT_S = 30
CONNECT_TIMEOUT_S = 10      # a server that does not answer fails in seconds, not after the OS's TCP timeout
POOL_RECYCLE_S = 1800       # replace pooled connections before firewalls / server timeouts cut them
MIGRATION_LOCK_KEY = 7_310_104_201  # pg_advisory_xact_lock key held while the schema is upgraded
MIGRATIONS_DIR = Path(__file__).with_name("migrations")

# Alembic (imported lazily, when the schema is checked) logs one INFO line per built-in plugin on import: noise in
# every worker log, and before the one-line error of a worker that cannot reach its database.
logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)


def app_dir() -> Path:
    """Where the app keeps its run database, artifacts, worker lock and log: ``home()/app``."""
    return home() / "app"


def default_url() -> str:
    """$TRANSFERLAB_DB_URL if set (e.g. Postgres for a team), else SQLite at ``home()/app/runs.db``."""
    return os.environ.get(DB_URL_ENV) or f"sqlite:///{app_dir() / 'runs.db'}"


def safe_url(url: str) -> str:
    """``url`` with its password masked (``***``), for logs and messages; never raises."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL at all: show only what comes before the first colon
        return f"{str(url).partition(':')[0]}:... (not a valid URL)"


def _finite(value: Any) -> Any:
    """JSON without NaN/Infinity (PostgreSQL's json type refuses them): non-finite floats become null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if getattr(value, "ndim", None) == 0 and hasattr(value, "item"):  # numpy / torch scalars
        return _finite(value.item())
    return value


def json_dumps(value: Any) -> str:
    """The JSON serializer of every engine: the same stored value on SQLite and PostgreSQL."""
    return json.dumps(_finite(value), allow_nan=False)


def make_engines(url: str) -> tuple[Engine, Engine]:
    """Return ``(read_engine, write_engine)``; they share one pool, writes begin IMMEDIATE on SQLite.

    Raises :class:`DatabaseUnavailable` for a URL that is malformed or whose driver is not installed.
    """
    try:
        parsed = make_url(url)
        if parsed.get_backend_name() != "sqlite":
            kwargs: dict = {"pool_pre_ping": True, "pool_recycle": POOL_RECYCLE_S, "json_serializer": json_dumps}
            if parsed.get_backend_name() == "postgresql":
                kwargs["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT_S, "application_name": "transferlab"}
            engine = create_engine(parsed, **kwargs)
            return engine, engine
    except (exc.ArgumentError, exc.NoSuchModuleError, ImportError) as error:
        raise DatabaseUnavailable(describe_error(error, url)) from None
    memory = parsed.database in (None, "", ":memory:")
    if not memory:
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    kwargs = {"connect_args": {"timeout": BUSY_TIMEOUT_S, "check_same_thread": False}, "json_serializer": json_dumps}
    if memory:
        kwargs["poolclass"] = StaticPool
    engine = create_engine(url, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record) -> None:  # pragma: no cover - exercised by every test
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves (see _on_begin)
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_S * 1000}")
        if not memory:
            when_unlocked(lambda: cur.execute("PRAGMA journal_mode=WAL"))
            cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn) -> None:
        immediate = conn.get_execution_options().get("tl_immediate", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine, engine.execution_options(tl_immediate=True)


def alembic_config():
    """An Alembic Config built in code; ``script_location`` is the package's migrations folder."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    return cfg


@functools.lru_cache(maxsize=1)
def head_revision() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def _migrate(write_engine: Engine, action, revision: str) -> None:
    """Run an Alembic command in one transaction that holds the migration lock (concurrent callers serialize:
    BEGIN IMMEDIATE on SQLite, an advisory lock on PostgreSQL; the next one then finds the schema current)."""
    cfg = alembic_config()
    with write_engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        cfg.attributes["connection"] = conn
        action(cfg, revision)


def upgrade(write_engine: Engine, revision: str = "head") -> None:
    """Upgrade the database to ``revision`` (idempotent; safe when several processes start at once)."""
    from alembic import command

    _migrate(write_engine, command.upgrade, revision)


def downgrade(write_engine: Engine, revision: str = "base") -> None:
    """Downgrade the database to ``revision`` (``base``: drop every table of the run store)."""
    from alembic import command

    _migrate(write_engine, command.downgrade, revision)


# ------------------------------------------------------------------ a database that cannot be reached
DISK_ERRORS = r"database or disk is full|no space left on device|could not extend file|disk quota exceeded"
_HINTS = [  # (pattern in the driver's message, what to check)
    (r"password authentication failed|role .* does not exist|no password supplied|authentication failed",
     "check the user name and password in the URL"),
    (r"database .* does not exist",
     "create the database (e.g. `createdb -h HOST -U USER NAME`) or fix its name in the URL"),
    (r"connection refused|could not connect|no route to host|timeout expired|timed out|is the server running",
     "check that the PostgreSQL server is running and that the host and port in the URL are right"),
    (r"failed to resolve host|could not translate host name|name or service not known",
     "check the host name in the URL"),
    (r"unable to open database file",
     "check that the database file's folder exists and is writable"),
    (DISK_ERRORS, "free disk space where the database lives (nothing was written: the transaction was rolled back)"),
    (r"attempt to write a readonly database|read-only transaction",
     "the database is read-only: check the file's permissions or the server's read-only mode"),
    (r"no module named|can't load plugin",
     "install the database driver (pip install -r requirements.txt: psycopg for PostgreSQL)"),
]


def describe_error(error: BaseException, url: str) -> str:
    """One line for users: which database (password masked), what went wrong, what to check."""
    raw = str(getattr(error, "orig", None) or error)
    lines = [ln.strip() for ln in raw.splitlines() if ln.strip() and not ln.strip().startswith("(Background on")]
    reason = re.sub(r"^(connection failed: |\(\S+\) )", "", lines[0] if lines else type(error).__name__)
    reason = re.sub(r"FATAL:\s+", "", reason)
    password = None
    try:
        password = make_url(url).password
    except Exception:
        pass
    if password:
        reason = reason.replace(str(password), "***")
    hint = next((h for pattern, h in _HINTS if re.search(pattern, raw, re.IGNORECASE)), "check the URL")
    if not str(url).startswith("sqlite"):
        hint += f" (the URL comes from ${DB_URL_ENV} or --db)"
    return f"cannot use the run database {safe_url(url)}: {reason}; {hint}"


def is_storage_error(error: BaseException) -> bool:
    """Whether a failed statement means the database's disk is full or the database is read-only."""
    if not isinstance(error, exc.OperationalError):
        return False
    raw = str(getattr(error, "orig", None) or error)
    return bool(re.search(DISK_ERRORS + r"|attempt to write a readonly database|read-only transaction", raw, re.I))


def is_locked(error: BaseException) -> bool:
    """SQLite's 'database is locked' (or 'busy'), the error a caller may retry."""
    raw = str(getattr(error, "orig", None) or error)
    return "database is locked" in raw or "database is busy" in raw


def when_unlocked(fn, timeout_s: float = BUSY_TIMEOUT_S):
    """``fn()``, retried for up to ``timeout_s`` while SQLite says the database is locked.

    The busy timeout covers ordinary lock waits, but SQLite returns 'database is locked' at once, without calling the
    busy handler, in a few races of concurrent *first* opens: the switch to WAL, another connection running WAL
    recovery or closing the last connection (https://sqlite.org/wal.html#sometimes_queries_return_sqlite_busy_in_wal_mode).
    Those pass in milliseconds, so a short backoff settles them; any other error is raised as is.
    """
    deadline = time.monotonic() + timeout_s
    delay = 0.02
    while True:
        try:
            return fn()
        except Exception as error:
            if not is_locked(error) or time.monotonic() + delay > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.5)


def is_connect_error(error: BaseException) -> bool:
    """Whether ``error`` (raised while opening a connection) means the database cannot be reached or opened,
    as opposed to a statement that failed (e.g. SQLite's 'database is locked' after its busy timeout)."""
    if not isinstance(error, (exc.OperationalError, exc.InterfaceError)):
        return False
    raw = str(getattr(error, "orig", None) or error)
    return "database is locked" not in raw

