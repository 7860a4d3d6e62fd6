"""Reliability: a full disk and a read-only run folder give a clear message and corrupt nothing.

    sudo .venv/bin/python benchmarks/reliability_faults.py      # needs root to mount small tmpfs file systems

Each scenario mounts a small tmpfs (full: filled to the last bytes; or read-only) and runs the CLI or the worker
against it (tiny text backbone, so a run takes seconds):

- ``finetune --out`` on a full disk: exit 2 with one ``error:`` line; nothing at ``--out``;
- ``finetune --out`` on a read-only file system: refused before any work;
- ``finetune --overwrite`` of a finished run on a disk that fills up: refused or failed, the old run unchanged;
- the app's worker with its run folders on a full disk: the run ends ``failed`` with the reason, the database
  record is consistent, the next run (disk freed) succeeds;
- the run database (SQLite) on a full disk: creating a run fails with one line, earlier records intact.

(The database unreachable at start is tests/test_postgres.py.) Prints one line per scenario: the figures of
docs/reliability.md; tests/test_reliability.py runs the same functions.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


class CannotMount(RuntimeError):
    pass


@contextlib.contextmanager
def small_fs(size_kb: int = 2048, *, fill: bool = False, read_only: bool = False):
    """A tmpfs of ``size_kb`` mounted on a fresh folder: filled to the last bytes, and/or remounted read-only."""
    where = Path(tempfile.mkdtemp(prefix="tl-fs-"))
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(where)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        where.rmdir()
        raise CannotMount(f"cannot mount a tmpfs (needs root): {done.stderr.strip()}")
    try:
        if fill:
            fill_up(where)
        if read_only:
            subprocess.run(["mount", "-o", "remount,ro", str(where)], check=True, capture_output=True)
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)
        with contextlib.suppress(OSError):
            where.rmdir()


def fill_up(where: Path, leave_bytes: int = 0) -> None:
    """Write ``where/.filler`` until the file system has no byte left (unbuffered, so closing cannot fail), then
    give back ``leave_bytes``."""
    with open(where / ".filler", "ab", buffering=0) as f:
        for chunk in (1 << 16, 4096, 512, 1):
            with contextlib.suppress(OSError):
                while True:
                    f.write(b"\0" * chunk)
        if leave_bytes:
            f.truncate(max(0, f.tell() - leave_bytes))


def _write_set(folder: Path) -> Path:
    from benchmarks.reliability_worker_kill import _write_text_set

    return _write_text_set(folder, n_per_class=20, seed=0)


def _cli(argv: list) -> tuple[int, str]:
    """Run ``python -m tlcore`` in-process; (exit code, stderr)."""
    from tlcore.cli import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            rc = main([str(a) for a in argv])
        except SystemExit as exc:
            rc = exc.code if isinstance(exc.code, int) else 2
    return rc, err.getvalue()


def _one_error_line(rc: int, stderr: str) -> bool:
    lines = [ln for ln in stderr.splitlines() if ln.startswith("error:")]
    return rc == 2 and len(lines) == 1 and "Traceback" not in stderr


def _tree_digest(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(folder)).encode() + p.read_bytes())
    return h.hexdigest()


def _finetune_argv(data: Path, out: Path, *extra) -> list:
    return ["finetune", "--modality", "text", "--backbone", "tiny-text", "--target", data, "--strategy", "full",
            "--epochs", "2", "--baselines", "knn", "--out", out, "--quiet", *extra]


def finetune_on_full_disk(work: Path) -> dict:
    data = _write_set(work / "data")
    with small_fs(fill=True) as fs:
        rc, err = _cli(_finetune_argv(data, fs / "run"))
        leftovers = sorted(p.name for p in fs.iterdir() if p.name != ".filler")
    return {"scenario": "finetune --out on a full disk", "ok": _one_error_line(rc, err) and not leftovers,
            "left": leftovers,
            "message": err.strip().splitlines()[-1] if err.strip() else f"exit {rc}", "left behind": leftovers}


def finetune_disk_fills_mid_run(work: Path) -> dict:
    data = _write_set(work / "data")
    with small_fs(size_kb=65536) as fs:
        fill_up(fs, leave_bytes=64 * 1024)           # room for the run's config, not for its checkpoints
        rc, err = _cli(_finetune_argv(data, fs / "run"))
        leftovers = sorted(p.name for p in fs.iterdir() if p.name != ".filler")
    return {"scenario": "the disk fills up during a run", "ok": _one_error_line(rc, err) and not leftovers,
            "left": leftovers, "message": err.strip().splitlines()[-1] if err.strip() else f"exit {rc}"}


def finetune_on_read_only(work: Path) -> dict:
    data = _write_set(work / "data")
    with small_fs(read_only=True) as fs:
        rc, err = _cli(_finetune_argv(data, fs / "run"))
    return {"scenario": "finetune --out on a read-only file system", "ok": _one_error_line(rc, err),
            "message": err.strip().splitlines()[-1] if err.strip() else f"exit {rc}", "left behind": []}


def overwrite_on_full_disk(work: Path) -> dict:
    data = _write_set(work / "data")
    with small_fs(size_kb=65536) as fs:
        rc0, err0 = _cli(_finetune_argv(data, fs / "run"))
        if rc0 != 0:
            return {"scenario": "--overwrite on a disk that fills up", "ok": False, "message": f"setup failed: {err0}"}
        before = _tree_digest(fs / "run")
        fill_up(fs)                                   # the disk fills up
        rc, err = _cli(_finetune_argv(data, fs / "run", "--overwrite"))
        intact = _tree_digest(fs / "run") == before
        leftovers = sorted(p.name for p in fs.iterdir() if p.name not in (".filler", "run"))
    return {"scenario": "--overwrite of a finished run on a disk that fills up",
            "ok": _one_error_line(rc, err) and intact and not leftovers,
            "message": err.strip().splitlines()[-1] if err.strip() else f"exit {rc}",
            "left": leftovers, "old run intact": intact}


def worker_on_full_disk(work: Path) -> dict:
    from tlcore.config import FinetuneConfig
    from tlcore.runs import RunStore, queue
    from tlcore.runs.worker import Worker, WorkerOptions

    data = _write_set(work / "data")
    with small_fs(size_kb=65536) as fs:
        store = RunStore(f"sqlite:///{work / 'runs.db'}", artifacts_root=fs / "runs")
        cfg = FinetuneConfig(modality="text", backbone="tiny-text", target=str(data), strategy="full", epochs=2,
                             baselines=["knn"])
        first = store.create_run(cfg, "on a full disk")
        queue.enqueue(store, first.id)
        fill_up(fs)                                   # the disk fills up
        opts = WorkerOptions(poll_s=0.05, heartbeat_s=0.5, once=True)
        Worker(store, opts).run()
        failed = store.get(first.id)
        (fs / ".filler").unlink()                     # space again: the next run must work
        second = store.create_run(cfg, "after freeing space")
        queue.enqueue(store, second.id)
        Worker(store, opts).run()
        done = store.get(second.id)
        store.dispose()
    ok = (failed.status == "failed" and bool(failed.error) and "\n" not in failed.error and done.status == "done")
    if done.status != "done":
        print(done.error, (Path(done.out) / "error.log").read_text()[-2000:] if (Path(done.out) / "error.log").exists() else "")
    return {"scenario": "worker with run folders on a full disk", "ok": ok,
            "message": f"run {failed.status}: {failed.error}; next run after freeing space: {done.status}"}


def database_on_full_disk(work: Path) -> dict:
    from tlcore.config import FinetuneConfig
    from tlcore.errors import TransferLabError
    from tlcore.runs import RunStore

    with small_fs(size_kb=1024) as fs:
        store = RunStore(f"sqlite:///{fs / 'runs.db'}", artifacts_root=work / "runs")
        kept = store.create_run(FinetuneConfig(modality="text", target="t.csv"), "before the disk filled")
        fill_up(fs)                                   # the disk fills up
        message, clear = "", False
        try:
            for i in range(200):                       # until the database file cannot grow
                store.create_run(FinetuneConfig(modality="text", target="t.csv"), "x" * 150 + str(i))
            message = "no error: the database never filled"
        except TransferLabError as exc:
            message, clear = str(exc), "\n" not in str(exc)
        except Exception as exc:  # noqa: BLE001 - what the figure counts
            message = f"{type(exc).__name__}: {exc}"
        intact = store.get(kept.id).name == "before the disk filled"
        store.dispose()
    return {"scenario": "run database (SQLite) on a full disk", "ok": clear and intact, "message": message[:200]}


SCENARIOS = [finetune_on_full_disk, finetune_disk_fills_mid_run, finetune_on_read_only, overwrite_on_full_disk, worker_on_full_disk,
             database_on_full_disk]


def main() -> int:
    os.environ.setdefault("TRANSFERLAB_HOME", tempfile.mkdtemp(prefix="tl-faults-home-"))
    bad = 0
    for scenario in SCENARIOS:
        work = Path(tempfile.mkdtemp(prefix="tl-faults-"))
        try:
            r = scenario(work)
        except CannotMount as exc:
            print(f"skipped: {exc}")
            return 0
        bad += not r["ok"]
        print(f"{'OK  ' if r['ok'] else 'FAIL'} {r['scenario']}: {r['message']} {r.get('left', '')}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
