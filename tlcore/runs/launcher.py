"""Start one detached background worker for the app, and tell whether one is alive.

The worker started here holds an exclusive ``flock`` on a lock file for its whole life; the kernel
drops the lock when the process dies (even with SIGKILL), so a stale pid file can never fool us.
On systems without ``fcntl`` (Windows) a pid file and a liveness check are used instead.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from sqlalchemy.engine import make_url

from tlcore.runs import db
from tlcore.runs.queue import pid_alive
from tlcore.runs.store import RunStore

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

STARTUP_GRACE_S = 20.0  # a just-spawned worker may take a few seconds to import and take the lock


def lock_path(store: RunStore) -> Path:
    """``<db file>.worker.lock`` for SQLite, else ``home()/app/worker.lock``."""
    url = make_url(store.url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        return Path(url.database).expanduser().with_suffix(".worker.lock")
    return db.app_dir() / "worker.lock"


def acquire_lock(path: Path) -> IO[str] | None:
    """Take the worker lock without waiting; returns the open file (keep it open) or None if held."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fh = open(path, "a+", encoding="ascii")
    if fcntl is not None:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.close()
            return None
    elif _pid_in(path) not in (None, os.getpid()) and pid_alive(_pid_in(path) or 0):  # pragma: no cover
        fh.close()
        return None
    fh.seek(0)
    fh.truncate()
    fh.write(str(os.getpid()))
    fh.flush()
    return fh


def _pid_in(path: Path) -> int | None:
    try:
        return int(path.read_text(encoding="ascii").strip() or 0) or None
    except (OSError, ValueError):
        return None


def worker_pid(store: RunStore | None = None) -> int | None:
    """The pid of the live worker holding this store's lock, else None."""
    path = lock_path(store or RunStore())
    if not path.exists():
        return None
    if fcntl is None:  # pragma: no cover
        pid = _pid_in(path)
        return pid if pid and pid_alive(pid) else None
    with open(path, "a+", encoding="ascii") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return _pid_in(path)
        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
    return None


def package_env(**extra: str) -> dict[str, str]:
    """This process's environment plus ``extra``, with the folder that holds the tlcore package first on
    ``PYTHONPATH``: a child ``python -m tlcore...`` imports this very engine (it need not be pip-installed)."""
    env = dict(os.environ, **extra)
    package_parent = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH")) if p)
    return env


def ensure_worker(store: RunStore | None = None, *, idle_exit_s: float | None = 600.0,
                  poll_s: float = 1.0, warm_demos: Sequence[str] = ()) -> int:
    """Make sure a background worker serves ``store``; start a detached one if none is alive.

    Returns the worker's pid. The worker gets the store's URL through ``TRANSFERLAB_DB_URL`` (not argv,
    so a password does not show in ``ps``) and logs to ``<lock file>.log``. Cheap to call on every page.
    The worker exits after ``idle_exit_s`` without work (None: never); the next call starts a new one. A new worker
    makes the data of ``warm_demos`` while it waits for its first job (the app's Home demos).
    """
    store = store or RunStore()
    store.migrate()  # create the schema here, so the app and the new worker do not race to do it
    path = lock_path(store)
    pid = worker_pid(store)
    if pid is not None:
        return pid
    spawned = path.with_suffix(".spawned")
    recent = _pid_in(spawned)
    if recent and pid_alive(recent) and time.time() - spawned.stat().st_mtime < STARTUP_GRACE_S:
        return recent  # started moments ago and still importing
    cmd = [sys.executable, "-m", "tlcore.runs.worker", "--lock", str(path), "--poll", str(poll_s)]
    if idle_exit_s is not None:
        cmd += ["--idle-exit", str(idle_exit_s)]
    if warm_demos:
        cmd += ["--warm-demos", ",".join(warm_demos)]
    env = package_env(TRANSFERLAB_DB_URL=store.url)
    with open(path.with_suffix(".log"), "ab") as logfile:
        proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=logfile, stderr=subprocess.STDOUT,
                                start_new_session=True, close_fds=True)
    spawned.write_text(str(proc.pid), encoding="ascii")
    log.info("started worker pid %d for %s", proc.pid, store.safe_url)
    return proc.pid
