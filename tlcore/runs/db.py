"""Database plumbing: default location, engines tuned for several processes, Alembic upgrades.

SQLite (the single-user default) is opened in WAL mode with a busy timeout so the app and the
worker process can read and write the same file. Transactions that write start with
``BEGIN IMMEDIATE`` on SQLite: they take the write lock up front instead of failing half-way
when another process wrote in between (the classic "database is locked" on lock upgrade).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import StaticPool

from tlcore.paths import home

DB_URL_ENV = "TRANSFERLAB_DB_URL"
BUSY_TIMEOUT_S = 30
MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def app_dir() -> Path:
    """Where the app keeps its run database, artifacts, worker lock and log: ``home()/app``."""
    return home() / "app"


def default_url() -> str:
    """$TRANSFERLAB_DB_URL if set (e.g. Postgres for a team), else SQLite at ``home()/app/runs.db``."""
    return os.environ.get(DB_URL_ENV) or f"sqlite:///{app_dir() / 'runs.db'}"


def make_engines(url: str) -> tuple[Engine, Engine]:
    """Return ``(read_engine, write_engine)``; they share one pool, writes begin IMMEDIATE on SQLite."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        engine = create_engine(url, pool_pre_ping=True)
        return engine, engine
    memory = parsed.database in (None, "", ":memory:")
    if not memory:
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    kwargs: dict = {"connect_args": {"timeout": BUSY_TIMEOUT_S, "check_same_thread": False}}
    if memory:
        kwargs["poolclass"] = StaticPool
    engine = create_engine(url, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record) -> None:  # pragma: no cover - exercised by every test
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves (see _on_begin)
        cur = dbapi_conn.cursor()
        if not memory:
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_S * 1000}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn) -> None:
        immediate = conn.get_execution_options().get("tl_immediate", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine, engine.execution_options(tl_immediate=True)


def alembic_config() -> Config:
    """An Alembic Config built in code; ``script_location`` is the package's migrations folder."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    return cfg


@functools.lru_cache(maxsize=1)
def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(write_engine: Engine, revision: str = "head") -> None:
    """Upgrade the database to ``revision`` in one transaction (concurrent callers serialize)."""
    cfg = alembic_config()
    with write_engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
