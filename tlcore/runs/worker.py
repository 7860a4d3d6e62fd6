"""The background worker: polls the run store, claims queued runs and runs them one at a time.

    python -m tlcore worker [--once] [--poll SECONDS] [--db URL]      # via the CLI
    python -m tlcore worker --gpus 1 --memory-gb 64                      # a GPU host of a team (docs/deploy.md)
    python -m tlcore.runs.worker ...                                     # same, without the CLI

The app does not start this by hand: it calls ``tlcore.runs.ensure_worker(store)``. On several hosts, every
worker points at the same database and artifact store (``TRANSFERLAB_ARTIFACTS_URL``; :mod:`tlcore.runs.sync`
says what is copied when).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tlcore import storage
from tlcore.artifacts import ArtifactStore
from tlcore.errors import Cancelled, TransferLabError, first_line
from tlcore.paths import owner_scope
from tlcore.runs import queue, sync
from tlcore.runs.job_paths import job_config, resolve_job
from tlcore.runs.jobs import CancelCheck, Heartbeat, ProgressWriter, headline_metrics, read_report
from tlcore.runs.launcher import acquire_lock, package_env
from tlcore.runs.queue import Claim
from tlcore.runs.store import RunStore
from tlcore.storage import storage_problem

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
    host: str = queue.HOST            # the name this worker claims under (pids are compared only on one host)
    gpus: int = 0                     # what this worker offers: it claims only runs that need no more
    memory_gb: float | None = None    # None: not declared (claims runs whatever memory they ask for)
    checkpoint_sync_s: float = 2.0    # how often new checkpoints are uploaded to the artifact store


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
        queue.recover_stale(self.store, stale_after_s=o.stale_after_s, max_resumes=o.max_resumes, host=o.host)
        queue.release_followups(self.store)
        claim = queue.claim_next(self.store, host=o.host, gpus=o.gpus, memory_gb=o.memory_gb)
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
        o, run_id, artifacts = self.options, claim.run_id, self.store.artifacts
        config = dict(claim.config)
        if artifacts is not None:   # work in this host's own folder; the store holds what others see
            config["out"] = str(self.store.artifact_dir(run_id))
        out = Path(config["out"])
        out.mkdir(parents=True, exist_ok=True)
        progress = ProgressWriter(self.store, run_id, o.progress_interval_s)
        cancel = CancelCheck(self.store, claim, o.cancel_check_s)
        log.info("run %s: starting %s (attempt %d%s)", run_id, claim.job, claim.attempt, ", resume" if claim.resume else "")
        # leases: no cache eviction removes an unzipped copy or fetched set this job reads (tlcore.storage)
        with Heartbeat(self.store, claim, o.heartbeat_s, on_lost=cancel.force), storage.leases_held():
            try:
                if artifacts is not None:
                    config = sync.prepare(self.store, claim)
                # A resumed run whose report was written before the crash is finished: keep it (a run folder with a
                # report is never overwritten).
                report = read_report(out) if claim.resume else None
                if report is None:
                    job = resolve_job(claim.job)
                    with owner_scope(claim.owner), sync.CheckpointSync(artifacts, run_id, out, o.checkpoint_sync_s):
                        report = job(job_config(claim.job, config), progress=progress, should_cancel=cancel,
                                     resume=claim.resume)
                if artifacts is not None:   # a run is done only once its folder is in the store
                    sync.publish(self.store, claim, config)
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
                message = storage_problem(exc, out) or first_line(exc)   # a full / read-only disk: the reason
                self._save_traceback(out, run_id)
                self._finish(run_id, self.store.mark_failed, message, attempt=claim.attempt)
                log.error("run %s: crashed: %s (traceback in %s)", run_id, message, out / "error.log")
                return "failed"
            progress.flush()
            self._finish(run_id, self.store.mark_done, self._headline(run_id, report, out), attempt=claim.attempt)
            log.info("run %s: done", run_id)
            return "done"

    @staticmethod
    def _headline(run_id: str, report: Any, out: Path) -> dict:
        """The runs table's numbers. A finished run whose report they cannot be read from is still done (its folder
        holds the results); the table shows no numbers for it and the log says why."""
        try:
            return headline_metrics(report if isinstance(report, dict) else read_report(out))
        except Exception:
            log.exception("run %s: finished, but its headline numbers could not be read from the report", run_id)
            return {}

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


#: What every training job imports (torch, transformers, scikit-learn and the engine; torch._dynamo, which the first
#: torch optimizer built imports: 3-6 s and 870 modules): a new worker imports them in the background while it waits
#: for its first claim, so a user's first run does not wait for them (the app starts the worker when its first page
#: renders, before the first click).
WARM_MODULES = ("tlcore.api", "torch._dynamo")


def warm_imports(modules: Sequence[str] = WARM_MODULES, demos: Sequence[str] = ()) -> None:
    """Import ``modules``, then, in a low-priority child process, make the built-in ``demos``' data (the app's Home
    demos: a click then finds them made) and convert the bundled Whisper weights.

    A failure is logged and left to the job that needs the module, the data or the weights to report. Nothing this
    thread imports imports transformers (a test checks): its lazy ``from transformers import X`` is not safe while
    another thread of the process is importing from transformers — a job that started while this thread converted
    the Whisper weights failed with "cannot import name 'AutoTokenizer'". So the demos and the weights are prepared
    in their own process, niced so that a job that starts meanwhile keeps the cores; whoever needs a demo's data
    meanwhile waits for it (a lock: never made twice at once), and a speech job that needs the weights converts
    into its own folder and keeps whichever lands first (:func:`tlcore.models.whisper_ct2.cached_conversion`).
    """
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception:
            log.warning("could not import %s ahead of the first job", name, exc_info=True)
    _prepare_in_background(demos)


def _prepare_in_background(demos: Sequence[str]) -> None:
    """Run :func:`prepare` in a child process at low priority and wait for it (from the warm-up thread)."""
    code = "import sys; from tlcore.runs.worker import prepare; prepare(sys.argv[1:])"
    try:
        done = subprocess.run([sys.executable, "-c", code, *demos], env=package_env(), capture_output=True, text=True,
                              preexec_fn=lambda: os.nice(10), check=False)
    except OSError:
        log.info("the demos and Whisper weights were not prepared ahead of the first job", exc_info=True)
        return
    for line in done.stderr.strip().splitlines()[-5:]:     # what prepare() skipped (it exits 0), or a crash's end
        log.info("preparing ahead of the first job: %s", line)


def prepare(demos: Sequence[str]) -> None:
    """Make the ``demos``' data (cached), then convert the bundled Whisper weights (cached): what a first click on
    a Home demo would otherwise wait for. Each failure is printed and skipped (the job that needs it reports it)."""
    from tlcore.data.demos import DEMOS, demo_dir

    for name in demos:
        try:
            if not DEMOS.get(name).available():
                demo_dir(name)
        except Exception as exc:
            print(f"demo {name}: {first_line(exc)}", file=sys.stderr)
    try:
        from tlcore.models.whisper_ct2 import whisper_tiny_en_dir

        whisper_tiny_en_dir()
    except Exception as exc:  # e.g. the weights package is not installed: the speech jobs say so themselves
        print(f"Whisper weights: {first_line(exc)}", file=sys.stderr)


def detected_gpus() -> int:
    """CUDA devices torch sees here (0 without torch or CUDA)."""
    try:
        import torch  # lazy: heavy, and a worker that only queues analyses starts without it

        return int(torch.cuda.device_count()) if torch.cuda.is_available() else 0
    except Exception:  # a broken driver must not stop a CPU worker
        return 0


def detected_memory_gb() -> float | None:
    """This machine's RAM in GB (10^9 bytes); None where the OS does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9
    except (AttributeError, ValueError, OSError):
        return None


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
    p.add_argument("--host", default=d.host, help="the name this worker claims under (default: the hostname); "
                   "give each machine its own")
    p.add_argument("--gpus", type=int, default=None, metavar="N",
                   help="GPUs this worker offers (default: those torch sees); it claims only runs that need no more")
    p.add_argument("--memory-gb", type=float, default=None, metavar="GB",
                   help="memory this worker offers (default: the machine's RAM); runs asking for more are left to others")
    p.add_argument("--checkpoint-sync", type=float, default=d.checkpoint_sync_s, metavar="SECONDS",
                   help="how often new checkpoints are uploaded to the artifact store")
    p.add_argument("--artifacts", metavar="URL",
                   help="artifact store shared by all hosts (default: $TRANSFERLAB_ARTIFACTS_URL; unset: local disk only)")
    p.add_argument("--lock", metavar="PATH", help="hold this lock file while running; exit if another worker holds it")
    p.add_argument("--log-level", default="INFO", help="logging level (DEBUG, INFO, WARNING...)")
    p.add_argument("--warm-demos", default="", metavar="NAMES",
                   help="built-in demos whose data to make while waiting for the first job (comma-separated)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m tlcore worker``; returns the process exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.artifacts:
        store = RunStore(args.db, artifacts=ArtifactStore(args.artifacts))
    else:
        store = RunStore(args.db)
    try:
        store.migrate()  # at start: the schema is current (idempotent; concurrent starts serialize)
    except TransferLabError as exc:  # e.g. DatabaseUnavailable: one line, no traceback
        print(f"error: {exc}", file=sys.stderr)
        store.dispose()
        return 2
    lock = None
    if args.lock:
        lock = acquire_lock(Path(args.lock))
        if lock is None:
            log.info("another worker holds %s; exiting", args.lock)
            store.dispose()
            return 0

    def _terminate(signum: int, _frame: object) -> None:
        # The running job stays 'running' with a dead pid: the next worker resumes it.
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, _terminate)
    demos = [d for d in args.warm_demos.split(",") if d]
    threading.Thread(target=warm_imports, kwargs={"demos": demos}, name="warm-imports", daemon=True).start()
    options = WorkerOptions(poll_s=args.poll, heartbeat_s=args.heartbeat, stale_after_s=args.stale_after,
                            max_resumes=args.max_resumes, once=args.once, idle_exit_s=args.idle_exit, host=args.host,
                            checkpoint_sync_s=args.checkpoint_sync,
                            gpus=detected_gpus() if args.gpus is None else args.gpus,
                            memory_gb=detected_memory_gb() if args.memory_gb is None else args.memory_gb)
    log.info("worker %d on %s offers %d GPU(s), %s GB memory; artifacts: %s", os.getpid(), options.host, options.gpus,
             "?" if options.memory_gb is None else f"{options.memory_gb:.0f}",
             store.artifacts.url if store.artifacts else "local disk")
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
