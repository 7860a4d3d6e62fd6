"""Hugging Face Hub export of a finished run (tlcore.inference.hub_export, ``export --format hf``): the folder holds the
run's model and report and a model card whose YAML metadata huggingface_hub reads back offline (license, base model,
tags, pipeline tag, model-index with the before/after numbers of report.json); the exported model predicts as the
run's; an existing export is never overwritten; runs without a model and --push with ONNX are refused; a push that
cannot reach the Hub is one clear error and leaves the export for the next try. Nothing here touches the network."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
from pathlib import Path

import huggingface_hub
import pytest
from conftest import write_asr_clips, write_ner, write_reviews, write_text_set
from huggingface_hub import ModelCard
from huggingface_hub.repocard import metadata_load

import tlcore
from tlcore.cli import main
from tlcore.errors import ConfigError, TransferLabError
from tlcore.inference import hub_export as hx
from tlcore.models.transfer_model import TransferModel
from tlcore.tasks import get_task
from tlcore.tasks.ner.data import encode
from tlcore.tasks.ner.model import TokenTagger

pytestmark = pytest.mark.usefixtures("one_thread")


def digest(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (an export folder of a run aside), by content."""
    return {str(f.relative_to(folder)): hashlib.sha256(f.read_bytes()).hexdigest()
            for f in sorted(folder.rglob("*")) if f.is_file() and "export" not in f.relative_to(folder).parts}


def cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def finetune(root: Path, task: str) -> Path:
    """A tiny finished run of ``task`` (one epoch of full fine-tuning on the tiny text backbone)."""
    import torch

    target = {"classify": lambda: write_text_set(root / "reviews"), "ner": lambda: write_ner(root / "people.jsonl"),
              "multilabel": lambda: write_reviews(root / "aspects.csv")}[task]()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)   # module fixtures run before the function-scoped one_thread
    try:
        tlcore.finetune(modality="text", task=task, backbone="tiny-text", target=str(target), out=str(root / "run"),
                        strategy="full", epochs=1, baselines=[])
    finally:
        torch.set_num_threads(threads)
    return root / "run"


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A classification run exported with ``export --format hf``: (run, the run's files before, export folder)."""
    run = finetune(tmp_path_factory.mktemp("hf_classify"), "classify")
    before = digest(run)
    code, out, err = cli(["export", "--run", str(run), "--format", "hf", "--quiet"])
    assert code == 0, err
    assert "Hugging Face export written" in err and "--push" in err
    return run, before, Path(out.strip())


def metrics_of(metadata: dict) -> dict[str, dict]:
    """The model-index metrics by name, of its one result."""
    (entry,) = metadata["model-index"]
    (result,) = entry["results"]
    return {m["name"]: m for m in result["metrics"]}


# ---------------------------------------------------------------- the folder and its model card

def test_the_folder_holds_the_model_the_report_and_a_card_and_the_run_is_unchanged(exported):
    run, before, folder = exported
    assert folder == run / "export" / "hf"
    assert {f.name for f in folder.iterdir()} == {"model", "report.json", "README.md"}
    assert digest(folder / "model") == digest(run / "model")   # save_pretrained files, preprocessing.json included
    assert "preprocessing.json" in digest(folder / "model") and "tokenizer.json" in digest(folder / "model")
    assert (folder / "report.json").read_bytes() == (run / "report.json").read_bytes()
    assert (run / "README.md").read_text().strip() in (folder / "README.md").read_text()
    assert digest(run) == before, "the export must not change any file the run already holds"


def test_the_card_metadata_reads_back_offline_with_the_reports_numbers(exported):
    run, _, folder = exported
    report = json.loads((run / "report.json").read_text())
    card, metadata = ModelCard.load(folder / "README.md"), metadata_load(folder / "README.md")
    assert card.data.to_dict() == metadata
    assert metadata["library_name"] == "transferlab" and metadata["pipeline_tag"] == "text-classification"
    assert {"transferlab", "classify", "full"} <= set(metadata["tags"])
    assert "license" not in metadata and "base_model" not in metadata   # tiny-text: no pretrained weights, no license
    (entry,) = metadata["model-index"]
    assert entry["name"] == "run"
    (result,) = entry["results"]
    assert result["task"]["type"] == "text-classification"
    assert result["dataset"] == {"name": "reviews", "type": "custom", "split": "eval"}
    metrics = metrics_of(metadata)
    for block, when in (("after", "after transfer"), ("before", "before transfer")):
        lo, hi = report[block]["accuracy_ci95"]
        acc = metrics[f"accuracy ({when}; 95% CI {lo:.3f} to {hi:.3f})"]
        assert acc["type"] == "accuracy" and acc["value"] == report[block]["accuracy"]
        assert metrics[f"macro-F1 ({when})"]["value"] == report[block]["macro_f1"]
    assert len(card.data.eval_results) == 4 and card.data.eval_results[0].dataset_split == "eval"


def test_the_exported_model_loads_and_predicts_as_the_runs(exported):
    run, _, folder = exported
    texts = ["the film was great number 3", "the film was dreadful number 8", "an ordinary afternoon"]
    ours, theirs = TransferModel.from_pretrained(folder / "model"), TransferModel.from_pretrained(run / "model")
    assert ours.predict(texts) == theirs.predict(texts)
    assert (ours.predict_proba(texts) == theirs.predict_proba(texts)).all()
    # The folder is a (smaller) run folder: what a Hub user downloads predicts with load_run.
    assert tlcore.load_run(folder).predict(texts) == tlcore.load_run(run).predict(texts)


# ---------------------------------------------------------------- refusals

def test_an_existing_export_is_refused_and_nothing_changes(exported):
    run, _, folder = exported
    files = digest(folder)
    code, _, err = cli(["export", "--run", str(run), "--format", "hf"])
    assert code == 2 and "already holds" in err and "never overwrites" in err and "--out NEW_FOLDER" in err
    with pytest.raises(ConfigError, match="already holds"):
        hx.export_hf(run)
    assert digest(folder) == files


def test_push_with_onnx_a_bad_repo_id_or_the_run_folder_is_refused(exported, tmp_path):
    run, _, _ = exported
    code, _, err = cli(["export", "--run", str(run), "--format", "onnx", "--push", "me/model"])
    assert code == 2 and "--push" in err and "--format hf" in err and "\n" == err[-1] and err.count("\n") == 1
    assert not (run / "export" / "onnx").exists()
    with pytest.raises(ConfigError, match="not a Hugging Face repo id"):
        hx.export_hf(run, tmp_path / "hf", push="me/two words")
    assert not (tmp_path / "hf").exists()
    with pytest.raises(ConfigError, match="inside the run's own files"):   # the run folder itself is never pushed
        hx.export_hf(run, run, push="me/model")


def test_a_run_without_a_model_is_refused(tmp_path):
    data = write_text_set(tmp_path / "texts", n_per_class=6)
    tlcore.cluster_job(tlcore.ClusterConfig(modality="text", data=str(data), backbone="tiny-text", out=str(tmp_path / "clusters")))
    code, _, err = cli(["export", "--run", str(tmp_path / "clusters"), "--format", "hf"])
    assert code == 2 and "holds no model" in err and "analysis" in err
    assert not (tmp_path / "clusters" / "export").exists()


# ---------------------------------------------------------------- pushing (no network: offline mode, then a stand-in Hub)

def test_a_push_offline_is_one_error_and_the_next_push_sends_the_written_export(exported, tmp_path, monkeypatch):
    run, _, _ = exported
    dest = tmp_path / "hub"
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(TransferLabError, match="could not push .* as me/sentiment .*OfflineModeIsEnabled") as info:
        hx.export_hf(run, dest, push="me/sentiment")
    assert "\n" not in str(info.value) and "run the same command again" in str(info.value)
    files = digest(dest)
    assert "README.md" in files and metadata_load(dest / "README.md")["model-index"][0]["name"] == "sentiment"

    sent = []
    monkeypatch.setattr(hx, "create_repo", lambda repo_id, **kw: sent.append(("create", repo_id, kw))
                        or huggingface_hub.RepoUrl(f"https://huggingface.co/{repo_id}"))
    monkeypatch.setattr(hx, "upload_folder", lambda **kw: sent.append(("upload", kw)))
    result = hx.export_hf(run, dest, push="me/sentiment")
    assert result.url == "https://huggingface.co/me/sentiment" and result.metadata == metadata_load(dest / "README.md")
    assert sent[0] == ("create", "me/sentiment", {"exist_ok": True, "private": True})
    assert sent[1][1]["repo_id"] == "me/sentiment" and Path(sent[1][1]["folder_path"]) == dest
    assert digest(dest) == files   # pushed as it was written, not written again


# ---------------------------------------------------------------- the other tasks

@pytest.mark.parametrize("task", ["ner", "multilabel"])
def test_ner_and_multilabel_runs_export_with_their_metrics(task, tmp_path):
    run = finetune(tmp_path, task)
    result = tlcore.export_hf(run)
    report, spec = json.loads((run / "report.json").read_text()), get_task(task)
    metadata = metadata_load(result.folder / "README.md")
    assert ModelCard.load(result.folder / "README.md").data.to_dict() == metadata == result.metadata
    assert metadata["pipeline_tag"] == {"ner": "token-classification", "multilabel": "text-classification"}[task]
    metrics = metrics_of(metadata)
    for block, when in (("after", "after transfer"), ("before", "before transfer")):
        for m in spec.metrics:
            (found,) = [v for k, v in metrics.items() if k.startswith(f"{m.card_label} ({when}")]
            assert found["type"] == m.key and found["value"] == report[block][m.key]
    texts = ["anna flew to paris for acme today", "late shipping and rude staff"]
    if task == "ner":
        a, b = TokenTagger.from_pretrained(result.folder / "model"), TokenTagger.from_pretrained(run / "model")
        tags = [m.predict_tags(encode(m.tokenizer, [t.split() for t in texts], m.max_length)) for m in (a, b)]
        assert tags[0] == tags[1] and len(tags[0]) == 2
    else:
        assert (result.folder / "model" / "thresholds.json").is_file()
    assert tlcore.load_run(result.folder).predict(texts) == tlcore.load_run(run).predict(texts)


def test_a_speech_recognition_run_exports_a_standard_whisper_folder(tiny_whisper, tmp_path):
    from transformers import WhisperForConditionalGeneration

    sets = {"target": write_asr_clips(tmp_path / "target", 4), "eval": write_asr_clips(tmp_path / "eval", 2, first=10)}
    tlcore.finetune(modality="audio", task="asr", target=str(sets["target"]), eval=str(sets["eval"]),
                    backbone=str(tiny_whisper), strategy="decoder", epochs=1, batch_size=2, out=str(tmp_path / "run"))
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    result = hx.export_hf(tmp_path / "run")
    metadata = metadata_load(result.folder / "README.md")
    assert metadata["pipeline_tag"] == "automatic-speech-recognition" and "base_model" not in metadata   # a local folder
    metrics = metrics_of(metadata)
    lo, hi = report["after"]["wer_ci95"]
    assert metrics[f"WER (after transfer; 95% CI {lo:.3f} to {hi:.3f})"]["value"] == report["after"]["wer"]
    assert metrics_of(metadata)[next(k for k in metrics if k.startswith("WER (before"))]["value"] == report["before"]["wer"]
    assert WhisperForConditionalGeneration.from_pretrained(result.folder / "model").config.d_model == 32


# ---------------------------------------------------------------- the metadata's parts

@pytest.mark.parametrize("backbone, expected", [
    ("minilm-l6", ("sentence-transformers/all-MiniLM-L6-v2", "apache-2.0")),
    ("whisper-tiny-en", ("openai/whisper-tiny.en", "mit")),
    ("efficientnet-lite0-128", (None, "apache-2.0")),          # no Hub model it was converted from
    ("minilm-l6@random", (None, "apache-2.0")),                # no pretrained weights went in; its tokenizer's license
    ("google/vit-base-patch16-224", ("google/vit-base-patch16-224", None)),
    ("/data/models/my-encoder", (None, None)),
    ("tiny-text", (None, None)),
])
def test_base_model_and_license_come_from_the_backbone_registry(backbone, expected):
    assert hx.base_model_and_license({"backbone": "shown", "config": {"backbone": backbone}}) == expected


def test_a_registered_backbone_card_carries_license_and_base_model(exported, tmp_path):
    run, _, _ = exported
    report = json.loads((run / "report.json").read_text())
    report["config"]["backbone"] = report["backbone"] = "minilm-l6"
    data = hx.card_data(report, get_task("classify"), model_name="m")
    path = tmp_path / "README.md"
    ModelCard(f"---\n{data.to_yaml()}\n---\n\ncard\n").save(path)
    metadata = metadata_load(path)
    assert metadata["license"] == "apache-2.0" and metadata["base_model"] == "sentence-transformers/all-MiniLM-L6-v2"


@pytest.mark.parametrize("data, name", [
    ({"target": "/home/me/reviews.csv"}, "reviews"),
    ({"target": "/home/me/shop-reviews/target", "eval_path": "/home/me/shop-reviews/eval/"}, "shop-reviews/eval"),
    ({"target": "/home/me/accent.zip"}, "accent"),
    ({}, "unnamed"),
])
def test_the_data_set_is_named_from_its_path(data, name):
    assert hx.dataset_name({"data": data}) == name
