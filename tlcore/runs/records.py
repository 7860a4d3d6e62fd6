"""Plain dataclasses the run store hands out, so callers never hold ORM objects or sessions."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from tlcore.runs.models import FINISHED, RunRow, ShareLinkRow, utcnow


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


@dataclass
class Run:
    """A snapshot of one run as stored; re-read it with ``RunStore.get`` for fresh values."""

    id: str
    name: str
    status: str                       # queued | running | done | failed | cancelled
    config: dict                      # FinetuneConfig.to_dict(); config["out"] is the artifact folder
    created_at: datetime
    owner: str | None = None
    dataset: str | None = None
    job: str = ""
    queued_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = None
    metrics: dict = field(default_factory=dict)    # headline numbers, e.g. before_accuracy, after_accuracy
    progress: dict = field(default_factory=dict)   # {"last": Progress dict, "history": [per-epoch metrics]}
    cancel_requested: bool = False
    worker_pid: int | None = None
    worker_host: str | None = None
    heartbeat_at: datetime | None = None
    attempts: int = 0
    need_gpus: int = 0                # what the run needs from a worker ...
    need_memory_gb: float | None = None
    worker_gpus: int | None = None    # ... and what the worker that claimed it offers
    worker_memory_gb: float | None = None
    inputs: dict = field(default_factory=dict)     # data sets in the artifact store: {config key: {sha256, name}}

    @property
    def out(self) -> Path:
        """The run's artifact folder (model, report.json, checkpoints, error.log)."""
        return Path(self.config["out"])

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED

    @property
    def duration_s(self) -> float | None:
        if self.started_at is None:
            return None
        return ((self.finished_at or utcnow()) - self.started_at).total_seconds()

    def to_dict(self) -> dict:
        """JSON-ready dict (timestamps as ISO 8601 strings)."""
        return {k: _iso(v) for k, v in asdict(self).items()}


@dataclass
class ShareLink:
    """A read-only link to a run. The token itself is never stored, only its sha256."""

    id: str
    run_id: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None
    revoked_by: str | None = None
    views: int = 0
    last_viewed_at: datetime | None = None
    created_by: str | None = None
    label: str | None = None

    @property
    def state(self) -> str:
        """``active``, ``expired`` or ``revoked``."""
        if self.revoked_at is not None:
            return "revoked"
        return "expired" if self.expires_at <= utcnow() else "active"

    @property
    def is_active(self) -> bool:
        return self.state == "active"

    def to_dict(self) -> dict:
        return {**{k: _iso(v) for k, v in asdict(self).items()}, "state": self.state}


def run_from_row(row: RunRow) -> Run:
    return Run(
        id=row.id, name=row.name, status=row.status, config=dict(row.config or {}), created_at=row.created_at,
        owner=row.owner, dataset=row.dataset, job=row.job, queued_at=row.queued_at, started_at=row.started_at,
        finished_at=row.finished_at, error=row.error, metrics=dict(row.metrics or {}),
        progress=dict(row.progress or {}), cancel_requested=bool(row.cancel_requested),
        worker_pid=row.worker_pid, worker_host=row.worker_host, heartbeat_at=row.heartbeat_at,
        attempts=row.attempts or 0, need_gpus=row.need_gpus or 0, need_memory_gb=row.need_memory_gb,
        worker_gpus=row.worker_gpus, worker_memory_gb=row.worker_memory_gb, inputs=dict(row.inputs or {}),
    )


def share_from_row(row: ShareLinkRow) -> ShareLink:
    return ShareLink(
        id=row.id, run_id=row.run_id, created_at=row.created_at, expires_at=row.expires_at,
        revoked_at=row.revoked_at, revoked_by=row.revoked_by, views=row.views or 0,
        last_viewed_at=row.last_viewed_at, created_by=row.created_by, label=row.label,
    )
