"""The run database as a :class:`Database`: one URL, engines opened on first use, the schema brought up to date,
and short transactions (:meth:`~Database.session`, :meth:`~Database.write_session`) that raise
``DatabaseUnavailable`` with one line when the database cannot be reached or written. :class:`~tlcore.runs.store.
RunStore` is a Database that keeps runs."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Self

from sqlalchemy.orm import Session, sessionmaker

from tlcore.runs import db
from tlcore.runs.errors import DatabaseUnavailable

log = logging.getLogger(__name__)


class Database:
    """Sessions on the database at ``url`` (default ``$TRANSFERLAB_DB_URL`` or SQLite at ``home()/app/runs.db``);
    ``auto_migrate``: upgrade the schema to the newest migration on first use (no I/O in ``__init__``)."""

    def __init__(self, url: str | None = None, *, auto_migrate: bool = True):
        self.url = url or db.default_url()
        self.auto_migrate = auto_migrate
        self._engines: tuple | None = None
        self._sessions: tuple = ()
        self._migrated = False

    @classmethod
    def open(cls, url: str | None = None, **kwargs: Any) -> Self:
        """Create a store and bring its schema up to date now."""
        store = cls(url, **kwargs)
        store.migrate()
        return store

    @property
    def safe_url(self) -> str:
        """The URL with any password masked, for logs and messages."""
        return db.safe_url(self.url)

    def _engine_pair(self) -> tuple:
        if self._engines is None:
            read_engine, write_engine = db.make_engines(self.url)
            self._engines = (read_engine, write_engine)
            self._sessions = (sessionmaker(read_engine, expire_on_commit=False),
                              sessionmaker(write_engine, expire_on_commit=False))
        return self._engines

    def migrate(self) -> str:
        """Upgrade the database to the newest migration; returns the revision it is at. Cheap when current.

        Raises ``DatabaseUnavailable`` (one line: which URL, what to check) when the database cannot be reached.
        """
        read_engine, write_engine = self._engine_pair()
        head = db.head_revision()
        try:
            current = db.when_unlocked(lambda: db.current_revision(read_engine))
        except Exception as error:
            if db.is_connect_error(error):
                raise DatabaseUnavailable(db.describe_error(error, self.url)) from None
            raise
        if current != head:
            log.info("upgrading run database %s to revision %s", self.safe_url, head)
            db.when_unlocked(lambda: db.upgrade(write_engine, "head"))
        self._migrated = True
        return head

    def _ready(self) -> tuple:
        self._engine_pair()
        if self.auto_migrate and not self._migrated:
            self.migrate()
        return self._sessions

    def _connect(self, s: Session) -> None:
        """Take the session's connection now, so an unreachable database raises ``DatabaseUnavailable``."""
        try:
            s.connection()
        except Exception as error:
            if db.is_connect_error(error):
                raise DatabaseUnavailable(db.describe_error(error, self.url)) from None
            raise

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A short read transaction (internal to tlcore.runs)."""
        with self._ready()[0]() as s:
            self._connect(s)
            yield s

    @contextmanager
    def write_session(self) -> Iterator[Session]:
        """A write transaction, committed on success (BEGIN IMMEDIATE on SQLite; internal). A full disk or a
        read-only database raises ``DatabaseUnavailable`` with the reason; the transaction is rolled back."""
        try:
            with self._ready()[1].begin() as s:
                self._connect(s)
                yield s
        except Exception as error:
            if db.is_storage_error(error):
                raise DatabaseUnavailable(db.describe_error(error, self.url)) from None
            raise

    def dispose(self) -> None:
        """Close pooled connections (e.g. before forking or at the end of a test)."""
        if self._engines is not None:
            self._engines[0].dispose()
            self._engines = None
