"""SQLAlchemy 2 ORM tables for runs and share links.

The ORM classes stay inside ``tlcore.runs``; the public API hands out the plain dataclasses
``Run`` and ``ShareLink`` so callers (the app, the CLI) never hold a database session.
Any change here needs a new migration in ``migrations/versions`` (a test compares the two).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Integer, MetaData, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

STATUSES = ("queued", "running", "done", "failed", "cancelled")
FINISHED = ("done", "failed", "cancelled")
DEFAULT_JOB = "tlcore.api:finetune_job"   # runs queued before 0.2 keep their own job path (still valid)
#: The job that adds the scratch baseline to a finished one-click demo run (:mod:`tlcore.runs.followup`).
SCRATCH_JOB = "tlcore.runs.followup:scratch_job"
#: The job that trains a finished one-click demo run with more seeds (:mod:`tlcore.runs.seeds_followup`).
SEEDS_JOB = "tlcore.runs.seeds_followup:seeds_job"
#: Jobs whose code moved: the path stored with runs queued before the move -> where the job is now.
MOVED_JOBS = {"tlcore.settings.followup:scratch_job": SCRATCH_JOB}
#: Jobs that complete a finished run in the background (the scratch baseline and more seeds after a one-click demo).
#: They wait for their run (``config["parent_run"]``) and yield the queue to runs a user is waiting for.
FOLLOWUP_JOBS = (SCRATCH_JOB, SEEDS_JOB, *(old for old, new in MOVED_JOBS.items() if new == SCRATCH_JOB))


def completed_run(config: dict) -> str | None:
    """The run whose report a follow-up's ``config`` completes: ``completes`` where the follow-up waits for another
    follow-up (``parent_run``, e.g. more seeds after the scratch baseline), else the run it waits for."""
    return config.get("completes") or config.get("parent_run") or None

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive, as UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class RunRow(Base):
    """One fine-tuning run: its settings, lifecycle, live progress and headline results."""

    __tablename__ = "runs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    owner: Mapped[str | None] = mapped_column(String(200), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True, default="queued")
    job: Mapped[str] = mapped_column(String(300), default=DEFAULT_JOB)
    config: Mapped[dict] = mapped_column(JSON)
    dataset: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # NULL until the run is submitted with enqueue(); the queue serves the oldest queued_at first.
    queued_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    error: Mapped[str | None] = mapped_column(Text)
    metrics: Mapped[dict | None] = mapped_column(JSON)
    progress: Mapped[dict | None] = mapped_column(JSON)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    worker_pid: Mapped[int | None] = mapped_column(Integer)
    # A pid only means something on its own machine; with a shared database workers may sit on several hosts.
    worker_host: Mapped[str | None] = mapped_column(String(255))
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # What the run needs from a worker (the claim query matches them against what the worker offers) ...
    need_gpus: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    need_memory_gb: Mapped[float | None] = mapped_column(Float)
    # ... and what the worker that claimed it offers (shown with the run; a pid and host alone say little).
    worker_gpus: Mapped[int | None] = mapped_column(Integer)
    worker_memory_gb: Mapped[float | None] = mapped_column(Float)
    # Data sets in the artifact store, by content: {config key: {"sha256", "name"}} (tlcore.artifacts).
    inputs: Mapped[dict | None] = mapped_column(JSON)


class ShareLinkRow(Base):
    """A read-only link to one run; only the sha256 of its token is stored."""

    __tablename__ = "share_links"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_by: Mapped[str | None] = mapped_column(String(200))
    views: Mapped[int] = mapped_column(Integer, default=0)
    last_viewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_by: Mapped[str | None] = mapped_column(String(200))
    label: Mapped[str | None] = mapped_column(String(200))
