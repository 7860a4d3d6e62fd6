"""AppTest (no browser) checks of every page's logic, with tiny test backbones and a per-test data folder."""

from __future__ import annotations

import io
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
def home(app_home):
    return app_home


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

    runs = {r.config.get("strategy", r.job.split(":")[-1]): r for r in RunStore().list_runs()}
    assert sorted(runs) == ["linear_probe", "scratch_job", "seeds_job"]
    demo, follow, seeds = runs["linear_probe"], runs["scratch_job"], runs["seeds_job"]
    assert demo.status == "queued" and demo.queued_at is not None and demo.dataset == "demo:sentiment"
    assert demo.config["backbone"] is None  # the real default text backbone
    # The scratch baseline follows as its own job, submitted only once the demo run is done; more seeds follow it.
    assert follow.config["parent_run"] == demo.id and follow.queued_at is None
    assert follow.job == "tlcore.runs.followup:scratch_job"
    assert seeds.config["parent_run"] == follow.id and seeds.config["completes"] == demo.id and seeds.queued_at is None
    assert seeds.job == "tlcore.runs.seeds_followup:seeds_job" and seeds.config["seeds"] == 3
    assert home.started, "the app must make sure a worker runs"
    assert at.title[0].value == "Compare"
    assert at.query_params["run"] == [demo.id] or at.query_params["run"] == demo.id


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


def test_data_ner_demo_preview_marks_entities(home):
    at = app("pages/data.py", data="demo:ner-shift")
    no_exceptions(at)
    heads = [m.value for m in at.markdown if m.value.startswith("**target**")]
    assert heads and "sentences" in heads[0] and "entities of" in heads[0]
    assert any("<mark" in m.value for m in at.markdown)
    assert [b for b in at.button if b.label == "Diagnose this data"]  # Diagnose compares sets of every task
    assert [b for b in at.button if b.label == "Fine-tune on this data"]


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

    def epochs_drawn() -> int:
        import json

        return max(len(t.get("x") or []) for t in json.loads(at.get("plotly_chart")[0].proto.spec)["data"])

    assert epochs_drawn() == 1
    store.update_progress(run.id, Progress("train", 3, 5, "epoch 3/5", metrics={"epoch": 3, "train_loss": 0.4,
                                                                                  "val_accuracy": 0.8}, eta_s=20))
    at.run()
    assert epochs_drawn() == 2, "the curves follow each new epoch (the figure is cached per epoch, not frozen)"
    store.update_progress(run.id, Progress("train", 31, 50, "epoch 4/5", metrics={"epoch": 4, "batch_loss": 0.3}))
    at.run()
    assert epochs_drawn() == 2    # an epoch under way has only a batch loss: nothing to draw for it yet
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


def test_try_it_with_an_artifact_store_fetches_only_the_run_picked(home, monkeypatch):
    """A team's app host lists the finished runs without downloading them; the one picked is fetched and tried."""
    import shutil

    monkeypatch.setenv("TRANSFERLAB_ARTIFACTS_URL", str(home.tmp / "store"))
    _, a = make_done_run(home, name="run a")
    store, b = make_done_run(home, name="run b")
    assert store.artifacts.has_run(a.id) and store.artifacts.has_run(b.id)
    runs_dir = home.path / "app" / "runs"
    for run in (a, b):                     # this host has never opened them: only the store has the folders
        shutil.rmtree(runs_dir / run.id)
        (runs_dir / f".{run.id}.version").unlink()
    at = app("pages/try_it.py", run=b.id)
    no_exceptions(at)
    assert (runs_dir / b.id / "model" / "config.json").is_file() and not (runs_dir / a.id).exists()
    at.text_area(key="try-text").input("loved it, wonderful").run()
    no_exceptions(at)
    assert {m.label: m.value for m in at.metric}["Prediction after"] in ("pos", "neg")
    at = app("pages/share.py", run=a.id)   # listing runs to share fetches nothing either
    no_exceptions(at)
    assert not (runs_dir / a.id).exists()


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

def _shifted_texts(n_per_class: int = 10) -> tuple[str, str]:
    """A source of long movie reviews and a target of short, shouty product reviews: a real, detectable shift."""
    src, tgt = ["text,label"], ["text,label"]
    for i in range(n_per_class):
        src.append(f"\"the film was a wonderful story with brilliant acting and a lovely score, part {i}\",pos")
        src.append(f"\"the film was a boring story with terrible acting and a dull long score, part {i}\",neg")
        tgt.append(f"\"GREAT PHONE {i}!!\",pos")
        tgt.append(f"\"BATTERY DIED {i}!!\",neg")
    return "\n".join(src) + "\n", "\n".join(tgt) + "\n"


def test_diagnose_real_run_with_tiny_backbones(home):
    """The real run_diagnose and run_rank (tiny random-init backbones): verdict first, plots, drift, ranking."""
    src, tgt = home.tmp / "s.csv", home.tmp / "t.csv"
    src_text, tgt_text = _shifted_texts()
    src.write_text(src_text)
    tgt.write_text(tgt_text)
    from ui.datasets import save_upload_set

    ref = save_upload_set("text", {"source": str(src), "target": str(tgt)})
    at = app("pages/diagnose.py", data=ref)
    no_exceptions(at)
    at.selectbox(key="dx-backbone").set_value("tiny-text").run()
    at.multiselect(key="dx-candidates").set_value(["tiny-text", "tiny-text@random"]).run()
    [b for b in at.button if b.label == "Run diagnosis"][0].click().run()
    no_exceptions(at)
    from tlcore.diagnostics.diagnose import run_diagnose

    expected = run_diagnose("text", str(src), str(tgt), backbone="tiny-text", seed=0)
    severity = expected["verdict"]["severity"]
    box = {"none": at.success, "mild": at.warning, "strong": at.error}[severity]
    assert box and expected["verdict"]["summary"] in box[0].value  # the verdict comes first, in its severity's color
    assert severity == "strong"  # long reviews vs. short shouting: the drift tests must see it
    charts = at.get("plotly_chart")
    assert [c.key for c in charts] == ["dx-mm", "dx-map", "dx-drift", "dx-rank"]  # mismatch, map, drift, ranking
    frames = [df.value for df in at.dataframe]
    drift = next(f for f in frames if "q_value" in f.columns)
    assert set(drift["name"]) == {r["name"] for r in expected["drift"]["rows"]}
    ranking = next(f for f in frames if "backbone" in f.columns and "rank" in f.columns)
    assert set(ranking["backbone"]) == {"tiny-text", "tiny-text@random"}
    assert any("LogME" in c for c in ranking.columns) and "[" in ranking.iloc[0][next(c for c in ranking.columns
                                                                                        if "LogME" in c)]
    assert at.info and ("ranks first" in at.info[0].value or "Only one" in at.info[0].value)  # the advice line
    assert any("cannot tell" in c.value and "LogME" in c.value for c in at.caption)  # which score to trust


# ------------------------------------------------------------------ NER, ASR and transductive reports

def _ner_block(f1: float, token_acc: float) -> dict:
    """One metric block in the shape tlcore.tasks.ner writes (keys copied from a real tiny-text run on ner-shift)."""
    return {"entity_f1": f1, "entity_precision": f1 - 0.02, "entity_recall": f1 + 0.02,
            "entity_f1_ci95": [max(0.0, f1 - 0.1), min(1.0, f1 + 0.1)], "macro_f1": f1 - 0.01,
            "per_type": {"LOC": {"precision": f1, "recall": f1, "f1": f1, "support": 14},
                         "ORG": {"precision": f1 / 2, "recall": f1 / 2, "f1": f1 / 2, "support": 9},
                         "PER": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 6}},
            "token_accuracy": token_acc, "entities": {"gold": 29, "predicted": 31, "correct": int(29 * f1)}}


def ner_report() -> dict:
    history = [{"epoch": 1, "train_loss": 1.2, "seconds": 0.1, "val_entity_f1": 0.2},
               {"epoch": 2, "train_loss": 0.8, "seconds": 0.1, "val_entity_f1": 0.4}]
    tokens = ["anyone", "else's", "greggs", "app", "down", "rn", "?", "cant", "order", "in", "bath"]
    gold = ["O", "O", "B-ORG", "O", "O", "O", "O", "O", "O", "O", "B-LOC"]
    return {
        "tlcore_version": "0", "modality": "text", "task": "ner", "backbone": "tiny-text", "strategy": "full", "seed": 0,
        "data": {"train": 12, "eval": 16, "source": 24, "unlabeled": 0, "tags": ["O", "B-LOC", "I-LOC", "B-ORG", "I-ORG",
                                                                                "B-PER", "I-PER"],
                 "entity_types": ["LOC", "ORG", "PER"], "classes": ["LOC", "ORG", "PER"], "train_entities": {"LOC": 10},
                 "eval_entities": {"LOC": 14}, "source_entities": {}, "eval_split_file": None, "problems": [],
                 "target": "t", "source_path": "s", "eval_path": "e"},
        "before": {**_ner_block(0.25, 0.61), "kind": "source-trained model (full on the source data), not yet trained "
                                                     "on the target"},
        "after": _ner_block(0.5, 0.8),
        "baselines": {"scratch": {**_ner_block(0.1, 0.5), "training": {"history": history, "epochs_run": 2}}},
        "comparisons": {"before": {"difference": 0.25, "ci95": [0.1, 0.4]},
                        "scratch": {"difference": 0.4, "ci95": [0.2, 0.6]}},
        "warnings": [], "notes": [],
        "flipped": {"sentences": [
            {"index": 2, "changed_entities": 2, "gain": 1, "tokens": tokens, "gold": gold,
             "before": ["B-PER"] + ["O"] * 10, "after": ["O", "O", "B-ORG"] + ["O"] * 8},
            {"index": 5, "changed_entities": 1, "gain": -1, "tokens": tokens, "gold": gold, "before": gold,
             "after": ["O"] * 10 + ["B-PER"]}], "n_changed": 2, "n_fixed": 1, "n_broken": 1},
        "eval_predictions": {"tokens": [tokens], "gold": [gold], "before": [gold], "after": [gold]},
        "training": {"source_linear_probe": {"train_size": 24}, "source": {"history": history, "epochs_run": 2},
                     "after": {"history": history, "epochs_run": 2}},
        "timings_s": {}, "environment": {}, "config": {},
    }


def asr_report(clip_dir: Path) -> dict:
    import numpy as np
    import soundfile as sf

    clip_dir.mkdir(parents=True, exist_ok=True)
    sf.write(clip_dir / "spk1_0.wav", 0.1 * np.sin(np.linspace(0, 400, 8000)).astype("float32"), 16000)

    def block(wer: float) -> dict:
        return {"wer": wer, "cer": wer / 2, "wer_ci95": [wer - 0.05, wer + 0.05], "cer_ci95": [wer / 2 - 0.02, wer / 2 + 0.02],
                "n": 6, "runaway": 0, "per_group": {"speaker": {"spk1": {"wer": wer, "cer": wer / 2, "n": 3},
                                                                "spk2": {"wer": wer * 1.5, "cer": wer, "n": 3}}}}

    return {
        "transferlab_version": "0", "modality": "audio", "task": "asr", "backbone": "whisper-tiny-en",
        "strategy": "decoder", "seed": 0,
        "data": {"train": 10, "val": 2, "eval": 6, "source": 4, "speakers": {"eval": ["spk1", "spk2"]},
                 "groups": ["speaker"], "problems": [], "eval_split_file": None, "target": str(clip_dir),
                 "source_path": None, "eval_path": str(clip_dir)},
        "before": {**block(0.6), "kind": "the pretrained Whisper as it is (greedy decoding, English)"},
        "after": block(0.3),
        "baselines": {}, "baselines_note": "no scratch baseline: it would be a strawman",
        "comparisons": {"before": {"difference": -0.3, "ci95": [-0.45, -0.15]}},
        "source_eval": {"before": block(0.2), "after": block(0.25), "comparison": {"difference": 0.05, "ci95": [0.0, 0.1]}},
        "warnings": [],
        "flipped": {"changed": [{"name": "spk1_0.wav", "reference": "turn the lights off",
                                 "before": "turn the nights of", "after": "turn the lights off",
                                 "wer_before": 0.5, "wer_after": 0.0}]},
        "training": {"epochs_run": 2, "history": [{"epoch": 1, "train_loss": 2.0, "val_loss": 1.5},
                                                  {"epoch": 2, "train_loss": 1.0, "val_loss": 1.2}]},
        "config": {},
    }


def make_report_run(home, report: dict, *, task: str, name: str, dataset: str = "upload:x"):
    """A finished run whose report.json is ``report`` (as the worker would leave it), without training."""
    import json

    from tlcore.config import FinetuneConfig
    from tlcore.runs import RunStore
    from tlcore.runs.jobs import headline_metrics
    from tlcore.runs.queue import claim_next

    store = RunStore()
    modality = {"ner": "text", "asr": "audio"}.get(task, "text")
    run = store.create_run(FinetuneConfig(modality=modality, task=task, target="x", strategy=report["strategy"]),
                           name=name, dataset=dataset)
    store.enqueue(run.id)
    claim = claim_next(store)
    run.out.mkdir(parents=True, exist_ok=True)
    (run.out / "report.json").write_text(json.dumps(report))
    assert store.mark_done(run.id, headline_metrics(report), attempt=claim.attempt)
    return store, store.get(run.id)


def test_compare_renders_ner_report(home):
    _, run = make_report_run(home, ner_report(), task="ner", name="ner run")
    at = app("pages/compare.py", run=run.id)
    no_exceptions(at)
    labels = {m.label: m.value for m in at.metric}
    assert labels["Entity F1 before"] == "0.250" and labels["Entity F1 after"] == "0.500"
    assert labels["Token accuracy after"] == "0.800"
    assert not any("Accuracy" in label for label in labels)
    bars = [c for c in at.get("plotly_chart")]
    assert len(bars) == 3  # metric bars (before, after, scratch), per type, curves (after, source, scratch)
    import json

    curves = json.loads(bars[2].proto.spec)
    assert {t["name"] for t in curves["data"]} >= {"after", "source", "scratch"}
    html = "".join(m.value for m in at.markdown)
    assert "greggs" in html and "outline:2px solid" in html and "outline:2px dashed" in html  # gold vs predicted spans
    assert any(t.label.startswith("Fixed (1)") for t in at.tabs) and any(t.label.startswith("Broken (1)") for t in at.tabs)
    gain = next(df.value for df in at.dataframe if "beyond noise" in df.value.columns)
    assert list(gain["beyond noise"]) == ["yes", "yes"]
    at = app("pages/runs.py")
    no_exceptions(at)
    row = at.dataframe[0].value.iloc[0]
    assert row["task"] == "ner" and row["metric"] == "Entity F1" and row["after"] == 0.5 and row["improvement"] == 0.25


def test_compare_renders_asr_report_and_shared_view(home):
    from tlcore.runs import create_share

    store, run = make_report_run(home, asr_report(home.tmp / "clips"), task="asr", name="asr run")
    for at in (app("pages/compare.py", run=run.id), app(share=create_share(store, run.id, expires_in=timedelta(hours=1))[0])):
        no_exceptions(at)
        labels = {m.label: m.value for m in at.metric}
        assert labels["WER before"] == "60.0%" and labels["WER after"] == "30.0%" and labels["CER after"] == "15.0%"
        after = next(m for m in at.metric if m.label == "WER after")
        green = type(after.proto).DESCRIPTOR.fields_by_name["color"].enum_type.values_by_name["GREEN"].number
        assert after.value == "30.0%" and after.proto.delta.startswith("-") and after.proto.color == green  # lower WER is good
        assert at.get("audio"), "changed transcripts come with their clip"
        text = " ".join(m.value for m in at.markdown)
        assert "turn the lights off" in text and "turn the nights of" in text
        assert any("forget" in s.value for s in at.subheader)  # the source-accent check
        assert len(at.get("plotly_chart")) == 3  # WER bars, per speaker, curves (validation loss)
    at = app("pages/runs.py")
    row = at.dataframe[0].value.iloc[0]
    assert row["metric"].startswith("WER") and row["improvement"] == pytest.approx(0.3)


def test_finetune_task_selector_offers_ner_demo_and_ner_strategies(home):
    at = app("pages/finetune.py")
    no_exceptions(at)
    at.radio(key="ft-task").set_value("ner").run()
    no_exceptions(at)
    assert at.selectbox(key="ft-data").value == "demo:ner-shift"
    assert [o.split(":")[0] for o in at.selectbox(key="ft-strategy-ner").options] == ["linear_probe", "partial", "full",
                                                                                      "lora"]
    at.selectbox(key="ft-backbone-ner").set_value("tiny-text").run()
    [b for b in at.button if "Start" in b.label][0].click().run()
    no_exceptions(at)
    from tlcore.runs import RunStore

    (run,) = RunStore().list_runs()
    assert run.config["task"] == "ner" and run.config["modality"] == "text" and run.config["target"]
    at.radio(key="ft-task").set_value("asr").run()
    no_exceptions(at)
    from tlcore.data.demos import DEMOS

    if "accent-asr" in DEMOS.names():
        assert at.selectbox(key="ft-data").value == "demo:accent-asr"
        assert [o.split(":")[0] for o in at.selectbox(key="ft-strategy-asr").options] == ["decoder", "full", "lora"]
    else:  # no speech-recognition data yet: the page says so instead of offering classification data
        assert any("speech recognition" in i.value for i in at.info) and not at.button


def test_transductive_run_from_form_to_compare(home):
    src, tgt = home.tmp / "s.csv", home.tmp / "t.csv"
    src_text, tgt_text = _shifted_texts(8)
    src.write_text(src_text)
    tgt.write_text(tgt_text)
    unl = home.tmp / "u.csv"
    unl.write_text("text\n" + "".join(f"\"GREAT THING {i}!!\"\n\"AWFUL THING {i}!!\"\n" for i in range(8)))
    from ui.datasets import save_upload_set

    ref = save_upload_set("text", {"source": str(src), "unlabeled": str(unl), "eval": str(tgt)}, "shifted")
    at = app("pages/finetune.py", data=ref)
    no_exceptions(at)
    at.selectbox(key="ft-backbone").set_value("tiny-text").run()
    assert any("coral" in o for o in at.selectbox(key="ft-strategy").options)
    at.selectbox(key="ft-strategy").set_value("coral").run()
    no_exceptions(at)
    assert at.selectbox(key="ft-tr-unlabeled").value == "unlabeled" and at.selectbox(key="ft-tr-eval").value == "eval"
    [b for b in at.button if b.label == "Start adaptation"][0].click().run()
    no_exceptions(at)
    from tlcore.runs import RunStore
    from tlcore.runs.worker import Worker, WorkerOptions

    store = RunStore()
    (run,) = store.list_runs()
    assert run.config["target"] is None and run.config["unlabeled"] == str(unl) and run.config["source"] == str(src)
    assert Worker(store, WorkerOptions(once=True)).run() == 1
    assert store.get(run.id).status == "done", store.get(run.id).error
    at = app("pages/compare.py", run=run.id)
    no_exceptions(at)
    labels = {m.label for m in at.metric}
    assert {"Accuracy source-only", "Accuracy adapted"} <= labels
    assert any("transductive" in c.value for c in at.caption)
    gain = next(df.value for df in at.dataframe if "beyond noise" in df.value.columns)
    assert gain.columns[0] == "adapted vs" and list(gain.iloc[:, 0]) == ["source-only", "classical"]   # classical: on the source labels
