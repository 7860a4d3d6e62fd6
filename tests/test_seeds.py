"""Several training seeds in one run (``--seeds K``, issue 18 part 4): "after" and every trained baseline are trained
K times on the same split; the report gives every seed's numbers, and the verdict's interval covers seed noise and
eval-sample noise (a hierarchical bootstrap: seeds, then eval items)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import write_text_set

import tlcore
from tlcore.cli import main
from tlcore.config import FinetuneConfig
from tlcore.errors import ConfigError
from tlcore.evaluation.metrics import paired_difference, seeded_paired_difference


def test_one_seed_is_the_paired_difference_and_disagreeing_seeds_widen_the_interval():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    a, b = np.where(rng.random(300) < 0.8, y, 1 - y), np.where(rng.random(300) < 0.7, y, 1 - y)
    one = seeded_paired_difference(y, [a], [b], seed=1)
    assert one["difference"] == pytest.approx(paired_difference(y, a, b)["difference"]) and one["seeds"] == 1
    # three seeds that agree on average but each differs a lot: the interval must not shrink to one seed's
    afters = [np.where(rng.random(300) < p, y, 1 - y) for p in (0.65, 0.8, 0.95)]
    three = seeded_paired_difference(y, afters, [b, b, b], seed=1)
    assert three["per_seed"] == pytest.approx([paired_difference(y, x, b)["difference"] for x in afters])
    assert three["difference"] == pytest.approx(np.mean(three["per_seed"]))
    lo, hi = three["ci95"]
    assert lo < min(three["per_seed"][1], three["difference"]) < hi
    seeds_only = hi - lo
    assert seeds_only > one["ci95"][1] - one["ci95"][0]
    assert "hierarchical bootstrap over 3 seeds" in three["ci_method"]


def test_a_run_with_three_seeds_reports_each_and_compares_over_all(tmp_path):
    data = write_text_set(tmp_path / "t", n_per_class=15)
    r = tlcore.finetune(modality="text", backbone="tiny-text", target=str(data), strategy="full", epochs=2, seeds=3,
                        baselines=["scratch", "knn"], out=str(tmp_path / "run")).report
    s = r["seeds"]
    assert s["seeds"] == [0, 1, 2] and s["metric"] == "accuracy"
    assert set(s["scores"]) == {"before", "after", "scratch", "knn"} and all(len(v) == 3 for v in s["scores"].values())
    assert len(set(s["scores"]["knn"])) == 1 and len(set(s["scores"]["before"])) == 1    # not trained: scored once
    assert s["scores"]["after"][0] == pytest.approx(r["after"]["accuracy"])               # the saved model: seed 0
    assert s["mean"]["after"] == pytest.approx(np.mean(s["scores"]["after"]))
    truth = np.asarray(r["eval_predictions"]["true"])     # every seed's predictions, in the eval items' order
    assert s["predictions"]["after"][0] == r["eval_predictions"]["after"]
    assert [float((np.asarray(p) == truth).mean()) for p in s["predictions"]["scratch"]] == pytest.approx(
        s["scores"]["scratch"])
    assert set(r["comparisons"]) == {"before", "scratch"} and r["comparisons"]["scratch"]["seeds"] == 3
    assert r["comparisons"] == s["comparisons"] and set(s["first_seed_comparisons"]) == {"before", "scratch"}
    assert r["config"]["seeds"] == 3


def test_tasks_without_several_seeds_refuse_and_the_cli_takes_the_flag(tmp_path, capsys):
    with pytest.raises(ConfigError, match="--seeds 2: several training seeds in one run are available for"):
        FinetuneConfig(task="ner", modality="text", target="x", out=str(tmp_path / "o"), seeds=2).validate()
    with pytest.raises(ConfigError, match="seeds"):
        FinetuneConfig(modality="text", target="x", out=str(tmp_path / "o"), seeds=11).validate()
    data = write_text_set(tmp_path / "t", n_per_class=8)
    out = tmp_path / "cli"
    assert main(["finetune", "--modality", "text", "--backbone", "tiny-text", "--target", str(data), "--out", str(out),
                 "--seeds", "2", "--baselines", "knn", "--quiet"]) == 0
    assert json.loads((out / "report.json").read_text())["seeds"]["seeds"] == [0, 1]


def test_compare_shows_every_seed_with_mean_and_spread():
    from ui.report import seed_rows

    report = {"task": "classify", "setting": "inductive", "baselines": {"scratch": {"accuracy": 0.5}},
              "seeds": {"seeds": [0, 1], "scores": {"after": [0.8, 0.7], "scratch": [0.5, 0.6]},
                        "mean": {"after": 0.75, "scratch": 0.55}, "std": {"after": 0.0707, "scratch": 0.0707}}}
    rows = seed_rows(report)
    assert rows[0] == {"model": "after", "seed 0": "80.0%", "seed 1": "70.0%", "mean": "75.0%", "std": "7.1%"}
    assert rows[1]["seed 1"] == "60.0%" and "scratch" in rows[1]["model"]
    assert seed_rows({"task": "classify"}) == []
