"""The "Which strategy?" sweep (issue 18 part 8): every strategy under one protocol and budget on one split, the
baselines once, one table with paired intervals against the best, and a recommendation that can say "no pretrained
strategy beats the classical baseline"."""

from __future__ import annotations

import json

import pytest
from conftest import write_text_set

from tlcore.config import FinetuneConfig
from tlcore.errors import ConfigError
from tlcore.experiments.sweep import SweepConfig, check_sweep, recommend, run_sweep
from tlcore.tasks import get_task

ACC = get_task("classify").metrics[0]


def test_a_sweep_runs_each_strategy_on_one_split_and_the_baselines_once(tmp_path):
    data = write_text_set(tmp_path / "t", n_per_class=12)
    base = FinetuneConfig(modality="text", backbone="tiny-text", target=str(data), epochs=1,
                          baselines=["knn", "classical"])
    seen = []
    r = run_sweep(base, tmp_path / "sweep", strategies=["linear_probe", "full"], progress=seen.append)
    assert [row["strategy"] for row in r["strategies"]] == ["linear_probe", "full"]
    runs = {name: json.loads((tmp_path / "sweep" / "strategies" / name / "report.json").read_text())
            for name in ("linear_probe", "full")}
    assert runs["linear_probe"]["eval_predictions"]["items"] == runs["full"]["eval_predictions"]["items"]
    assert set(runs["linear_probe"]["baselines"]) == {"knn", "classical"} and runs["full"]["baselines"] == {}
    assert set(r["baselines"]) == {"knn", "classical"} and r["baselines"]["classical"]["no_pretraining"]
    for row in r["strategies"]:
        assert row["accuracy"] == runs[row["strategy"]]["after"]["accuracy"] and row["model_bytes"] > 0
        assert row["within_noise_of_best"] == (row["strategy"] == r["best"] or row["vs_best"]["ci95"][1] >= 0)
    assert r["recommendation"]["text"] and json.loads((tmp_path / "sweep" / "report.json").read_text())["kind"] == "sweep"
    assert seen[-1].stage == "done" and not [e for e in seen[:-1] if e.stage == "done"]   # one "done": the sweep's
    assert r["config"]["strategies"] == ["linear_probe", "full"]


def _row(name, acc, diff, ci, seconds, size=1):
    return {"strategy": name, "accuracy": acc, "vs_best": {"difference": diff, "ci95": ci},
            "within_noise_of_best": ci[1] >= 0, "train_seconds": seconds, "model_bytes": size}


def test_the_recommendation_is_the_cheapest_within_noise_of_the_best():
    rows = [_row("linear_probe", 0.80, -0.04, [-0.10, 0.02], 1), _row("lora", 0.82, -0.02, [-0.06, 0.01], 30),
            _row("full", 0.84, 0.0, [0.0, 0.0], 90), _row("partial", 0.70, -0.14, [-0.2, -0.08], 40)]
    classical = {"classical": {"label": "TF-IDF + logistic regression", "accuracy": 0.6, "no_pretraining": True,
                               "best_vs": {"difference": 0.24, "ci95": [0.15, 0.33]}}}
    rec = recommend(rows, classical, "full", ACC)
    assert rec["strategy"] == "linear_probe" and rec["text"].startswith("use linear_probe: within noise of the best, full")
    rows[0] = _row("linear_probe", 0.70, -0.14, [-0.2, -0.08], 1)           # clearly worse: not a candidate
    assert recommend(rows, classical, "full", ACC)["strategy"] == "lora"


def test_when_no_strategy_beats_the_classical_baseline_the_sweep_says_so():
    rows = [_row("linear_probe", 0.70, 0.0, [0.0, 0.0], 1)]
    baselines = {"knn": {"label": "k-NN", "accuracy": 0.5, "no_pretraining": False,
                         "best_vs": {"difference": 0.2, "ci95": [0.1, 0.3]}},
                 "classical": {"label": "TF-IDF + logistic regression", "accuracy": 0.72, "no_pretraining": True,
                               "best_vs": {"difference": -0.02, "ci95": [-0.09, 0.05]}}}
    rec = recommend(rows, baselines, "linear_probe", ACC)
    assert rec["strategy"] is None and rec["against"] == "classical"
    assert rec["text"].startswith("no pretrained strategy beats TF-IDF + logistic regression on this data")
    assert "not clearly better than" in rec["text"]


def test_a_sweep_refuses_what_it_cannot_compare(tmp_path):
    base = FinetuneConfig(modality="text", target=str(tmp_path))
    with pytest.raises(ConfigError, match="not available for named-entity"):
        check_sweep(FinetuneConfig(task="ner", modality="text", target=str(tmp_path)), ["full"])
    with pytest.raises(ConfigError, match="adapts to unlabeled data"):
        check_sweep(base, ["linear_probe", "dann"])
    with pytest.raises(ConfigError, match="name each strategy once"):
        check_sweep(base, ["full", "full"])
    with pytest.raises(ConfigError, match="warp"):
        SweepConfig(target=str(tmp_path), out=str(tmp_path / "o"), strategies=["warp"]).validate()
    with pytest.raises(ConfigError, match="unknown"):
        SweepConfig.from_dict({"target": "x", "speed": 3})


def test_the_table_lists_strategies_then_baselines():
    from ui.sweep import sweep_rows

    report = {"task": "classify", "best": "full",
              "strategies": [{**_row("full", 0.84, 0.0, [0.0, 0.0], 90, 5_000_000), "ci95": [0.8, 0.88]},
                             {**_row("lora", 0.82, -0.02, [-0.06, 0.01], 30), "ci95": [0.78, 0.86]}],
              "baselines": {"classical": {"label": "TF-IDF + logistic regression", "accuracy": 0.6,
                                          "ci95": [0.5, 0.7], "no_pretraining": True, "train_seconds": 1.0,
                                          "best_vs": {"difference": 0.24, "ci95": [0.15, 0.33]}}}}
    rows = sweep_rows(report)
    assert [r["model"] for r in rows] == ["full (best)", "lora", "baseline: TF-IDF + logistic regression"]
    assert rows[0]["model size"] == "5.0 MB" and rows[1]["vs best (points)"] == "-2.0 (-6.0 to +1.0)"
    assert rows[2]["vs best (points)"] == "best +24.0 (+15.0 to +33.0)"


def test_the_cli_sweep_prints_the_table_and_the_recommendation(tmp_path, capsys):
    from tlcore.cli import main

    data = write_text_set(tmp_path / "t", n_per_class=10)
    out = tmp_path / "sw"
    assert main(["sweep", "--modality", "text", "--backbone", "tiny-text", "--target", str(data), "--out", str(out),
                 "--strategies", "linear_probe,lora", "--epochs", "1", "--baselines", "classical", "--quiet",
                 "--json", str(tmp_path / "r.json")]) == 0
    err = capsys.readouterr().err
    assert "linear_probe" in err and "lora" in err and "recommendation: " in err
    assert json.loads((tmp_path / "r.json").read_text())["config"]["strategies"] == ["linear_probe", "lora"]
    assert main(["sweep", "--modality", "text", "--target", str(data), "--out", str(tmp_path / "x"),
                 "--strategies", "linear_probe,dann"]) == 2
    assert "adapts to unlabeled data" in capsys.readouterr().err


def test_a_sweep_runs_as_a_background_job(tmp_path, monkeypatch):
    from tlcore.runs import RunStore
    from tlcore.runs.worker import Worker, WorkerOptions

    monkeypatch.setenv("TRANSFERLAB_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("TRANSFERLAB_DB_URL", raising=False)
    store = RunStore.open()
    data = write_text_set(tmp_path / "t", n_per_class=10)
    cfg = SweepConfig(modality="text", target=str(data), backbone="tiny-text", strategies=["linear_probe", "lora"],
                      epochs=1, baselines=["knn"])
    run = store.create_run(cfg, "sweep", job="tlcore.api:sweep_job")
    store.enqueue(run.id)
    assert Worker(store, WorkerOptions(poll_s=0.05, heartbeat_s=0.2, progress_interval_s=0.05,
                                       cancel_check_s=0.05)).run_once() == "done"
    run = store.get(run.id)
    report = json.loads((run.out / "report.json").read_text())
    assert report["kind"] == "sweep" and run.metrics["sweep_best"] == max(r["accuracy"] for r in report["strategies"])
    assert (run.out / "strategies" / "lora" / "model").is_dir()
    store.dispose()
