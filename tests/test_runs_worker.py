"""Queue and worker: claiming, running a fake job, cancelling, crash recovery, the detached worker.

The fake jobs below stand in for ``tlcore.settings.inductive:run_finetune`` (no ML): their behaviour comes
from ``<run folder>/fake.json`` and every call is recorded in ``<run folder>/calls.jsonl``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from postgres_fixture import BACKENDS, backend_url
from sqlalchemy import update

from tlcore.errors import Cancelled, ConfigError
from tlcore.progress import Progress
from tlcore.runs import RunStore, ensure_worker, queue, worker_pid
from tlcore.runs.models import RunRow, utcnow
from tlcore.runs.worker import Worker, WorkerOptions, main

JOB = f"{__name__}:fake_run"
REPO = Path(__file__).resolve().parents[1]
FAST = dict(poll_s=0.05, heartbeat_s=0.2, progress_interval_s=0.5, cancel_check_s=0.1)


def fake_run(cfg, *, progress=None, should_cancel=None, resume=False):
    """Counts ``steps`` epochs (checkpointing each), reporting progress and honouring cancel."""
    out = Path(cfg.out)
    spec = json.loads((out / "fake.json").read_text()) if (out / "fake.json").exists() else {}
    steps, sleep = spec.get("steps", 5), spec.get("resume_sleep" if resume else "sleep", spec.get("sleep", 0.0))
    ckpt = out / "ckpt.txt"
    start = int(ckpt.read_text()) if resume and ckpt.exists() else 0
    with open(out / "calls.jsonl", "a") as fh:
        fh.write(json.dumps({"resume": resume, "start": start, "pid": os.getpid()}) + "\n")
    for step in range(start, steps):
        if should_cancel and should_cancel():
            raise Cancelled("cancelled by the user")
        time.sleep(sleep)
        (out / "ckpt.tmp").write_text(str(step + 1))
        os.replace(out / "ckpt.tmp", ckpt)  # atomic, like real checkpoints: a kill never leaves it half-written
        if progress:
            progress(Progress("train", step + 1, steps, metrics={"epoch": step + 1, "train_loss": 1 / (step + 1)}))
    if spec.get("fail") == "user":
        raise ConfigError("backbone 'nope' is unknown; see `python -m tlcore backbones`\nsecond line")
    if spec.get("fail") == "crash":
        raise RuntimeError("boom in the training loop")
    report = {"before": {"accuracy": 0.5}, "after": {"accuracy": 0.8, "macro_f1": 0.75},
              "baselines": {"knn": {"accuracy": 0.6}}}
    if spec.get("malformed"):   # a report the runs table cannot read its numbers from (a curve without its points' keys)
        report = {"kind": "curve", "points": [{"shots": 5}]}
    (out / "report.json").write_text(json.dumps(report))
    if progress:
        progress(Progress("done", steps, steps))
    return report


@pytest.fixture
def db_url(request, tmp_path):
    """SQLite (the default place) unless a test asks for both backends with ``both_backends``."""
    return backend_url(request, getattr(request, "param", "sqlite"), tmp_path)


both_backends = pytest.mark.parametrize("db_url", BACKENDS, indirect=True)


@pytest.fixture
def store(db_url, tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSFERLAB_HOME", str(tmp_path))
    monkeypatch.delenv("TRANSFERLAB_DB_URL", raising=False)
    # Worker subprocesses must import this module (as whatever name pytest gave it) and tlcore.
    paths = [str(REPO), str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in paths if p))
    s = RunStore.open(db_url)
    yield s
    s.dispose()


def submit(store: RunStore, job: str = JOB, **spec) -> str:
    run = store.create_run({"modality": "text"}, "fake", job=job)
    (run.out / "fake.json").write_text(json.dumps(spec))
    store.enqueue(run.id)
    return run.id


def calls(store: RunStore, run_id: str) -> list[dict]:
    path = store.artifact_dir(run_id) / "calls.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def wait_for(predicate, timeout: float = 10.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def worker(store: RunStore, **kw) -> Worker:
    return Worker(store, WorkerOptions(**{**FAST, "once": True, **kw}))


@both_backends
def test_worker_runs_a_job_to_done_and_stores_progress_and_metrics(store):
    run_id = submit(store, steps=6)
    assert worker(store).run() == 1
    run = store.get(run_id)
    assert run.status == "done" and run.error is None and run.attempts == 1
    assert run.metrics == pytest.approx({"before_accuracy": 0.5, "after_accuracy": 0.8, "after_macro_f1": 0.75,
                                         "accuracy_gain": 0.3, "knn_accuracy": 0.6})
    assert run.progress["last"]["stage"] == "done"
    assert [h["epoch"] for h in run.progress["history"]] == [1, 2, 3, 4, 5, 6]
    assert calls(store, run_id) == [{"resume": False, "start": 0, "pid": os.getpid()}]


def test_a_report_without_readable_headline_numbers_still_finishes_the_run_and_keeps_the_worker(store):
    broken, after = submit(store, malformed=True), submit(store)
    assert worker(store, once=False, idle_exit_s=0.3).run() == 2   # the worker lives on to run the next one
    run = store.get(broken)
    assert run.status == "done" and run.metrics == {} and run.attempts == 1
    assert json.loads((run.out / "report.json").read_text())["kind"] == "curve"   # the report stays as written
    assert store.get(after).status == "done"


def test_progress_writes_are_throttled_but_no_epoch_is_lost(store, monkeypatch):
    run_id = submit(store, steps=40, sleep=0.01)
    writes = []
    original = store.update_progress
    monkeypatch.setattr(store, "update_progress", lambda rid, *ev: (writes.append(len(ev)), original(rid, *ev)))
    started = time.monotonic()
    worker(store, progress_interval_s=0.5).run()
    elapsed = time.monotonic() - started
    run = store.get(run_id)
    assert 1 <= len(writes) <= 2 * elapsed + 2 < 10  # <= 2 writes/s plus the final one, not one per event
    assert [h["epoch"] for h in run.progress["history"]] == list(range(1, 41))
    assert run.progress["last"]["stage"] == "done"


@both_backends
def test_cancel_stops_a_running_job(store):
    run_id = submit(store, steps=500, sleep=0.01)
    w = worker(store)
    thread = threading.Thread(target=w.run)
    thread.start()
    wait_for(lambda: store.get(run_id).progress.get("last", {}).get("step", 0) >= 1, what="the run to make progress")
    store.request_cancel(run_id)
    thread.join(timeout=10)
    run = store.get(run_id)
    assert not thread.is_alive() and run.status == "cancelled" and run.finished_at is not None
    assert int((run.out / "ckpt.txt").read_text()) < 500


def test_user_errors_fail_with_one_line_and_crashes_save_a_traceback(store):
    user = submit(store, steps=1, fail="user")
    crash = submit(store, steps=1, fail="crash")
    missing = submit(store, job="no_such_module_xyz:run")
    assert worker(store).run() == 3
    assert store.get(user).status == "failed"
    assert store.get(user).error == "backbone 'nope' is unknown; see `python -m tlcore backbones`"
    assert store.get(crash).error == "RuntimeError: boom in the training loop"
    log = (store.artifact_dir(crash) / "error.log").read_text()
    assert "Traceback" in log and "fake_run" in log
    assert "No module named 'no_such_module_xyz'" in store.get(missing).error


@both_backends
def test_two_concurrent_claimers_never_claim_the_same_run(store):
    ids = {submit(store) for _ in range(30)}
    claimed: list[list[str]] = [[] for _ in range(4)]
    barrier = threading.Barrier(4)

    def claimer(i: int) -> None:
        own = RunStore(store.url)  # its own engine and connections, like another process
        barrier.wait()
        while (claim := queue.claim_next(own, pid=1000 + i)) is not None:
            claimed[i].append(claim.run_id)
        own.dispose()

    threads = [threading.Thread(target=claimer, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    everything = [rid for part in claimed for rid in part]
    assert sorted(everything) == sorted(ids)  # each run claimed exactly once
    assert all(r.status == "running" and r.attempts == 1 for r in store.list_runs())


@both_backends
def test_a_killed_worker_is_detected_and_its_run_resumed(store):
    run_id = submit(store, steps=100, sleep=0.05, resume_sleep=0.0)  # slow until killed, fast once resumed
    proc = subprocess.Popen([sys.executable, "-m", "tlcore.runs.worker", "--db", store.url, "--poll", "0.05",
                             "--heartbeat", "0.2", "--log-level", "WARNING"], cwd=REPO)
    try:
        wait_for(lambda: store.get(run_id).progress.get("last", {}).get("step", 0) >= 3, 20, "the job to make progress")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert store.get(run_id).status == "running"  # what the dead worker left behind
    assert worker(store, progress_interval_s=0.05).run() == 1
    run = store.get(run_id)
    assert run.status == "done" and run.attempts == 2
    first, second = calls(store, run_id)
    assert first["pid"] == proc.pid and not first["resume"]
    assert second["resume"] and second["start"] >= 3  # continued from its checkpoint
    assert [h["epoch"] for h in run.progress["history"]][-1] == 100


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_run_that_keeps_dying_fails_after_max_resumes(store):
    run_id = submit(store)
    dead = _dead_pid()
    for attempt in (1, 2, 3):
        claim = queue.claim_next(store, pid=dead)
        assert claim is not None and claim.attempt == attempt and claim.resume == (attempt > 1)
        assert queue.recover_stale(store, max_resumes=2) == [run_id]
    run = store.get(run_id)
    assert run.status == "failed"
    assert run.error.startswith(f"worker died (pid {dead} on ") and "gave up after 3 attempts" in run.error
    assert queue.claim_next(store) is None


@both_backends
def test_a_worker_on_another_host_is_judged_by_its_heartbeat(store):
    run_id = submit(store)
    claim = queue.claim_next(store, pid=4242, host="elsewhere")
    assert queue.recover_stale(store, stale_after_s=30) == []  # fresh heartbeat: alive
    with store.write_session() as s:
        s.execute(update(RunRow).values(heartbeat_at=utcnow().replace(year=2000)))
    assert queue.recover_stale(store, stale_after_s=30) == [run_id]
    assert store.get(run_id).status == "queued"
    assert not queue.heartbeat(store, claim)  # the old worker learns it lost the run


def test_cancel_requested_before_the_worker_died_ends_cancelled(store):
    run_id = submit(store)
    queue.claim_next(store, pid=_dead_pid())
    store.request_cancel(run_id)
    queue.recover_stale(store)
    assert store.get(run_id).status == "cancelled"


@both_backends
def test_main_once_processes_the_queue_and_exits(store):
    ids = [submit(store, steps=2) for _ in range(2)]
    assert main(["--once", "--db", store.url, "--poll", "0.05", "--log-level", "WARNING"]) == 0
    assert [store.get(i).status for i in ids] == ["done", "done"]


def test_ensure_worker_starts_one_detached_worker(store):
    pid = ensure_worker(store, idle_exit_s=1.0, poll_s=0.05)
    assert ensure_worker(store) == pid  # starting or running: not started twice
    run_id = submit(store, steps=3)
    wait_for(lambda: store.get(run_id).status == "done", 20, "the detached worker to finish the run")
    assert calls(store, run_id)[0]["pid"] == pid
    assert worker_pid(store) == pid
    wait_for(lambda: worker_pid(store) is None, 10, "the idle worker to exit")
    try:
        os.waitpid(pid, 0)  # reap it (it is our child in tests)
    except ChildProcessError:
        pass


def test_a_resumed_run_whose_report_was_written_is_finished_not_rerun(store):
    """The worker died after the job wrote report.json but before the run was marked done: the resumed claim
    keeps that report (a run folder with a report is never overwritten) instead of training again."""
    run_id = submit(store)
    queue.claim_next(store, pid=_dead_pid())
    report = {"before": {"accuracy": 0.4}, "after": {"accuracy": 0.9, "macro_f1": 0.9}, "baselines": {}}
    (store.artifact_dir(run_id) / "report.json").write_text(json.dumps(report))
    assert queue.recover_stale(store) == [run_id]
    assert worker(store).run() == 1
    assert store.get(run_id).status == "done" and calls(store, run_id) == []
    assert json.loads((store.artifact_dir(run_id) / "report.json").read_text()) == report


def test_a_new_worker_imports_the_engine_ahead_of_its_first_job_and_survives_a_failing_import(caplog, monkeypatch):
    """The worker warms the imports every training job needs while it waits (a user's first click then does not wait
    for torch to import); a module that cannot be imported is logged, and the worker goes on to prepare the demos
    and the Whisper weights (in a child process)."""
    from tlcore.runs import worker as worker_module

    prepared = []
    monkeypatch.setattr(worker_module, "_prepare_in_background", prepared.append)
    assert "tlcore.api" in worker_module.WARM_MODULES
    sys.modules.pop("json.tool", None)
    with caplog.at_level("WARNING", logger="tlcore.runs.worker"):
        worker_module.warm_imports(("tlcore_no_such_module", "json.tool"), demos=["emoji"])
    assert "json.tool" in sys.modules and prepared == [["emoji"]]
    assert any("tlcore_no_such_module" in r.getMessage() for r in caplog.records)


def test_the_warm_up_thread_never_imports_transformers():
    """transformers' lazy imports are not thread-safe: a job that ran while the warm-up thread imported from
    transformers (it converted the Whisper weights then) failed with "cannot import name 'AutoTokenizer'". What the
    thread imports must not import transformers; the rest is prepared in a child process."""
    code = ("import importlib, sys; from tlcore.runs.worker import WARM_MODULES\n"
            "for m in WARM_MODULES: importlib.import_module(m)\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'transformers'))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_the_home_demos_are_made_ahead_and_a_demo_two_processes_need_at_once_is_made_once(tmp_path, monkeypatch):
    """The worker's warm-up makes the Home demos' data; a click meanwhile waits for it (a lock) instead of making the
    same demo beside it; a demo that cannot be made is said and skipped."""
    from tlcore.data import demos as demos_module
    from tlcore.data.demos._common import _is_finished
    from tlcore.runs.worker import prepare

    monkeypatch.setenv("TRANSFERLAB_HOME", str(tmp_path / "home"))
    made, real = [], demos_module.make_demo

    def slow_make(name, out, **kw):
        if not _is_finished(Path(out), name, kw.get("seed", 0), kw.get("size", "default")):
            made.append(name)
            time.sleep(0.5)
        return real(name, out, **kw)

    monkeypatch.setattr(demos_module, "make_demo", slow_make)
    results = []
    threads = [threading.Thread(target=lambda: results.append(demos_module.demo_dir("sentiment"))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert made == ["sentiment"] and len(set(results)) == 1 and (results[0] / "target").is_dir()

    monkeypatch.setattr("tlcore.models.whisper_ct2.whisper_tiny_en_dir", lambda: None)
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        prepare(["no-such-demo", "digits"])
    assert "no-such-demo" in err.getvalue() and made == ["sentiment", "digits"]
