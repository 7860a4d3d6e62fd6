"""Every strategy x modality on tiny random backbones: trains, predicts, saves, loads to the same predictions."""

import dataclasses
import json

import numpy as np
import pytest
import torch
from conftest import write_audio_set, write_image_set, write_text_set

from tlcore.config import FinetuneConfig
from tlcore.errors import Cancelled, ConfigError
from tlcore.models.registry import build_backbone
from tlcore.models.transfer_model import TransferModel
from tlcore.settings.inductive import run_finetune
from tlcore.strategies import STRATEGIES

WRITERS = {"text": write_text_set, "image": write_image_set, "audio": write_audio_set}


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    return {m: w(root / m) for m, w in WRITERS.items()}


@pytest.mark.parametrize("modality", ["text", "image", "audio"])
@pytest.mark.parametrize("strategy", ["linear_probe", "partial", "full", "lora"])
def test_strategy_modality(tmp_path, datasets, modality, strategy):
    cfg = FinetuneConfig(modality=modality, target=str(datasets[modality]), backbone=f"tiny-{modality}",
                         strategy=strategy, epochs=2, batch_size=8, out=str(tmp_path / "run"), baselines=["knn"])
    report = run_finetune(cfg)
    for key in ("modality", "backbone", "strategy", "seed", "data", "before", "after", "baselines", "warnings", "timings_s"):
        assert key in report
    for block in (report["before"], report["after"]):
        assert set(block) >= {"accuracy", "macro_f1", "accuracy_ci95", "per_class", "confusion"}
        assert block["accuracy_ci95"][0] <= block["accuracy"] <= block["accuracy_ci95"][1]
    assert report["data"]["eval"] == sum(sum(r) for r in report["after"]["confusion"])
    if strategy != "linear_probe":
        assert report["training"]["epochs_run"] >= 1
    assert not (tmp_path / "run" / "checkpoints").exists()     # resume state only: dropped once the run is finished
    # the run folder: model in save_pretrained form, report.json, model card
    run = tmp_path / "run"
    assert json.loads((run / "report.json").read_text())["after"] == report["after"]
    assert "| after |" in (run / "README.md").read_text()
    assert {"config.json", "model.safetensors"} <= {p.name for p in (run / "model").iterdir()}
    loaded = TransferModel.from_pretrained(run / "model")
    preds = loaded.predict_proba(report["eval_predictions"]["items"]).argmax(1).tolist()
    assert preds == report["eval_predictions"]["after"]
    assert not any("lora_" in k for k in json.loads(json.dumps(list(loaded.state_dict()))))


def test_partial_freezes_lower_blocks(datasets):
    from tlcore.strategies.finetune import prepare_partial

    model = TransferModel(build_backbone("tiny-text", "text"), ["a", "b"])
    prepare_partial(model, partial_blocks=1)
    blocks = model.backbone.blocks()
    assert all(p.requires_grad for p in blocks[-1].parameters())
    assert not any(p.requires_grad for p in blocks[0].parameters())
    assert not any(p.requires_grad for p in model.backbone.net.embeddings.parameters())
    assert all(p.requires_grad for p in model.head.parameters())


def test_lora_trains_only_adapters_and_head():
    from tlcore.strategies.lora import finalize_lora, prepare_lora

    model = TransferModel(build_backbone("tiny-text", "text"), ["a", "b"])
    prepare_lora(model, lora_r=4)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n or n.startswith("head.") for n in trainable)
    x = model.backbone.preprocess(["hello world"])
    finalize_lora(model)
    assert not any("lora_" in n for n, _ in model.named_parameters())
    assert model(**x).shape == (1, 2)


def test_linear_probe_head_matches_sklearn(tmp_path):
    from sklearn.linear_model import LogisticRegression

    from tlcore.strategies.linear_probe import fit_linear_head

    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 5)) * [1, 10, 0.1, 1, 1] + [0, 5, 0, 0, 0]
    y = (x[:, 0] + x[:, 3] > 0).astype(int) + (x[:, 4] > 1).astype(int)
    w, b, info = fit_linear_head(x.astype(np.float32), y, 3)
    z = (x - x.mean(0)) / (x.std(0) + 1e-6)
    ref = LogisticRegression(C=info["C"], max_iter=5000).fit(z, y).predict(z)
    ours = (torch.tensor(x, dtype=torch.float32) @ w.T + b).argmax(1).numpy()
    assert (ours == ref).mean() > 0.98


def test_unknown_strategy_lists_known(tmp_path, datasets):
    cfg = FinetuneConfig(modality="text", target=str(datasets["text"]), backbone="tiny-text", strategy="magic", out=str(tmp_path))
    with pytest.raises(ConfigError, match="unknown strategy 'magic'; known: .*linear_probe"):
        run_finetune(cfg)
    assert set(STRATEGIES.names()) >= {"linear_probe", "partial", "full", "lora"}


def test_duplicate_registration_refused():
    with pytest.raises(ValueError, match="already registered"):
        STRATEGIES.register("full", STRATEGIES.get("full"))


def test_seed_makes_runs_repeatable(tmp_path, datasets):
    reports = [run_finetune(FinetuneConfig(modality="image", target=str(datasets["image"]), backbone="tiny-image",
                                           strategy="full", epochs=2, out=str(tmp_path / f"r{i}"), baselines=["scratch"]))
               for i in range(2)]
    assert reports[0]["eval_predictions"] == reports[1]["eval_predictions"]
    assert reports[0]["training"]["history"][0]["train_loss"] == pytest.approx(reports[1]["training"]["history"][0]["train_loss"])


def test_cancel_then_resume(tmp_path, datasets):
    cfg = FinetuneConfig(modality="text", target=str(datasets["text"]), backbone="tiny-text", strategy="full",
                         epochs=4, batch_size=4, patience=10, out=str(tmp_path / "run"), baselines=[])
    epochs_done = []

    def cancel_after_two_epochs():
        # the run works in a hidden staging folder next to --out, renamed into place only when complete
        state = next(tmp_path.glob(".run.partial-*/checkpoints/after/state.json"), tmp_path / "missing")
        if state.exists():
            epochs_done.append(json.loads(state.read_text())["epoch"])
            return epochs_done[-1] >= 2
        return False

    with pytest.raises(Cancelled):
        run_finetune(cfg, should_cancel=cancel_after_two_epochs)
    report = run_finetune(cfg, resume=True)
    assert report["training"]["resumed_from_epoch"] == 2
    assert report["training"]["epochs_run"] == 4
    assert [h["epoch"] for h in report["training"]["history"]] == [1, 2, 3, 4]
    # the batch order and every random draw continue where the checkpoint left them: the same run as one that was
    # never interrupted, to the last bit (dropout included)
    whole = run_finetune(dataclasses.replace(cfg, out=str(tmp_path / "whole")))
    assert [h["train_loss"] for h in report["training"]["history"]] == \
        [h["train_loss"] for h in whole["training"]["history"]]
    assert report["eval_predictions"] == whole["eval_predictions"] and report["after"] == whole["after"]


def test_early_stopping_uses_training_split_only(tmp_path):
    # Early stopping needs a validation split that can tell epochs apart (scratch.FT_MIN_VAL_ITEMS items).
    data = write_text_set(tmp_path / "big", n_per_class=130)
    cfg = FinetuneConfig(modality="text", target=str(data), backbone="tiny-text", strategy="full", val_fraction=0.3,
                         epochs=30, patience=1, lr=1e-9, out=str(tmp_path / "run"), baselines=[])
    report = run_finetune(cfg)
    t = report["training"]
    assert t["stopped_early"] and t["epochs_run"] < 30
    assert t["train_size"] + t["val_size"] == report["data"]["train"]


def test_progress_events_cover_stages(tmp_path, datasets):
    events = []
    run_finetune(FinetuneConfig(modality="text", target=str(datasets["text"]), backbone="tiny-text", strategy="partial",
                                epochs=1, out=str(tmp_path / "r")), progress=events.append)
    stages = {e.stage for e in events}
    assert {"data", "features: train", "features: eval", "before", "train", "scratch", "done"} <= stages


def test_every_alignment_a_strategy_names_is_a_loss_the_adaptation_code_implements():
    from tlcore.adaptation.trainer import ALIGNMENT_LOSSES

    named = {STRATEGIES.get(n).alignment for n in STRATEGIES.names()} - {None}
    assert named == set(ALIGNMENT_LOSSES), named
