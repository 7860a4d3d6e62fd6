"""Image fine-tuning that earns its cost: training-time augmentation (training batches only, seeded), LP-FT with
discriminative learning rates, the new settings' validation and flags, and the linear-probe recommendation."""

import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import write_image_set, write_text_set

from tlcore import recipe
from tlcore.config import AUGMENT_LEVELS, FinetuneConfig
from tlcore.errors import ConfigError
from tlcore.models.batches import BatchSource
from tlcore.models.registry import build_backbone
from tlcore.models.transfer_model import TransferModel
from tlcore.settings.inductive import run_finetune
from tlcore.tasks.classification import pipeline as inductive
from tlcore.tasks.classification.notices import probe_recommendation


@pytest.fixture(autouse=True)
def _fast(one_thread):
    """Tiny models train fastest on one torch thread on a busy machine."""
    yield


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    return write_image_set(tmp_path_factory.mktemp("img") / "set", n_per_class=10)


def _cfg(tmp_path, target, **kw) -> FinetuneConfig:
    base = dict(modality="image", target=str(target), backbone="tiny-image", strategy="full", epochs=2, batch_size=4,
                out=str(tmp_path / "run"), baselines=[])
    return FinetuneConfig(**{**base, **kw})


# ---------------------------------------------------------------- augmentation: where it applies


def test_augmentation_touches_training_batches_only(tmp_path, images, monkeypatch):
    """Every augmented image is fed to a training step; validation, eval, the probe's features, the "before"
    model and the scratch baseline see plain inputs. Instrumented: the augmentation paints a marker value, and
    every forward pass of the backbone records whether it saw the marker and whether gradients were on."""
    import tlcore.models.image as image_module
    from tlcore.models.efficientnet_lite import normalize_lite
    from tlcore.models.image import EfficientNetLiteBackbone

    marker, calls, forwards = 0.123, [], []

    def marking_augmentation(level, size, *, flip=False):
        def transform(x):
            calls.append(tuple(x.shape))
            return torch.full_like(x, marker)
        return transform

    monkeypatch.setattr(image_module, "image_augmentation", marking_augmentation)
    plain_forward = EfficientNetLiteBackbone.forward
    marked_input = normalize_lite(torch.tensor(marker))

    def recording_forward(self, pixel_values):
        forwards.append((torch.is_grad_enabled(), bool(torch.isclose(pixel_values, marked_input).all())))
        return plain_forward(self, pixel_values)

    monkeypatch.setattr(EfficientNetLiteBackbone, "forward", recording_forward)
    monkeypatch.setitem(recipe._override, "min_val_items", 1)    # keep a (tiny) validation split to check it
    report = run_finetune(_cfg(tmp_path, images, baselines=["scratch", "knn"], patience=10))
    t = report["training"]
    assert t["augment"] == "standard" and t["val_size"] > 0
    # one augmentation per training item per epoch, at the backbone's input size
    assert len(calls) == t["train_size"] * t["epochs_run"] and set(calls) == {(3, 32, 32)}
    training = [marked for grad, marked in forwards if grad]      # training steps, in order
    scoring = [marked for grad, marked in forwards if not grad]   # features, before, validation, eval
    assert scoring and not any(scoring)
    # every step of the fine-tuning was augmented; then the scratch baseline trained on plain inputs
    steps_after = -(-t["train_size"] // 4) * t["epochs_run"]
    assert training[:steps_after] == [True] * steps_after
    assert len(training) > steps_after and not any(training[steps_after:])


def test_batch_source_is_seeded_plain_without_seed_and_keeps_the_global_rng(images):
    backbone = build_backbone("tiny-image", "image")
    items = sorted(str(p) for p in images.rglob("*.png"))[:6]
    src = BatchSource(backbone, items, augment="standard")
    plain = BatchSource(backbone, items)
    assert src.augment is not None and plain.augment is None
    idx = [0, 3, 5]
    state = torch.random.get_rng_state()
    a1, a2 = src.get(idx, augment_seed=7)["pixel_values"], src.get(idx, augment_seed=7)["pixel_values"]
    b = src.get(idx, augment_seed=8)["pixel_values"]
    assert torch.equal(torch.random.get_rng_state(), state)       # augmentation draws from its own generator
    assert torch.equal(a1, a2) and not torch.equal(a1, b)
    unaugmented = plain.get(idx)["pixel_values"]
    assert not torch.equal(a1, unaugmented)
    # without a seed (precise BatchNorm passes, ...) the pixels are exactly what preprocess gives
    assert torch.allclose(src.get(idx)["pixel_values"], unaugmented)
    assert torch.allclose(unaugmented, backbone.preprocess([items[i] for i in idx])["pixel_values"])


def test_a_set_past_the_decode_budget_is_decoded_per_batch_with_the_same_inputs(images):
    """Large sets are not held decoded in memory (flat memory in the number of items); the inputs are identical."""
    backbone = build_backbone("tiny-image", "image")
    items = sorted(str(p) for p in images.rglob("*.png"))[:10]
    for augment in ("none", "standard"):
        kept, lazy = (BatchSource(backbone, items, augment=augment, chunk=4, cache_bytes=b) for b in (1 << 30, 0))
        assert kept.cached is not None and not kept.lazy and lazy.cached is None and lazy.lazy
        for idx in ([0, 3, 9], [5]):
            assert torch.equal(kept.get(idx)["pixel_values"], lazy.get(idx)["pixel_values"])
            assert torch.equal(kept.get(idx, augment_seed=3)["pixel_values"], lazy.get(idx, augment_seed=3)["pixel_values"])


def test_augmentation_pipeline_is_label_safe_by_default():
    from torchvision.transforms import v2

    from tlcore.models.image import image_augmentation

    assert image_augmentation("none", (32, 32)) is None
    for level in ("light", "standard"):
        steps = [type(t) for t in image_augmentation(level, (32, 32)).transforms]
        assert v2.RandomHorizontalFlip not in steps and v2.RandomResizedCrop in steps and v2.ColorJitter in steps
        assert v2.RandomHorizontalFlip in [type(t) for t in image_augmentation(level, (32, 32), flip=True).transforms]
    assert [type(t) for t in image_augmentation("none", (8, 8), flip=True).transforms] == [v2.RandomHorizontalFlip]
    # edge padding: a uniform image stays uniform (what moves in is its own background, never black)
    x = torch.full((3, 32, 32), 0.8)
    torch.manual_seed(0)
    y = image_augmentation("standard", (32, 32))(x)
    assert y.shape == x.shape and float(y.std()) < 1e-4 and float(y.min()) > 0.1


def test_text_runs_ignore_augmentation(tmp_path):
    data = write_text_set(tmp_path / "text", n_per_class=8)
    report = run_finetune(FinetuneConfig(modality="text", target=str(data), backbone="tiny-text", strategy="partial",
                                         epochs=1, augment="standard", out=str(tmp_path / "run"), baselines=[]))
    assert report["training"]["augment"] == "none" and "image fine-tuning only" in report["training"]["augment_ignored"]


def test_too_small_a_validation_split_trains_the_whole_schedule_on_everything(tmp_path, images):
    report = run_finetune(_cfg(tmp_path, images, epochs=3, patience=1, lr=1e-9))
    t = report["training"]
    assert t["val_size"] == 0 and t["train_size"] == report["data"]["train"]
    assert t["epochs_run"] == 3 == t["best_epoch"] and not t["stopped_early"]
    assert t["early_stopping"].startswith("off: ") and "validation items cannot tell epochs apart" in t["early_stopping"]


# ---------------------------------------------------------------- LP-FT learning rates


@pytest.mark.parametrize("strategy", ["full", "partial"])
def test_layerwise_learning_rates_decay_towards_the_bottom(strategy):
    from tlcore.strategies import get_strategy

    model = TransferModel(build_backbone("tiny-image", "image"), ["a", "b"])
    s = get_strategy(strategy)
    s.prepare(model, partial_blocks=2)
    groups = s.param_groups(model, lr=1e-3, head_lr=2e-3, layer_decay=0.5)
    lr_of = {id(p): g["lr"] for g in groups for p in g["params"]}
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert len(lr_of) == sum(len(g["params"]) for g in groups) == len(trainable)   # each trainable param once
    assert all(lr_of[id(p)] == 2e-3 for p in model.head.parameters())
    blocks = model.backbone.blocks()
    block_lrs = [lr_of[id(next(b.parameters()))] for b in blocks if next(b.parameters()).requires_grad]
    assert block_lrs == sorted(block_lrs) and block_lrs[-1] == 1e-3 and len(set(block_lrs)) == len(block_lrs)
    assert block_lrs[-2] == pytest.approx(0.5e-3)
    stem = model.backbone.net._conv_stem.weight
    if strategy == "full":
        assert lr_of[id(stem)] == pytest.approx(1e-3 * 0.5 ** len(blocks)) and lr_of[id(stem)] < min(block_lrs)
        assert lr_of[id(model.backbone.net._conv_head.weight)] == 1e-3
    else:
        assert id(stem) not in lr_of and len(block_lrs) == 2
    flat = get_strategy(strategy).param_groups(model, lr=1e-3, head_lr=1e-3, layer_decay=1.0)
    assert {g["lr"] for g in flat} == {1e-3}


def test_run_trains_with_the_layerwise_groups_and_the_lp_ft_head_lr(tmp_path, images, monkeypatch):
    seen = {}
    real = inductive.train_classifier

    def spy(model, *args, **kw):
        seen.update(kw, lrs=[g["lr"] for g in kw["param_groups"]])   # before the scheduler changes them
        return real(model, *args, **kw)

    monkeypatch.setattr(inductive, "train_classifier", spy)
    report = run_finetune(_cfg(tmp_path, images, epochs=1, layer_decay=0.7, lr=1e-3))
    lrs = seen["lrs"]
    assert lrs[0] == seen["config"].head_lr == 1e-3 * inductive.FT_HEAD_LR_FACTOR      # the head: LP-FT, small lr
    assert lrs[1] == 1e-3 and lrs[2:] == sorted(lrs[2:], reverse=True) and lrs[-1] < 1e-3 * 0.7 ** 3
    assert seen["config"].schedule == "warmup_cosine" and seen["augment"] == "standard"
    t = report["training"]
    assert t["layer_decay"] == 0.7 and t["head_lr"] == seen["config"].head_lr and t["schedule"] == "warmup_cosine"


def test_warmup_cosine_schedule_shape():
    from tlcore.training.trainer import warmup_cosine_schedule

    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = warmup_cosine_schedule(opt, total_steps=20, warmup_frac=0.1)
    lrs = []
    for _ in range(20):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == 0.5 and lrs[1] == 1.0 and lrs == lrs[:2] + sorted(lrs[2:], reverse=True) and lrs[-1] < 0.01
    assert lrs[11] == pytest.approx(0.5 * (1 + np.cos(np.pi * 9 / 18)))


# ---------------------------------------------------------------- settings: validation, CLI


@pytest.mark.parametrize("field, value, message", [
    ("augment", "heavy", "augment must be one of none, light, standard; got 'heavy'"),
    ("layer_decay", 0.0, "layer-decay must be between 0.05 and 1"),
    ("layer_decay", 1.5, "layer-decay must be between 0.05 and 1"),
])
def test_new_settings_are_validated(tmp_path, images, field, value, message):
    with pytest.raises(ConfigError, match=message):
        _cfg(tmp_path, images, **{field: value}).validate()
    assert AUGMENT_LEVELS == ("none", "light", "standard")
    _cfg(tmp_path, images, augment="light", augment_flip=True, layer_decay=1.0).validate()


def test_old_run_configs_without_the_new_settings_still_load():
    old = {k: v for k, v in FinetuneConfig(modality="image", target="x", out="y").to_dict().items()
           if k not in ("augment", "augment_flip", "layer_decay")}
    cfg = FinetuneConfig.from_dict(old)
    assert (cfg.augment, cfg.augment_flip, cfg.layer_decay) == (FinetuneConfig.augment, False, FinetuneConfig.layer_decay)


def test_cli_has_the_flags_and_refuses_a_bad_level(tmp_path):
    env_run = [sys.executable, "-m", "tlcore", "finetune"]
    help_text = subprocess.run(env_run + ["--help"], capture_output=True, text=True, check=True).stdout
    for flag in ("--augment {none,light,standard}", "--augment-flip", "--layer-decay"):
        assert flag in help_text
    bad = subprocess.run(env_run + ["--modality", "image", "--target", str(tmp_path), "--augment", "heavy",
                                    "--out", str(tmp_path / "r")], capture_output=True, text=True)
    assert bad.returncode == 2 and "heavy" in bad.stderr


# ---------------------------------------------------------------- the linear-probe recommendation


def test_probe_recommendation_follows_the_paired_interval():
    assert probe_recommendation("full", 0.95, 0.85, {"difference": 0.10, "ci95": [0.05, 0.15]}) is None
    worse = probe_recommendation("full", 0.80, 0.87, {"difference": -0.07, "ci95": [-0.1, -0.04]})
    assert worse.startswith("linear probe recommended") and "is worse than" in worse and "-7.0 points" in worse
    tie = probe_recommendation("lora", 0.88, 0.87, {"difference": 0.01, "ci95": [-0.02, 0.04]})
    assert "lora" in tie and "is not clearly better than" in tie and "0.870" in tie


def test_run_recommends_the_probe_when_fine_tuning_does_not_beat_it(tmp_path, images):
    # lr ~ 0 and no validation split (the head starts from the probe on all training items): the fine-tuned
    # model is the probe, so it cannot beat it.
    report = run_finetune(_cfg(tmp_path, images, lr=1e-12, epochs=1, val_fraction=0.0))
    t = report["training"]
    assert t["linear_probe_eval_accuracy"] == report["after"]["accuracy"]
    assert t["linear_probe_comparison"]["difference"] == 0.0
    assert any(n.startswith("linear probe recommended") for n in report["notes"])


def test_no_recommendation_when_fine_tuning_clearly_beats_the_probe(tmp_path, monkeypatch, tmp_path_factory):
    # A probe that always answers one class; fine-tuning (the same head trained with the backbone) fixes it.
    data = write_image_set(tmp_path_factory.mktemp("big") / "set", n_per_class=30)

    def useless_probe(features, y, n_classes, *, seed=0):
        return torch.zeros(n_classes, features.shape[1]), torch.tensor([1.0] + [0.0] * (n_classes - 1)), {}

    monkeypatch.setattr(inductive, "fit_linear_head", useless_probe)
    report = run_finetune(_cfg(tmp_path, data, lr=1e-2, epochs=3, augment="none"))
    t = report["training"]
    assert t["linear_probe_eval_accuracy"] == pytest.approx(0.5)
    assert report["after"]["accuracy"] > 0.9 and t["linear_probe_comparison"]["ci95"][0] > 0
    assert not any("linear probe recommended" in n for n in report["notes"])


def test_linear_probe_runs_carry_no_recommendation(tmp_path, images):
    report = run_finetune(_cfg(tmp_path, images, strategy="linear_probe"))
    assert report["notes"] == [] and "linear_probe_comparison" not in report["training"]
