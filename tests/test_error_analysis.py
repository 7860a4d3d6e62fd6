"""Error analysis (issue 19 part 1): the engine's pure functions against hand-computed cases, the per-item losses a
real run stores, and the Compare page / shared view drawing them (AppTest, no browser)."""

from __future__ import annotations

import json
import math
import random
from datetime import timedelta

import numpy as np
import pytest

from tlcore.errors import DataError
from tlcore.evaluation.errors import (
    binary_cross_entropy,
    classification_errors,
    confusion_cells,
    cross_entropy,
    label_cells,
    largest_increases,
    loss_block,
    per_class_errors,
    top_losses,
)
from tlcore.tasks.asr.errors import align_words, word_errors, worst_utterances
from tlcore.tasks.asr.errors import error_analysis as asr_errors
from tlcore.tasks.asr.metrics import edit_distance
from tlcore.tasks.ner.errors import count_kinds, sentence_errors
from tlcore.tasks.ner.errors import error_analysis as ner_errors


@pytest.fixture
def home(app_home):
    return app_home


# ------------------------------------------------------------------ classification: pure functions


def test_losses_known_values():
    proba = np.array([[0.5, 0.5], [0.9, 0.1], [0.0, 1.0]])
    assert cross_entropy(proba, [0, 1, 0]).tolist() == pytest.approx([math.log(2), -math.log(0.1), -math.log(1e-12)])
    p = np.array([[0.8, 0.5]])
    # -(ln 0.8 + ln 0.5) / 2 for truth (1, 0)
    assert binary_cross_entropy(p, np.array([[1, 0]]))[0] == pytest.approx(-(math.log(0.8) + math.log(0.5)) / 2)
    block = loss_block("ce", np.array([0.123456]), None, "no probabilities")
    assert block == {"definition": "ce", "after": [0.1235], "before": None, "before_skipped": "no probabilities"}


def test_confusion_cells_hold_their_items_errors_first():
    cells = confusion_cells([0, 0, 1, 1, 1, 2], [0, 1, 1, 0, 0, 2], ["a", "b", "c"])
    assert [(c.true, c.predicted, c.items, c.error) for c in cells] == [
        ("b", "a", [3, 4], True), ("a", "b", [1], True), ("a", "a", [0], False), ("b", "b", [2], False),
        ("c", "c", [5], False)]
    assert sum(c.count for c in cells) == 6 and cells[0].title == "b → a"


def test_multilabel_cells_and_per_class_errors():
    truth, pred = [[0], [0, 1], [], [1]], [[], [0], [1], [0, 1]]
    cells = label_cells(truth, pred, ["x", "y"])
    assert {(c.true, c.predicted): c.items for c in cells} == {("x", "missed"): [0], ("y", "missed"): [1],
                                                              ("y", "spurious"): [2], ("x", "spurious"): [3]}
    per = per_class_errors(cells, ["x", "y"], multi_label=True)
    assert [(c.name, c.missed, c.spurious) for c in per] == [("x", [0], [3]), ("y", [1], [2])]
    single = per_class_errors(confusion_cells([0, 1, 1, 0], [1, 1, 0, 0], ["x", "y"]), ["x", "y"])
    assert [(c.missed, c.spurious) for c in single] == [([0], [2]), ([2], [0])]


def test_confusion_cells_of_many_classes_are_grouped_not_scanned():
    rng = np.random.default_rng(0)
    classes = [f"c{i}" for i in range(5000)]
    y = rng.integers(0, 5000, 60_000)
    pred = np.where(rng.random(60_000) < 0.7, y, rng.integers(0, 5000, 60_000))
    cells = confusion_cells(y, pred, classes)          # one pass per cell would be ~10^9 comparisons
    assert sum(c.count for c in cells) == 60_000
    assert sum(c.count for c in cells if not c.error) == int((y == pred).sum())
    first = cells[0]
    assert all(classes[y[i]] == first.true and classes[pred[i]] == first.predicted for i in first.items)


def test_loss_rankings():
    assert top_losses([0.1, 2.0, 0.5, 2.0], 3) == [1, 3, 2]
    assert largest_increases([1.0, 0.1, 0.2, 3.0], [0.5, 2.1, 0.3, 3.0], 5) == [1, 2]


def _class_report(**extra) -> dict:
    return {"task": "classify", "modality": "text", "data": {"classes": ["neg", "pos"]},
            "eval_predictions": {"true": [0, 0, 1, 1], "before": [0, 1, 1, 0], "after": [0, 0, 0, 1],
                                 "items": ["bad film", "dull", "great fun", "loved it"], "names": ["0", "1", "2", "3"]},
            **extra}


def test_classification_errors_from_a_report():
    losses = {"definition": "ce", "before": [0.1, 2.0, 0.2, 1.5], "after": [0.2, 0.3, 3.0, 0.1]}
    a = classification_errors(_class_report(eval_losses=losses))
    assert [(c.title, c.items) for c in a.cells["after"] if c.error] == [("pos → neg", [2])]
    assert [(c.title, c.items) for c in a.cells["before"] if c.error] == [("neg → pos", [1]), ("pos → neg", [3])]
    assert a.truth == ["neg", "neg", "pos", "pos"] and a.predicted["after"][2] == "neg"
    assert a.top_losses[:2] == [2, 1] and a.loss_rose == [2, 0]
    old = classification_errors(_class_report())             # saved before eval_losses: cells still, losses noted
    assert old.loss_note and not old.top_losses and old.cells["after"]
    ncm = classification_errors(_class_report(eval_losses={**losses, "before": None, "before_skipped": "cosine"}))
    assert ncm.top_losses and not ncm.loss_rose and "cosine" in ncm.rose_note
    with pytest.raises(DataError, match="older version"):
        classification_errors({"task": "classify", "data": {"classes": ["a"]}})


# ------------------------------------------------------------------ NER error kinds

@pytest.mark.parametrize("gold, pred, kinds", [
    (["B-PER", "I-PER", "O"], ["B-PER", "I-PER", "O"], []),                                   # correct
    (["B-PER", "I-PER", "O"], ["O", "O", "O"], ["missed"]),
    (["O", "O", "O"], ["O", "B-LOC", "O"], ["spurious"]),
    (["B-PER", "I-PER", "O"], ["B-ORG", "I-ORG", "O"], ["wrong_type"]),
    (["B-PER", "I-PER", "O"], ["B-PER", "O", "O"], ["wrong_boundary"]),
    (["B-PER", "I-PER", "O"], ["O", "B-PER", "I-PER"], ["wrong_boundary"]),
    (["B-PER", "I-PER", "O"], ["O", "B-LOC", "I-LOC"], ["wrong_type_and_boundary"]),
    (["B-PER", "O", "B-LOC"], ["B-PER", "O", "O"], ["missed"]),
])
def test_ner_error_kinds(gold, pred, kinds):
    assert [e.kind for e in sentence_errors(gold, pred)] == kinds


def test_ner_errors_from_a_report_count_by_kind():
    report = {"task": "ner", "eval_predictions": {
        "tokens": [["John", "Smith", "lives", "in", "Paris"], ["Acme", "Corp", "rocks"]],
        "gold": [["B-PER", "I-PER", "O", "O", "B-LOC"], ["B-ORG", "I-ORG", "O"]],
        "before": [["B-PER", "O", "O", "O", "O"], ["B-LOC", "I-LOC", "B-PER"]],
        "after": [["B-PER", "I-PER", "O", "O", "B-LOC"], ["B-ORG", "I-ORG", "O"]]}}
    a = ner_errors(report)
    assert a.counts["after"] == count_kinds([]) and sum(a.counts["after"].values()) == 0
    assert a.counts["before"] == {"missed": 1, "spurious": 1, "wrong_type": 1, "wrong_boundary": 1,
                                  "wrong_type_and_boundary": 0}
    wrong_type = next(e for e in a.errors["before"] if e.kind == "wrong_type")
    assert (wrong_type.sentence, wrong_type.gold, wrong_type.predicted) == (1, ("ORG", 0, 2), ("LOC", 0, 2))
    with pytest.raises(DataError):
        ner_errors({"task": "ner"})


# ------------------------------------------------------------------ ASR alignment and substitutions

def test_word_alignment_known_case_and_edit_count():
    assert align_words("the cat sat".split(), "a cat".split()) == [("sub", "the", "a"), ("=", "cat", "cat"),
                                                                   ("del", "sat", "")]
    assert align_words([], ["hi"]) == [("ins", "", "hi")]
    rng = random.Random(0)
    words = "a b c d e".split()
    for _ in range(200):   # the alignment's edits are exactly the Levenshtein distance WER counts
        ref = [rng.choice(words) for _ in range(rng.randint(0, 7))]
        hyp = [rng.choice(words) for _ in range(rng.randint(0, 7))]
        ops = align_words(ref, hyp)
        assert sum(k != "=" for k, _, _ in ops) == edit_distance(ref, hyp)
        assert [r for k, r, _ in ops if k != "ins"] == ref and [h for k, _, h in ops if k != "del"] == hyp


def test_word_substitution_counts_and_worst_utterances():
    refs = ["turn the lights off", "turn the lights on", "play music", "Set 2 timers."]
    hyps = ["turn the nights off", "turn the nights on please", "play music", "set two timer"]
    w = word_errors(refs, hyps)
    assert w.substitutions[("lights", "nights")] == 2 and w.insertions["please"] == 1
    assert w.substitutions[("timers", "timer")] == 1 and not w.deletions     # "2" normalised to "two": no error
    assert w.most_common(1) == [("sub", "lights", "nights", 2)]
    assert worst_utterances(refs, hyps) == [1, 3, 0]          # 2/4 (two edits), 1/3, 1/4; the exact one left out
    a = asr_errors({"eval_predictions": {"names": ["a", "b", "c", "d"], "reference": refs, "before": hyps,
                                         "after": refs}})
    assert a.worst["after"] == [] and a.worst["before"][0] == 1 and a.wer["before"][1] == pytest.approx(0.5)
    with pytest.raises(DataError):
        asr_errors({"eval_predictions": {"reference": refs}})


# ------------------------------------------------------------------ what a real run stores

def test_classification_run_stores_per_item_losses(tmp_path):
    import tlcore
    from tests.conftest import write_text_set
    from tlcore.evaluation.calibration import softmax
    from tlcore.models.transfer_model import TransferModel

    target, source = write_text_set(tmp_path / "t"), write_text_set(tmp_path / "s", seed=1)
    tlcore.finetune(modality="text", target=str(target), source=str(source), backbone="tiny-text",
                    out=str(tmp_path / "run"), baselines=[])
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    losses, preds = report["eval_losses"], report["eval_predictions"]
    assert len(losses["after"]) == len(losses["before"]) == len(preds["true"]) == report["data"]["eval"]
    # before = the source probe (softmax): two classes, so a right prediction has p(true) >= 1/2, loss <= ln 2
    for loss, pred, true in zip(losses["before"], preds["before"], preds["true"]):
        assert (loss <= math.log(2) + 1e-4) if pred == true else (loss >= math.log(2) - 1e-4)
    logits = TransferModel.from_pretrained(tmp_path / "run" / "model").predict_logits(preds["items"])   # uncalibrated
    want = -np.log(softmax(logits)[np.arange(len(preds["true"])), preds["true"]])
    assert losses["after"] == pytest.approx(want.tolist(), abs=2e-4)
    a = classification_errors(report)
    assert a.top_losses[0] == int(np.argmax(want)) and sum(c.count for c in a.cells["after"]) == len(want)


def test_multilabel_run_stores_per_item_losses(tmp_path):
    import tlcore
    from tests.test_multilabel import write_reviews

    target = write_reviews(tmp_path / "target.csv", n=40)
    tlcore.finetune(modality="text", task="multilabel", target=str(target), backbone="tiny-text",
                    out=str(tmp_path / "run"), baselines=[])
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert len(report["eval_losses"]["after"]) == len(report["eval_predictions"]["true"])
    assert all(x >= 0 for x in report["eval_losses"]["after"]) and report["eval_losses"]["before"] is None
    a = classification_errors(report, multi_label=True)
    wrong = {(c.true, c.predicted) for c in a.cells["after"]}
    truth, after = report["eval_predictions"]["true"], report["eval_predictions"]["after"]
    missed = {(report["data"]["classes"][j], "missed") for t, p in zip(truth, after) for j in set(t) - set(p)}
    assert {w for w in wrong if w[1] == "missed"} == missed


# ------------------------------------------------------------------ the pages (AppTest)

def _page_report() -> dict:
    from tests.test_app_pages import ner_report

    base = ner_report()
    block = {"accuracy": 0.5, "macro_f1": 0.5, "accuracy_ci95": [0.2, 0.8],
             "per_class": {c: {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2} for c in ("neg", "pos")},
             "confusion": [[1, 1], [1, 1]]}
    return {**{k: base[k] for k in ("tlcore_version", "seed", "warnings", "notes", "timings_s", "environment",
                                    "config")},
            **_class_report(eval_losses={"definition": "cross-entropy", "before": [0.1, 2.0, 0.2, 1.5],
                                         "after": [0.2, 0.3, 3.0, 0.1]}),
            "backbone": "tiny-text", "strategy": "linear_probe", "before": {**block, "kind": "source model"},
            "after": block, "baselines": {}, "comparisons": {}, "flipped": {"fixed": [], "broken": []},
            "data": {"classes": ["neg", "pos"], "train": 8, "eval": 4}}


def test_compare_confusion_cell_opens_its_items_and_shared_view_shows_the_same(home):
    from tests.test_app_pages import app, make_report_run, no_exceptions
    from tlcore.runs import create_share

    store, run = make_report_run(home, _page_report(), task="classify", name="cls run")
    for page in (app("pages/compare.py", run=run.id),
                 app(share=create_share(store, run.id, expires_in=timedelta(hours=1))[0])):
        no_exceptions(page)
        cell = next(s for s in page.selectbox if s.label == "Cell")
        assert cell.options[0].startswith("pos → neg (1)")
        table = next(df.value for df in page.dataframe if "text" in df.value.columns)
        assert list(table["text"]) == ["great fun"] and list(table["after"]) == ["neg"]
        model = next(r for r in page.radio if r.label == "Errors of the model")
        model.set_value("before").run()
        cell = next(s for s in page.selectbox if s.label == "Cell")
        assert cell.options[:2] == ["neg → pos (1)", "pos → neg (1)"]
        cell.select_index(1).run()                     # before's second error cell: pos → neg, item 3
        no_exceptions(page)
        table = next(df.value for df in page.dataframe if "text" in df.value.columns)
        assert list(table["text"]) == ["loved it"] and list(table["before"]) == ["neg"]
        assert list(table["after"]) == ["pos"] and list(table["loss after"]) == [0.1]   # side by side


def test_error_section_for_old_ner_and_asr_reports(home):
    from tests.test_app_pages import app, asr_report, make_report_run, ner_report, no_exceptions

    old = {k: v for k, v in _page_report().items() if k not in ("eval_predictions", "eval_losses")}
    _, run = make_report_run(home, old, task="classify", name="old run")
    at = app("pages/compare.py", run=run.id)
    no_exceptions(at)
    assert any("older version" in c.value for c in at.caption)
    ner = ner_report()
    tokens, gold = ner["eval_predictions"]["tokens"][0], ner["eval_predictions"]["gold"][0]
    before = ["O", "O", "B-LOC"] + ["O"] * 8                       # greggs: ORG tagged LOC; bath (LOC) missed
    _, run = make_report_run(home, {**ner, "eval_predictions": {"tokens": [tokens], "gold": [gold], "before": [before],
                                                                "after": [gold]}}, task="ner", name="ner run")
    at = app("pages/compare.py", run=run.id)
    no_exceptions(at)
    kinds = next(df.value for df in at.dataframe if "kind" in df.value.columns).set_index("kind")
    assert kinds["before"].tolist() == [1, 0, 1, 0, 0] and kinds["after"].sum() == 0
    assert any("No entity errors" in c.value for c in at.caption)          # after: none
    at.radio(key="cmp-err-model").set_value("before").run()
    kind = at.selectbox(key="cmp-err-kind-before")
    assert [o.split(" (")[0] for o in kind.options] == ["missed", "wrong type"]
    kind.select_index(1).run()
    html = " ".join(m.value for m in at.markdown)
    assert "gold ORG “greggs” · predicted LOC “greggs”" in html
    _, run = make_report_run(home, {**asr_report(home.tmp / "clips"), "eval_predictions": {
        "names": ["spk1_0.wav"], "reference": ["turn the lights off"], "before": ["turn the nights of"],
        "after": ["turn the lights off"]}}, task="asr", name="asr run")
    at = app("pages/compare.py", run=run.id)
    no_exceptions(at)
    at.radio(key="cmp-err-model").set_value("before").run()
    no_exceptions(at)
    words = next(df.value for df in at.dataframe if "recognised as" in df.value.columns)
    assert ("lights", "nights") in set(zip(words["reference word"], words["recognised as"]))


def test_adaptation_run_stores_losses_of_source_only_and_adapted(tmp_path):
    import shutil

    from tests.conftest import write_image_set
    from tlcore.config import FinetuneConfig
    from tlcore.settings.inductive import run_finetune

    src = write_image_set(tmp_path / "source", n_per_class=8, seed=0)
    ev = write_image_set(tmp_path / "eval", n_per_class=5, seed=1)
    unl = tmp_path / "unlabeled"
    unl.mkdir()
    for f in write_image_set(tmp_path / "u", n_per_class=4, seed=2).rglob("*.png"):
        shutil.copy(f, unl / f.name)
    report = run_finetune(FinetuneConfig(modality="image", source=str(src), unlabeled=str(unl), eval=str(ev),
                                         backbone="tiny-image", strategy="coral", out=str(tmp_path / "run"),
                                         baselines=[]))
    losses, preds = report["eval_losses"], report["eval_predictions"]
    n_classes = len(report["data"]["classes"])
    assert len(losses["before"]) == len(losses["after"]) == len(preds["true"])
    for model in ("before", "after"):     # a right prediction has the largest p(true): loss <= ln(classes)
        for loss, pred, true in zip(losses[model], preds[model], preds["true"]):
            assert pred != true or loss <= math.log(n_classes) + 1e-4
    a = classification_errors(report)
    assert not a.loss_note and "cross-entropy" in a.loss_definition
    assert a.loss_rose == largest_increases(losses["before"], losses["after"], 24)
