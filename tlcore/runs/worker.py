"""The background worker: polls the run store, claims queued runs and runs them one at a time.

    python -m tlcore worker [--once] [--poll SECONDS] [--db URL]      # via the CLI
    python -m tlcore.runs.worker ...                                     # same, without the CLI

The app does not start this by hand: it calls ``tlcore.runs.ensure_worker(store)``.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tlcore.errors import Cancelled, TransferLabError
from tlcore.paths import owner_scope
from tlcore.runs import queue
from tlcore.runs.jobs import CancelCheck, Heartbeat, ProgressWriter, headline_metrics, job_config, read_report, resolve_job
from tlcore.runs.queue import Claim
from tlcore.runs.store import RunStore

log = logging.getLogger(__name__)


@dataclass
class WorkerOptions:
    """How often the worker polls, heartbeats, writes progress and checks for cancels."""

    poll_s: float = 1.0               # sleep between queue polls when idle
    heartbeat_s: float = 5.0          # heartbeat period while a job runs
    stale_after_s: float = 30.0       # a running run without heartbeat this long is considered dead
    max_resumes: int = 2              # a dead run is resumed this many times, then failed
    progress_interval_s: float = 0.5  # at most 2 progress writes per second (the final one always)
    cancel_check_s: float = 1.0       # the cancel flag is read at most once per second
    once: bool = False                # exit when the queue is empty (tests, CI)
    idle_exit_s: float | None = None  # exit after this long without work (workers the app started)


class Worker:
    """Runs queued jobs from ``store`` in this process until stopped (or the queue is empty, with ``once``)."""

    def __init__(self, store: RunStore, options: WorkerOptions | None = None):
        self.store = store
        self.options = options or WorkerOptions()
        self._stop = threading.Event()

    def stop(self) -> None:
        """Stop after the current job (thread-safe)."""
        self._stop.set()

    def run_once(self) -> str | None:
        """Recover dead runs, then claim and run one queued run; returns its final status or None if idle."""
        o = self.options
        queue.recover_stale(self.store, stale_after_s=o.stale_after_s, max_resumes=o.max_resumes)
        queue.release_followups(self.store)
        claim = queue.claim_next(self.store)
        return None if claim is None else self.execute(claim)

    def run(self) -> int:
        """The polling loop; returns the number of runs processed."""
        processed, idle_since = 0, time.monotonic()
        log.info("worker %d polling %s", os.getpid(), self.store.safe_url)
        while not self._stop.is_set():
            try:
                status = self.run_once()
            except Exception as exc:
                if self.options.once:
                    raise
                # e.g. the database is unreachable for a moment: keep the worker alive and retry.
                log.error("worker %d: error while polling (%s); retrying in %.0f s", os.getpid(), exc,
                          max(self.options.poll_s, 5), exc_info=not isinstance(exc, TransferLabError))
                self._stop.wait(max(self.options.poll_s, 5))
                continue
            if status is not None:
                processed, idle_since = processed + 1, time.monotonic()
                continue
            if self.options.once:
                break
            if self.options.idle_exit_s is not None and time.monotonic() - idle_since >= self.options.idle_exit_s:
                log.info("worker %d idle for %.0f s; exiting", os.getpid(), self.options.idle_exit_s)
                break
            self._stop.wait(self.options.poll_s)
        return processed

    def execute(self, claim: Claim) -> str:
        """Run one claimed job to a final status: done, failed or cancelled."""
        o, run_id = self.options, claim.run_id
        out = Path(claim.config["out"])
        out.mkdir(parents=True, exist_ok=True)
        progress = ProgressWriter(self.store, run_id, o.progress_interval_s)
        cancel = CancelCheck(self.store, claim, o.cancel_check_s)
        log.info("run %s: starting %s (attempt %d%s)", run_id, claim.job, claim.attempt, ", resume" if claim.resume else "")
        with Heartbeat(self.store, claim, o.heartbeat_s, on_lost=cancel.force):
            try:
                # A resumed run whose report was written before the crash is finished: keep it (a run folder with a
                # report is never overwritten).
                report = read_report(out) if claim.resume else None
                if report is None:
                    job = resolve_job(claim.job)
                    with owner_scope(claim.owner):   # the owner's own feature cache
                        report = job(job_config(claim.job, claim.config), progress=progress, should_cancel=cancel,
                                     resume=claim.resume)
            except Cancelled:
                progress.flush()
                if cancel.yielded and queue.requeue_yielded(self.store, claim):
                    log.info("run %s: yielded to a waiting run; queued again to resume", run_id)
                    return "yielded"
                self._finish(run_id, self.store.mark_cancelled, attempt=claim.attempt)
                log.info("run %s: cancelled", run_id)
                return "cancelled"
            except TransferLabError as exc:
                progress.flush()
                message = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                self._finish(run_id, self.store.mark_failed, message, attempt=claim.attempt)
                log.info("run %s: failed: %s", run_id, message)
                return "failed"
            except Exception as exc:
                progress.flush()
                detail = (str(exc).strip().splitlines() or [""])[0]
                message = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
                from tlcore.storage import storage_problem

                message = storage_problem(exc, out) or message   # a full / read-only disk: the reason, not the error
                self._save_traceback(out, run_id)
                self._finish(run_id, self.store.mark_failed, message, attempt=claim.attempt)
                log.error("run %s: crashed: %s (traceback in %s)", run_id, message, out / "error.log")
                return "failed"
            progress.flush()
            if not isinstance(report, dict):
                report = read_report(out)
            self._finish(run_id, self.store.mark_done, headline_metrics(report), attempt=claim.attempt)
            log.info("run %s: done", run_id)
            return "done"

    @staticmethod
    def _finish(run_id: str, mark: Callable[..., bool], *args: Any, attempt: int) -> None:
        """Record the outcome; a run deleted or taken over meanwhile is logged, not fatal to the worker."""
        try:
            if not mark(run_id, *args, attempt=attempt):
                log.warning("run %s: outcome not recorded; another worker owns it or it already finished", run_id)
        except Exception:
            log.exception("run %s: could not record the outcome", run_id)

    @staticmethod
    def _save_traceback(out: Path, run_id: str) -> None:
        try:
            (out / "error.log").write_text(traceback.format_exc(), encoding="utf-8")
        except OSError:
            log.warning("run %s: could not write error.log", run_id, exc_info=True)


def build_parser() -> argparse.ArgumentParser:
    d = WorkerOptions()
    p = argparse.ArgumentParser(prog="python -m tlcore worker", description="Run queued TransferLab runs.")
    p.add_argument("--db", metavar="URL", help="SQLAlchemy URL (default: $TRANSFERLAB_DB_URL or SQLite in the data folder)")
    p.add_argument("--once", action="store_true", help="process until the queue is empty, then exit")
    p.add_argument("--poll", type=float, default=d.poll_s, metavar="SECONDS", help="idle polling interval")
    p.add_argument("--heartbeat", type=float, default=d.heartbeat_s, metavar="SECONDS", help="heartbeat interval")
    p.add_argument("--stale-after", type=float, default=d.stale_after_s, metavar="SECONDS",
                   help="a running run without heartbeat this long is considered dead")
    p.add_argument("--max-resumes", type=int, default=d.max_resumes, help="resumes of a dead run before it fails")
    p.add_argument("--idle-exit", type=float, default=None, metavar="SECONDS", help="exit after this long without work")
    p.add_argument("--lock", metavar="PATH", help="hold this lock file while running; exit if another worker holds it")
    p.add_argument("--log-level", default="INFO", help="logging level (DEBUG, INFO, WARNING...)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m tlcore worker``; returns the process exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    store = RunStore(args.db)
    try:
        store.migrate()  # at start: the schema is current (idempotent; concurrent starts serialize)
    except TransferLabError as exc:  # e.g. DatabaseUnavailable: one line, no traceback
        print(f"error: {exc}", file=sys.stderr)
        store.dispose()
        return 2
    lock = None
    if args.lock:
        from tlcore.runs.launcher import acquire_lock

        lock = acquire_lock(Path(args.lock))
        if lock is None:
            log.info("another worker holds %s; exiting", args.lock)
            store.dispose()
            return 0

    def _terminate(signum: int, _frame: object) -> None:
        # The running job stays 'running' with a dead pid: the next worker resumes it.
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, _terminate)
    options = WorkerOptions(poll_s=args.poll, heartbeat_s=args.heartbeat, stale_after_s=args.stale_after,
                            max_resumes=args.max_resumes, once=args.once, idle_exit_s=args.idle_exit)
    try:
        Worker(store, options).run()
    except KeyboardInterrupt:
        log.info("worker %d interrupted", os.getpid())
    finally:
        store.dispose()
        signal.signal(signal.SIGTERM, previous)
        if lock is not None:
            lock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
