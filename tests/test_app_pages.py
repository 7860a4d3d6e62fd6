"""AppTest (no browser) checks of every page's logic, with tiny test backbones and a per-test data folder."""

from __future__ import annotations

import io
import os
import sys
import types
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
TIMEOUT = 120


def _texts(n_per_class: int = 12) -> str:
    good = ["great film, loved it", "wonderful and fun", "a joy to watch", "brilliant acting", "superb story"]
    bad = ["boring and slow", "awful plot", "a waste of time", "terrible acting", "dull and long"]
    rows = ["text,label"]
    for i in range(n_per_class):
        rows.append(f"\"{good[i % 5]} {i}\",pos")
        rows.append(f"\"{bad[i % 5]} {i}\",neg")
    return "\n".join(rows) + "\n"


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSFERLAB_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("TRANSFERLAB_DB_URL", raising=False)
    started = []
    import ui.runs

    monkeypatch.setattr(ui.runs, "ensure_worker", lambda store, **kw: started.append(store) or 0)
    tmp_path.joinpath("home").mkdir()
    return types.SimpleNamespace(path=tmp_path / "home", tmp=tmp_path, started=started)


def app(page: str | None = None, **query) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    for k, v in query.items():
        at.query_params[k] = v
    at.run()
    if page:
        at.switch_page(page).run()
    return at


def no_exceptions(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def make_done_run(home, strategy: str = "linear_probe", name: str = "tiny run", dataset: str = "upload:test"):
    """A finished run on a tiny text set, executed synchronously by the worker's once-mode."""
    from tlcore.config import FinetuneConfig
    from tlcore.runs import RunStore
    from tlcore.runs.worker import Worker, WorkerOptions

    csv = home.tmp / "data.csv"
    csv.write_text(_texts())
    store = RunStore()
    cfg = FinetuneConfig(modality="text", target=str(csv), backbone="tiny-text", strategy=strategy, epochs=2,
                         baselines=["knn", "scratch"], eval_fraction=0.4)
    run = store.create_run(cfg, name=name, dataset=dataset)
    store.enqueue(run.id)
    assert Worker(store, WorkerOptions(once=True)).run() == 1
    run = store.get(run.id)
    assert run.status == "done", run.error
    return store, run


# ------------------------------------------------------------------ navigation and Home

def test_every_page_renders_without_runs(home):
    for page, title in [("pages/home.py", "TransferLab"), ("pages/data.py", "Data"), ("pages/diagnose.py", "Diagnose"),
                        ("pages/finetune.py", "Fine-tune"), ("pages/compare.py", "Compare"), ("pages/try_it.py", "Try it"),
                        ("pages/runs.py", "Runs"), ("pages/share.py", "Share")]:
        at = app(page)
        no_exceptions(at)
        assert at.title[0].value == title
    at = app()
    assert any("Single-user local mode" in c.value for c in at.sidebar.caption)


def test_home_demo_click_queues_linear_probe_and_opens_compare(home):
    at = app()
    assert "TransferLab" in at.title[0].value
    at.button(key="demo-sentiment").click().run()
    no_exceptions(at)
    from tlcore.runs import RunStore

    runs = RunStore().list_runs()
    assert len(runs) == 1 and runs[0].status == "queued"
    assert runs[0].config["strategy"] == "linear_probe" and runs[0].dataset == "demo:sentiment"
    assert runs[0].config["backbone"] is None  # the real default text backbone
    assert home.started, "the app must make sure a worker runs"
    assert at.title[0].value == "Compare"
    assert at.query_params["run"] == [runs[0].id] or at.query_params["run"] == runs[0].id


# ------------------------------------------------------------------ Data

def test_data_upload_csv_previews_counts_and_problems(home):
    at = app("pages/data.py")
    at.radio(key="data-mode").set_value("Upload my data").run()
    at.selectbox(key="upload-modality").set_value("text").run()
    body = _texts(4) + "\"\",pos\n"
    at.file_uploader(key="upload-target").upload("reviews.csv", body.encode(), "text/csv").run()
    no_exceptions(at)
    assert any("target" in m.value and "8 items" in m.value and "1 unusable" in m.value for m in at.markdown)
    problems = [df.value for df in at.dataframe if "problem" in df.value.columns]
    assert problems and "empty text" in problems[0]["problem"].iloc[0]
    saved = list((home.path / "uploads").glob("*/reviews.csv"))
    assert len(saved) == 1 and saved[0].read_text() == body
    assert at.query_params["data"][0].startswith("upload:") if isinstance(at.query_params["data"], list) else True


def test_data_upload_bad_zip_shows_error_not_traceback(home):
    at = app("pages/data.py")
    at.radio(key="data-mode").set_value("Upload my data").run()
    at.selectbox(key="upload-modality").set_value("image").run()
    at.file_uploader(key="upload-target").upload("photos.zip", b"not a zip at all", "application/zip").run()
    no_exceptions(at)
    assert any("not a readable .zip" in e.value for e in at.error)


def test_data_upload_image_zip_with_bad_file_lists_it(home):
    from PIL import Image

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for label, color in (("cat", 0), ("dog", 255)):
            for i in range(3):
                img = io.BytesIO()
                Image.new("L", (16, 16), color).save(img, "PNG")
                zf.writestr(f"pets/{label}/{i}.png", img.getvalue())
        zf.writestr("pets/dog/broken.png", b"garbage")
    at = app("pages/data.py")
    at.radio(key="data-mode").set_value("Upload my data").run()
    at.selectbox(key="upload-modality").set_value("image").run()
    at.file_uploader(key="upload-target").upload("pets.zip", buf.getvalue(), "application/zip").run()
    no_exceptions(at)
    assert any("6 items, 2 classes" in m.value for m in at.markdown)
    problems = [df.value for df in at.dataframe if "problem" in df.value.columns]
    assert problems and "broken.png" in problems[0]["file / row"].iloc[0]


# ------------------------------------------------------------------ Fine-tune, Compare

def test_finetune_form_from_config_queues_then_compare_shows_numbers(home):
    from tlcore.config import FinetuneConfig, field_help
    from ui.forms import finetune_settings as settings_fields

    csv = home.tmp / "t.csv"
    csv.write_text(_texts())
    from ui.datasets import save_upload_set

    ref = save_upload_set("text", {"target": str(csv)}, "tiny reviews")
    at = app("pages/finetune.py", data=ref)
    no_exceptions(at)
    for name in settings_fields():
        keys = {w.key for kind in ("number_input", "selectbox", "multiselect", "text_input", "checkbox")
                for w in at.get(kind)}
        assert f"ft-{name}" in keys, f"no widget for FinetuneConfig.{name}"
    assert set(settings_fields()) < set(field_help(FinetuneConfig))
    at.selectbox(key="ft-backbone").set_value("tiny-text").run()
    at.number_input(key="ft-epochs").set_value(2).run()
    [b for b in at.button if "Start" in b.label][0].click().run()
    no_exceptions(at)
    from tlcore.runs import RunStore
    from tlcore.runs.worker import Worker, WorkerOptions

    store = RunStore()
    (run,) = store.list_runs()
    assert run.config["backbone"] == "tiny-text" and run.config["epochs"] == 2 and run.status == "queued"
    assert home.started
    # the page shows the queued run's progress panel (read from the store)
    assert any("Run:" in s.value for s in at.subheader) and at.get("progress")
    assert Worker(store, WorkerOptions(once=True)).run() == 1
    report_run = store.get(run.id)
    assert report_run.status == "done", report_run.error
    at = app("pages/compare.py", run=run.id)
    no_exceptions(at)
    labels = {m.label: m.value for m in at.metric}
    m = report_run.metrics
    assert labels["Accuracy before"] == f"{100 * m['before_accuracy']:.1f}%"
    assert labels["Accuracy after"] == f"{100 * m['after_accuracy']:.1f}%"
    assert len(at.get("plotly_chart")) >= 4  # bars, per-class, two confusion matrices


def test_compare_running_run_shows_live_progress_from_store(home):
    from tlcore.config import FinetuneConfig
    from tlcore.progress import Progress
    from tlcore.runs import RunStore
    from tlcore.runs.queue import claim_next

    store = RunStore()
    run = store.create_run(FinetuneConfig(modality="text", target="x.csv", backbone="tiny-text"), name="busy")
    store.enqueue(run.id)
    claim_next(store)
    store.update_progress(run.id, Progress("train", 2, 5, "epoch 2/5", metrics={"epoch": 2, "train_loss": 0.5,
                                                                                  "val_accuracy": 0.7}, eta_s=30))
    at = app("pages/compare.py", run=run.id)
    no_exceptions(at)
    assert any("in progress" in s.value for s in at.subheader)
    assert any("this stage" in c.value and "epoch 2" in c.value for c in at.caption)
    assert at.get("plotly_chart"), "live training curves"
    [b for b in at.button if b.label == "Cancel run"][0].click().run()
    assert store.get(run.id).cancel_requested


def test_compare_strategy_ladder_and_runs_page(home):
    store, run_a = make_done_run(home, "linear_probe", "probe")
    _, run_b = make_done_run(home, "full", "full")
    at = app("pages/compare.py", run=run_b.id)
    no_exceptions(at)
    assert any("Strategy ladder" in s.value for s in at.subheader)
    at = app("pages/runs.py")
    no_exceptions(at)
    table = at.dataframe[0].value
    assert set(table["name"]) == {"probe", "full"} and set(table["status"]) == {"done"}
    at.selectbox(key="runs-run").set_value(run_a.id).run()
    at.toggle(key=f"zip-{run_a.id}").set_value(True).run()
    no_exceptions(at)
    at.button(key="delete-yes").click().run()
    no_exceptions(at)
    assert [r.id for r in store.list_runs()] == [run_b.id]
    assert not run_a.out.exists()


# ------------------------------------------------------------------ Try it, Share

def test_try_it_text_before_and_after(home):
    make_done_run(home)
    at = app("pages/try_it.py")
    no_exceptions(at)
    at.text_area(key="try-text").input("loved it, wonderful").run()
    no_exceptions(at)
    labels = {m.label: m.value for m in at.metric}
    assert labels["Prediction after"] in ("pos", "neg")
    assert labels["Prediction before"] in ("pos", "neg")


def test_share_create_view_and_revoke(home):
    store, run = make_done_run(home)
    at = app("pages/share.py", run=run.id)
    [b for b in at.button if b.label == "Create link"][0].click().run()
    no_exceptions(at)
    url = at.code[0].value
    assert "?share=" in url
    token = url.split("?share=")[1]
    shared = app(share=token)
    no_exceptions(shared)
    assert shared.title[0].value == f"Shared run: {run.name}"
    assert {m.label for m in shared.metric} >= {"Accuracy before", "Accuracy after"}
    assert not shared.file_uploader and not [b for b in shared.button if "Start" in b.label]
    assert not any("Single-user" in c.value for c in shared.sidebar.caption)
    # revoke on the Share page -> the link refuses
    at = app("pages/share.py", run=run.id)
    [b for b in at.button if b.label == "Revoke"][0].click().run()
    refused = app(share=token)
    no_exceptions(refused)
    assert any("revoked" in e.value for e in refused.error)
    assert not refused.metric
    tampered = app(share=token[:-2] + ("AA" if not token.endswith("AA") else "BB"))
    assert any("not valid" in e.value for e in tampered.error)


def test_expired_share_link_refuses(home):
    from tlcore.runs import create_share

    store, run = make_done_run(home)
    token, _ = create_share(store, run.id, expires_in=timedelta(milliseconds=1))
    import time

    time.sleep(0.05)
    at = app(share=token)
    no_exceptions(at)
    assert any("expired" in e.value for e in at.error) and not at.metric


# ------------------------------------------------------------------ Diagnose

def test_diagnose_shows_verdict_plots_and_drift(home, monkeypatch):
    fake = types.ModuleType("tlcore.diagnose")
    calls = []

    def run_diagnose(modality, source_path, target_path, *, backbone=None, seed=0):
        calls.append((modality, backbone))
        return {"verdict": {"severity": "high", "summary": "the domains differ a lot",
                            "recommendation": "label more target data", "signals": ["MMD high"]},
                "mismatch": {"mmd": 0.4, "pad": 1.6, "frechet": 12.0, "coral": 0.3, "label_shift": 0.1},
                "drift": {"rows": [{"name": "length", "test": "ks", "p_value": 0.001, "q_value": 0.002, "effect": 0.8,
                                    "mean_a": 10.0, "mean_b": 20.0, "drifting": True}]},
                "map": {"x": [0.0, 1.0, 2.0], "y": [1.0, 0.0, 2.0], "domain": ["source", "target", "target"],
                        "label": ["a", "b", None]}}

    fake.run_diagnose = run_diagnose
    monkeypatch.setitem(sys.modules, "tlcore.diagnose", fake)
    src, tgt = home.tmp / "s.csv", home.tmp / "t.csv"
    src.write_text(_texts(3))
    tgt.write_text(_texts(3))
    from ui.datasets import save_upload_set

    ref = save_upload_set("text", {"source": str(src), "target": str(tgt)})
    at = app("pages/diagnose.py", data=ref)
    at.selectbox(key="dx-backbone").set_value("tiny-text").run()
    [b for b in at.button if b.label == "Run diagnosis"][0].click().run()
    no_exceptions(at)
    assert calls == [("text", "tiny-text")]
    assert "the domains differ a lot" in at.error[0].value  # verdict first, as an error box for 'high'
    assert len(at.get("plotly_chart")) == 3 and at.dataframe[0].value["name"].tolist() == ["length"]
