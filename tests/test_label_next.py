"""What to label next (issue 19 part 4): the selection functions against cases with a known answer, the learning-curve
projection, the run through the API and the CLI (with its bad inputs), the labeled list coming back as a new version,
and the Data page's section (AppTest)."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import write_image_set, write_text_set

import tlcore
from tlcore.data.dataset import Dataset
from tlcore.data.label_list import labeled_version, read_label_list
from tlcore.data.loaders import load_dataset
from tlcore.errors import ConfigError, DataError
from tlcore.experiments import label_next as ln
from tlcore.experiments.projection import fit_learning_curve, power_law
from tlcore.experiments.selection import (
    kcenter_greedy,
    margin_uncertainty,
    most_uncertain,
    random_select,
    typicality,
    typiclust,
)

ROOT = Path(__file__).resolve().parents[1]


def _directions(degrees) -> np.ndarray:
    rad = np.deg2rad(np.asarray(degrees, dtype=float))
    return np.stack([np.cos(rad), np.sin(rad)], 1)


# ------------------------------------------------------------------ selection functions

def test_margin_is_one_minus_the_gap_between_the_top_two_classes():
    probs = np.array([[0.5, 0.5, 0.0], [0.9, 0.05, 0.05], [0.2, 0.5, 0.3]])
    assert np.allclose(margin_uncertainty(probs), [1.0, 0.15, 0.8])
    assert most_uncertain(margin_uncertainty(probs), 2) == [0, 2]
    with pytest.raises(ValueError):
        margin_uncertainty(np.ones((3, 1)))


def test_kcenter_greedy_takes_the_farthest_item_first_and_weights_steer_it():
    pool = _directions([5, 90, 180])
    labeled = _directions([0])
    assert kcenter_greedy(pool, labeled, 2) == [2, 1]          # 180° is farthest from 0°, then 90° from both
    # margin x k-center: an item the probe is sure of (weight 0) waits its turn behind any uncertain one
    assert kcenter_greedy(pool, labeled, 3, weights=np.array([1.0, 1.0, 0.0])) == [1, 0, 2]
    assert kcenter_greedy(pool, np.zeros((0, 2)), 3, seed=4) == kcenter_greedy(pool, np.zeros((0, 2)), 3, seed=4)


def _blobs(sizes, angles, seed=0):
    """Tight clusters of unit vectors around ``angles``: the first item of each blob sits at its centre, the others
    on a line through it at offsets ±i²·0.0006, thinning out away from the centre (so the centre is the most typical)."""
    rows, blob = [], []
    for b, (n, a) in enumerate(zip(sizes, angles)):
        centre = np.r_[_directions([a])[0], 0.0]
        side = np.r_[-np.sin(np.deg2rad(a)), np.cos(np.deg2rad(a)), 0.0]
        rows.append(centre)
        for j in range(1, n):
            rows.append(centre + (-1) ** j * ((j + 1) // 2) ** 2 * 0.0006 * side)
        blob += [b] * n
    return np.array(rows), np.array(blob)


def test_typicality_is_highest_at_a_clusters_centre():
    x, _ = _blobs([25], [0])
    assert int(np.argmax(typicality(x, 20))) == 0


def test_typiclust_takes_the_typical_item_of_each_uncovered_cluster_largest_first():
    x, blob = _blobs([30, 20, 10], [0, 120, 240])
    chosen = typiclust(x, np.zeros((0, 3)), 3, seed=0)
    assert [int(blob[i]) for i in chosen] == [0, 1, 2]          # one per cluster, the largest first
    assert chosen[0] == 0                                        # the centre of the largest
    # the largest cluster already holds labeled items: it is covered, so the first pick is from the next one
    chosen = typiclust(x, x[blob == 0][:3] + 0.001, 2, seed=0)
    assert [int(blob[i]) for i in chosen] == [1, 2]
    assert typiclust(x, np.zeros((0, 3)), 5, seed=3) == typiclust(x, np.zeros((0, 3)), 5, seed=3)


def test_random_selection_is_seeded_and_distinct():
    a = random_select(50, 10, seed=1)
    assert a == random_select(50, 10, seed=1) and len(set(a)) == 10 and a != random_select(50, 10, seed=2)
    assert len(random_select(5, 10)) == 5


# ------------------------------------------------------------------ projection

def test_the_power_law_fit_recovers_a_known_curve_with_a_band_around_it():
    rng = np.random.default_rng(0)
    sizes = [5, 10, 20, 40, 80]
    n = [s for s in sizes for _ in range(3)]
    acc = [float(power_law(s, 0.9, 0.6, 0.5)) + rng.normal(0, 0.005) for s in n]
    fit = fit_learning_curve(n, acc, [80, 120, 400], seed=0)
    assert abs(fit["params"]["a"] - 0.9) < 0.05
    truth = power_law(np.array([80, 120, 400]), 0.9, 0.6, 0.5)
    assert all(lo <= m <= hi for lo, m, hi in zip(fit["low"], fit["mean"], fit["high"]))
    assert abs(fit["mean"][1] - truth[1]) < 0.02
    assert fit["extrapolated"] == [False, False, True]
    assert "missing" in fit_learning_curve([5, 5, 10, 10], [0.5, 0.6, 0.7, 0.7], [20])


def test_the_projection_figure_is_a_band_labelled_projection():
    from tlcore.plots import label_projection

    proj = {"n_now": 10, "more_labels": [0, 5, 10], "mean": [0.6, 0.65, 0.68], "low": [0.55, 0.58, 0.6],
            "high": [0.65, 0.7, 0.75], "points": [{"train": 4, "mean": 0.5}, {"train": 10, "mean": 0.6}]}
    fig = label_projection(proj)
    band, line, measured = fig.data
    assert band.fill == "toself" and list(band.x) == [10, 15, 20, 20, 15, 10]
    assert "projection" in band.name and "projection" in line.name and "not measured" in line.name
    assert measured.name.startswith("measured") and list(measured.x) == [4, 10]
    assert "not a measurement" in fig.layout.title.text


# ------------------------------------------------------------------ the run: API, CLI, bad input

def _pool_csv(path: Path, texts) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text"])
        for t in texts:
            w.writerow([t])
    return path


POOL_TEXTS = [f"the film was {w} indeed {i}" for i, w in enumerate(["great", "awful", "lovely", "dreadful"] * 5)]


def test_api_ranks_the_pool_suggests_labels_and_projects(tmp_path):
    target = write_text_set(tmp_path / "target", n_per_class=12)
    pool = _pool_csv(tmp_path / "pool" / "pool.csv", POOL_TEXTS)
    result = tlcore.label_next(pool, modality="text", target=target, backbone="tiny-text", budget=6,
                               strategy="margin_kcenter")
    report = json.loads(json.dumps(result.to_dict()))
    assert report["kind"] == "label_next" and len(report["ranked"]) == 6
    assert [r["rank"] for r in report["ranked"]] == list(range(1, 7))
    assert {r["item"] for r in report["ranked"]} <= set(POOL_TEXTS)
    assert all(r["suggested"] in ("positive", "negative") and 0 <= r["uncertainty"] <= 1 for r in report["ranked"])
    proj = report["projection"]
    assert proj["kind"] == "projection" and proj["n_now"] == report["labeled"]["n"]
    assert proj["more_labels"][0] == 0 and proj["more_labels"][-1] == 6
    assert all(lo <= m <= hi for lo, m, hi in zip(proj["low"], proj["mean"], proj["high"]))
    rows = list(csv.DictReader(io.StringIO(ln.ranked_csv(result))))
    assert [r["item"] for r in rows] == [r["item"] for r in report["ranked"]] and all(r["label"] == "" for r in rows)


def test_without_a_target_typiclust_ranks_and_says_why_there_is_no_projection(tmp_path):
    pool = _pool_csv(tmp_path / "pool.csv", POOL_TEXTS)
    result = tlcore.label_next(pool, modality="text", backbone="tiny-text", budget=3)
    assert result.strategy == "typiclust" and len(result.ranked) == 3 and result.projection is None
    assert "no labeled target" in result.projection_missing
    with pytest.raises(ConfigError, match="margin reads a classifier's uncertainty"):
        tlcore.label_next(pool, modality="text", backbone="tiny-text", strategy="margin")


def test_bad_inputs_are_one_clear_error(tmp_path, monkeypatch):
    target = write_text_set(tmp_path / "target", n_per_class=6)
    one_class = tmp_path / "one.csv"
    one_class.write_text("text,label\n" + "".join(f"good film {i},positive\n" for i in range(6)))
    empty = tmp_path / "empty.csv"
    empty.write_text("text\n")
    pool = _pool_csv(tmp_path / "pool.csv", POOL_TEXTS)
    with pytest.raises(DataError, match="no rows"):
        tlcore.label_next(empty, modality="text", backbone="tiny-text")
    with pytest.raises(DataError, match="holds one class"):
        tlcore.label_next(pool, modality="text", target=one_class, backbone="tiny-text")
    monkeypatch.setattr(ln, "MAX_POOL", 10)
    with pytest.raises(DataError, match="has 20 items; at most 10 are ranked at once"):
        tlcore.label_next(pool, modality="text", target=target, backbone="tiny-text")
    with pytest.raises(ConfigError, match="budget"):
        tlcore.label_next(pool, modality="text", backbone="tiny-text", budget=0)


def test_the_projection_can_come_from_a_curve_run(tmp_path):
    pool = _pool_csv(tmp_path / "pool.csv", POOL_TEXTS)
    points = [{"train": n, "pretrained": {"mean": m, "values": [m - 0.01, m + 0.01]}}
              for n, m in ((4, 0.55), (8, 0.62), (16, 0.70), (32, 0.76))]
    (tmp_path / "curve").mkdir()
    (tmp_path / "curve" / "report.json").write_text(json.dumps({"strategy": "linear_probe", "points": points}))
    result = tlcore.label_next(pool, modality="text", backbone="tiny-text", budget=4, curve=tmp_path / "curve")
    assert result.projection["n_now"] == 32 and "the curve run" in result.projection["source"]
    assert result.projection["mean"][0] > 0.7
    (tmp_path / "other.json").write_text(json.dumps({"ranking": []}))
    with pytest.raises(DataError, match="no data-efficiency curve report"):
        tlcore.label_next(pool, modality="text", backbone="tiny-text", curve=tmp_path / "other.json")


def test_the_docs_table_is_what_its_json_renders_to():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import label_next_table

    text = (ROOT / "docs" / "benchmarks.md").read_text()
    block = re.search(r"<!-- table:label-next [^\n]*-->\n\n(.*?)\n\n<!-- /table:label-next -->", text, re.S)
    assert block is not None, "docs/benchmarks.md has no label-next table: run benchmarks/label_next_table.py"
    assert block.group(1) == label_next_table.render(json.loads((ROOT / "docs" / "label_next_table.json").read_text()))


def test_cli_writes_the_json_and_the_csv_and_refuses_bad_input_in_one_line(tmp_path, capsys):
    from tlcore.cli import main

    target = write_text_set(tmp_path / "target", n_per_class=8)
    pool = _pool_csv(tmp_path / "pool.csv", POOL_TEXTS)
    common = ["label-next", "--modality", "text", "--pool", str(pool), "--backbone", "tiny-text", "--quiet"]
    assert main([*common, "--target", str(target), "--budget", "4", "--csv", str(tmp_path / "list.csv"),
                 "--json", str(tmp_path / "r.json")]) == 0
    assert len(json.loads((tmp_path / "r.json").read_text())["ranked"]) == 4
    assert len(list(csv.DictReader(open(tmp_path / "list.csv")))) == 4
    assert "projection (not a measurement)" in capsys.readouterr().err
    for args, message in ((["--budget", "0"], "budget"), (["--strategy", "nope"], "strategy")):
        assert main([*common, *args]) == 2
        errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and message in errors[0]
    # and as a process: exit 2, one line, no traceback
    one = tmp_path / "one.csv"
    one.write_text("text,label\n" + "".join(f"good film {i},positive\n" for i in range(6)))
    bad = subprocess.run([sys.executable, "-m", "tlcore", *common, "--target", str(one)], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    errors = [line for line in bad.stderr.splitlines() if line.startswith("error:")]
    assert bad.returncode == 2 and len(errors) == 1 and "holds one class" in errors[0], bad.stderr
    assert "Traceback" not in bad.stderr


# ------------------------------------------------------------------ the labels come back as a new version

def test_a_filled_list_becomes_a_new_text_version_with_the_same_eval(tmp_path):
    target = load_dataset(write_text_set(tmp_path / "target", n_per_class=4), "text")
    pool = load_dataset(_pool_csv(tmp_path / "pool.csv", POOL_TEXTS), "text")
    held = Dataset("text", ["kept for eval"], ["positive"])
    sheet = "rank,item,name,suggested,uncertainty,label\n" + "".join(
        f'{i + 1},"{POOL_TEXTS[i]}",row {i + 2},,,{"positive" if i % 2 == 0 else ""}\n' for i in range(4))
    picked, labels = read_label_list(sheet, pool)
    assert picked == [0, 2] and labels == ["positive", "positive"]
    files = labeled_version(target, pool, picked, labels, eval=held)
    for split, (name, data) in files.items():
        (tmp_path / "v2" / split).mkdir(parents=True)
        (tmp_path / "v2" / split / name).write_bytes(data)
    new = load_dataset(tmp_path / "v2" / "target", "text")
    assert len(new) == len(target) + 2 and new.items[-2:] == [POOL_TEXTS[0], POOL_TEXTS[2]]
    assert len(load_dataset(tmp_path / "v2" / "unlabeled", "text")) == len(pool) - 2
    assert load_dataset(tmp_path / "v2" / "eval", "text").items == ["kept for eval"]
    with pytest.raises(DataError, match="no label filled in"):
        read_label_list("rank,item,name,label\n1,x,row 2,\n", pool)
    with pytest.raises(DataError, match="not in the pool"):
        read_label_list("rank,item,name,label\n1,not there,row 99,positive\n", pool)
    with pytest.raises(DataError, match="'item' and 'label'"):
        read_label_list("a,b\n1,2\n", pool)


def test_a_filled_list_becomes_a_new_image_version(tmp_path):
    target = load_dataset(write_image_set(tmp_path / "target", n_per_class=3), "image")
    pool = load_dataset(write_image_set(tmp_path / "pool", n_per_class=2, seed=5, labeled=False), "image")
    files = labeled_version(target, pool, [1], ["dark"])
    assert set(files) == {"target", "unlabeled"}
    with zipfile.ZipFile(io.BytesIO(files["target"][1])) as z:
        names = z.namelist()
    assert len(names) == 7 and sum(n.startswith("dark/") for n in names) == 4


# ------------------------------------------------------------------ the Data page (AppTest)

@pytest.mark.slow   # the page ranks on the default backbone's real weights (minilm-l6)
def test_data_page_ranks_the_unlabeled_split_and_brings_labels_back(app_home, tmp_path):
    from streamlit.testing.v1 import AppTest

    from ui import datasets

    write_text_set(tmp_path / "target", n_per_class=6)
    pool = _pool_csv(tmp_path / "pool.csv", POOL_TEXTS[:10])
    (datasets.uploads_dir() / "sets").mkdir(parents=True, exist_ok=True)
    ref = datasets.save_upload_set("text", {"target": str(tmp_path / "target" / "data.csv"), "unlabeled": str(pool)},
                                   name="reviews")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.query_params["data"] = ref
    at.run()
    at.switch_page("pages/data.py").run()
    at.number_input(key="ln-budget").set_value(4).run()
    at.button(key="ln-run").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("4 items to label next" in m.value for m in at.markdown)
    ranked = [df.value for df in at.dataframe if "probe's guess" in df.value.columns][0]
    assert len(ranked) == 4
    assert any("Projection, not a measurement" in c.value for c in at.caption)
    first = ranked["text"].iloc[0]
    sheet = f'rank,item,name,suggested,uncertainty,label\n1,"{first}",x,,,positive\n'
    at.file_uploader(key="ln-labels").upload("label-next.csv", sheet.encode(), "text/csv").run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("new version" in s.value for s in at.success)
    sets = {c.name: c for c in datasets.upload_sets()}
    assert set(sets) == {"reviews", "reviews + 1 labels"}          # the earlier version is still there
    new = sets["reviews + 1 labels"]
    assert set(new.splits) == {"target", "eval", "unlabeled"}
    assert len(load_dataset(new.splits["unlabeled"], "text")) == 9
    assert first in load_dataset(new.splits["target"], "text").items
