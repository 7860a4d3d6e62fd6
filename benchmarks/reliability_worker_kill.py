"""Reliability: the worker is killed (SIGKILL) at chosen or random moments; no run may be lost or stuck.

    python benchmarks/reliability_worker_kill.py [--trials 20] [--seed 0] [--json out.json]

Each trial queues one real fine-tuning run (tiny text backbone, full fine-tuning with checkpoints, k-NN and
scratch baselines) and starts ``python -m tlcore worker`` as a child process, then kills it with SIGKILL:

- ``features``: while the progress stage is a feature-extraction stage;
- ``training``: while the stage is ``train``, after a random part of it;
- ``checkpoint write``: inside ``save_checkpoint``: the new file is written halfway (torn), then the process dies
  before the rename;
- ``report write``: the same, while ``report.json`` is written;
- ``random``: at a uniformly random moment of the run.

A second worker is then started with ``--once``. A trial passes when the run ends ``done`` with a readable report
(or ``failed`` with its reason), was resumed (attempts > 1), and nothing is left ``running`` or ``queued``. The
figures table (docs/reliability.md) is this script's output; ``tests/test_reliability.py`` runs one trial per
kill point.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
MODES = ("features", "training", "checkpoint write", "report write", "random")

# Runs in the killed worker: tears the N-th matching write and kills the process before its rename.
_CHILD = r"""
import os, signal, sys
target, nth = os.environ.get("TL_KILL_ON", ""), int(os.environ.get("TL_KILL_NTH", "1"))
if target:
    real_replace, seen = os.replace, [0]
    def replace(src, dst, *a, **kw):
        if os.path.basename(os.fspath(dst)) == target:
            seen[0] += 1
            if seen[0] >= nth:
                size = os.path.getsize(src)
                with open(src, "r+b") as f:
                    f.truncate(size // 2)          # a torn write ...
                os.kill(os.getpid(), signal.SIGKILL)  # ... and the process dies before the rename
        return real_replace(src, dst, *a, **kw)
    os.replace = replace
from tlcore.runs.worker import main
sys.exit(main(sys.argv[1:]))
"""


def _write_text_set(folder: Path, n_per_class: int, seed: int) -> Path:
    """A small learnable two-class text set (the CSV format of DESIGN.md)."""
    rng = random.Random(seed)
    good = ["great", "lovely", "excellent", "wonderful", "superb", "enjoyable"]
    bad = ["awful", "boring", "terrible", "dreadful", "poor", "tedious"]
    rows = []
    for label, words in (("pos", good), ("neg", bad)):
        for _ in range(n_per_class):
            rows.append((" ".join(rng.choice(words) for _ in range(6)) + " film", label))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "target.csv"
    with open(path, "w", encoding="utf-8") as f:
        f.write("text,label\n")
        f.writelines(f"{t},{lab}\n" for t, lab in rows)
    return path


def _env(home: Path) -> dict:
    return dict(os.environ, TRANSFERLAB_HOME=str(home), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
                OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false", PYTHONPATH=str(ROOT))


def _worker_cmd(db_url: str, *extra: str) -> list[str]:
    return [sys.executable, "-c", _CHILD, "--db", db_url, "--poll", "0.1", "--heartbeat", "0.5", *extra]


def trial(mode: str, workdir: Path, *, seed: int = 0, epochs: int = 20) -> dict:
    """One kill-and-recover trial; returns what happened (``ok`` says whether it passed)."""
    from tlcore.config import FinetuneConfig
    from tlcore.runs import RunStore, queue

    rng = random.Random(seed)
    home = workdir / "home"
    home.mkdir(parents=True, exist_ok=True)
    os.environ["TRANSFERLAB_HOME"] = str(home)
    db_url = f"sqlite:///{home / 'runs.db'}"
    store = RunStore(db_url)
    data = _write_text_set(workdir / "data", n_per_class=100, seed=seed)
    cfg = FinetuneConfig(modality="text", backbone="tiny-text", target=str(data), strategy="full", epochs=epochs,
                         seed=seed, baselines=["knn", "scratch"])
    run = store.create_run(cfg, f"kill at {mode}")
    queue.enqueue(store, run.id)

    env = _env(home)
    if mode == "checkpoint write":
        env.update(TL_KILL_ON="state.json", TL_KILL_NTH=str(rng.randint(1, epochs - 1)))
    elif mode == "report write":
        env.update(TL_KILL_ON="report.json")
    log = open(workdir / "worker1.log", "w")
    t0 = time.monotonic()
    proc = subprocess.Popen(_worker_cmd(db_url, "--once"), cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    killed_at, stage = None, ""
    fraction = rng.random()
    random_delay = None
    try:
        while proc.poll() is None and time.monotonic() - t0 < 600:
            stage = (store.get(run.id).progress.get("last") or {}).get("stage", "")
            if mode == "features" and stage.startswith("features"):
                break
            if mode == "training" and stage == "train":
                last = store.get(run.id).progress.get("last") or {}
                if last.get("total") and last.get("step", 0) >= fraction * last["total"]:
                    break
            if mode == "random":
                if random_delay is None and store.get(run.id).status == "running":
                    # A random moment within the run: these runs take about 10-15 s after the claim on 2 cores.
                    random_delay = time.monotonic() + rng.uniform(0.0, 10.0)
                if random_delay is not None and time.monotonic() >= random_delay:
                    break
            time.sleep(0.05)
        if proc.poll() is None:
            stage = (store.get(run.id).progress.get("last") or {}).get("stage", "")
            proc.send_signal(signal.SIGKILL)
            killed_at = round(time.monotonic() - t0, 1)
        proc.wait(timeout=60)
    finally:
        log.close()
    self_killed = proc.returncode == -signal.SIGKILL and killed_at is None
    if self_killed:   # it died inside the write: the last stage it reported
        stage = (store.get(run.id).progress.get("last") or {}).get("stage", "")
    after_kill = store.get(run.id)

    # A second worker (same host: it sees the dead pid at once) resumes or fails the run.
    with open(workdir / "worker2.log", "w") as log2:
        subprocess.run(_worker_cmd(db_url, "--once"), cwd=ROOT, env=_env(home), stdout=log2, stderr=subprocess.STDOUT,
                       timeout=600, check=False)
    final = store.get(run.id)
    report_ok = False
    if final.status == "done":
        try:
            report = json.loads((Path(final.out) / "report.json").read_text())
            report_ok = "accuracy" in json.dumps(report.get("after", report))
        except (OSError, ValueError):
            report_ok = False
    leftover = [r.id for r in store.list_runs() if r.status in ("running", "queued")]
    killed = killed_at is not None or self_killed
    ok = (not leftover and ((final.status == "done" and report_ok) or (final.status == "failed" and bool(final.error)))
          and (final.attempts > 1 if killed else True))
    store.dispose()
    return {"mode": mode, "killed": killed, "killed_at_s": killed_at, "stage_at_kill": stage or "(before start)",
            "status_after_kill": after_kill.status, "final": final.status, "attempts": final.attempts,
            "error": final.error, "report_ok": report_ok, "stuck": leftover, "ok": ok}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workdir", default="/tmp/tl-worker-kill")
    p.add_argument("--json", help="write the trials here")
    args = p.parse_args(argv)
    import shutil

    shutil.rmtree(args.workdir, ignore_errors=True)
    results = []
    for i in range(args.trials):
        mode = MODES[i % len(MODES)]
        r = trial(mode, Path(args.workdir) / f"t{i:02d}", seed=args.seed + i)
        results.append(r)
        print(f"{i + 1:2d}. {mode:16s} killed={r['killed']!s:5s} stage={r['stage_at_kill']:16s} "
              f"-> {r['final']:7s} attempts={r['attempts']} report_ok={r['report_ok']} {'OK' if r['ok'] else 'FAIL'}",
              flush=True)
    lost = sum(not r["ok"] for r in results)
    stuck = sum(bool(r["stuck"]) for r in results)
    print(f"\n{len(results)} kills: {sum(r['final'] == 'done' for r in results)} resumed to done, "
          f"{sum(r['final'] == 'failed' for r in results)} failed with a reason, {stuck} stuck, {lost} not as required")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(main())
