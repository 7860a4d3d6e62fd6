"""Clustering and the data-efficiency curve as background runs: their settings, their jobs through the real worker
(progress, cancel, bad settings), the pure figures and sentences, and the Analyze / Runs / shared pages (AppTest)."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from conftest import write_audio_set, write_image_set, write_text_set
from streamlit.testing.v1 import AppTest

from tlcore.api import ClusterConfig, CurveConfig, cluster_job, curve_job
from tlcore.errors import Cancelled, ConfigError
from tlcore.experiments.curve import labels_for_accuracy
from tlcore.runs import RunStore
from tlcore.runs.worker import Worker, WorkerOptions
from ui.analyses import analysis_headline, analysis_headline_of_metrics

ROOT = Path(__file__).resolve().parents[1]
CLUSTER_JOB, CURVE_JOB = "tlcore.api:cluster_job", "tlcore.api:curve_job"
FAST = dict(poll_s=0.05, heartbeat_s=0.2, progress_interval_s=0.05, cancel_check_s=0.05)
TINY = {"image": "tiny-image", "text": "tiny-text", "audio": "tiny-audio"}


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSFERLAB_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("TRANSFERLAB_DB_URL", raising=False)
    s = RunStore.open()
    yield s
    s.dispose()


def _run(store: RunStore, cfg, job: str, name: str = "analysis"):
    """Queue ``cfg`` and run it in this process with the real worker; the run afterwards."""
    run = store.create_run(cfg, name, job=job, dataset="upload:test")
    store.enqueue(run.id)
    assert Worker(store, WorkerOptions(**FAST)).run_once() in ("done", "failed", "cancelled")
    return store.get(run.id)


def _data(tmp_path: Path, modality: str, labeled: bool = True) -> Path:
    if modality == "image":
        return write_image_set(tmp_path / "img", n_per_class=6, labeled=labeled)
    if modality == "text":
        return write_text_set(tmp_path / "txt", n_per_class=8)
    return write_audio_set(tmp_path / "aud", n_per_class=4)


# ------------------------------------------------------------------------------------------------ settings

def test_cluster_config_refuses_unknown_names_and_bad_values(tmp_path):
    data = str(write_image_set(tmp_path / "img", n_per_class=3))
    with pytest.raises(ConfigError, match=r"unknown setting\(s\) \['colour'\] for a clustering run; known: modality"):
        ClusterConfig.from_dict({"modality": "image", "data": data, "colour": "red"})
    ok = ClusterConfig.from_dict({"modality": "image", "data": data, "out": str(tmp_path / "o"), "k": 3})
    assert ok.validate() is ok and ClusterConfig.from_dict(ok.to_dict()) == ok
    cases = [({"k": 1}, "k must be between 2 and 50; got 1"), ({"k": 2.5}, "k must be a whole number"),
             ({"k": "3"}, "k must be a number"), ({"modality": "video"}, "modality must be one of image, text, audio"),
             ({"max_items": 5}, "max-items must be between 10 and 50000"), ({"seed": -1}, "seed must be between"),
             ({"data": ""}, "data is required"), ({"modality": None}, "modality is required: one of image"),
             ({"data": str(tmp_path / "nope")}, "does not exist"),
             ({"data": 7}, "data must be text"), ({"backbone": "no-such-net"}, "unknown backbone 'no-such-net'"),
             ({"backbone": "tiny-text"}, "is for text, not image"), ({"on_bad_file": "ignore"}, "on-bad-file must be one of"),
             ({"out": ""}, "no run folder given")]
    for change, message in cases:
        with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
            ClusterConfig.from_dict({**ok.to_dict(), **change}).validate()
    assert ClusterConfig.from_dict({**ok.to_dict(), "out": ""}).validate(need_out=False)


def test_curve_config_parses_shots_and_refuses_bad_values(tmp_path):
    target = str(write_text_set(tmp_path / "t"))
    assert CurveConfig.parse_shots(" 1, 2;5 , all") == [1, 2, 5, 0]
    for text, message in [("1, x", "'x' is not a whole number"), ("", "at least one"), ("-1", "'-1' is not a whole")]:
        with pytest.raises(ConfigError, match=message):
            CurveConfig.parse_shots(text)
    ok = CurveConfig(modality="text", target=target, backbone="tiny-text", shots=[5, 0, 1, 5], seeds=2, out="x")
    assert ok.validate() is ok and ok.shot_list() == [1, 5, 0]
    with pytest.raises(ConfigError, match=r"unknown setting\(s\) \['shot'\] for a data-efficiency curve"):
        CurveConfig.from_dict({"shot": [1]})
    cases = [({"shots": []}, "shots must list"), ({"shots": [1, -2]}, "whole numbers from 0"),
             ({"shots": [True]}, "whole numbers from 0"), ({"shots": list(range(1, 14))}, "at most 12 shot values"),
             ({"shots": list(range(1, 12)), "seeds": 10}, "110 fine-tuning runs; at most 60"),
             ({"seeds": 0}, "seeds must be between 1 and 10"), ({"epochs": 0}, "epochs must be between 1 and 500"),
             ({"strategy": "dann"}, "adapts to unlabeled data"), ({"strategy": "magic"}, "magic"),
             ({"target": ""}, "no labeled target data"), ({"eval": str(tmp_path / "gone")}, "does not exist"),
             ({"scratch": "yes"}, "scratch must be true or false"), ({"modality": "image"}, "is for text, not image")]
    for change, message in cases:
        with pytest.raises(ConfigError, match=message):
            CurveConfig.from_dict({**ok.to_dict(), **change}).validate()


def test_store_validates_a_job_config_by_its_class(store, tmp_path):
    data = str(write_image_set(tmp_path / "img", n_per_class=3))
    with pytest.raises(ConfigError, match="for a clustering run"):
        store.create_run({"modality": "image", "data": data, "epochs": 3}, "x", job=CLUSTER_JOB)
    run = store.create_run(ClusterConfig(modality="image", data=data), "x", job=CLUSTER_JOB)
    assert run.config["out"] == str(store.artifact_dir(run.id)) and run.config["data"] == data
    assert cluster_job.config_class is ClusterConfig and curve_job.config_class is CurveConfig


# ------------------------------------------------------------------------------------------------ jobs via the worker

@pytest.mark.parametrize("modality", ["image", "text", "audio"])
def test_cluster_job_through_the_worker(store, tmp_path, modality, one_thread):
    data = _data(tmp_path, modality)
    run = _run(store, ClusterConfig(modality=modality, data=str(data), backbone=TINY[modality], k=2), CLUSTER_JOB)
    assert run.status == "done", run.error
    assert run.progress["last"]["stage"] == "done"
    report = json.loads((run.out / "report.json").read_text())
    assert report["kind"] == "cluster" and report["backbone"] == TINY[modality] and report["config"]["k"] == 2
    assert 0 <= report["pretrained"]["nmi"] <= 1 and report["raw"]["k"] == 2
    # the runs table's headline is stored with the run (no report read, no download from an artifact store)
    assert analysis_headline_of_metrics(run.metrics) == analysis_headline(report)
    assert run.metrics["pretrained_nmi"] == report["pretrained"]["nmi"]
    clusters = json.loads((run.out / "clusters.json").read_text())
    n = report["data"]["n"]
    for side in ("pretrained", "raw"):
        s = clusters["sides"][side]
        assert len(s["cluster"]) == len(s["x"]) == len(s["y"]) == n and set(s["cluster"]) == {0, 1}
        assert sum(c["size"] for c in s["clusters"]) == n
        for card in s["clusters"]:
            assert 1 <= len(card["examples"]) <= card["size"] and card["top_labels"][0][1] <= card["size"]
            assert all(clusters["sides"][side]["cluster"][e["index"]] == card["id"] for e in card["examples"])
            if modality == "text":
                assert all(e["text"] for e in card["examples"])
            else:
                assert all((run.out / e["file"]).is_file() for e in card["examples"])
    assert (run.out / "examples").is_dir() == (modality != "text")
    assert not list(run.out.glob(".*tmp*"))   # written to temporary names, all renamed


def test_cluster_job_on_a_set_without_labels(store, tmp_path):
    data = write_image_set(tmp_path / "img", n_per_class=5, labeled=False)
    run = _run(store, ClusterConfig(modality="image", data=str(data), backbone="tiny-image"), CLUSTER_JOB)
    assert run.status == "done", run.error
    report = json.loads((run.out / "report.json").read_text())
    assert not report["data"]["labeled_for_scoring"] and "nmi" not in report["pretrained"]
    assert 2 <= report["pretrained"]["k"] <= 9   # chosen by silhouette for 10 items
    clusters = json.loads((run.out / "clusters.json").read_text())
    assert clusters["items"]["label"] is None
    assert all("top_labels" not in c for c in clusters["sides"]["pretrained"]["clusters"])


def test_cluster_job_bad_settings_fail_with_a_clear_message(store, tmp_path):
    data = write_image_set(tmp_path / "img", n_per_class=2)
    run = _run(store, ClusterConfig(modality="image", data=str(data), backbone="tiny-image", k=9), CLUSTER_JOB)
    assert run.status == "failed" and run.error == "k = 9 clusters needs at least 9 items; the data has 4: pick a smaller k"
    assert not (run.out / "error.log").exists()   # a user error, not a crash
    bad = store.create_run({"modality": "image", "data": str(data), "backbone": "nope"}, "bad", job=CLUSTER_JOB)
    store.enqueue(bad.id)
    Worker(store, WorkerOptions(**FAST)).run_once()
    assert store.get(bad.id).status == "failed" and "unknown backbone 'nope'" in store.get(bad.id).error


def test_cluster_job_cancels_and_never_overwrites_a_finished_folder(tmp_path):
    data = str(write_image_set(tmp_path / "img", n_per_class=4))
    checks = []

    def cancel_after_two() -> bool:
        checks.append(1)
        return len(checks) > 2

    events = []
    cfg = ClusterConfig(modality="image", data=data, backbone="tiny-image", out=str(tmp_path / "run"))
    with pytest.raises(Cancelled):
        cluster_job(cfg, progress=events.append, should_cancel=cancel_after_two)
    assert not (tmp_path / "run" / "report.json").exists() and {e.stage for e in events} >= {"data"}
    report = cluster_job(cfg)   # the unfinished folder is reused
    assert report == json.loads((tmp_path / "run" / "report.json").read_text())
    with pytest.raises(ConfigError, match="already holds a finished run"):
        cluster_job(cfg)


def test_curve_job_through_the_worker(store, tmp_path, one_thread):
    target = write_text_set(tmp_path / "t", n_per_class=10)
    cfg = CurveConfig(modality="text", target=str(target), backbone="tiny-text", shots=[0, 2, 1], seeds=2, epochs=2)
    seen = []
    original = RunStore.update_progress

    def spy(self, run_id, *events):
        seen.extend(e.to_dict() if hasattr(e, "to_dict") else dict(e) for e in events)
        return original(self, run_id, *events)

    RunStore.update_progress = spy
    try:
        run = _run(store, cfg, CURVE_JOB)
    finally:
        RunStore.update_progress = original
    assert run.status == "done", run.error
    report = json.loads((run.out / "report.json").read_text())
    assert report["kind"] == "curve" and report["seeds"] == [0, 1] and report["config"]["shots"] == [0, 2, 1]
    assert [p["shots"] for p in report["points"]] == [1, 2, 7] and report["points"][-1]["all"]
    assert analysis_headline_of_metrics(run.metrics) == analysis_headline(report)
    assert analysis_headline(report)[0] == "accuracy (all labels) scratch → pretrained"
    for p in report["points"]:
        for side in ("pretrained", "scratch"):
            s = p[side]
            assert len(s["values"]) == 2 and s["ci95_kind"] == "seeds" and s["ci95"][0] <= s["mean"] <= s["ci95"][1]
    assert (run.out / "config.json").exists()
    curve_events = [e for e in seen if e["stage"] == "curve"]
    assert curve_events and max(e["step"] for e in curve_events) == 5 and all(e["total"] == 6 for e in curve_events)
    assert any("per class, seed 1:" in e["message"] for e in curve_events)   # the inner run's stage is in the message
    assert seen[-1]["stage"] == "done"


def test_curve_job_cancel_through_the_worker(store, tmp_path):
    target = write_text_set(tmp_path / "t", n_per_class=10)
    cfg = CurveConfig(modality="text", target=str(target), backbone="tiny-text", shots=[1, 2, 3, 4, 0], seeds=3,
                      epochs=50, strategy="full")
    run = store.create_run(cfg, "long curve", job=CURVE_JOB)
    store.enqueue(run.id)
    worker = Worker(store, WorkerOptions(**FAST))
    thread = threading.Thread(target=worker.run_once)
    thread.start()
    deadline = time.time() + 60
    while time.time() < deadline and (store.get(run.id).progress.get("last") or {}).get("stage") != "curve":
        time.sleep(0.05)
    t0 = time.time()
    store.request_cancel(run.id)
    thread.join(timeout=60)
    done = store.get(run.id)
    assert done.status == "cancelled" and time.time() - t0 < 30
    assert not (done.out / "report.json").exists()


def test_curve_job_with_one_seed_uses_the_eval_interval(tmp_path, one_thread):
    target = write_text_set(tmp_path / "t", n_per_class=8)
    cfg = CurveConfig(modality="text", target=str(target), backbone="tiny-text", shots=[2], seeds=1, epochs=2,
                      scratch=False, out=str(tmp_path / "run"))
    report = curve_job(cfg)
    (point,) = report["points"]
    assert "scratch" not in point and point["pretrained"]["ci95_kind"] == "eval"
    assert point["pretrained"]["ci95"][0] <= point["pretrained"]["mean"] <= point["pretrained"]["ci95"][1]


def test_curve_points_of_imbalanced_classes_are_labelled_by_the_cap(tmp_path, one_thread):
    """Classes of 6 and 16 training items: the 10-per-class point is "10" (its classes hold 6 and 10), not "6 per
    class, all labels"; "all" is the point that uses every item."""
    target = tmp_path / "t.csv"
    rows = [f"the film was great number {i},pos" for i in range(9)] + [f"the film was awful number {i},neg"
                                                                      for i in range(23)]
    target.write_text("text,label\n" + "\n".join(rows) + "\n")
    cfg = CurveConfig(modality="text", target=str(target), backbone="tiny-text", shots=[10, 0], seeds=1, epochs=1,
                      scratch=False, out=str(tmp_path / "run"))
    points = curve_job(cfg)["points"]
    ten, every = points
    assert (ten["shots"], ten["all"], ten["per_class_range"]) == (10, False, [6, 10]) and ten["train"] == 16
    assert every["all"] and every["per_class_range"] == [6, 16] and every["train"] == 22


def test_a_cancelled_curve_resumes_without_redoing_its_finished_runs(tmp_path, one_thread):
    """Each finished (shots, seed) run is kept in the staging folder: a resumed curve runs only the rest and reports
    the same curve as one never interrupted."""
    target = write_text_set(tmp_path / "t", n_per_class=8)
    settings = dict(modality="text", target=str(target), backbone="tiny-text", shots=[2, 0], seeds=2, epochs=2)
    events = []

    def cancel_in_the_third_run() -> bool:
        return any(e.stage == "curve" and e.step >= 2 for e in events)

    cut = CurveConfig(**settings, out=str(tmp_path / "cut"))
    with pytest.raises(Cancelled):
        curve_job(cut, progress=events.append, should_cancel=cancel_in_the_third_run)
    [staging] = (tmp_path).glob(".cut.partial-*")
    assert len(list((staging / "checkpoints" / "curve").glob("*.json"))) == 2
    events.clear()
    resumed = curve_job(cut, resume=True, progress=events.append)
    assert resumed["resumed_runs"] == 2
    assert min(e.step for e in events if e.stage == "curve") == 2          # it started at the third run
    whole = curve_job(CurveConfig(**settings, out=str(tmp_path / "whole")))
    assert "resumed_runs" not in whole
    assert resumed["points"] == whole["points"]
    assert not (tmp_path / "cut" / "checkpoints").exists()                  # kept only until the curve completed


def test_public_cluster_function_keeps_its_report(tmp_path):
    import tlcore

    data = write_image_set(tmp_path / "img", n_per_class=4)
    result = tlcore.cluster(str(data), modality="image", backbone="tiny-image", k=2)
    assert set(result.to_dict()) == {"setting", "modality", "backbone", "data", "raw_features", "pretrained", "raw"}
    assert set(result.to_dict()["data"]) == {"path", "n", "labeled_for_scoring", "true_classes"}
    assert "labels" not in result.pretrained and result.pretrained["k"] == 2


# ------------------------------------------------------------------------------------------------ reading the curve

def _point(shots, mean, ci=None, all_=False, side="pretrained"):
    s = {"mean": mean, "std": 0.0, "values": [mean]}
    if ci:
        s["ci95"] = list(ci)
    return {"shots": shots, "all": all_, side: s}


def test_stored_analysis_headlines_match_the_reports():
    from tlcore.runs.jobs import headline_metrics

    reports = [{"kind": "cluster", "pretrained": {"k": 3}, "raw": {"k": 3}},                     # no labels
               {"kind": "cluster", "pretrained": {"nmi": 0.8}, "raw": {"nmi": 0.1}},
               {"kind": "curve", "points": [_point(1, 0.4), _point(5, 0.7)]},                   # no scratch side
               {"kind": "curve", "points": [{**_point(2, 0.6, all_=True), **_point(2, 0.3, side="scratch")}]}]
    for report in reports:
        assert analysis_headline_of_metrics(headline_metrics(report)) == analysis_headline(report), report
    assert analysis_headline_of_metrics({"after_accuracy": 0.9}) is None      # not an analysis: read the report


def test_labels_for_accuracy_reads_the_measured_curve():
    points = [_point(1, 0.55), _point(5, 0.75, (0.7, 0.8)), _point(10, 0.9, (0.85, 0.95)), _point(20, 0.88, all_=True)]
    r = labels_for_accuracy(points, 0.8)
    assert r["reached"] and r["shots"] == 10 and r["between"] == 5
    assert r["interpolated"] == pytest.approx(5 + (0.8 - 0.75) / (0.9 - 0.75) * 5) and r["ci_low"] == 0.85
    first = labels_for_accuracy(points, 0.5)
    assert first["reached"] and first["shots"] == 1 and first["between"] is None and first["ci_low"] is None
    never = labels_for_accuracy(points, 0.95)
    assert not never["reached"] and never["best"] == {"shots": 10, "all": False, "mean": 0.9}
    assert not labels_for_accuracy(points, 0.5, side="scratch")["reached"]
    assert labels_for_accuracy(list(reversed(points)), 0.8)["shots"] == 10   # order of the points does not matter


def test_labels_needed_sentences_are_honest():
    from ui.analyses import labels_needed_text

    points = [_point(1, 0.55), _point(5, 0.75), _point(10, 0.9, (0.78, 0.97)), _point(20, 0.92, all_=True)]
    level, text = labels_needed_text(points, 0.8)
    assert level == "success" and "**10 labeled examples per class**" in text and "about 7" in text
    assert "reaches down to 78.0%" in text
    level, text = labels_needed_text(points, 0.95)
    assert level == "warning" and text.startswith("The pretrained model does not reach 95%, not even with all your "
                                                  "labels (20 per class): its best is 92.0%. More labels than you have")
    level, text = labels_needed_text(points[:3] + [_point(20, 0.88, all_=True)], 0.95)
    assert "not even with all your labels (20 per class): its best is 90.0% at 10 per class" in text
    assert "cannot say" in text
    level, text = labels_needed_text(points[:2], 0.9)
    assert level == "warning" and "Measure more labels per class" in text
    level, text = labels_needed_text(points, 0.5)
    assert level == "success" and "smallest measured point" in text and "Fewer were not measured" in text


# ------------------------------------------------------------------------------------------------ figures and words

def test_curve_figure_draws_bands_lines_and_target():
    from ui.analyses import curve_figure

    points = [{"shots": s, "all": s == 20, "pretrained": {"mean": m, "std": 0.02, "values": [m, m], "ci95": [m - .1, m + .05]},
               "scratch": {"mean": m / 2, "std": 0.0, "values": [m / 2]}} for s, m in ((1, 0.5), (5, 0.7), (20, 0.9))]
    fig = curve_figure(points, target=0.8)
    names = [t.name for t in fig.data]
    assert names == ["pretrained: 95% band", "pretrained", "from scratch"]   # one seed and no interval: no band
    band = fig.data[0]
    assert band.fill == "toself" and list(band.x) == [1, 5, 20, 20, 5, 1]
    assert list(band.y) == pytest.approx([0.55, 0.75, 0.95, 0.8, 0.6, 0.4])
    assert list(fig.data[1].y) == [0.5, 0.7, 0.9] and fig.layout.xaxis.type == "log"
    assert list(fig.layout.xaxis.ticktext) == ["1", "5", "all (20)"]
    assert fig.layout.shapes[0].y0 == 0.8


def test_cluster_map_orders_groups_naturally_and_caps_points():
    from ui.analyses import cluster_map_figure

    n = 50
    groups = [f"cluster {i % 11 + 1}" for i in range(n)]
    fig = cluster_map_figure(list(range(n)), list(range(n)), groups, [str(i) for i in range(n)], max_points=25)
    assert [t.name for t in fig.data][:3] == ["cluster 1", "cluster 2", "cluster 3"] and fig.data[-1].name == "cluster 11"
    assert sum(len(t.x) for t in fig.data) == 25
    with pytest.raises(ValueError):
        cluster_map_figure([0], [0, 1], ["a"], ["a"])


def test_cluster_verdict_and_headline():
    from ui.analyses import analysis_headline, cluster_score_figure, cluster_verdict

    base = {"kind": "cluster", "raw_features": "grayscale 32x32 pixels", "data": {"true_classes": ["a", "b", "c"]}}
    good = {**base, "pretrained": {"k": 3, "nmi": 0.8, "ari": 0.7}, "raw": {"k": 3, "nmi": 0.3, "ari": -0.1}}
    level, text = cluster_verdict(good)
    assert level == "success" and "NMI 0.80 vs 0.30" in text and "different k" not in text
    bad = {**base, "pretrained": {"k": 2, "nmi": 0.2, "ari": 0.1}, "raw": {"k": 4, "nmi": 0.5, "ari": 0.4}}
    level, text = cluster_verdict(bad)
    assert level == "warning" and "number of classes (3)" in text
    level, text = cluster_verdict({**base, "pretrained": {"k": 2, "silhouette": 0.4}, "raw": {"k": 2, "silhouette": 0.1}})
    assert level == "info" and "No labels" in text and "0.40" in text
    assert analysis_headline(good) == ("NMI raw → pretrained", 0.3, 0.8)
    assert analysis_headline({"kind": "cluster", "pretrained": {}, "raw": {}})[1:] == (None, None)
    curve = {"kind": "curve", "points": [{"shots": 7, "all": True, "pretrained": {"mean": 0.9}, "scratch": {"mean": 0.6}}]}
    assert analysis_headline(curve) == ("accuracy (all labels) scratch → pretrained", 0.6, 0.9)
    fig = cluster_score_figure(good)
    assert [t.name for t in fig.data] == ["raw inputs", "pretrained features"] and fig.layout.yaxis.range is None


# ------------------------------------------------------------------------------------------------ pages (AppTest)

@pytest.fixture
def home(app_home):
    return app_home


def app(page: str | None = None, state: dict | None = None, **query) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    for k, v in query.items():
        at.query_params[k] = v
    at.run()
    if page:
        at.switch_page(page)
        for k, v in (state or {}).items():
            at.session_state[k] = v
        at.run()
    return at


def no_exceptions(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def _upload_set(home, modality: str, **splits) -> str:
    from ui.datasets import save_upload_set

    return save_upload_set(modality, {k: str(v) for k, v in splits.items()}, name=f"my {modality}")


def test_analyze_cluster_form_queues_a_run(home):
    data = write_image_set(home.tmp / "shapes", n_per_class=4)
    unl = write_image_set(home.tmp / "loose", n_per_class=3, labeled=False)
    ref = _upload_set(home, "image", target=data, unlabeled=unl)
    at = app("pages/analyze.py", data=ref)
    no_exceptions(at)
    assert at.title[0].value == "Analyze" and [t.label for t in at.tabs] == ["Clustering (no labels)", "Data-efficiency curve",
                                                                                 "Which strategy?"]
    assert at.selectbox(key="an-cl-split").options == ["unlabeled", "target"]
    assert any("6 image items · no labels" in c.value for c in at.caption)
    at.selectbox(key="an-cl-split").set_value("target").run()
    assert any("8 image items · labeled (2 classes)" in c.value for c in at.caption)
    at.selectbox(key="an-cl-backbone").set_value("tiny-image")
    at.number_input(key="an-cl-k").set_value(2)
    at.button(key="an-cl-start").click().run()
    no_exceptions(at)
    (run,) = RunStore().list_runs()
    assert run.job == CLUSTER_JOB and run.status == "queued" and run.dataset == ref
    assert run.config["data"] == str(data) and run.config["k"] == 2 and run.config["backbone"] == "tiny-image"
    assert run.name == "my image · target · clusters · tiny-image"
    assert home.started and at.query_params["run"] in (run.id, [run.id])
    assert any("in progress" in s.value for s in at.subheader)


def test_analyze_curve_form_explains_bad_input_and_queues(home):
    ref = _upload_set(home, "text", target=write_text_set(home.tmp / "t", n_per_class=6))
    at = app("pages/analyze.py", state={"an-tab": "Data-efficiency curve"}, data=ref)
    no_exceptions(at)
    assert any("target: 12 items, 2 classes (smallest: 6 items)" in c.value for c in at.caption)
    at.text_input(key="an-cv-shots").set_value("1, two").run()
    assert any("'two' is not a whole number" in e.value for e in at.error)
    assert at.button(key="an-cv-start").disabled
    at.text_input(key="an-cv-shots").set_value("1, 10, all").run()
    assert any("3 point(s) × 3 seed(s) = 9 fine-tuning run(s)" in c.value for c in at.caption)
    assert any("Counts above 6 per class are measured as 'all'" in c.value for c in at.caption)
    at.selectbox(key="an-cv-strategy").set_value("lora")
    at.selectbox(key="an-cv-backbone").set_value("tiny-text")
    at.number_input(key="an-cv-seeds").set_value(1)
    at.button(key="an-cv-start").click().run()
    no_exceptions(at)
    (run,) = RunStore().list_runs()
    assert run.job == CURVE_JOB and run.config["shots"] == [1, 10, 0] and run.config["seeds"] == 1
    assert run.config["strategy"] == "lora" and run.config["eval"] is None


def test_analyze_curve_form_needs_a_labeled_target(home):
    ref = _upload_set(home, "image", unlabeled=write_image_set(home.tmp / "u", n_per_class=3, labeled=False))
    at = app("pages/analyze.py", state={"an-tab": "Data-efficiency curve"}, data=ref)
    no_exceptions(at)
    assert any("no **target** split" in i.value for i in at.info)
    assert not [b for b in at.button if b.label == "Start curve"]


def _done_cluster_run(home, modality="image", labeled=True, k=3):
    data = (write_image_set(home.tmp / "img", n_per_class=6, labeled=labeled) if modality == "image"
            else write_text_set(home.tmp / "txt", n_per_class=8))
    store = RunStore()
    run = _run(store, ClusterConfig(modality=modality, data=str(data), backbone=TINY[modality], k=k), CLUSTER_JOB,
               name=f"{modality} clusters")
    assert run.status == "done", run.error
    return store, run


def test_analyze_page_shows_a_finished_clustering(home):
    store, run = _done_cluster_run(home)
    at = app("pages/analyze.py", run=run.id)
    no_exceptions(at)
    assert any(s.value == "image clusters" for s in at.subheader)
    assert len(at.get("plotly_chart")) == 3   # scores and two maps (k was given: no silhouette-per-k chart)
    assert any("k = 3 was given" in m.value for m in at.markdown)
    assert {m.label for m in at.metric} >= {"NMI pretrained", "ARI pretrained", "k pretrained / raw"}
    cards = [m.value for m in at.markdown if m.value.startswith("**Cluster ")]
    assert len(cards) == 3 and all("classes: `" in c for c in cards)
    assert len(at.get("image")) >= 3
    at.radio(key="an-cluster-side").set_value("raw").run()
    at.selectbox(key="an-cluster-pick-raw").set_value(1).run()
    no_exceptions(at)
    assert [m.value for m in at.markdown if m.value.startswith("**Cluster ")][0].startswith("**Cluster 2**")
    at.radio(key="an-cluster-color").set_value("true class").run()
    no_exceptions(at)


def test_analyze_page_shows_a_text_clustering_with_k_chosen(home):
    store, run = _done_cluster_run(home, modality="text", k=None)
    at = app("pages/analyze.py", run=run.id)
    no_exceptions(at)
    k = json.loads((run.out / "report.json").read_text())["pretrained"]["k"]
    assert len(at.get("plotly_chart")) == 4   # scores, silhouette per k, two maps
    texts = [df.value for df in at.dataframe if "text" in df.value.columns]
    assert len(texts) == k and texts[0]["text"].str.startswith("the film was").all()


def test_opening_a_queued_run_shows_its_tab_data_set_and_progress(home):
    target = write_text_set(home.tmp / "t", n_per_class=6)
    ref = _upload_set(home, "text", target=target)
    _upload_set(home, "image", target=write_image_set(home.tmp / "img", n_per_class=3))   # newer: first in the list
    run = RunStore().create_run(CurveConfig(modality="text", target=str(target), backbone="tiny-text"), "queued curve",
                                job=CURVE_JOB, dataset=ref)
    RunStore().enqueue(run.id)
    at = app("pages/analyze.py", run=run.id)
    no_exceptions(at)
    assert at.selectbox(key="an-cv-data").value == ref   # the curve tab, starting from the run's data set
    assert any(s.value == "queued curve: in progress" for s in at.subheader) and at.get("progress")


def _fake_curve_run(store, tmp_path, points, status="done"):
    target = write_text_set(tmp_path / "t", n_per_class=4)
    run = store.create_run(CurveConfig(modality="text", target=str(target), backbone="tiny-text"), "my curve", job=CURVE_JOB)
    report = {"kind": "curve", "modality": "text", "backbone": "tiny-text", "strategy": "linear_probe", "epochs": 10,
              "seeds": [0, 1], "eval": 30, "classes": ["a", "b"], "points": points}
    (run.out / "report.json").write_text(json.dumps(report))
    store.mark_done(run.id)
    return store.get(run.id)


CURVE_POINTS = [{"shots": s, "all": s == 20, "train": 2 * s,
                 "pretrained": {"mean": m, "std": 0.05, "values": [m - .05, m + .05], "ci95": [m - .1, m + .1],
                                "ci95_kind": "seeds"},
                 "scratch": {"mean": m - .3, "std": 0.1, "values": [m - .4, m - .2], "ci95": [m - .5, m - .1],
                             "ci95_kind": "seeds"}}
                for s, m in ((1, 0.6), (5, 0.8), (20, 0.9))]


def test_analyze_page_curve_result_answers_how_many_labels(home):
    run = _fake_curve_run(RunStore(), home.tmp, CURVE_POINTS)
    at = app("pages/analyze.py", run=run.id)
    no_exceptions(at)
    assert any(s.value == "my curve" for s in at.subheader)
    assert len(at.get("plotly_chart")) == 1
    assert at.number_input(key="an-curve-target").value == 90.0   # the best measured accuracy, rounded down
    assert any("reaches 90% at **all your labels, 20 per class** (90.0%)" in s.value for s in at.success)
    at.number_input(key="an-curve-target").set_value(80.0).run()
    assert any("reaches 80% at **5 labeled examples per class**" in s.value for s in at.success)
    at.number_input(key="an-curve-target").set_value(95.0).run()
    assert any("does not reach 95%, not even with all your labels (20 per class)" in w.value for w in at.warning)
    table = [df.value for df in at.dataframe][0]
    assert list(table["labels per class"]) == ["1", "5", "all (20)"] and list(table["pretrained"]) == ["60.0%", "80.0%", "90.0%"]


def test_runs_page_lists_analyses_with_their_kind_and_opens_them(home):
    store, run = _done_cluster_run(home)
    curve = _fake_curve_run(store, home.tmp, CURVE_POINTS)
    at = app("pages/runs.py", run=run.id)
    no_exceptions(at)
    table = at.dataframe[0].value
    rows = {r["name"]: r for r in table.to_dict("records")}
    assert rows["image clusters"]["kind"] == "clustering" and rows["my curve"]["kind"] == "data-efficiency curve"
    assert rows["image clusters"]["metric"] == "NMI raw → pretrained"
    assert rows["my curve"]["after"] == 0.9 and rows["my curve"]["before"] == pytest.approx(0.6)
    assert [b for b in at.get("download_button") if "report.json" in b.proto.label]
    [b for b in at.button if b.label == "Open"][0].click().run()
    no_exceptions(at)
    assert at.title[0].value == "Analyze"
    assert curve.id != run.id


def test_run_kinds_and_the_finetune_helper(home):
    from tlcore.runs.records import Run
    from ui.runs import is_finetune_run, run_kind, run_page

    def fake(job):
        return Run(id="x", name="x", status="done", config={}, created_at=None, job=job)

    assert is_finetune_run(fake("tlcore.api:finetune_job")) and is_finetune_run(fake(""))
    assert is_finetune_run(fake("tlcore.settings.inductive:run_finetune"))
    assert is_finetune_run(fake("tests.test_runs_worker:fake_run"))   # takes FinetuneConfig settings
    assert not is_finetune_run(fake(CLUSTER_JOB)) and not is_finetune_run(fake(CURVE_JOB))
    assert run_kind(fake(CURVE_JOB)) == "curve" and run_page(fake(CLUSTER_JOB)) == ("pages/analyze.py", "x")
    assert run_page(fake("tlcore.api:finetune_job")) == ("pages/compare.py", "x")
    for job in ("tlcore.runs.followup:scratch_job", "tlcore.settings.followup:scratch_job"):   # now, and before 0.3
        followup = Run(id="f", name="f", status="done", config={"parent_run": "p"}, created_at=None, job=job)
        assert run_kind(followup) == "followup" and not is_finetune_run(followup)
        assert run_page(followup) == ("pages/compare.py", "p")   # a follow-up opens the run it completes


def test_shared_view_renders_a_clustering_and_a_curve(home):
    from tlcore.runs import create_share

    store, run = _done_cluster_run(home)
    token, _ = create_share(store, run.id, expires_in=timedelta(hours=1))
    shared = app(share=token)
    no_exceptions(shared)
    assert shared.title[0].value == "Shared run: image clusters"
    assert len(shared.get("plotly_chart")) == 3 and not shared.file_uploader
    assert not [b for b in shared.button if "Start" in b.label]
    curve = _fake_curve_run(store, home.tmp, CURVE_POINTS)
    token, _ = create_share(store, curve.id, expires_in=timedelta(hours=1))
    shared = app(share=token)
    no_exceptions(shared)
    assert shared.title[0].value == "Shared run: my curve" and len(shared.get("plotly_chart")) == 1
    share_page = app("pages/share.py", run=curve.id)
    no_exceptions(share_page)
    assert share_page.selectbox(key="share-run").value == curve.id


def test_the_map_subsample_keeps_every_cluster_for_large_sets():
    from ui.analyses import cluster_map_figure

    rng = np.random.default_rng(0)
    groups = [f"cluster {c}" for c in rng.integers(1, 4, size=10_000)]
    fig = cluster_map_figure(rng.random(10_000).tolist(), rng.random(10_000).tolist(), groups, groups)
    assert {t.name for t in fig.data} == {"cluster 1", "cluster 2", "cluster 3"}
    assert sum(len(t.x) for t in fig.data) <= 3000
