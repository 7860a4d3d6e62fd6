"""Calibration for NER (token level) and multi-label (item-label pairs), and ASR's reason for none (issue 19 part 3):
the event-level ECE against hand-computed values, temperatures fitted on validation data only (runs whose eval
labels are scrambled keep them), saved with the model and applied by predict, the report's block, and the Compare
page's section."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import write_asr_clips, write_reviews

import tlcore
from tlcore.config import FinetuneConfig
from tlcore.evaluation.calibration import (
    N_BINS,
    binary_calibration_summary,
    ece_interval,
    events_ece,
    expected_calibration_error,
    fit_binary_temperature,
    label_events,
    sigmoid,
    softmax,
)
from tlcore.models.transfer_model import CALIBRATION_FILE
from tlcore.settings.inductive import run_finetune
from tlcore.tasks.multilabel.calibrate import calibration_block, fit_on_validation
from tlcore.tasks.multilabel.metrics import choose_thresholds
from tlcore.tasks.multilabel.model import model_logits
from tlcore.tasks.multilabel.pipeline import prepare_data, validation_split
from tlcore.tasks.ner import pipeline as ner
from tlcore.tasks.ner.data import encode, load_ner
from tlcore.tasks.ner.model import TokenTagger, word_probabilities, word_targets

MODELS = ("before", "after", "after_calibrated")

# ------------------------------------------------------------------ events: multi-label pairs, grouped intervals


def test_multilabel_events_are_item_label_pairs_hand_computed():
    probs = np.array([[0.9, 0.2], [0.6, 0.1]])
    y = np.array([[1, 0], [0, 0]])
    conf, outcome = label_events(probs, y)
    assert conf.tolist() == [0.9, 0.2, 0.6, 0.1] and outcome.tolist() == [1, 0, 0, 0]
    # 4 events, more bins than events: one per bin, ECE = mean |outcome - p| = (0.1 + 0.2 + 0.6 + 0.1) / 4
    block = binary_calibration_summary(probs, y)
    assert block["ece"] == pytest.approx(0.25) and sum(b["count"] for b in block["bins"]) == 4
    # two bins by probability: {0.1, 0.2} (no label: |0 - 0.15|) and {0.6, 0.9} (one label: |0.5 - 0.75|)
    assert events_ece(conf, outcome, n_bins=2) == pytest.approx(0.5 * 0.15 + 0.5 * 0.25)
    bce = -np.mean([np.log(0.9), np.log(0.8), np.log(0.4), np.log(0.9)])
    assert block["nll"] == pytest.approx(bce)
    assert block["ece_ci95"][0] <= block["ece_ci95"][1]


def test_equal_units_are_resampled_as_the_per_resample_loop_does():
    """The block path for units of one size (a multi-label item's labels) draws what the loop draws."""
    rng = np.random.default_rng(4)
    n, size = 60, 3
    probs = rng.dirichlet([1, 1], n * size)
    y = rng.integers(0, 2, n * size)
    groups = np.repeat([f"u{i}" for i in range(n)], size)
    got = ece_interval(probs, y, seed=7, n_boot=200, groups=groups)
    draw = np.random.default_rng(7)
    members = [np.flatnonzero(groups == g) for g in np.unique(groups)]
    eces = [expected_calibration_error(probs[idx], y[idx]) for idx in
            (np.concatenate([members[u] for u in draw.integers(0, n, size=n)]) for _ in range(200))]
    assert got == pytest.approx([np.quantile(eces, 0.025), np.quantile(eces, 0.975)])
    # resampling whole 3-event units, not events: the interval differs from the event-level one
    assert got != pytest.approx(ece_interval(probs, y, seed=7, n_boot=200))


def test_binary_temperature_recovers_a_known_temperature():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, (5000, 4))
    y = (rng.uniform(size=logits.shape) < sigmoid(logits, 2.5)).astype(int)   # over-confident by exactly T = 2.5
    assert fit_binary_temperature(logits, y) == pytest.approx(2.5, rel=0.08)
    assert sigmoid(np.array([2.0]), 2.0)[0] == pytest.approx(1 / (1 + np.exp(-1.0)))
    assert sigmoid(np.array([-1e4, 1e4]), 0.05).tolist() == pytest.approx([0.0, 1.0])     # no overflow


def test_multilabel_without_a_validation_part_fits_no_temperature():
    t, fitted = fit_on_validation(np.zeros((0, 3)), np.zeros((0, 3)), "3 of 10 items would be held out")
    assert t is None and "no validation part (3 of 10 items" in fitted["skipped"]
    block = calibration_block(before_proba=None, eval_logits=np.array([[2.0, -1.0]]), y_eval=np.array([[1, 0]]),
                              temperature=t, fitted=fitted)
    assert block["temperature"] is None and block["skipped"] == fitted["skipped"] and "after_calibrated" not in block
    assert "centroid" in block["before"]["skipped"] and block["after"]["bins"]


# ------------------------------------------------------------------ NER: word-level, fitted on validation sentences

@pytest.fixture(scope="module")
def ner_demo(tmp_path_factory):
    from tlcore.data.demos.ner_shift import make_ner_shift

    out = tmp_path_factory.mktemp("nercal") / "demo"
    make_ner_shift(out, 0, "small")
    return out


def _ner_cfg(demo: Path, out: Path, **kw) -> FinetuneConfig:
    base = dict(task="ner", modality="text", backbone="tiny-text", epochs=2, batch_size=8, target=str(demo / "target"),
                eval=str(demo / "eval"), source=str(demo / "source"), out=str(out), baselines=[], strategy="full",
                val_fraction=0.35)
    return FinetuneConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def ner_run(ner_demo, tmp_path_factory):
    out = tmp_path_factory.mktemp("nerrun") / "run"
    return run_finetune(_ner_cfg(ner_demo, out)), out


def test_ner_block_is_word_level_and_the_temperature_is_saved(ner_run, ner_demo):
    report, run = ner_run
    block = report["calibration"]
    eval_data = load_ner(ner_demo / "eval")
    n_words = sum(len(s) for s in eval_data.sentences)
    assert block["words"] + block["words_cut_off"] == n_words and block["sentences"] == len(eval_data)
    assert "every eval word" in block["ece_definition"] and "eval sentences" in block["ci_method"]
    for name in MODELS:                       # "before" (the source-trained tagger) has probabilities too
        assert block[name]["ece_ci95"][0] <= block[name]["ece"] <= block[name]["ece_ci95"][1]
        assert sum(b["count"] for b in block[name]["bins"]) == block["words"] and len(block[name]["bins"]) == N_BINS
    assert block["fitted_on"]["split"] == "validation"
    assert block["fitted_on"]["items"] == report["training"]["after"]["val_size"] == 4 and "never eval" in \
        block["fitted_on"]["how"]
    saved = json.loads((run / "model" / CALIBRATION_FILE).read_text())
    assert saved["temperature"] == block["temperature"] != 1.0
    assert not (run / "before" / CALIBRATION_FILE).exists()       # "before" is the model as it stood: T = 1

    # the loaded model's calibrated word probabilities on eval give the block's after_calibrated numbers
    model = TokenTagger.from_pretrained(run / "model")
    assert model.temperature == block["temperature"]
    enc = encode(model.tokenizer, eval_data.sentences, model.max_length)
    probs, where = word_probabilities(model, enc)
    gold = word_targets(where, eval_data.tags, model.tags)
    assert expected_calibration_error(probs, gold) == pytest.approx(block["after_calibrated"]["ece"], abs=1e-4)
    assert model.predict_tags(enc) == report["eval_predictions"]["after"]        # tags do not change with T

    # predict shows each word's calibrated tag probability; a span's is its least confident word's
    rows = ner.predict(run, [" ".join(s) for s in eval_data.sentences[:4]], model=model)
    logits, where = model.word_logits(encode(model.tokenizer, eval_data.sentences[:4], model.max_length))
    want = softmax(logits, block["temperature"]).max(1)
    assert [c for r in rows for c in r["confidences"]] == pytest.approx(want.round(4).tolist(), abs=1e-4)
    assert want.round(4).tolist() != pytest.approx(softmax(logits).max(1).round(4).tolist(), abs=1e-3)
    for r in rows:
        for s in r["spans"]:
            assert s["confidence"] == min(r["confidences"][s["start"]:s["end"]])
    # the ONNX export carries T too: the same calibrated word probabilities through onnxruntime
    tlcore.export_onnx(run)
    texts = [" ".join(s) for s in eval_data.sentences[:4]]
    onnx = tlcore.load_run(run).predict(texts, backend="onnx")
    assert [r["confidences"] for r in onnx] == [pytest.approx(r["confidences"], abs=2e-4) for r in rows]


def test_ner_temperature_never_sees_the_eval_tags(ner_run, ner_demo, tmp_path):
    """The same run with every eval tag replaced: the temperature stays; the eval numbers move."""
    report, _ = ner_run
    rows = [json.loads(line) for line in next((ner_demo / "eval").glob("*.jsonl")).read_text().splitlines() if line]
    scrambled = tmp_path / "eval" / "eval.jsonl"
    scrambled.parent.mkdir()
    scrambled.write_text("".join(json.dumps({"tokens": r["tokens"], "tags": ["B-PER"] + ["O"] * (len(r["tokens"]) - 1)})
                                 + "\n" for r in rows), encoding="utf-8")
    other = run_finetune(_ner_cfg(ner_demo, tmp_path / "run", eval=str(scrambled.parent)))["calibration"]
    assert other["temperature"] == report["calibration"]["temperature"]
    assert other["after"]["ece"] != report["calibration"]["after"]["ece"]


def test_ner_without_a_validation_split_says_why(ner_demo, tmp_path):
    report = run_finetune(_ner_cfg(ner_demo, tmp_path / "run", strategy="linear_probe", val_fraction=0.0))
    block = report["calibration"]
    assert block["temperature"] is None and "after_calibrated" not in block
    assert "no validation split" in block["skipped"] and "--val-fraction 0" in block["skipped"]
    assert not (tmp_path / "run" / "model" / CALIBRATION_FILE).exists()
    assert TokenTagger.from_pretrained(tmp_path / "run" / "model").temperature == 1.0


# ------------------------------------------------------------------ multi-label: pairs, thresholds on calibrated scores

@pytest.fixture(scope="module")
def ml_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mlcal")
    cfg = FinetuneConfig(modality="text", task="multilabel", target=str(write_reviews(tmp / "target.csv", n=90)),
                         backbone="tiny-text", out=str(tmp / "run"), baselines=[], val_fraction=0.2)
    return cfg, run_finetune(cfg), tmp / "run"


def test_multilabel_block_thresholds_and_predict_use_the_validation_temperature(ml_run):
    cfg, report, run = ml_run
    block, labels = report["calibration"], report["data"]["classes"]
    assert "centroid" in block["before"]["skipped"]           # no source: the reference has no probabilities
    n_pairs = report["data"]["eval"] * len(labels)
    for name in MODELS[1:]:
        assert block[name]["ece_ci95"][0] <= block[name]["ece"] <= block[name]["ece_ci95"][1]
        assert sum(b["count"] for b in block[name]["bins"]) == n_pairs
    assert "(item, label)" in block["ece_definition"] and "eval items" in block["ci_method"]
    fitted = block["fitted_on"]
    assert fitted["items"] == report["data"]["val"] and fitted["pairs"] == fitted["items"] * len(labels)
    t = block["temperature"]
    assert t != pytest.approx(1.0, abs=0.02)
    assert json.loads((run / "model" / CALIBRATION_FILE).read_text())["temperature"] == t

    # the saved thresholds are those chosen on the validation items' *calibrated* probabilities
    loaded = tlcore.load_run(run)
    data = prepare_data(cfg)
    _, val, _ = validation_split(len(data.train), cfg)
    val_logits = model_logits(loaded.after_model, [data.train.items[i] for i in val])
    thresholds = np.array([report["thresholds"]["after"][label] for label in labels])
    assert np.allclose(thresholds, choose_thresholds(sigmoid(val_logits, t), data.y_train[val], 0.5))
    assert not np.allclose(thresholds, choose_thresholds(sigmoid(val_logits), data.y_train[val], 0.5))

    # predict and Try it show sigmoid(logits / T), compared with the saved thresholds
    texts = ["the courier was late and the staff rude", "cheap but it broke"]
    out = loaded.predict(texts, top_k=len(labels))
    want = sigmoid(model_logits(loaded.after_model, texts), t)
    for row, p in zip(out, want):
        assert dict(row["top"]) == pytest.approx({label: round(float(q), 4) for label, q in zip(labels, p)}, abs=1e-4)
        assert set(row["labels"]) == {label for label, q in zip(labels, p) if q > report["thresholds"]["after"][label]}
    # the ONNX export carries T too: the same calibrated scores through onnxruntime
    tlcore.export_onnx(run)
    onnx = tlcore.load_run(run).predict(texts, top_k=len(labels), backend="onnx")
    assert [dict(r["top"]) for r in onnx] == [pytest.approx(dict(r["top"]), abs=2e-4) for r in out]


def test_multilabel_temperature_never_sees_the_eval_labels(tmp_path):
    """Explicit source and eval sets; the eval labels scrambled: the same temperature and thresholds, and "before"
    (the source probe) is measured."""
    source = write_reviews(tmp_path / "source.csv", n=40, seed=3)
    train = write_reviews(tmp_path / "train.csv", n=60, seed=1)
    eval_rows = write_reviews(tmp_path / "eval.csv", n=24, seed=2).read_text().splitlines()
    scrambled = tmp_path / "scrambled.csv"
    scrambled.write_text("\n".join(eval_rows[:1] + [r.rsplit(",", 1)[0] + ",price|service" for r in eval_rows[1:]]) + "\n")
    blocks = [run_finetune(FinetuneConfig(modality="text", task="multilabel", target=str(train), eval=str(e),
                                          source=str(source), backbone="tiny-text", out=str(tmp_path / f"r{i}"),
                                          baselines=[])) for i, e in enumerate((tmp_path / "eval.csv", scrambled))]
    assert blocks[0]["calibration"]["temperature"] == blocks[1]["calibration"]["temperature"] is not None
    assert blocks[0]["thresholds"] == blocks[1]["thresholds"]
    assert blocks[0]["calibration"]["after"]["ece"] != blocks[1]["calibration"]["after"]["ece"]
    before = blocks[0]["calibration"]["before"]
    assert before["ece_ci95"][0] <= before["ece"] <= before["ece_ci95"][1]


# ------------------------------------------------------------------ ASR: skipped, with the reason

def test_asr_report_says_calibration_is_skipped_and_why(tiny_whisper, tmp_path, one_thread):
    target = write_asr_clips(tmp_path / "target", 4)
    eval_set = write_asr_clips(tmp_path / "eval", 2, speakers=("s3",), first=10)
    report = run_finetune(FinetuneConfig(modality="audio", task="asr", target=str(target), eval=str(eval_set),
                                         backbone=str(tiny_whisper), strategy="decoder", epochs=1, batch_size=2,
                                         out=str(tmp_path / "run")))
    assert set(report["calibration"]) == {"skipped"}
    assert "error rates of whole transcripts" in report["calibration"]["skipped"]


# ------------------------------------------------------------------ the Compare page

def test_compare_page_shows_ner_and_multilabel_blocks_and_asrs_reason(app_home, ner_run, ml_run):
    from test_app_pages import app, make_report_run, no_exceptions

    for task, report in (("ner", ner_run[0]), ("multilabel", ml_run[1])):
        report = json.loads(json.dumps(report))
        _, run = make_report_run(app_home, report, task=task, name=f"{task} run")
        at = app("pages/compare.py", run=run.id)
        no_exceptions(at)
        assert "Calibration" in [s.value for s in at.subheader]
        figure = next(json.loads(c.proto.spec) for c in at.get("plotly_chart") if "Reliability" in c.proto.spec)
        names = {t["name"] for t in figure["data"]}
        assert names >= {"after", "after, calibrated"} and ("before" in names) == (task == "ner")
        assert figure["layout"]["xaxis"]["title"]["text"] == report["calibration"]["axes"]["x"]
        table = next(df.value for df in at.dataframe if "ECE" in df.value.columns)
        assert table["ECE"].iloc[-1] == round(report["calibration"]["after_calibrated"]["ece"], 4)
        unit = "validation sentences" if task == "ner" else "item–label pairs"
        assert any("Temperature T =" in c.value and unit in c.value for c in at.caption)
    asr_like = {**ner_run[0], "calibration": {"skipped": "no probabilities to calibrate here"}}
    _, run = make_report_run(app_home, asr_like, task="ner", name="skipped run")
    at = app("pages/compare.py", run=run.id)
    no_exceptions(at)
    assert any(c.value == "Not measured: no probabilities to calibrate here." for c in at.caption)
    assert not any("Reliability" in c.proto.spec for c in at.get("plotly_chart"))
