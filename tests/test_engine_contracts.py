"""The one engine's contracts: the negative-transfer policy, train/eval overlap, the report envelope and
``baselines_skipped``, the "before" model saved with the run, config validation shared by the CLI, and the
trainer's early-stopping / resume / cancel behaviour."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import write_image_set, write_text_set
from torch import nn

import tlcore
from tlcore.config import FinetuneConfig
from tlcore.errors import Cancelled, ConfigError, DataError
from tlcore.evaluation.policy import report_alerts, split_alerts, transfer_alerts, transfer_warnings

ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------- negative-transfer policy, every branch

@pytest.mark.parametrize("higher, diff, ci, ref, expected", [
    (True, -0.10, (-0.15, -0.05), "before", "negative transfer:"),          # worse beyond the CI
    (True, 0.01, (-0.02, 0.04), "scratch", "negative transfer risk:"),      # does not beat scratch
    (True, 0.01, (-0.02, 0.04), "before", "no clear gain over before"),     # within the CI of another reference
    (True, 0.10, (0.05, 0.15), "scratch", None),                            # clearly better
    (False, 0.10, (0.05, 0.15), "before", "negative transfer:"),            # error rate rose: worse
    (False, -0.10, (-0.15, -0.05), "before", None),                         # error rate fell: better
    (False, -0.01, (-0.03, 0.01), "scratch", "negative transfer risk:"),
    (False, -0.01, (-0.03, 0.01), "before", "no clear gain over before"),
])
def test_policy_branches(higher, diff, ci, ref, expected):
    out = transfer_warnings({ref: {"difference": diff, "ci95": list(ci)}}, metric="m", higher_is_better=higher)
    if expected is None:
        assert out == []
    else:
        assert len(out) == 1 and out[0].startswith(expected)
        gain = 100 * diff * (1 if higher else -1)
        assert f"{gain:+.1f}" in out[0] or f"{abs(gain):.1f}" in out[0]


def test_policy_ci_edge_zero_counts_as_no_gain():
    # A lower bound of exactly 0 is not "beyond the CI".
    assert transfer_warnings({"scratch": {"difference": 0.05, "ci95": [0.0, 0.1]}})[0].startswith("negative transfer risk")


@pytest.mark.parametrize("ref, diff, ci, kind", [
    ("before", -0.10, [-0.15, -0.05], "negative_transfer"),
    ("scratch", 0.01, [-0.02, 0.04], "negative_transfer_risk"),
    ("knn", 0.01, [-0.02, 0.04], "no_clear_gain"),
])
def test_warnings_are_structured_and_old_texts_read_by_kind(ref, diff, ci, kind):
    (entry,) = transfer_alerts({ref: {"difference": diff, "ci95": ci}})
    assert entry == {"kind": kind, "against": ref, "difference": diff, "ci95": ci, "text": entry["text"]}
    texts, detail = split_alerts([entry, "2 file(s)/row(s) skipped: see data.problems"])
    assert texts == [entry["text"], "2 file(s)/row(s) skipped: see data.problems"]
    assert [d["kind"] for d in detail] == [kind, "skipped_inputs"]
    # A report written before warnings_detail existed: the kinds come from the texts.
    old = report_alerts({"warnings": texts})
    assert [a["kind"] for a in old] == [kind, "skipped_inputs"] and old[0]["against"] is None
    assert report_alerts({"warnings": texts, "warnings_detail": detail}) == detail


# ---------------------------------------------------------------- runs on tiny data

def _run(tmp_path, name="run", **kw):
    base = dict(modality="text", backbone="tiny-text", epochs=1, out=str(tmp_path / name), baselines=[])
    return tlcore.finetune(**{**base, **kw})


def test_user_eval_overlapping_target_is_refused(tmp_path):
    data = write_text_set(tmp_path / "t")
    with pytest.raises(DataError, match="also appear in the eval data"):
        _run(tmp_path, target=str(data), eval=str(data))
    assert not (tmp_path / "run" / "report.json").exists()


def test_held_out_split_drops_duplicates_and_source_overlap_is_counted(tmp_path):
    t = write_text_set(tmp_path / "t")
    rows = (t / "data.csv").read_text().splitlines()
    (t / "data.csv").write_text("\n".join(rows + rows[1:]) + "\n")          # every item twice
    src = write_text_set(tmp_path / "s", seed=0)                            # the same items as the target
    result = _run(tmp_path, target=str(t), source=str(src))
    d = result.report["data"]
    overlap = d["eval_overlap"]
    assert overlap["target"] > 0 and overlap["source"] > 0
    assert any(w.startswith("train/eval overlap:") for w in result.warnings)
    assert [d["text"] for d in result.report["warnings_detail"]] == result.warnings
    assert "eval_overlap" in {d["kind"] for d in result.report["warnings_detail"]}
    # No eval item is left in the training data.
    from tlcore.data.overlap import overlapping

    eval_texts = result.report["eval_predictions"]["items"]
    from tlcore.data.loaders import load_dataset

    train_texts = [x for x in load_dataset(t, "text").items if x not in eval_texts]
    assert len(train_texts) == 0 or overlapping(eval_texts, train_texts, "text") == []
    assert d["train"] + d["eval"] + overlap["target"] == 2 * 24


def test_report_envelope_and_baselines_skipped(tmp_path):
    data = write_text_set(tmp_path / "t")
    result = _run(tmp_path, target=str(data), baselines=["knn"])
    r = json.loads((tmp_path / "run" / "report.json").read_text())
    assert r == json.loads(json.dumps(result.to_dict(), default=float))
    assert r["report_schema"] == 2 and r["tlcore_version"] == tlcore.__version__ and "transferlab_version" not in r
    assert r["setting"] == "inductive" and r["task"] == "classify"
    assert set(r["baselines"]) == {"knn"} and list(r["baselines_skipped"]) == ["scratch", "classical"]
    assert "not requested" in r["baselines_skipped"]["scratch"]
    assert {"train", "val", "eval", "source", "unlabeled"} <= set(r["data"])
    card = (tmp_path / "run" / "README.md").read_text()
    assert "Baselines not computed: scratch" in card
    # Without a source, "before" is named for what it is.
    assert "nearest class mean" in r["before"]["kind"] and "target's training labels" in r["before"]["kind"]


def test_a_finished_run_is_never_overwritten(tmp_path):
    data = write_text_set(tmp_path / "t")
    _run(tmp_path, target=str(data))
    before = (tmp_path / "run" / "report.json").read_bytes()
    with pytest.raises(ConfigError, match="already holds a finished run"):
        _run(tmp_path, target=str(data), strategy="full")
    assert (tmp_path / "run" / "report.json").read_bytes() == before


@pytest.mark.parametrize("modality, make, source", [("text", write_text_set, False), ("text", write_text_set, True),
                                                    ("image", write_image_set, False)])
def test_load_run_predicts_exactly_what_the_report_scored(tmp_path, modality, make, source):
    target = make(tmp_path / "t")
    extra = {"source": str(make(tmp_path / "s", seed=1))} if source else {}
    backbone = {"text": "tiny-text", "image": "tiny-image"}[modality]
    result = _run(tmp_path, modality=modality, backbone=backbone, target=str(target), strategy="full", **extra)
    run = tlcore.load_run(result.run_dir)
    preds = result.report["eval_predictions"]
    items = preds["items"]
    classes = result.report["data"]["classes"]
    for which in ("before", "after"):
        rows = run.predict(items, model=which)
        assert [classes.index(r["prediction"]) for r in rows] == preds[which], which
    kind = run.predict(items[:1], model="before")[0]["score"]
    assert kind == ("probability" if source else "cosine")


# ---------------------------------------------------------------- one validation for the CLI and the form

@pytest.mark.parametrize("flag, value, message", [
    ("batch_size", 0, "batch-size must be between 1 and 1024; got 0"),
    ("epochs", 1_000_000_000, "epochs must be between 1 and 500"),
    ("epochs", -1, "epochs must be between 1 and 500"),
    ("lr", float("nan"), "lr must be a finite number"),
    ("lr", -1.0, "lr must be between"),
    ("val_fraction", 5.0, "val-fraction must be between 0 and 0.5"),
    ("max_per_class", -1, "max-per-class must be between 1"),
    ("lora_r", 0, "lora-r must be between 1 and 256"),
    ("baselines", ["magic"], "unknown baseline(s) ['magic']"),
])
def test_cli_refuses_what_the_config_refuses_with_the_same_message(tmp_path, flag, value, message):
    data = write_text_set(tmp_path / "t")
    cfg = FinetuneConfig(modality="text", backbone="tiny-text", target=str(data), out=str(tmp_path / "o"), **{flag: value})
    with pytest.raises(ConfigError) as exc:
        cfg.validate()
    assert message in str(exc.value)
    cli_value = ",".join(value) if isinstance(value, list) else str(value)
    out = subprocess.run([sys.executable, "-m", "tlcore", "finetune", "--modality", "text", "--backbone", "tiny-text",
                          "--target", str(data), "--out", str(tmp_path / "o"), f"--{flag.replace('_', '-')}", cli_value],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 2 and f"error: {exc.value}" in out.stderr
    assert not (tmp_path / "o").exists()


def test_cli_checks_the_json_path_before_working(tmp_path):
    data = write_text_set(tmp_path / "t")
    out = subprocess.run([sys.executable, "-m", "tlcore", "finetune", "--modality", "text", "--backbone", "tiny-text",
                          "--target", str(data), "--out", str(tmp_path / "o"), "--json", str(tmp_path / "nope" / "r.json")],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 2 and "does not exist" in out.stderr and not (tmp_path / "o" / "report.json").exists()


# ---------------------------------------------------------------- the one trainer

class _ToyTask:
    """Learns y = x·w; the validation score is scripted per epoch to drive early stopping."""

    def __init__(self, model, scores):
        self.model, self.scores, self.calls = model, list(scores), 0
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(32, 4, generator=g)
        self.y = self.x @ torch.tensor([1.0, -2.0, 0.5, 3.0])

    def __len__(self):
        return 32

    def loss(self, idx, state):
        return nn.functional.mse_loss(self.model(self.x[idx]).squeeze(1), self.y[idx]), float(len(idx))

    def validate(self):
        self.calls += 1
        return {"score": self.scores[self.calls - 1], "val_metric": self.scores[self.calls - 1]}


def _trainer(model, task, tmp_path, **kw):
    from tlcore.training.trainer import TrainConfig, Trainer

    cfg = TrainConfig(**{"epochs": 6, "batch_size": 8, "lr": 1e-2, "patience": 2, "freeze_bn": False, **kw})
    return Trainer(model, task, cfg, train_modules=[model], checkpoint_dir=tmp_path / "ck")


def test_trainer_early_stops_keeps_best_and_resume_does_not_train_again(tmp_path):
    model = nn.Linear(4, 1)
    result = _trainer(model, _ToyTask(model, [0.1, 0.5, 0.4, 0.3, 0.9, 0.9]), tmp_path).fit()
    assert result.epochs_run == 4 and result.stopped_early and result.best_epoch == 2
    assert result.best("val_metric") == 0.5
    best = {k: v.clone() for k, v in model.state_dict().items()}
    again = nn.Linear(4, 1)
    task = _ToyTask(again, [1.0] * 6)
    resumed = _trainer(again, task, tmp_path).fit(resume=True)
    assert task.calls == 0 and resumed.epochs_run == 4 and resumed.resumed_from_epoch == 4
    for k, v in again.state_dict().items():
        assert torch.equal(v, best[k])


def test_trainer_cancel_keeps_checkpoint_and_resumes(tmp_path):
    from tlcore.training.trainer import TrainConfig, Trainer

    model = nn.Linear(4, 1)
    steps = []

    def cancel():
        steps.append(1)
        return len(steps) > 9          # after the first epoch (4 steps) and a bit

    task = _ToyTask(model, [0.1 * i for i in range(1, 7)])
    with pytest.raises(Cancelled):
        Trainer(model, task, TrainConfig(epochs=6, batch_size=8, patience=None, freeze_bn=False), train_modules=[model],
                checkpoint_dir=tmp_path / "ck", should_cancel=cancel).fit()
    state = json.loads((tmp_path / "ck" / "state.json").read_text())
    assert state["epoch"] == 2
    model2 = nn.Linear(4, 1)
    res = Trainer(model2, _ToyTask(model2, [0.1 * i for i in range(1, 7)]),
                  TrainConfig(epochs=6, batch_size=8, patience=None, freeze_bn=False), train_modules=[model2],
                  checkpoint_dir=tmp_path / "ck").fit(resume=True)
    assert res.resumed_from_epoch == 2 and res.epochs_run == 6 and len(res.history) == 6


def test_trainer_without_validation_never_stops_early():
    from tlcore.training.trainer import TrainConfig, Trainer

    model = nn.Linear(4, 1)
    task = _ToyTask(model, [])
    task.validate = lambda: None
    res = Trainer(model, task, TrainConfig(epochs=5, batch_size=8, patience=1, freeze_bn=False), train_modules=[model]).fit()
    assert res.epochs_run == 5 and not res.stopped_early and res.history[-1]["train_loss"] < res.history[0]["train_loss"]
    assert np.isfinite(res.history[-1]["train_loss"])


def test_every_report_kind_has_the_one_envelope(tmp_path):
    """Fine-tuning, clustering, the curve, the sweep and the diagnosis: one schema number, the same shared keys."""
    data = write_text_set(tmp_path / "t", n_per_class=10)
    shared = {"report_schema", "tlcore_version", "setting", "task", "modality", "seed", "device", "precision",
              "environment", "config", "warnings", "warnings_detail"}
    reports = {
        "finetune": _run(tmp_path, target=str(data), baselines=[]).report,
        "cluster": tlcore.api.cluster_job(tlcore.ClusterConfig(modality="text", data=str(data), backbone="tiny-text",
                                                              k=2, out=str(tmp_path / "cl"))),
        "curve": tlcore.api.curve_job(tlcore.CurveConfig(modality="text", target=str(data), backbone="tiny-text",
                                                         shots=[2], seeds=1, epochs=1, scratch=False,
                                                         out=str(tmp_path / "cv"))),
        "sweep": tlcore.sweep(out=tmp_path / "sw", strategies=["linear_probe"], modality="text", backbone="tiny-text",
                              target=str(data), baselines=[]),
        "diagnosis": tlcore.diagnose(data, data, modality="text", backbone="tiny-text").report,
    }
    for kind, r in reports.items():
        assert shared <= set(r), (kind, shared - set(r))
        assert r["report_schema"] == 2 and r["tlcore_version"] == tlcore.__version__, kind
        assert r.get("kind") == (None if kind == "finetune" else kind)
    for kind in ("cluster", "curve", "sweep"):
        folder = {"cluster": "cl", "curve": "cv", "sweep": "sw"}[kind]
        assert json.loads((tmp_path / folder / "report.json").read_text())["report_schema"] == 2


def test_runs_are_comparable_only_on_the_same_task_setting_and_eval_items():
    from tlcore.reporting.envelope import comparison_key

    base = {"task": "classify", "setting": "inductive",
            "eval_predictions": {"items": ["a", "b"], "true": [0, 1], "after": [0, 0]}}
    other_model = {**base, "strategy": "full", "eval_predictions": {**base["eval_predictions"], "after": [1, 1]}}
    assert comparison_key(base) == comparison_key(other_model)          # predictions do not matter
    assert comparison_key(base) != comparison_key({**base, "setting": "transductive"})
    assert comparison_key(base) != comparison_key({**base, "task": "multilabel"})
    moved = {**base, "eval_predictions": {**base["eval_predictions"], "items": ["a", "c"]}}
    assert comparison_key(base) != comparison_key(moved)
