"""Multi-label classification, the fourth task: data formats, metrics against scikit-learn, thresholds chosen on
validation data only, runs end to end (CLI, API, predict, ONNX), the image demo, and the app's pages."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import REVIEW_WORDS, write_reviews
from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

import tlcore
from tlcore.errors import ConfigError, DataError
from tlcore.tasks import get_task
from tlcore.tasks.detect import detect_task
from tlcore.tasks.multilabel.data import eval_split, load_multilabel, parse_labels
from tlcore.tasks.multilabel.metrics import choose_thresholds, multilabel_metrics, paired_micro_f1_difference

ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------- data

def test_labels_parse_from_bars_and_json_lists_normalised_and_deduplicated():
    assert parse_labels("price| delivery |price", "row 2") == ("price", "delivery")
    assert parse_labels('["a", "b"]', "row 2") == ("a", "b")
    assert parse_labels(["x"], "line 1") == ("x",)
    assert parse_labels("", "row 2") == ()
    assert parse_labels("cafe\u0301", "row 2") == ("café",)        # NFD typed, NFC kept: one label, not two
    with pytest.raises(DataError, match="row 7: labels .* not valid JSON"):
        parse_labels('["a", ', "row 7")
    with pytest.raises(DataError, match="line 3: labels must be strings"):
        parse_labels(["a", 3], "line 3")


def test_text_tables_load_and_are_detected_as_multilabel(tmp_path):
    csv_set = write_reviews(tmp_path / "a" / "data.csv")
    jsonl_set = write_reviews(tmp_path / "b" / "data.jsonl", fmt="jsonl")
    for path in (csv_set, jsonl_set, csv_set.parent):
        data = load_multilabel(path, require_labels=True)
        assert len(data) == 60 and data.modality == "text" and set(data.vocabulary()) == set(REVIEW_WORDS)
        assert detect_task(path, "text") == "multilabel"
    single = tmp_path / "c.csv"
    single.write_text("text,label\nhello,a\nbye,b\n")
    assert detect_task(single, "text") == "classify"       # one label per row: classification


def test_image_tables_are_confined_to_their_folder(tmp_path):
    from conftest import write_image_set

    images = write_image_set(tmp_path / "imgs", n_per_class=2)
    files = sorted(p.relative_to(images) for p in images.rglob("*.png"))
    (images / "labels.csv").write_text("path,labels\n" + "".join(f"{f},{f.parent.name}{'|shape' * (i % 2)}\n"
                                                                for i, f in enumerate(files)))
    data = load_multilabel(images, require_labels=True)
    assert data.modality == "image" and len(data) == len(files) and "shape" in data.vocabulary()
    assert detect_task(images, "image") == "multilabel"
    (images / "labels.csv").write_text("path,labels\n../outside.png,a\n")
    with pytest.raises(DataError, match="outside"):
        load_multilabel(images)


def test_a_label_on_every_item_or_a_single_label_is_refused(tmp_path):
    one = tmp_path / "one.csv"
    one.write_text("text,labels\na,x\nb,x\nc,x\n")
    with pytest.raises(DataError, match="at least two different labels"):
        load_multilabel(one, require_labels=True)
    always = tmp_path / "always.csv"
    always.write_text("text,labels\na,x|y\nb,x\nc,x|y\n")
    with pytest.raises(DataError, match="'x' is on every item"):
        load_multilabel(always, require_labels=True)


def test_the_eval_split_is_stored_reused_and_keeps_groups_together(tmp_path):
    path = tmp_path / "g.csv"
    path.write_text("text,labels,group\n" + "".join(f"t{i},{'a' if i % 2 else 'b'}{'|c' if i % 4 == 0 else ''},g{i // 3}\n" for i in range(30)))
    data = load_multilabel(path, require_labels=True)
    train, held, stored = eval_split(data, 0.3)
    assert stored.is_file() and eval_split(data, 0.3)[1].names == held.names
    assert set(train.groups).isdisjoint(held.groups) and len(train) + len(held) == 30


# ---------------------------------------------------------------- metrics

def test_metrics_match_scikit_learn_and_intervals_hold_the_point():
    rng = np.random.default_rng(0)
    y = (rng.random((80, 5)) < 0.3).astype(int)
    pred = np.where(rng.random((80, 5)) < 0.8, y, 1 - y)
    m = multilabel_metrics(y, pred, list("abcde"), seed=0)
    assert m["micro_f1"] == pytest.approx(f1_score(y, pred, average="micro"))
    assert m["macro_f1"] == pytest.approx(f1_score(y, pred, average="macro", zero_division=0))
    assert m["subset_accuracy"] == pytest.approx(accuracy_score(y, pred))
    p, r, f, s = precision_recall_fscore_support(y, pred, zero_division=0)
    for j, label in enumerate("abcde"):
        row = m["per_class"][label]
        assert (row["precision"], row["recall"], row["f1"], row["support"]) == pytest.approx((p[j], r[j], f[j], s[j]))
        assert row["f1_ci95"][0] <= row["f1"] <= row["f1_ci95"][1]
    for key in ("micro_f1", "macro_f1", "subset_accuracy"):
        lo, hi = m[f"{key}_ci95"]
        assert lo <= m[key] <= hi and hi - lo > 0
    same = paired_micro_f1_difference(y, pred, pred)
    assert same == {"difference": 0.0, "ci95": [0.0, 0.0]}
    better = paired_micro_f1_difference(y, y, pred)
    assert better["difference"] == pytest.approx(1 - m["micro_f1"]) and better["ci95"][0] > 0


def test_thresholds_maximise_validation_f1_and_keep_the_default_without_positives():
    scores = np.array([[0.9, 0.2], [0.6, 0.3], [0.35, 0.1], [0.1, 0.4]])
    y = np.array([[1, 0], [1, 0], [1, 0], [0, 0]])
    t = choose_thresholds(scores, y, 0.5)
    assert 0.1 < t[0] < 0.35 and t[1] == 0.5            # all three positives kept; no positives: the default
    assert ((scores[:, 0] > t[0]) == y[:, 0].astype(bool)).all()


# ---------------------------------------------------------------- runs

@pytest.fixture(scope="module")
def text_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ml")
    target = write_reviews(tmp / "target.csv", n=90)
    result = tlcore.finetune(modality="text", task="multilabel", target=str(target), backbone="tiny-text",
                             out=str(tmp / "run"), epochs=2, baselines=["knn", "scratch"], val_fraction=0.2)
    return tmp, target, result


def test_a_text_run_reports_every_model_under_one_validation_rule(text_run):
    _, _, result = text_run
    r = result.report
    assert r["task"] == "multilabel" and r["data"]["classes"] == sorted(REVIEW_WORDS)
    for block in [r["before"], r["after"], *r["baselines"].values()]:
        assert {"micro_f1", "micro_f1_ci95", "macro_f1", "subset_accuracy", "per_class"} <= set(block)
    assert set(r["comparisons"]) == {"before", "scratch"} and set(r["baselines"]) == {"knn", "scratch"}
    t = r["training"]
    assert t["fit_size"] + t["val_size"] == r["data"]["train"] and t["val_size"] == r["data"]["val"] > 0
    assert r["baselines"]["scratch"]["training"]["train_size"] == t["fit_size"]   # the twin trains on the same items
    assert "thresholds chosen on the other" in t["validation"]
    assert r["after"]["micro_f1"] > 0.6          # the words give the labels away
    assert [w["text"] for w in r["warnings_detail"]] == r["warnings"]
    card = (Path(result.run_dir) / "README.md").read_text()
    assert "## Per label (F1)" in card and "micro-F1" in card


def test_thresholds_never_see_the_eval_labels(text_run, tmp_path):
    """The same run with every eval item's labels replaced: the chosen thresholds (and the predictions) stay."""
    tmp, target, result = text_run
    train_part = tmp_path / "train.csv"
    eval_part = tmp_path / "eval.csv"
    rows = target.read_text().splitlines()
    train_part.write_text("\n".join(rows[:61]) + "\n")
    eval_part.write_text("\n".join(rows[:1] + rows[61:]) + "\n")
    scrambled = tmp_path / "eval_scrambled.csv"
    scrambled.write_text("\n".join(rows[:1] + [r.rsplit(",", 1)[0] + ",price|service" for r in rows[61:]]) + "\n")
    runs = [tlcore.finetune(modality="text", task="multilabel", target=str(train_part), eval=str(e), backbone="tiny-text",
                            out=str(tmp_path / f"r{i}"), baselines=[]).report for i, e in enumerate((eval_part, scrambled))]
    assert runs[0]["thresholds"] == runs[1]["thresholds"]
    assert runs[0]["eval_predictions"]["after"] == runs[1]["eval_predictions"]["after"]


def test_predict_uses_the_saved_thresholds_and_onnx_agrees(text_run):
    from tlcore.inference.onnx_export import export_onnx

    _, _, result = text_run
    run = tlcore.load_run(result.run_dir)
    assert run.task == "multilabel"
    texts = ["the courier was late and the staff rude", "cheap but it broke"]
    out = run.predict(texts, top_k=4)
    thresholds = json.loads((Path(result.run_dir) / "model" / "thresholds.json").read_text())
    limit = dict(zip(thresholds["labels"], thresholds["thresholds"]))
    for row in out:
        assert set(row["labels"]) == {label for label, p in row["top"] if p > limit[label]}
    assert {"delivery", "service"} <= set(out[0]["labels"])
    before = run.predict(texts, model="before")
    assert before[0]["score"] == "cosine"
    export_onnx(result.run_dir)
    assert [r["labels"] for r in tlcore.load_run(result.run_dir).predict(texts, backend="onnx")] == [r["labels"] for r in out]


def test_loop_strategies_train_with_binary_cross_entropy(tmp_path):
    target = write_reviews(tmp_path / "t.csv", n=70)
    report = tlcore.finetune(modality="text", task="multilabel", target=str(target), backbone="tiny-text",
                             strategy="full", epochs=2, out=str(tmp_path / "run"), baselines=[]).report
    assert report["training"]["epochs_run"] == 2 and report["strategy"] == "full"
    assert report["training"]["history"][0]["train_loss"] > 0


def test_bad_settings_are_refused_with_the_reason(tmp_path):
    target = write_reviews(tmp_path / "t.csv")
    with pytest.raises(ConfigError, match="max-per-class"):
        tlcore.finetune(modality="text", task="multilabel", target=str(target), out=str(tmp_path / "r"), max_per_class=3)
    with pytest.raises(ConfigError, match="not available for multi-label"):
        tlcore.finetune(modality="text", task="multilabel", target=str(target), out=str(tmp_path / "r"), strategy="dann")
    with pytest.raises(ConfigError, match="needs modality|use --modality"):
        tlcore.finetune(modality="audio", task="multilabel", target=str(target), out=str(tmp_path / "r"))
    with pytest.raises(ConfigError, match="ranking backbones is not available for multi-label"):
        tlcore.rank(target, modality="text", task="multilabel")


def test_the_image_demo_from_the_command_line(tmp_path):
    from tlcore.data.demos import make_demo

    demo = make_demo("digit-strips", tmp_path / "demo", size="small")
    manifest = json.loads((demo / "demo.json").read_text())
    assert manifest["task"] == "multilabel" and manifest["counts"]["target"]["per_class"]
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "tlcore", "finetune", "--modality", "image", "--task", "multilabel",
                           "--source", str(demo / "source"), "--target", str(demo / "target"), "--eval",
                           str(demo / "eval"), "--backbone", "tiny-image", "--baselines", "knn", "--out", str(out),
                           "--quiet", "--json", str(tmp_path / "r.json")], capture_output=True, text=True, cwd=ROOT,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "micro_f1" in proc.stderr and "source-trained model" in proc.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["data"]["classes"] == [str(d) for d in range(6)] and report["diagnosis"]["severity"]
    pred = subprocess.run([sys.executable, "-m", "tlcore", "predict", "--run", str(out), "--input",
                           str(demo / "eval" / "images")], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert pred.returncode == 0 and len(pred.stdout.splitlines()) == manifest["counts"]["eval"]["total"]


def test_the_spec_plugs_into_the_registry():
    spec = get_task("multilabel")
    assert spec.metric.key == "micro_f1" and spec.output == "sigmoid" and spec.modalities == ("text", "image")
    assert [spec.part(p).__name__.rsplit(".", 1)[1] for p in ("pipeline", "formats", "serve", "card", "diagnosis")] == [
        "pipeline", "formats", "serve", "card", "diagnosis"]


# ---------------------------------------------------------------- the app

def test_the_app_runs_compares_and_tries_a_multilabel_run(app_home):
    from streamlit.testing.v1 import AppTest

    from tlcore.config import FinetuneConfig
    from tlcore.runs import RunStore
    from tlcore.runs.worker import Worker, WorkerOptions

    def page(path: str, **query) -> AppTest:
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
        for k, v in query.items():
            at.query_params[k] = v
        at.run()
        at.switch_page(path).run()
        assert not at.exception, [e.value for e in at.exception]
        return at

    at = page("pages/finetune.py")
    at.radio(key="ft-task").set_value("multilabel").run()
    assert not at.exception
    assert at.selectbox(key="ft-data").value == "demo:digit-strips"
    assert [o.split(":")[0] for o in at.selectbox(key="ft-strategy-multilabel").options] == [
        "linear_probe", "partial", "full", "lora"]

    store = RunStore()
    cfg = FinetuneConfig(modality="text", task="multilabel", target=str(write_reviews(app_home.tmp / "t.csv")),
                         backbone="tiny-text", baselines=["knn"])
    run = store.create_run(cfg, name="ml run", dataset="upload:test")
    store.enqueue(run.id)
    assert Worker(store, WorkerOptions(once=True)).run() == 1
    at = page("pages/compare.py", run=run.id)
    labels = {m.label: m.value for m in at.metric}
    assert "Micro-F1 before" in labels and "Micro-F1 after" in labels and "Macro-F1 after" in labels
    assert not any("Accuracy" in label for label in labels)
    text = " ".join(m.value for m in at.markdown) + " ".join(c.value for c in at.caption)
    assert "multi-label classification" in text
    at = page("pages/runs.py")
    row = at.dataframe[0].value.iloc[0]
    assert row["task"] == "multilabel" and row["metric"] == "Micro-F1"
    at = page("pages/try_it.py", run=run.id)
    assert "multi-label" in " ".join(c.value for c in at.caption)
