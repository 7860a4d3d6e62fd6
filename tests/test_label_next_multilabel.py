"""What to label next for multi-label sets (issue 19 part 4): the min-margin uncertainty over labels against a known
answer, the suggested label sets and the micro-F1 curve, the run through the API and the CLI, the filled-in list
coming back as a new version of the set in its own format (text table and image .zip), and the Data page's section."""

from __future__ import annotations

import csv
import io
import json
import random
import zipfile
from pathlib import Path

import numpy as np
import pytest

import tlcore
from tlcore.errors import ConfigError, DataError
from tlcore.experiments import label_next as ln
from tlcore.tasks.detect import detect_task
from tlcore.tasks.multilabel import label_next as ml
from tlcore.tasks.multilabel.data import eval_split, load_multilabel

ROOT = Path(__file__).resolve().parents[1]
WORDS = {"price": ["cheap", "expensive", "cost"], "quality": ["sturdy", "broke", "flimsy"],
         "delivery": ["late", "shipping", "courier"]}


def _reviews(path: Path, n: int, seed: int, labeled: bool = True) -> Path:
    """Short texts whose words give away their aspects (1-2 of three labels each); ``labeled=False``: no labels column."""
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text", "labels"] if labeled else ["text"])
        for i in range(n):
            labels = sorted(rng.sample(sorted(WORDS), rng.choice([1, 1, 2])))
            words = [rng.choice(WORDS[y]) for y in labels for _ in range(2)] + ["the", "item"]
            rng.shuffle(words)
            w.writerow([" ".join(words) + f" {seed}-{i}"] + (["|".join(labels)] if labeled else []))
    return path


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    root = tmp_path_factory.mktemp("mlsets")
    return {"target": _reviews(root / "target.csv", 40, 0), "pool": _reviews(root / "pool.csv", 16, 1, labeled=False),
            "root": root}


@pytest.fixture(scope="module")
def strips(tmp_path_factory):
    from tlcore.data.demos import make_demo

    return make_demo("digit-strips", tmp_path_factory.mktemp("strips") / "demo", size="small")


# ------------------------------------------------------------------ the uncertainty and the suggestion

def test_min_margin_takes_each_items_most_uncertain_label():
    # X: both labels at 0.6 (margins 0.2, 0.2); Y: one label at 0.52 (0.04), the other certain (1.0).
    # The mean margin would put X first (0.2 < 0.52); the min-margin rule puts Y first (0.04 < 0.2).
    probs = np.array([[0.6, 0.6], [0.52, 1.0], [0.99, 0.01], [0.5, 0.0]])
    assert np.allclose(ml.min_margin(probs), [0.2, 0.04, 0.98, 0.0])
    assert np.allclose(ml.uncertainty(probs), [0.8, 0.96, 0.02, 1.0])
    chosen, score = ln.select("margin", np.eye(4), np.zeros((0, 4)), 3, uncertainty=ml.uncertainty(probs))
    assert chosen == [3, 1, 0] and np.allclose(score, ml.uncertainty(probs))
    # the suggested set: labels above 0.5 (0.5 itself is not above), with the confidence of the weakest decision
    suggested = ml.suggest(probs, ["a", "b"])
    assert [s for s, _ in suggested] == ["a|b", "a|b", "a", "(none)"]
    assert [p for _, p in suggested] == pytest.approx([0.6, 0.52, 0.99, 0.5])
    with pytest.raises(ValueError):
        ml.min_margin(np.ones(3))


def test_the_curve_metric_is_micro_f1_and_its_subsets_hold_every_label():
    y = np.array([[1, 0, 0], [1, 1, 0], [0, 0, 1], [0, 0, 0]])
    probs = np.array([[0.9, 0.2, 0.1], [0.8, 0.4, 0.7], [0.1, 0.1, 0.6], [0.3, 0.6, 0.2]])
    # TP 3 (item 0 a, item 1 a, item 2 c); FP 2 (item 1 c, item 3 b); FN 1 (item 1 b): 6 / (6 + 3)
    assert ml.score(probs, y) == pytest.approx(6 / 9)
    for seed in range(5):
        idx = ml.curve_subset(y, 3, seed)
        assert len(idx) == 3 and (y[idx].sum(0) > 0).all()
    assert ml.smallest_curve_size(y) == 3


# ------------------------------------------------------------------ the run: API and CLI

def test_api_ranks_a_multilabel_pool_with_label_sets_and_a_micro_f1_projection(sets):
    result = tlcore.label_next(sets["pool"], modality="text", target=sets["target"], backbone="tiny-text", budget=5,
                               strategy="margin")
    report = json.loads(json.dumps(result.to_dict()))
    assert report["task"] == "multilabel" and "Brinker" in report["method"]
    assert report["labeled"]["classes"] == sorted(WORDS)
    ranked = report["ranked"]
    assert len(ranked) == 5 and [r["rank"] for r in ranked] == list(range(1, 6))
    u = [r["uncertainty"] for r in ranked]
    assert u == sorted(u, reverse=True) and all(0 <= x <= 1 for x in u)
    for r in ranked:
        assert r["suggested"] == "(none)" or set(r["suggested"].split("|")) <= set(WORDS)
        # suggested_p is the weakest decision's confidence: (1 + min margin) / 2 = 1 - u / 2
        assert r["suggested_p"] == pytest.approx(1 - r["uncertainty"] / 2, abs=1e-3)
    proj = report["projection"]
    assert proj["kind"] == "projection" and proj["metric"] == "micro-F1" and "micro-F1" in proj["source"]
    assert proj["n_now"] == report["labeled"]["n"] and proj["more_labels"][-1] == 5
    assert all(0 <= v <= 1 for p in proj["points"] for v in p["values"])
    assert all(lo <= m <= hi for lo, m, hi in zip(proj["low"], proj["mean"], proj["high"]))
    rows = list(csv.DictReader(io.StringIO(ln.ranked_csv(result))))
    assert [r["suggested"] for r in rows] == [r["suggested"] for r in ranked]


def test_a_multilabel_target_the_probe_cannot_learn_from_is_one_clear_error(sets, tmp_path):
    always = tmp_path / "always.csv"
    always.write_text("text,labels\n" + "".join(f"cheap {i},{'price|quality' if i % 2 else 'price'}\n"
                                                for i in range(6)))
    with pytest.raises(DataError, match="labeled target.*'price' is on every item"):
        tlcore.label_next(sets["pool"], modality="text", target=always, backbone="tiny-text")
    with pytest.raises(ConfigError, match="has none in this version"):
        ln.task_part("ner")


def test_cli_ranks_a_multilabel_set_and_refuses_bad_input_in_one_line(sets, tmp_path, capsys):
    from tlcore.cli import main

    common = ["label-next", "--modality", "text", "--pool", str(sets["pool"]), "--backbone", "tiny-text", "--quiet"]
    assert main([*common, "--target", str(sets["target"]), "--budget", "3", "--strategy", "margin_kcenter",
                 "--csv", str(tmp_path / "list.csv"), "--json", str(tmp_path / "r.json")]) == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["task"] == "multilabel" and len(report["ranked"]) == 3
    rows = list(csv.DictReader(open(tmp_path / "list.csv", encoding="utf-8")))
    assert [r["suggested"] for r in rows] == [r["suggested"] for r in report["ranked"]]
    assert "projection (not a measurement) of micro-F1" in capsys.readouterr().err
    one = tmp_path / "one.csv"
    one.write_text("text,labels\n" + "".join(f"cheap {i},price\n" for i in range(6)))
    assert main([*common, "--target", str(one)]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "at least two" in errors[0]


# ------------------------------------------------------------------ the labels come back as a new version

def _write(files: dict, folder: Path) -> dict:
    out = {}
    for split, (name, data) in files.items():
        (folder / split).mkdir(parents=True)
        (folder / split / name).write_bytes(data)
        out[split] = folder / split / name
    return out


def test_a_filled_multilabel_list_becomes_a_new_text_version_with_the_same_eval(sets, tmp_path):
    pool = load_multilabel(sets["pool"])
    sheet = "rank,item,name,suggested,uncertainty,label\n" + "".join(
        f'{i + 1},"{x}",{pool.names[i]},,,{label}\n'
        for i, (x, label) in enumerate(zip(pool.items, ["price|delivery", "", "(none)", '"[""quality""]"'])))
    files, n = ln.new_version_files("text", str(sets["target"]), str(sets["pool"]), sheet)
    assert n == 3 and set(files) == {"target", "unlabeled", "eval"}
    paths = _write(files, tmp_path / "v2")
    assert detect_task(paths["target"], "text") == "multilabel"
    new = load_multilabel(paths["target"])
    train, held, _ = eval_split(load_multilabel(sets["target"]), 0.3)
    assert new.items == train.items + [pool.items[0], pool.items[2], pool.items[3]]
    assert new.label_sets == train.label_sets + [("price", "delivery"), (), ("quality",)]
    evals = load_multilabel(paths["eval"])
    assert evals.items == held.items and evals.label_sets == held.label_sets
    rest = load_multilabel(paths["unlabeled"])
    assert rest.label_sets is None and len(rest) == len(pool) - 3 and pool.items[1] in rest.items
    with pytest.raises(DataError, match="labels"):
        ln.new_version_files("text", str(sets["target"]), str(sets["pool"]),
                             f'rank,item,name,label\n1,"{pool.items[0]}",x,"[not json"\n')


def test_a_filled_multilabel_list_becomes_a_new_image_version(strips, tmp_path):
    demo = strips
    pool, _ = ml.load_pool(str(demo / "unlabeled"), "image", "skip")
    sheet = ("rank,item,name,label\n" + f"1,{pool.items[3]},{pool.names[3]},2|5\n"
             + f"2,,{pool.names[7]},0\n")        # matched by item path, then by name alone
    files, n = ln.new_version_files("image", str(demo / "target"), str(demo / "unlabeled"), sheet,
                                    eval=str(demo / "eval"))
    assert n == 2 and set(files) == {"target", "unlabeled"}          # the set's own eval split stays as it is
    with zipfile.ZipFile(io.BytesIO(files["target"][1])) as z:
        names = z.namelist()
    # the target's images/strip_0003.png and the pool's are two files: the second is renamed within images/
    assert "labels.csv" in names and sum(n.startswith("images/") for n in names) == 32 == len(set(names)) - 1
    paths = _write(files, tmp_path / "v2")
    assert detect_task(paths["target"], "image") == "multilabel"
    new = load_multilabel(paths["target"], require_labels=True)
    assert len(new) == 32 and new.label_sets[-2:] == [("2", "5"), ("0",)]
    assert Path(new.items[-2]).read_bytes() == Path(pool.items[3]).read_bytes()
    assert len(load_multilabel(paths["unlabeled"])) == len(pool) - 2


def test_the_digit_strips_demo_is_ranked_as_multilabel(strips):
    demo = strips
    result = tlcore.label_next(demo / "unlabeled", modality="image", target=demo / "target", backbone="tiny-image",
                               budget=3, strategy="margin_kcenter")
    assert result.task == "multilabel" and not result.warnings     # the unlabeled table's images are not "labels"
    assert result.labeled["classes"] == [str(d) for d in range(6)]
    assert all(r["suggested"] == "(none)" or set(r["suggested"].split("|")) <= set("012345") for r in result.ranked)


# ------------------------------------------------------------------ the Data page

def test_the_data_page_ranks_a_multilabel_set_and_brings_label_sets_back(app_home, sets, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from tlcore.models import registry
    from ui import datasets

    monkeypatch.setitem(registry.DEFAULT_BACKBONE, "text", "tiny-text")   # the page ranks on the default backbone
    (datasets.uploads_dir() / "sets").mkdir(parents=True, exist_ok=True)
    ref = datasets.save_upload_set("text", {"target": str(sets["target"]), "unlabeled": str(sets["pool"])},
                                   name="reviews", task="multilabel")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.query_params["data"] = ref
    at.run()
    at.switch_page("pages/data.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(s.value == "What to label next" for s in at.subheader)
    assert any("`a|b`" in c.value for c in at.caption)
    at.number_input(key="ln-budget").set_value(3).run()
    at.selectbox(key="ln-strategy").set_value("margin").run()
    at.button(key="ln-run").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("3 items to label next" in m.value for m in at.markdown)
    assert any("Expected micro-F1 with 3 more labels" in m.value for m in at.markdown)
    ranked = [df.value for df in at.dataframe if "probe's guess" in df.value.columns][0]
    first = ranked["text"].iloc[0]
    sheet = f'rank,item,name,suggested,uncertainty,label\n1,"{first}",x,,,price|quality\n'
    at.file_uploader(key="ln-labels").upload("label-next.csv", sheet.encode(), "text/csv").run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("new version" in s.value for s in at.success)
    new = {c.name: c for c in datasets.upload_sets()}["reviews + 1 labels"]
    assert new.task == "multilabel" and set(new.splits) == {"target", "eval", "unlabeled"}
    target = load_multilabel(new.splits["target"])
    assert target.items[-1] == first and target.label_sets[-1] == ("price", "quality")


def test_a_second_file_of_the_same_name_stays_in_its_folder():
    from tlcore.data.label_list import unique_name

    used = {"dark/a.png"}
    assert unique_name("dark/a.png", used) == "dark/a-2.png" and unique_name("dark/a.png", used) == "dark/a-3.png"
