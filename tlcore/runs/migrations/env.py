"""Alembic environment for the run store.

Normally run from ``RunStore.migrate()``, which passes an open connection inside a transaction in
``config.attributes["connection"]``. As a fallback (e.g. ``alembic`` on the command line with an ini
that sets ``script_location`` to this folder) the URL comes from ``sqlalchemy.url`` or TRANSFERLAB_DB_URL.
"""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import create_engine

from tlcore.runs.models import Base

config = context.config
target_metadata = Base.metadata


def _configure(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite needs batch mode for ALTERs
        compare_type=True,
    )


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = config.get_main_option("sqlalchemy.url") or os.environ.get("TRANSFERLAB_DB_URL")
    if not url:
        raise RuntimeError("no database URL: set sqlalchemy.url or TRANSFERLAB_DB_URL")
    engine = create_engine(url)
    with engine.begin() as conn:
        _configure(conn)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
