"""Domain adaptation (source + unlabeled target) and clustering runs end to end on tiny backbones."""

import shutil

import pytest
from conftest import write_image_set

from tlcore.config import FinetuneConfig
from tlcore.errors import ConfigError
from tlcore.models.transfer_model import TransferModel
from tlcore.settings.inductive import run_finetune
from tlcore.settings.unsupervised import run_clustering


@pytest.fixture(scope="module")
def domains(tmp_path_factory):
    root = tmp_path_factory.mktemp("da")
    src = write_image_set(root / "source", n_per_class=10, seed=0)
    ev = write_image_set(root / "eval", n_per_class=6, seed=1)
    unl = root / "unlabeled"
    unl.mkdir()
    for f in write_image_set(root / "u", n_per_class=6, seed=2).rglob("*.png"):
        shutil.copy(f, unl / f.name)
    return src, unl, ev


@pytest.mark.parametrize("strategy", ["adabn", "coral", "deep_coral", "dann", "self_training", "mcc"])
def test_adaptation_strategies_run_and_save(tmp_path, domains, strategy):
    src, unl, ev = domains
    report = run_finetune(FinetuneConfig(modality="image", source=str(src), unlabeled=str(unl), eval=str(ev),
                                         backbone="tiny-image", strategy=strategy, out=str(tmp_path / "run")))
    assert report["setting"] == "transductive" and report["data"]["unlabeled"] == 12
    assert report["before"]["kind"].startswith("source-only")
    model = TransferModel.from_pretrained(tmp_path / "run" / "model")
    if strategy != "adabn":   # AdaBN's saved backbone carries the target statistics; predictions use them
        preds = model.predict_proba(report["eval_predictions"]["items"]).argmax(1).tolist()
        assert preds == report["eval_predictions"]["after"]


def test_adaptation_needs_unlabeled(tmp_path, domains):
    src, _, ev = domains
    with pytest.raises(ConfigError, match="--source and --unlabeled"):
        run_finetune(FinetuneConfig(modality="image", source=str(src), eval=str(ev), backbone="tiny-image",
                                    strategy="dann", out=str(tmp_path)))


def test_clustering_reports_both_feature_kinds(domains):
    src, _, _ = domains
    report = run_clustering("image", str(src), backbone="tiny-image", k=2)
    for side in ("pretrained", "raw"):
        assert report[side]["k"] == 2 and 0 <= report[side]["nmi"] <= 1
    assert report["raw"]["nmi"] > 0.9   # bright vs dark squares are trivially separable in pixels


@pytest.mark.parametrize("strategy", ["dann", "deep_coral", "mcc"])
def test_adapt_backbone_trains_the_backbone_end_to_end(tmp_path, domains, strategy):
    import torch

    from tlcore.models.registry import build_backbone

    src, unl, ev = domains
    report = run_finetune(FinetuneConfig(modality="image", source=str(src), unlabeled=str(unl), eval=str(ev),
                                         backbone="tiny-image", strategy=strategy, adapt_backbone=True, epochs=2,
                                         batch_size=8, out=str(tmp_path / "run")))
    info = report["training"]["backbone"]
    assert info["adapted"] and info["epochs_run"] == 2
    assert all("source_val_accuracy" in row and "loss_align" in row for row in info["history"])
    model = TransferModel.from_pretrained(tmp_path / "run" / "model")
    pretrained = build_backbone("tiny-image", "image").state_dict()
    changed = [k for k, v in model.backbone.state_dict().items() if v.dtype.is_floating_point
               and "running" not in k and not torch.equal(v, pretrained[k])]
    assert changed, "the backbone's weights did not move"
    preds = model.predict_proba(report["eval_predictions"]["items"]).argmax(1).tolist()
    assert preds == report["eval_predictions"]["after"]


def test_adapt_backbone_needs_an_alignment_strategy(tmp_path, domains):
    src, unl, ev = domains
    with pytest.raises(ConfigError, match="--adapt-backbone"):
        run_finetune(FinetuneConfig(modality="image", source=str(src), unlabeled=str(unl), eval=str(ev),
                                    backbone="tiny-image", strategy="coral", adapt_backbone=True, out=str(tmp_path / "r")))


def test_adabn_on_a_backbone_without_batch_norm_is_refused_before_any_features(tmp_path, monkeypatch):
    """A strategy the backbone cannot do is refused as soon as the backbone is loaded (issue 22), not after the
    source, unlabeled and eval features were computed."""
    from conftest import write_text_set

    from tlcore.tasks.classification import adaptation

    def no_features(*args, **kwargs):
        raise AssertionError("features were computed before the refusal")

    monkeypatch.setattr(adaptation, "extract_features", no_features)
    src, unl, ev = (write_text_set(tmp_path / name, n_per_class=6, seed=i) for i, name in
                    enumerate(("source", "unlabeled", "eval")))
    with pytest.raises(ConfigError, match="no batch-norm layer.*efficientnet-lite0"):
        run_finetune(FinetuneConfig(modality="text", source=str(src), unlabeled=str(unl), eval=str(ev),
                                    backbone="tiny-text", strategy="adabn", out=str(tmp_path / "run")))
    assert not (tmp_path / "run").exists()
