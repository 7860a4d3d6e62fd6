"""Calibration (issue 19): ECE with equal-mass bins against hand-computed values, temperature scaling recovering a
known T and never seeing eval, the report's block, the temperature saved with the model, and the Compare section."""

from __future__ import annotations

import json
import shutil
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import write_text_set

import tlcore
from tlcore.config import FinetuneConfig
from tlcore.evaluation.calibration import (
    N_BINS,
    ece_interval,
    expected_calibration_error,
    fit_temperature,
    reliability_bins,
    softmax,
)
from tlcore.models.before import BeforeHead
from tlcore.models.registry import build_backbone
from tlcore.models.transfer_model import CALIBRATION_FILE, TransferModel
from tlcore.settings.inductive import run_finetune
from tlcore.tasks.classification.calibrate import calibrate_run
from tlcore.tasks.job import Outcome

# ------------------------------------------------------------------ ECE and reliability bins

def test_ece_hand_computed_equal_mass_bins():
    # 4 items, 2 bins of 2 by confidence: {0.6 wrong, 0.7 right} and {0.8 right, 0.9 wrong}
    probs = np.array([[0.6, 0.4], [0.3, 0.7], [0.8, 0.2], [0.1, 0.9]])
    y = np.array([1, 1, 0, 0])
    # bin 1: accuracy 0.5, confidence 0.65 -> 0.15; bin 2: accuracy 0.5, confidence 0.85 -> 0.35
    assert expected_calibration_error(probs, y, n_bins=2) == pytest.approx(0.5 * 0.15 + 0.5 * 0.35)
    bins = reliability_bins(probs, y, n_bins=2)
    assert [b["count"] for b in bins] == [2, 2]
    assert [b["confidence"] for b in bins] == pytest.approx([0.65, 0.85])
    assert [b["accuracy"] for b in bins] == pytest.approx([0.5, 0.5])
    assert bins[0]["lower"] == pytest.approx(0.6) and bins[1]["upper"] == pytest.approx(0.9)
    # one bin: |mean accuracy - mean confidence| = |0.5 - 0.75|
    assert expected_calibration_error(probs, y, n_bins=1) == pytest.approx(0.25)
    # more bins than items: one item per bin, ECE = mean |correct - confidence|
    assert expected_calibration_error(probs, y, n_bins=N_BINS) == pytest.approx((0.6 + 0.3 + 0.2 + 0.9) / 4)


def test_ece_of_a_perfectly_calibrated_model_is_near_zero():
    rng = np.random.default_rng(0)
    n = 20000
    conf = rng.uniform(0.5, 1.0, n)
    y = (rng.uniform(size=n) >= conf).astype(int)         # the predicted class 0 is right with probability conf
    probs = np.stack([conf, 1 - conf], 1)
    ece = expected_calibration_error(probs, y)
    assert ece < 0.01
    lo, hi = ece_interval(probs, y, n_boot=200)
    assert 0 <= lo <= hi < 0.03 and hi > ece           # (a resampled ECE is biased upwards: lo may exceed ece)
    overconfident = np.stack([np.minimum(conf + 0.2, 1.0), 1 - np.minimum(conf + 0.2, 1.0)], 1)
    assert expected_calibration_error(overconfident, y) > 0.1


def test_ece_interval_resamples_whole_groups():
    rng = np.random.default_rng(1)
    n = 400
    conf = rng.uniform(0.5, 1.0, n)
    probs = np.stack([conf, 1 - conf], 1)
    # groups whose items are all right or all wrong together: far fewer independent units than items
    groups = [f"g{i // 40}" for i in range(n)]
    y = np.repeat(rng.integers(0, 2, n // 40), 40)
    items = ece_interval(probs, y, seed=0, n_boot=300)
    grouped = ece_interval(probs, y, seed=0, n_boot=300, groups=groups)
    assert grouped[1] - grouped[0] > items[1] - items[0]


# ------------------------------------------------------------------ temperature scaling

def test_fit_temperature_recovers_a_known_temperature():
    rng = np.random.default_rng(0)
    n, k, true_t = 20000, 4, 2.5
    logits = rng.normal(0, 3, (n, k))
    # labels drawn from softmax(logits / 2.5): the logits are over-confident by exactly T = 2.5
    p = softmax(logits, true_t)
    y = np.array([rng.choice(k, p=row) for row in p])
    assert fit_temperature(logits, y) == pytest.approx(true_t, rel=0.05)
    assert fit_temperature(logits / true_t, y) == pytest.approx(1.0, rel=0.05)
    assert fit_temperature(np.zeros((0, 3)), np.zeros(0, int)) == 1.0


def _job(eval_labels: np.ndarray, *, strategy: str = "linear_probe"):
    """A stand-in classification job: features, a softmax before head, eval logits; labels as given."""
    rng = np.random.default_rng(0)
    n_train, d = 60, 8
    y_train = np.repeat([0, 1], n_train // 2)
    f_train = rng.normal(0, 1, (n_train, d)) + 1.5 * y_train[:, None]
    f_eval = rng.normal(0, 1, (len(eval_labels), d))
    model = TransferModel(build_backbone("tiny-text", "text"), ["a", "b"], strategy=strategy)
    head = BeforeHead(torch.randn(2, d), torch.zeros(2), "softmax")
    data = SimpleNamespace(y_train=y_train, y_eval=eval_labels, classes=["a", "b"],
                           eval=SimpleNamespace(groups=None), train=SimpleNamespace(items=[]))
    return SimpleNamespace(d=data, f={"train": f_train, "eval": f_eval}, cfg=FinetuneConfig(strategy=strategy),
                           model=model, before_head=head, eval_logits=rng.normal(0, 3, (len(eval_labels), 2)),
                           val_idx=np.array([], dtype=np.int64))


def test_fitted_temperature_never_sees_eval():
    y_eval = np.random.default_rng(3).integers(0, 2, 40)
    outcomes = {"after": Outcome(None, {"linear_probe": {"C": 1.0}})}
    a, b = _job(y_eval), _job(1 - y_eval)             # every eval label swapped
    block_a, block_b = calibrate_run(a, outcomes), calibrate_run(b, outcomes)
    assert block_a["temperature"] == block_b["temperature"] == a.model.temperature
    assert block_a["fitted_on"]["split"] == "cross-validation" and block_a["fitted_on"]["items"] == 60
    assert block_a["after"]["ece"] != block_b["after"]["ece"]     # the eval labels do reach the eval numbers
    grouped = _job(y_eval)
    grouped.d.eval.groups = [f"g{i // 4}" for i in range(len(y_eval))]
    block = calibrate_run(grouped, outcomes)
    assert "cluster bootstrap over 10 eval groups" in block["ci_method"] and block["ci_groups"] == 10
    assert "before" in block and block["before"]["ece_ci95"][0] <= block["before"]["ece_ci95"][1]
    # a loop strategy without a validation split: no temperature, and the reason
    loop = _job(y_eval, strategy="full")
    block = calibrate_run(loop, {"after": Outcome(None, {"early_stopping": "off: 12 validation items"})})
    assert block["temperature"] is None and "no validation split" in block["skipped"] and "12 validation" in block["skipped"]
    assert loop.model.temperature == 1.0 and "after_calibrated" not in block


# ------------------------------------------------------------------ a tiny run, the saved model, old folders

@pytest.fixture(scope="module")
def probe_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("calib")
    data = write_text_set(root / "data", n_per_class=20)
    cfg = FinetuneConfig(modality="text", target=str(data), backbone="tiny-text", strategy="linear_probe",
                         out=str(root / "run"), baselines=[])
    return run_finetune(cfg), root / "run"


def test_tiny_run_reports_calibration_and_saves_the_temperature(probe_run):
    report, run = probe_run
    block = report["calibration"]
    assert block["n_bins"] == N_BINS and "equal-mass" in block["ece_definition"]
    assert "skipped" in block["before"]                   # no source: the nearest class mean has no probabilities
    for name in ("after", "after_calibrated"):
        assert block[name]["ece_ci95"][0] <= block[name]["ece"] <= block[name]["ece_ci95"][1]
        assert sum(b["count"] for b in block[name]["bins"]) == report["data"]["eval"]
    assert block["temperature"] > 0 and block["fitted_on"]["split"] == "cross-validation"
    assert json.loads((run / "report.json").read_text())["calibration"] == block
    saved = json.loads((run / "model" / CALIBRATION_FILE).read_text())
    assert saved["temperature"] == block["temperature"] and saved["fitted_on"] == block["fitted_on"]
    model = TransferModel.from_pretrained(run / "model")
    assert model.temperature == block["temperature"]
    items = report["eval_predictions"]["items"]
    logits = model.predict_logits(items)
    proba = model.predict_proba(items)
    np.testing.assert_allclose(proba, softmax(logits, block["temperature"]), atol=1e-5)
    assert proba.argmax(1).tolist() == report["eval_predictions"]["after"]    # the argmax does not change
    # the report's calibrated ECE is the saved model's
    assert expected_calibration_error(proba, report["eval_predictions"]["true"]) == pytest.approx(
        block["after_calibrated"]["ece"], abs=1e-4)


def test_old_model_folder_without_calibration_loads_with_t1(probe_run, tmp_path):
    _, run = probe_run
    old = tmp_path / "old"
    shutil.copytree(run / "model", old)
    (old / CALIBRATION_FILE).unlink()
    model = TransferModel.from_pretrained(old)
    assert model.temperature == 1.0 and model.calibration is None
    items = ["the film was great number 1", "the film was awful number 2"]
    np.testing.assert_allclose(model.predict_proba(items), softmax(model.predict_logits(items)), atol=1e-6)
    model.save_pretrained(tmp_path / "again")                 # nothing fitted: no file written
    assert not (tmp_path / "again" / CALIBRATION_FILE).exists()


def test_loop_strategy_with_a_validation_split_fits_on_it(tmp_path):
    data = write_text_set(tmp_path / "data", n_per_class=80)
    cfg = FinetuneConfig(modality="text", target=str(data), backbone="tiny-text", strategy="full", epochs=1,
                         batch_size=32, val_fraction=0.5, out=str(tmp_path / "run"), baselines=[])
    report = run_finetune(cfg)
    block = report["calibration"]
    assert report["training"]["val_size"] >= 50
    assert block["fitted_on"] == {"split": "validation", "items": report["training"]["val_size"],
                                  "how": block["fitted_on"]["how"]} and "never eval" in block["fitted_on"]["how"]
    assert TransferModel.from_pretrained(tmp_path / "run" / "model").temperature == block["temperature"]


# ------------------------------------------------------------------ the Compare page

def test_compare_page_shows_the_calibration_section_only_when_the_report_has_it(app_home, probe_run):
    from test_app_pages import app, make_report_run, no_exceptions

    report = json.loads((probe_run[1] / "report.json").read_text())
    _, run = make_report_run(app_home, report, task="classify", name="calibrated run")
    at = app("pages/compare.py", run=run.id)
    no_exceptions(at)
    assert "Calibration" in [s.value for s in at.subheader]
    figure = next(json.loads(c.proto.spec) for c in at.get("plotly_chart") if "Reliability" in c.proto.spec)
    assert {t["name"] for t in figure["data"]} == {"perfectly calibrated", "after", "after, calibrated"}
    table = next(df.value for df in at.dataframe if "ECE" in df.value.columns)
    assert list(table["model"]) == ["after", "after, calibrated"]
    assert table["ECE"].iloc[0] == round(report["calibration"]["after"]["ece"], 4)
    assert any("Temperature T =" in c.value for c in at.caption)
    old = {k: v for k, v in report.items() if k != "calibration"}        # a report from before calibration
    _, run = make_report_run(app_home, old, task="classify", name="old run")
    at = app("pages/compare.py", run=run.id)
    no_exceptions(at)
    assert "Calibration" not in [s.value for s in at.subheader]
    assert not any("Reliability" in c.proto.spec for c in at.get("plotly_chart"))


def test_predict_and_the_onnx_export_show_the_calibrated_probabilities(probe_run, tmp_path):
    report, run = probe_run
    t = report["calibration"]["temperature"]
    items = report["eval_predictions"]["items"][:4]
    loaded = tlcore.load_run(run)
    want = softmax(loaded.after_model.predict_logits(items), t)
    got = loaded.predict(items, top_k=2)                        # what `predict` and Try it show
    assert [row["top"][0][1] for row in got] == pytest.approx(want.max(1).round(4).tolist(), abs=1e-4)
    result = tlcore.export_onnx(run, out=tmp_path / "onnx")
    assert result.preprocessing["tlcore"]["temperature"] == t
    np.testing.assert_allclose(tlcore.load_onnx_model(result.folder).predict_proba(items), want, atol=1e-4)
