"""Runs for the app: a SQLAlchemy run store, a database-backed job queue and worker, share links.

    from tlcore.runs import RunStore, ensure_worker
    store = RunStore()
    run = store.create_run(cfg, name="my run")
    store.enqueue(run.id); ensure_worker(store)
"""

from tlcore.runs.errors import InvalidShareToken, RunNotFound, RunStateError, ShareError, ShareExpired, ShareRevoked
from tlcore.runs.launcher import ensure_worker, worker_pid
from tlcore.runs.queue import enqueue
from tlcore.runs.records import Run, ShareLink
from tlcore.runs.share import create_share, list_shares, resolve_share, revoke_share
from tlcore.runs.store import RunStore

__all__ = [
    "RunStore", "Run", "ShareLink", "enqueue", "ensure_worker", "worker_pid",
    "create_share", "resolve_share", "list_shares", "revoke_share",
    "RunNotFound", "RunStateError", "ShareError", "InvalidShareToken", "ShareExpired", "ShareRevoked",
]
