"""Experiment tracking (``track``): a run logged to a real MLflow tracking server on localhost and read back with
``MlflowClient``; TensorBoard event files read back with tensorboard's event reader; a tracker that is down never
fails the run (one warning line, a ``tracking`` warning in the report)."""

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import write_text_set

import tlcore
from tlcore.cli.parser import build_parser
from tlcore.config import TRACKERS as TRACK_CHOICES
from tlcore.config import FinetuneConfig, field_help
from tlcore.errors import ConfigError
from tlcore.reporting import tracking, writer

SERVER_START_S = 180     # a 2-core machine under load takes 15-60 s to bring up MLflow's server


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module", autouse=True)
def mlflow_server(request, tmp_path_factory):
    """A real ``mlflow server`` (SQLite store, artifacts proxied into a temp folder), started when this module's
    tests start so it boots while the other tests run; :func:`mlflow_uri` waits for it. Not started when no
    selected test needs it."""
    if not any("mlflow_uri" in getattr(item, "fixturenames", ()) for item in request.session.items):
        yield None
        return
    root = tmp_path_factory.mktemp("mlflow")
    port = _free_port()
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    log = open(root / "server.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
                             "--workers", "1", "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
                             "--artifacts-destination", str(root / "artifacts")],
                            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    yield {"uri": f"http://127.0.0.1:{port}", "proc": proc, "log": root / "server.log"}
    try:
        os.killpg(proc.pid, signal.SIGTERM)     # its own session: the server and the workers it started
        proc.wait(timeout=30)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, signal.SIGKILL)
    log.close()


@pytest.fixture
def mlflow_uri(mlflow_server, monkeypatch):
    deadline = time.monotonic() + SERVER_START_S
    while True:
        try:
            with urllib.request.urlopen(f"{mlflow_server['uri']}/health", timeout=5) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if mlflow_server["proc"].poll() is not None or time.monotonic() > deadline:
            pytest.fail("the MLflow server did not start:\n" + mlflow_server["log"].read_text()[-3000:])
        time.sleep(1)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server["uri"])
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    return mlflow_server["uri"]


def _finetune(tmp_path, out: str, track: str, **kw):
    data = write_text_set(tmp_path / "reviews")
    settings = dict(modality="text", backbone="tiny-text", target=str(data), strategy="full", epochs=2,
                    baselines=["scratch"], track=track, out=str(tmp_path / out))
    tlcore.finetune(**{**settings, **kw})
    return json.loads((tmp_path / out / "report.json").read_text())


def _same_curve(got: list[tuple[int, float]], report: dict, model: str, key: str) -> bool:
    """``got`` (step, value) pairs are the report's history rows of ``model``: one step per epoch, the same values."""
    rows = report["training"]["history"] if model == "after" else report["baselines"][model]["training"]["history"]
    return ([step for step, _ in got] == [r["epoch"] for r in rows]
            and [value for _, value in got] == pytest.approx([r[key] for r in rows]))


def test_track_is_a_setting_of_cli_app_and_api():
    assert field_help(FinetuneConfig)["track"]["choices"] == TRACK_CHOICES
    assert FinetuneConfig().track == "none"
    assert sorted(tracking.TRACKERS.names()) == sorted(set(TRACK_CHOICES) - {"none"})
    assert build_parser().parse_args(["finetune", "--track", "mlflow", "--out", "x"]).track == "mlflow"
    with pytest.raises(ConfigError, match="track must be one of none, mlflow, tensorboard"):
        FinetuneConfig(track="wandb", out="x").validate()


def test_what_is_logged_is_read_from_the_report():
    report = {"before": {"accuracy": 0.5, "accuracy_ci95": [0.25, 0.75], "kind": "nearest class mean"},
              "after": {"accuracy": 0.75, "accuracy_ci95": [0.5, 1.0], "per_class": {"a": {"f1": 1.0}}},
              "baselines": {"scratch": {"accuracy": 0.5, "training": {"history": [{"epoch": 1, "train_loss": 0.7}]}}},
              "comparisons": {"before": {"difference": 0.25, "ci95": [0.0, 0.5], "ci_groups": None}},
              "training": {"history": [{"epoch": 1, "train_loss": 0.9, "val_accuracy": None},
                                       {"epoch": 2, "train_loss": 0.4, "val_accuracy": 0.8}]}}
    assert tracking.final_metrics(report) == {
        "before/accuracy": 0.5, "before/accuracy_ci95_low": 0.25, "before/accuracy_ci95_high": 0.75,
        "after/accuracy": 0.75, "after/accuracy_ci95_low": 0.5, "after/accuracy_ci95_high": 1.0,
        "baseline/scratch/accuracy": 0.5, "comparison/before/difference": 0.25,
        "comparison/before/ci95_low": 0.0, "comparison/before/ci95_high": 0.5}
    assert tracking.curves(report) == {"after": [(1, {"train_loss": 0.9}), (2, {"train_loss": 0.4, "val_accuracy": 0.8})],
                                       "scratch": [(1, {"train_loss": 0.7})]}
    assert tracking.dataset_name({"target": "/data/reviews/target"}) == "reviews"
    assert tracking.dataset_name({"target": "/data/reviews.csv"}) == "reviews"
    assert tracking.dataset_name({"source": "/data/cats"}) == "cats"
    assert tracking.dataset_name({}) == ""
    assert tracking._safe_uri("https://me:secret@mlflow.example:5000/x") == "https://me:***@mlflow.example:5000/x"


@pytest.mark.parametrize("backend,module", [("mlflow", "mlflow"), ("tensorboard", "torch.utils.tensorboard")])
def test_a_missing_tracker_package_is_a_warning(tmp_path, monkeypatch, backend, module):
    monkeypatch.setitem(sys.modules, module, None)      # as if it were not installed
    report = tracking.track_run({"config": {"track": backend}, "warnings": ["w"], "warnings_detail": [{"kind": "notice",
                                                                                                   "text": "w"}]},
                                tmp_path, run_name="run")
    assert report["tracking"]["status"] == "failed" and "package is not installed" in report["tracking"]["error"]
    assert [w["kind"] for w in report["warnings_detail"]] == ["notice", "tracking"]
    assert report["warnings"] == ["w", report["warnings_detail"][1]["text"]]


def test_tensorboard_event_files_hold_the_curves_metrics_and_config(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    report = _finetune(tmp_path, "run-tb", "tensorboard")
    assert report["tracking"] == {"backend": "tensorboard", "status": "logged", "logdir": "tensorboard"}
    assert not [w for w in report["warnings_detail"] if w["kind"] == "tracking"]
    events = EventAccumulator(str(tmp_path / "run-tb" / "tensorboard"), size_guidance={"scalars": 0, "tensors": 0})
    events.Reload()
    for model in ("after", "scratch"):
        got = [(e.step, e.value) for e in events.Scalars(f"curves/{model}/train_loss")]
        assert _same_curve(got, report, model, "train_loss"), got
    for key, value in (("after/accuracy", report["after"]["accuracy"]),
                       ("before/accuracy", report["before"]["accuracy"]),
                       ("after/accuracy_ci95_low", report["after"]["accuracy_ci95"][0]),
                       ("after/accuracy_ci95_high", report["after"]["accuracy_ci95"][1]),
                       ("baseline/scratch/accuracy", report["baselines"]["scratch"]["accuracy"])):
        assert [e.value for e in events.Scalars(key)] == pytest.approx([value])
    config = events.Tensors("config/text_summary")[0].tensor_proto.string_val[0].decode()
    assert "| track | tensorboard |" in config and "| strategy | full |" in config


def test_a_tracker_that_is_down_never_fails_the_run(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{_free_port()}")   # nothing listens there
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    spent = []

    def timed(*args, **kw):
        start = time.monotonic()
        try:
            return tracking.track_run(*args, **kw)
        finally:
            spent.append(time.monotonic() - start)

    monkeypatch.setattr(writer, "track_run", timed)
    with caplog.at_level(logging.WARNING, logger="tlcore.reporting.tracking"):
        report = _finetune(tmp_path, "run-down", "mlflow", epochs=1, baselines=[])
    assert (tmp_path / "run-down" / "model").is_dir()          # the run finished and was published
    assert report["tracking"]["backend"] == "mlflow" and report["tracking"]["status"] == "failed"
    (warning,) = [w for w in report["warnings_detail"] if w["kind"] == "tracking"]
    assert warning["text"] in report["warnings"] and "not logged to MLflow at http://127.0.0.1:" in warning["text"]
    assert warning["text"] in (tmp_path / "run-down" / "README.md").read_text()     # the card was written again
    assert [r.getMessage() for r in caplog.records if r.name == "tlcore.reporting.tracking"] == [warning["text"]]
    assert spent and spent[0] < 30


def test_mlflow_server_holds_params_curves_metrics_and_artifacts(tmp_path, mlflow_uri, capsys):
    from mlflow.tracking import MlflowClient

    report = _finetune(tmp_path, "run-mlflow", "mlflow")
    assert report["tracking"]["status"] == "logged", report["tracking"]
    assert "View run" not in capsys.readouterr().out       # stdout is the CLI's JSON report; MLflow's lines go to the log
    assert report["tracking"]["run_url"] == (f"{mlflow_uri}/#/experiments/{report['tracking']['experiment_id']}/runs/"
                                             f"{report['tracking']['run_id']}")
    assert not [w for w in report["warnings_detail"] if w["kind"] == "tracking"]
    client = MlflowClient(mlflow_uri)
    experiment = client.get_experiment_by_name("reviews")          # named after the data set's folder
    assert experiment is not None and experiment.experiment_id == report["tracking"]["experiment_id"]
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.run_id == report["tracking"]["run_id"] and run.info.run_name == "run-mlflow"
    assert run.info.status == "FINISHED"
    params = run.data.params
    assert set(params) == set(report["config"])
    assert (params["strategy"], params["epochs"], params["baselines"], params["track"]) == ("full", "2", '["scratch"]',
                                                                                            "mlflow")
    assert {k: run.data.tags[k] for k in ("task", "strategy", "backbone")} == {
        "task": report["task"], "strategy": "full", "backbone": report["backbone"]}
    metrics = run.data.metrics
    assert metrics["after/accuracy"] == pytest.approx(report["after"]["accuracy"])
    assert metrics["before/accuracy"] == pytest.approx(report["before"]["accuracy"])
    assert [metrics["after/accuracy_ci95_low"], metrics["after/accuracy_ci95_high"]] == pytest.approx(
        report["after"]["accuracy_ci95"])
    assert metrics["baseline/scratch/accuracy"] == pytest.approx(report["baselines"]["scratch"]["accuracy"])
    assert metrics["comparison/before/difference"] == pytest.approx(report["comparisons"]["before"]["difference"])
    for model in ("after", "scratch"):        # one step per epoch
        history = sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id,
                                                                              f"curves/{model}/train_loss"))
        assert _same_curve(history, report, model, "train_loss"), history
    assert {a.path for a in client.list_artifacts(run.info.run_id)} >= {"report.json", "README.md"}
    logged = json.loads(Path(client.download_artifacts(run.info.run_id, "report.json", str(tmp_path))).read_text())
    assert logged["after"] == report["after"] and logged["config"] == report["config"]
