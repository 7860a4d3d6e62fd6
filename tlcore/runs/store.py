"""``RunStore``: runs and their artifacts, in SQLite by default or any SQLAlchemy database.

Every public method opens and closes its own short transaction and returns plain dataclasses
(``Run``), so the app can call it from any thread and never holds a session.

    store = RunStore()                          # home()/app/runs.db, or $TRANSFERLAB_DB_URL
    run = store.create_run(cfg, name="resnet on my photos")
    store.enqueue(run.id)                       # the worker picks it up (see tlcore.runs.worker)
"""

from __future__ import annotations

import logging
import shutil
import time
import uuid
from dataclasses import is_dataclass
from pathlib import Path
from typing import Any, Optional, Union

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from tlcore import storage
from tlcore.artifacts import ArtifactStore
from tlcore.config import FinetuneConfig
from tlcore.progress import Progress
from tlcore.runs.errors import RunNotFound, RunStateError
from tlcore.runs.job_paths import job_config
from tlcore.runs.models import DEFAULT_JOB, FINISHED, RunRow, ShareLinkRow, utcnow
from tlcore.runs.records import Run, run_from_row
from tlcore.runs.sessions import Database

log = logging.getLogger(__name__)

HISTORY_LIMIT = 5000  # per-epoch entries kept for live curves
#: With an artifact store, how often (seconds) a page re-checks that its local copy of a finished run is current.
VERSION_CHECK_S = 30.0
#: Config keys that name a data set; with an artifact store they are uploaded and fetched by content (``inputs``).
DATA_KEYS = ("source", "target", "unlabeled", "eval", "data")
_FROM_ENV: Any = object()


def requested_resources(config: dict, resources: dict | None = None) -> tuple[int, float | None]:
    """(gpus, memory in GB) a run needs from a worker: ``resources`` when given, else from its settings
    (``device="cuda"`` needs one GPU per process). A worker claims only runs that fit what it offers."""
    resources = dict(resources or {})
    unknown = set(resources) - {"gpus", "memory_gb"}
    if unknown:
        raise ValueError(f"unknown resources {sorted(unknown)}; known: gpus, memory_gb")
    if resources.get("gpus") is not None:
        gpus = int(resources["gpus"])
    elif str(config.get("device") or "").startswith("cuda"):
        gpus = max(int(config.get("num_processes") or 1), 1)
    else:
        gpus = 0
    memory = resources.get("memory_gb")
    if gpus < 0 or (memory is not None and float(memory) < 0):
        raise ValueError(f"resources must not be negative, got gpus={gpus}, memory_gb={memory}")
    return gpus, None if memory is None else float(memory)


def _clean(text: str | None) -> str:
    """Text as every backend stores it: PostgreSQL refuses NUL characters (SQLite kept them)."""
    return (text or "").replace("\x00", "\ufffd")


def _fits(value: str | None, table: type, column: str) -> str | None:
    """``value`` when it fits its column; a clear error otherwise (SQLite would store it, PostgreSQL refuse it).
    Identifiers are never cut short: two owners or data sets must not become one."""
    if value is None:
        return None
    value = _clean(value)
    limit = table.__table__.c[column].type.length
    if limit is not None and len(value) > limit:
        raise ValueError(f"{column} is {len(value)} characters long; at most {limit} are stored")
    return value


class RunStore(Database):
    """Runs, their lifecycle and artifact folders.

    Args:
        url: SQLAlchemy URL; default ``$TRANSFERLAB_DB_URL`` or SQLite at ``home()/app/runs.db``.
        artifacts_root: where run folders go on this machine; default ``home()/app/runs``.
        auto_migrate: upgrade the schema to the newest migration on first use (no I/O in ``__init__``).
        artifacts: the shared artifact store (:mod:`tlcore.artifacts`); default ``$TRANSFERLAB_ARTIFACTS_URL``,
            None = none: run folders are only on the local disk (one machine). With one, ``artifacts_root`` is
            this machine's working copy: a run's folder is ``artifacts_root/<id>`` on every host, downloaded
            from the store when first opened (:meth:`run_folder`).
    """

    def __init__(self, url: str | None = None, *, artifacts_root: Union[str, Path, None] = None,
                 auto_migrate: bool = True, artifacts: Optional[ArtifactStore] = _FROM_ENV):
        super().__init__(url, auto_migrate=auto_migrate)
        self.artifacts_root = Path(artifacts_root) if artifacts_root else storage.runs_dir()
        self.artifacts = ArtifactStore.from_env() if artifacts is _FROM_ENV else artifacts
        self._checked: dict[str, float] = {}     # run id -> when its stored report version was last compared

    def __repr__(self) -> str:
        return f"RunStore({self.safe_url!r})"

    @staticmethod
    def _row(s: Session, run_id: str, *, lock: bool = False) -> RunRow:
        row = s.get(RunRow, run_id, with_for_update=lock or None)
        if row is None:
            raise RunNotFound(f"no run with id {run_id!r} (it may have been deleted)")
        return row

    # ----------------------------------------------------------------- create / read
    def artifact_dir(self, run_id: str) -> Path:
        """The folder for a run's artifacts: ``<artifacts_root>/<run_id>``."""
        return self.artifacts_root / run_id

    def _run(self, row: RunRow) -> Run:
        """The row as a ``Run``; with an artifact store its folder is this machine's copy (``artifact_dir``)."""
        run = run_from_row(row)
        if self.artifacts is not None:
            run.config["out"] = str(self.artifact_dir(run.id))
        return run

    def run_folder(self, run: Union[Run, str]) -> Path:
        """The local folder of a run: with an artifact store, a finished run's folder is downloaded from it on
        first open (and kept: a finished folder does not change). Without one, simply ``run.out``."""
        run = self.get(run) if isinstance(run, str) else run
        if self.artifacts is None:
            return run.out
        local = self.artifact_dir(run.id)
        if run.status != "done":
            return local
        storage.lease(local)   # a use (the copy is evicted least recently used); held to the end of a job's scope
        stamp = storage.stored_stamp(local)             # which stored report the local copy holds
        now = time.monotonic()
        if (local / "report.json").is_file() and now - self._checked.get(run.id, -1e9) < VERSION_CHECK_S:
            return local
        version = self.artifacts.report_version(run.id)
        self._checked[run.id] = now
        held = stamp.read_text() if stamp.is_file() and (local / "report.json").is_file() else None
        if version is not None and version != held:
            # first open, or a follow-up amended the report since (e.g. the scratch baseline was added)
            self.artifacts.get_run(run.id, local)
            stamp.write_text(version)
            storage.evict_after_write(keep=local)
        return local

    def mark_stored(self, run_id: str) -> None:
        """After this host uploaded run ``run_id``'s folder: its copy here matches the store, so the cache cap may
        evict it (:mod:`tlcore.storage`); a later open downloads it again."""
        assert self.artifacts is not None
        version = self.artifacts.report_version(run_id)
        if version is not None:
            storage.stored_stamp(self.artifact_dir(run_id)).write_text(version)
            self._checked.pop(run_id, None)

    def upload_inputs(self, config: dict) -> dict:
        """Put the data sets ``config`` names (``DATA_KEYS``, local paths) into the artifact store; returns
        ``{key: {"sha256", "name"}}`` for the run's ``inputs`` (empty without a store)."""
        if self.artifacts is None:
            return {}
        refs = {}
        for key in DATA_KEYS:
            value = config.get(key)
            if isinstance(value, str) and value and Path(value).exists():
                refs[key] = self.artifacts.put_set(Path(value))
        return refs

    def create_run(self, cfg: Union[dict, FinetuneConfig], name: str = "", owner: str | None = None,
                   dataset: str | None = None, *, job: str = DEFAULT_JOB, resources: dict | None = None) -> Run:
        """Store a new run (not yet submitted: call ``enqueue``). Sets ``cfg['out']`` to its artifact folder.

        ``job`` is the dotted path (``module:function``) the worker calls; tests pass a fake one.
        ``resources`` (``{"gpus": N, "memory_gb": M}``) is what a worker must offer to claim it; default from the
        settings (:func:`requested_resources`). With an artifact store, the data sets the run reads are uploaded
        to it here, so a worker on any host can fetch them. Raises ``ConfigError`` for unknown settings.
        """
        config = cfg.to_dict() if is_dataclass(cfg) else dict(cfg)
        run_id = uuid.uuid4().hex
        out = self.artifact_dir(run_id)
        config["out"] = str(out)
        if ":" not in job:
            raise ValueError(f"job must look like 'package.module:function', got {job!r}")
        owner, dataset, job = (_fits(v, RunRow, k) for k, v in (("owner", owner), ("dataset", dataset), ("job", job)))
        config = job_config(job, config).to_dict()  # validate names now, not in the worker
        kind = config.get("strategy") or config.get("kind") or job.rpartition(":")[2]
        name = _clean(name).strip() or f"{config.get('modality', '')} {kind} {run_id[:6]}".strip()
        need_gpus, need_memory_gb = requested_resources(config, resources)
        inputs = self.upload_inputs(config)
        row = RunRow(id=run_id, name=name[:200], owner=owner, status="queued", job=job, config=config,
                     dataset=dataset, created_at=utcnow(), cancel_requested=False, attempts=0,
                     need_gpus=need_gpus, need_memory_gb=need_memory_gb, inputs=inputs or None)
        try:
            with self.write_session() as s:
                s.add(row)
                s.flush()
                out.mkdir(parents=True, exist_ok=True)  # inside the transaction: no row without its folder
                run = self._run(row)
        except BaseException:
            shutil.rmtree(out, ignore_errors=True)  # ... and no folder without its row
            raise
        log.info("created run %s (%s)", run_id, name)
        return run

    def get(self, run_id: str) -> Run:
        """The run with this id; raises ``RunNotFound``."""
        with self.session() as s:
            return self._run(self._row(s, run_id))

    def list_runs(self, owner: str | None = None, *, status: str | None = None,
                  limit: int | None = None) -> list[Run]:
        """Runs newest first, optionally only one owner's and/or one status."""
        query = select(RunRow).order_by(RunRow.created_at.desc(), RunRow.id)
        if owner is not None:
            query = query.where(RunRow.owner == owner)
        if status is not None:
            query = query.where(RunRow.status == status)
        if limit is not None:
            query = query.limit(limit)
        with self.session() as s:
            return [self._run(r) for r in s.scalars(query)]

    def delete_run(self, run_id: str) -> None:
        """Delete a run, its share links and its artifact folder. Refuses a running run."""
        with self.write_session() as s:
            row = self._row(s, run_id, lock=True)
            if row.status == "running":
                raise RunStateError(f"run {row.name!r} is running; cancel it and wait until it stops before deleting it")
            out = Path(row.config.get("out") or self.artifact_dir(run_id))
            s.execute(delete(ShareLinkRow).where(ShareLinkRow.run_id == run_id))
            s.delete(row)
        for folder in {out, self.artifact_dir(run_id)}:
            if folder.name == run_id:  # never remove a folder we did not create for this run
                shutil.rmtree(folder, ignore_errors=True)
                # and its siblings: staging folders (a cancelled run keeps its checkpoints in .<id>.partial-<pid>)
                # and the stamp of a copy of the artifact store's folder (.<id>.version)
                for sibling in folder.parent.glob(f".{run_id}.*"):
                    if sibling.is_dir() and not sibling.is_symlink():
                        shutil.rmtree(sibling, ignore_errors=True)
                    else:
                        sibling.unlink(missing_ok=True)
        if self.artifacts is not None:
            self.artifacts.delete_run(run_id)
        log.info("deleted run %s", run_id)

    # ----------------------------------------------------------------- lifecycle
    def enqueue(self, run_id: str) -> Run:
        """Submit a run to the queue. A failed or cancelled run is reset and queued again (fresh start).

        Raises ``RunStateError`` for a running or done run.
        """
        with self.write_session() as s:
            row = self._row(s, run_id, lock=True)
            if row.status == "running":
                raise RunStateError(f"run {row.name!r} is already running")
            if row.status == "done":
                raise RunStateError(f"run {row.name!r} already finished; create a new run to train again")
            if row.status in ("failed", "cancelled") or row.queued_at is None:
                row.status, row.queued_at = "queued", utcnow()
                row.error = row.started_at = row.finished_at = row.heartbeat_at = None
                row.worker_pid, row.worker_host, row.progress, row.metrics = None, None, None, None
                row.cancel_requested, row.attempts = False, 0
            return self._run(row)

    def request_cancel(self, run_id: str) -> Run:
        """Cancel a run: a queued run is cancelled at once, a running one at its next cancel check."""
        with self.write_session() as s:
            row = self._row(s, run_id, lock=True)
            if row.status == "queued":
                row.status, row.finished_at = "cancelled", utcnow()
            elif row.status == "running":
                row.cancel_requested = True
            return self._run(row)

    def update_progress(self, run_id: str, *events: Union[Progress, dict]) -> None:
        """Record progress events: the last becomes ``progress['last']``; events whose metrics carry
        an ``epoch`` are appended to ``progress['history']`` (one entry per stage and epoch)."""
        if not events:
            return
        dicts = [e.to_dict() if isinstance(e, Progress) else dict(e) for e in events]
        with self.write_session() as s:
            row = self._row(s, run_id, lock=True)  # read-modify-write of the history: one writer at a time
            progress = dict(row.progress or {})
            history = list(progress.get("history") or [])
            for ev in dicts:
                metrics = ev.get("metrics") or {}
                if "epoch" not in metrics:
                    continue
                entry = {"stage": ev.get("stage"), **metrics, "time": ev.get("time")}
                if history and history[-1].get("stage") == entry["stage"] and history[-1].get("epoch") == metrics["epoch"]:
                    history[-1] = entry
                else:
                    history.append(entry)
            row.progress = {"last": dicts[-1], "history": history[-HISTORY_LIMIT:]}

    def _finish(self, run_id: str, status: str, attempt: int | None, **values: Any) -> bool:
        with self.write_session() as s:
            row = self._row(s, run_id, lock=True)
            if row.status in FINISHED or (attempt is not None and (row.status != "running" or row.attempts != attempt)):
                log.warning("run %s: not marking %s (status %s, attempt %s)", run_id, status, row.status, row.attempts)
                return False
            row.status, row.finished_at = status, utcnow()
            row.heartbeat_at = None
            for key, value in values.items():
                setattr(row, key, value)
            return True

    def mark_done(self, run_id: str, metrics: dict | None = None, *, attempt: int | None = None) -> bool:
        """Mark a run done with its headline metrics. With ``attempt``, only if that attempt still owns it."""
        return self._finish(run_id, "done", attempt, metrics=dict(metrics or {}), error=None)

    def mark_failed(self, run_id: str, error: str, *, attempt: int | None = None) -> bool:
        """Mark a run failed with a one-line reason. Returns False if it was already finished / taken over."""
        return self._finish(run_id, "failed", attempt, error=_clean(error))

    def mark_cancelled(self, run_id: str, *, attempt: int | None = None) -> bool:
        """Mark a run cancelled. Returns False if it was already finished / taken over."""
        return self._finish(run_id, "cancelled", attempt)
