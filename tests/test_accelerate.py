"""Multi-process training through Accelerate: the CLI's ``--num-processes 2`` on the CPU (gloo).

The same run with 1 and 2 processes: the 2-process one finishes, writes exactly one run folder (rank 0's; no
staging or scratch folders left anywhere), says it ran on 2 processes and reaches the 1-process accuracy within
the 95% interval that the 1-process report gives."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow


def _noisy_text_set(folder: Path, n_per_class: int = 40, noise: float = 0.2, seed: int = 0) -> Path:
    """Learnable sentiment-like sentences with a fifth of the labels flipped: accuracy below 1, a real interval."""
    rng = np.random.default_rng(seed)
    words = {"positive": ["great", "wonderful", "excellent", "lovely"], "negative": ["awful", "terrible", "horrible",
                                                                                     "dreadful"]}
    folder.mkdir(parents=True)
    with open(folder / "data.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        for label, vocab in words.items():
            other = next(k for k in words if k != label)
            for i in range(n_per_class):
                shown = other if rng.random() < noise else label
                w.writerow([f"the film was {vocab[rng.integers(len(vocab))]} number {i}", shown])
    return folder


def _finetune(data: Path, out: Path, processes: int) -> dict:
    cmd = [sys.executable, "-m", "tlcore", "finetune", "--modality", "text", "--target", str(data), "--backbone",
           "tiny-text", "--strategy", "full", "--epochs", "3", "--baselines", "scratch", "--quiet", "--out", str(out),
           "--json", str(out.parent.parent / f"{out.parent.name}.json"), "--num-processes", str(processes)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((out.parent.parent / f"{out.parent.name}.json").read_text())


def test_two_processes_match_one(tmp_path):
    data = _noisy_text_set(tmp_path / "data")
    scratch_before = set(Path(tempfile.gettempdir()).glob("tlcore-rank*"))
    one = _finetune(data, tmp_path / "runs1" / "run", 1)
    two = _finetune(data, tmp_path / "runs2" / "run", 2)

    assert one["num_processes"] == 1 and two["num_processes"] == 2
    assert sorted(p.name for p in (tmp_path / "runs2").iterdir()) == ["run"]      # no staging folder left
    assert (tmp_path / "runs2" / "run" / "report.json").exists()
    assert (tmp_path / "runs2" / "run" / "model").is_dir()
    assert set(Path(tempfile.gettempdir()).glob("tlcore-rank*")) == scratch_before  # rank 1's scratch removed
    assert len(two["training"]["history"]) == len(one["training"]["history"])
    lo, hi = one["after"]["accuracy_ci95"]
    assert hi - lo > 0                                   # a real interval, so the comparison can fail
    assert lo <= two["after"]["accuracy"] <= hi, (one["after"], two["after"])
    assert two["eval_predictions"]["true"] == one["eval_predictions"]["true"]     # the same eval split


def test_a_run_interrupted_on_one_process_resumes_on_two(tmp_path):
    """Checkpoints hold full, unwrapped weights and the epoch order comes from the seed, so ``--resume`` may use a
    different process count than the attempt it continues."""
    import os
    import signal
    import time

    data = _noisy_text_set(tmp_path / "data")
    out = tmp_path / "runs" / "run"
    base = [sys.executable, "-m", "tlcore", "finetune", "--modality", "text", "--target", str(data), "--backbone",
            "tiny-text", "--strategy", "full", "--epochs", "4", "--patience", "10", "--baselines", "", "--quiet",
            "--out", str(out)]
    first = subprocess.Popen(base, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    state = None
    while time.time() < deadline and first.poll() is None:
        state = next((tmp_path / "runs").glob(".run.partial-*/checkpoints/after/state.json"), None)
        if state is not None and json.loads(state.read_text())["epoch"] >= 2:
            break
        time.sleep(0.1)
    assert first.poll() is None, "the first attempt finished before it could be interrupted"
    os.kill(first.pid, signal.SIGKILL)                    # the machine goes away after epoch 2
    first.wait()
    assert not out.exists()
    done = subprocess.run(base + ["--resume", "--num-processes", "2", "--json", str(tmp_path / "r.json")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["num_processes"] == 2
    assert report["training"]["resumed_from_epoch"] >= 2 and report["training"]["epochs_run"] == 4
    assert [h["epoch"] for h in report["training"]["history"]] == [1, 2, 3, 4]
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["run"]


def test_a_multi_process_run_reports_live_progress_and_can_be_cancelled(tmp_path):
    """What the app's worker sees: rank 0's progress events arrive while the processes run, a cancel stops every
    process and keeps the checkpoint, and the resumed run (what a yielded run does) finishes from it."""
    import tlcore
    from tlcore.config import FinetuneConfig
    from tlcore.errors import Cancelled

    data = _noisy_text_set(tmp_path / "data")
    out = tmp_path / "runs" / "run"
    cfg = FinetuneConfig(modality="text", target=str(data), backbone="tiny-text", strategy="full", epochs=30,
                         patience=30, baselines=[], out=str(out), num_processes=2)
    events = []

    def cancel_after_epoch_2() -> bool:
        # "epoch 3 done": the epoch-2 checkpoint is written before epoch 3 starts ("epoch 2 done" itself comes just
        # before that checkpoint is written, and a cancel read then raced it on a busy machine: saved epoch 1)
        return any(e.stage == "train" and e.message == "epoch 3 done" for e in events)

    with pytest.raises(Cancelled):
        tlcore.finetune(cfg, progress=events.append, should_cancel=cancel_after_epoch_2)
    stages = [e.stage for e in events]
    assert "train" in stages and stages.index("train") > 0, stages         # earlier stages came first, live
    steps = [e.step for e in events if e.stage == "train"]
    assert steps == sorted(steps) and len(set(steps)) > 2                   # step by step, not one final event
    assert any(e.eta_s is not None for e in events)
    assert not out.exists()
    staging = next((tmp_path / "runs").glob(".run.partial-*"))
    saved = json.loads((staging / "checkpoints" / "after" / "state.json").read_text())["epoch"]
    assert 2 <= saved < 30                                                 # stopped before the end, checkpoint kept
    leftover = subprocess.run(["pgrep", "-f", str(out)], capture_output=True, text=True).stdout.split()
    assert leftover == [], "processes of the cancelled run are still running"

    resumed = []
    result = tlcore.finetune(cfg, progress=resumed.append, resume=True)
    assert result.report["training"]["resumed_from_epoch"] == saved
    assert [h["epoch"] for h in result.report["training"]["history"]] == list(range(1, 31))
    assert any(e.stage == "train" for e in resumed)
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["run"]


_VALIDATE = """
import json, os, sys
import torch
from tlcore.device import rank, world_size
from tlcore.models.registry import build_backbone
from tlcore.models.transfer_model import TransferModel
from tlcore.tasks.classification.train import ClassifyTask

torch.manual_seed(0)
model = TransferModel(build_backbone("tiny-text", "text", seed=0), ["neg", "pos"])
texts = [f"the film was {'great' if i % 3 else 'awful'} number {i}" for i in range(23)]
labels = [i % 2 for i in range(23)]
task = ClassifyTask(model, texts[:4], labels[:4], val_items=texts, val_y=labels, batch_size=2)
seen = []
model.register_forward_hook(lambda module, args, output: seen.append(1))
result = task.validate()
with open(os.path.join(sys.argv[1], f"rank{rank()}.json"), "w") as f:
    json.dump({"world": world_size(), "result": result, "forwards": len(seen)}, f)
"""


def test_validation_is_split_between_the_processes(tmp_path):
    """Each of 2 processes validates half the batches (23 items, batches of 4: 6 batches, 3 each) and both get the
    numbers one process gets on the whole split."""
    script = tmp_path / "validate.py"
    script.write_text(_VALIDATE)
    runs = {}
    for n in (1, 2):
        out = tmp_path / f"p{n}"
        out.mkdir()
        cmd = ([sys.executable, str(script), str(out)] if n == 1 else
               [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
                "--log-dir", str(tmp_path / "logs"), str(script), str(out)])
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                              cwd=Path(__file__).resolve().parents[1], env={**os.environ, "OMP_NUM_THREADS": "1",
                              "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
        assert done.returncode == 0, done.stderr[-3000:]
        runs[n] = [json.loads(f.read_text()) for f in sorted(out.glob("rank*.json"))]
    [one] = runs[1]
    assert one["world"] == 1 and one["forwards"] == 6
    assert [r["world"] for r in runs[2]] == [2, 2] and [r["forwards"] for r in runs[2]] == [3, 3]
    for r in runs[2]:
        assert r["result"]["val_accuracy"] == one["result"]["val_accuracy"]
        assert r["result"]["val_loss"] == pytest.approx(one["result"]["val_loss"], rel=1e-9)
