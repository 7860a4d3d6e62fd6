"""The job queue is the ``runs`` table itself: no broker, nothing else to run or install.

A worker claims the oldest queued run that fits what it offers (GPUs, memory: ``need_gpus <= gpus``) with
``SELECT ... FOR UPDATE SKIP LOCKED`` and a guarded ``UPDATE ... WHERE id = :id AND status = 'queued'``;
only one claimer can see its update match, so two workers never run the same run. A run whose
worker died (pid gone on this host, or no heartbeat for ``stale_after_s``) is requeued for a resume
(``resume=True``) at most ``max_resumes`` times, then marked failed. It is never left 'running'.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import or_, select, update

from tlcore.runs.models import FOLLOWUP_JOBS, SEEDS_JOB, RunRow, utcnow
from tlcore.runs.records import Run
from tlcore.runs.store import RunStore

log = logging.getLogger(__name__)

HOST = socket.gethostname()


@dataclass
class Claim:
    """A run a worker now owns. ``attempt`` guards every later write: a worker that lost the run
    (e.g. it was declared dead and resumed elsewhere) can no longer change it."""

    run_id: str
    attempt: int
    resume: bool
    job: str
    config: dict
    pid: int
    host: str
    owner: str | None = None
    gpus: int = 0                      # what the claiming worker offers (stored on the run)
    memory_gb: float | None = None
    inputs: dict | None = None         # the run's data sets in the artifact store ({config key: reference})


def enqueue(store: RunStore, run_id: str) -> Run:
    """Submit a run to the queue (see ``RunStore.enqueue``)."""
    return store.enqueue(run_id)


def fits(gpus: int, memory_gb: float | None) -> list:
    """Conditions on ``RunRow`` for runs a worker offering ``gpus`` and ``memory_gb`` (None: not declared, any)
    can run."""
    conditions = [RunRow.need_gpus <= gpus]
    if memory_gb is not None:
        conditions.append(or_(RunRow.need_memory_gb.is_(None), RunRow.need_memory_gb <= memory_gb))
    return conditions


def claim_next(store: RunStore, *, pid: int | None = None, host: str = HOST, gpus: int = 0,
               memory_gb: float | None = None) -> Claim | None:
    """Atomically take the oldest queued run that fits what this worker offers (``gpus``, ``memory_gb``);
    None when no such run is queued."""
    pid = os.getpid() if pid is None else pid
    # Runs a user waits for go before follow-ups (which complete an already finished run), the scratch baselines
    # before more seeds (another demo's scratch is what its Compare waits for), then oldest first.
    oldest = (select(RunRow.id).where(RunRow.status == "queued", RunRow.queued_at.is_not(None), *fits(gpus, memory_gb))
              .order_by(RunRow.job.in_(FOLLOWUP_JOBS), RunRow.job == SEEDS_JOB, RunRow.queued_at, RunRow.id).limit(1))
    with store.session() as s:  # cheap read first, so idle polling takes no write lock
        if s.scalar(oldest) is None:
            return None
    for _ in range(20):  # another worker may win a candidate; then try the next one
        with store.write_session() as s:
            run_id = s.scalar(oldest.with_for_update(skip_locked=True))
            if run_id is None:
                return None
            now = utcnow()
            claimed = s.execute(
                update(RunRow)
                .where(RunRow.id == run_id, RunRow.status == "queued")
                .values(status="running", attempts=RunRow.attempts + 1, worker_pid=pid, worker_host=host,
                        worker_gpus=gpus, worker_memory_gb=memory_gb,
                        heartbeat_at=now, started_at=now, finished_at=None, cancel_requested=False)
                .execution_options(synchronize_session=False)
            ).rowcount
            if claimed != 1:
                continue
            row = s.get(RunRow, run_id, populate_existing=True)
            assert row is not None
            log.info("claimed run %s (attempt %d)", run_id, row.attempts)
            return Claim(run_id=run_id, attempt=row.attempts, resume=row.attempts > 1, job=row.job,
                         config=dict(row.config), pid=pid, host=host, owner=row.owner, gpus=gpus,
                         memory_gb=memory_gb, inputs=dict(row.inputs) if row.inputs else None)
    return None


def release_followups(store: RunStore) -> list[str]:
    """Submit follow-up runs whose run has finished; returns the ids it changed.

    A follow-up (e.g. the scratch baseline after a one-click demo) is created with ``config["parent_run"]`` and not
    submitted. Once that run is done it is queued; when it failed, was cancelled or deleted, the follow-up is
    cancelled with the reason, so it never waits forever or completes a run that has no results.
    """
    with store.session() as s:
        waiting = [(r.id, r.config.get("parent_run")) for r in
                   s.scalars(select(RunRow).where(RunRow.status == "queued", RunRow.queued_at.is_(None)))]
    changed = []
    for run_id, parent_id in waiting:
        if not parent_id:
            continue  # an ordinary run that was created but not submitted (yet)
        with store.write_session() as s:
            row = s.get(RunRow, run_id, with_for_update=True)
            if row is None or row.status != "queued" or row.queued_at is not None:
                continue
            parent = s.get(RunRow, parent_id)
            if parent is not None and parent.status == "done":
                row.queued_at = utcnow()
                log.info("run %s: queued after run %s finished", run_id, parent_id)
            elif parent is None or parent.status in ("failed", "cancelled"):
                row.status, row.finished_at = "cancelled", utcnow()
                row.error = (f"the run it follows ({parent_id[:8]}) was deleted" if parent is None
                             else f"the run it follows ({parent.name}) {parent.status}")
                log.info("run %s: cancelled: %s", run_id, row.error)
            else:
                continue
            changed.append(run_id)
    return changed


def heartbeat(store: RunStore, claim: Claim) -> bool:
    """Refresh the claim's heartbeat; False when the run is no longer ours (finished or taken over)."""
    with store.write_session() as s:
        result = s.execute(
            update(RunRow)
            .where(RunRow.id == claim.run_id, RunRow.status == "running", RunRow.attempts == claim.attempt)
            .values(heartbeat_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1


def should_stop(store: RunStore, claim: Claim) -> bool:
    """True when a cancel was requested, or the run was deleted or taken over by another worker."""
    with store.session() as s:
        row = s.execute(select(RunRow.status, RunRow.attempts, RunRow.cancel_requested)
                        .where(RunRow.id == claim.run_id)).first()
    return row is None or row.cancel_requested or row.status != "running" or row.attempts != claim.attempt


def should_yield(store: RunStore, claim: Claim) -> bool:
    """True when ``claim`` is a follow-up and a run a user waits for is queued: the follow-up then stops at its next
    check and goes back to the queue (:func:`requeue_yielded`), resuming from its checkpoints afterwards."""
    if claim.job not in FOLLOWUP_JOBS:
        return False
    # more seeds also give way to a scratch follow-up: the runs they complete are on screen already
    before = [SEEDS_JOB] if claim.job == SEEDS_JOB else list(FOLLOWUP_JOBS)
    waiting = (select(RunRow.id).where(RunRow.status == "queued", RunRow.queued_at.is_not(None),
                                       RunRow.job.not_in(before), *fits(claim.gpus, claim.memory_gb))
               .limit(1))
    with store.session() as s:
        return s.scalar(waiting) is not None


def requeue_yielded(store: RunStore, claim: Claim) -> bool:
    """Put a follow-up that yielded back in the queue (keeping its place among follow-ups and its attempt count)."""
    with store.write_session() as s:
        result = s.execute(
            update(RunRow)
            .where(RunRow.id == claim.run_id, RunRow.status == "running", RunRow.attempts == claim.attempt)
            .values(status="queued", attempts=RunRow.attempts - 1, worker_pid=None, worker_host=None,
                    heartbeat_at=None, started_at=None)
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this host (a zombie counts as dead)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:  # e.g. Windows, where signal 0 is not a probe
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _death_reason(row: RunRow, stale_after_s: float, now, host: str = HOST) -> str | None:
    """Why the run's worker is dead, or None. Its pid is checked only on its own host (``host`` is the checking
    worker's); on another host only the heartbeat tells."""
    if row.worker_host == host and row.worker_pid is not None and not pid_alive(row.worker_pid):
        return f"pid {row.worker_pid} on {row.worker_host} is gone"
    if row.heartbeat_at is None or now - row.heartbeat_at > timedelta(seconds=stale_after_s):
        age = "never" if row.heartbeat_at is None else f"{(now - row.heartbeat_at).total_seconds():.0f} s ago"
        return f"no heartbeat from pid {row.worker_pid} on {row.worker_host} (last {age})"
    return None


def recover_stale(store: RunStore, *, stale_after_s: float = 30.0, max_resumes: int = 2,
                  host: str = HOST) -> list[str]:
    """Requeue (for resume) or fail runs whose worker died; returns the ids it changed. ``host``: the name the
    checking worker claims under (pids are compared only for runs claimed under the same name)."""
    now = utcnow()
    with store.session() as s:
        suspects = [(r.id, r.attempts, _death_reason(r, stale_after_s, now, host))
                    for r in s.scalars(select(RunRow).where(RunRow.status == "running"))]
    changed = []
    for run_id, attempts, reason in suspects:
        if reason is None:
            continue
        with store.write_session() as s:
            row = s.get(RunRow, run_id, with_for_update=True)
            if row is None or row.status != "running" or row.attempts != attempts:
                continue  # finished meanwhile, or another worker handled it
            if row.cancel_requested:
                row.status, row.finished_at = "cancelled", utcnow()
                log.warning("run %s: worker died (%s) after a cancel request; marked cancelled", run_id, reason)
            elif attempts <= max_resumes:
                row.status = "queued"  # keeps its queued_at, so it goes before newer runs
                row.worker_pid = row.worker_host = row.heartbeat_at = None
                log.warning("run %s: worker died (%s); queued to resume (attempt %d of %d)",
                            run_id, reason, attempts + 1, max_resumes + 1)
            else:
                row.status, row.finished_at = "failed", utcnow()
                row.error = f"worker died ({reason}; gave up after {attempts} attempts)"
                log.error("run %s: %s", run_id, row.error)
            changed.append(run_id)
    return changed
