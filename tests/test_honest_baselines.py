"""The baselines transfer is measured against: the scratch twin trains on the same items under the same validation
rule as the fine-tuned model, and a classical model with no pretrained weights (TF-IDF / HOG / MFCC + logistic
regression) is computed for every classification run and named where the verdict is stated."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import write_audio_set, write_image_set, write_text_set

import tlcore
from tlcore.evaluation.policy import baseline_label, strongest_no_pretraining
from tlcore.reporting.model_card import model_card_markdown
from tlcore.tasks.classification.classical import classical_predictions, fit_classical


def _run(tmp_path, **kw):
    base = dict(modality="text", backbone="tiny-text", epochs=2, out=str(tmp_path / "run"))
    return tlcore.finetune(**{**base, **kw}).report


@pytest.mark.parametrize("strategy", ["linear_probe", "full"])
def test_the_scratch_twin_trains_on_the_same_items_under_the_same_rule(tmp_path, strategy):
    data = write_text_set(tmp_path / "t", n_per_class=15)
    r = _run(tmp_path, target=str(data), strategy=strategy, baselines=["scratch"])
    twin, after = r["baselines"]["scratch"]["training"], r["training"]
    assert twin["train_size"] == after["train_size"] == r["data"]["train"]   # was 85% of them for the twin
    assert twin["val_size"] == 0 and twin["early_stopping"].startswith("off: ")
    assert twin["epochs_run"] == 2 and twin["best_epoch"] == 2 and "not tuned" in twin["tuned"]
    if strategy == "full":
        assert after["early_stopping"] == twin["early_stopping"]


def test_with_enough_validation_items_both_stop_early_on_the_same_split(tmp_path):
    data = write_text_set(tmp_path / "t", n_per_class=220)
    r = _run(tmp_path, target=str(data), strategy="full", epochs=1, baselines=["scratch"], eval_fraction=0.2)
    twin, after = r["baselines"]["scratch"]["training"], r["training"]
    assert after["early_stopping"].startswith("on: ") and twin["early_stopping"] == after["early_stopping"]
    assert twin["train_size"] == after["train_size"] and twin["val_size"] == after["val_size"] >= 50


def test_text_runs_have_a_tfidf_baseline_compared_and_named(tmp_path):
    data = write_text_set(tmp_path / "t", n_per_class=40)
    r = _run(tmp_path, target=str(data), baselines=["classical", "knn"])
    classical = r["baselines"]["classical"]
    assert classical["training"]["model"] == "TF-IDF + logistic regression"
    assert classical["training"]["train_size"] == r["data"]["train"] and "cross-validation" in classical["training"]["tuned"]
    assert classical["accuracy"] > 0.8                      # the set's words give the class away
    assert set(r["comparisons"]) == {"before", "classical"}
    assert strongest_no_pretraining(r, "accuracy") == "classical"
    assert baseline_label(r, "classical") == "TF-IDF + logistic regression"
    assert "Against the strongest baseline without pretrained weights (TF-IDF + logistic regression)" in \
        model_card_markdown(r)
    assert "not requested" in r["baselines_skipped"]["scratch"]


def test_the_strongest_no_pretraining_baseline_is_the_better_one():
    report = {"baselines": {"scratch": {"accuracy": 0.7}, "classical": {"accuracy": 0.6}, "knn": {"accuracy": 0.9}}}
    assert strongest_no_pretraining(report, "accuracy") == "scratch"      # k-NN uses pretrained features
    assert strongest_no_pretraining({"baselines": {"knn": {"accuracy": 0.9}}}, "accuracy") is None
    assert strongest_no_pretraining({"baselines": {"scratch": {"wer": 0.3}, "classical": {"wer": 0.2}}}, "wer",
                                    higher_is_better=False) == "classical"


@pytest.mark.parametrize("modality, writer, name", [
    ("image", write_image_set, "HOG + colour histograms + logistic regression"),
    ("audio", write_audio_set, "MFCC statistics + logistic regression"),
])
def test_image_and_audio_classical_models_learn_from_the_raw_input(tmp_path, modality, writer, name):
    from tlcore.data.loaders import load_dataset

    ds = load_dataset(writer(tmp_path / "d", n_per_class=8), modality)
    classes = ds.classes
    y = np.array([classes.index(c) for c in ds.labels])
    train = np.arange(len(y)) % 4 != 0
    pred, info = classical_predictions(modality, [ds.items[i] for i in np.flatnonzero(train)], y[train],
                                       [ds.items[i] for i in np.flatnonzero(~train)], seed=0)
    assert info["model"] == name and info["train_size"] == int(train.sum())
    assert (pred == y[~train]).mean() > 1 / len(classes)      # better than chance on the synthetic classes
    model, _ = fit_classical(modality, [ds.items[i] for i in np.flatnonzero(train)], y[train], seed=0)
    assert (np.asarray(model.predict([ds.items[i] for i in np.flatnonzero(~train)])) == pred).all()   # deterministic


def test_tasks_without_a_classical_model_say_so(tmp_path):
    from tests.test_multilabel import write_reviews

    r = tlcore.finetune(modality="text", task="multilabel", target=str(write_reviews(tmp_path / "m.csv")),
                        backbone="tiny-text", out=str(tmp_path / "ml"), baselines=["knn", "classical"]).report
    assert "classical" not in r["baselines"]
    assert r["baselines_skipped"]["classical"] == "not available for multi-label classification (a set of labels per item)"


def test_the_knn_baseline_votes_as_scikit_learn_does_in_bounded_memory():
    from sklearn.neighbors import KNeighborsClassifier

    from tlcore.evaluation.neighbours import knn_vote, nearest

    rng = np.random.default_rng(0)
    train, query, y = rng.normal(size=(120, 12)), rng.normal(size=(90, 12)), rng.integers(0, 4, 120)
    want = KNeighborsClassifier(n_neighbors=5, metric="cosine").fit(train, y).predict(query)
    assert (knn_vote(train, y, query, 5, 4) == want).all()
    assert (nearest(train, query, 5, chunk=7) == nearest(train, query, 5)).all()   # chunks change nothing


def test_many_classes_keep_the_report_small():
    """5,000 classes made a report of 878 MB (three 5,000 × 5,000 confusion matrices): above 200 classes none is
    stored, and the report says so."""
    from tlcore.evaluation.metrics import MAX_CONFUSION_CLASSES, classification_metrics

    y = np.arange(MAX_CONFUSION_CLASSES + 1)
    m = classification_metrics(y, y, [str(i) for i in y])
    assert "confusion" not in m and "not stored" in m["confusion_omitted"] and len(m["per_class"]) == len(y)
    assert len(classification_metrics(y % 3, y % 3, ["a", "b", "c"])["confusion"]) == 3
