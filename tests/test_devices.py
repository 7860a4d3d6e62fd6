"""Devices, precision and DataLoader workers (tlcore/device.py, tlcore/training/loading.py).

There is no GPU here: device resolution and the precision table are tested with torch's availability checks
patched; bf16 autocast is tested for real on the CPU; workers for real with 0 and 2 processes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import write_image_set, write_text_set

import tlcore
from tlcore.config import FinetuneConfig
from tlcore.device import Runtime, current, resolve_device, resolve_precision, runtime_for, use_runtime
from tlcore.errors import ConfigError


@pytest.fixture
def no_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


def test_auto_device_is_the_cpu_without_a_gpu(no_gpu):
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    assert runtime_for(FinetuneConfig()) == Runtime(torch.device("cpu"), "fp32", runtime_for(FinetuneConfig()).num_workers)


def test_explicit_cuda_is_refused_without_a_gpu(no_gpu, tmp_path):
    with pytest.raises(ConfigError, match="CUDA is not available on this machine"):
        resolve_device("cuda")
    with pytest.raises(ConfigError, match="MPS is not available"):
        resolve_device("mps")
    cfg = FinetuneConfig(modality="text", target=str(write_text_set(tmp_path / "t")), backbone="tiny-text",
                         out=str(tmp_path / "run"), device="cuda")
    with pytest.raises(ConfigError, match="CUDA is not available on this machine"):
        cfg.validate()
    with pytest.raises(ConfigError, match="device must be one of auto, cpu, cuda, mps"):
        FinetuneConfig(modality="text", target="x", out="y", device="tpu").validate()


@pytest.mark.parametrize("asked, bf16_ok, expected", [
    ("auto", True, "bf16"), ("auto", False, "fp16"), ("fp32", True, "fp32"), ("bf16", True, "bf16"),
    ("fp16", True, "fp16")])
def test_precision_on_cuda(monkeypatch, asked, bf16_ok, expected):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16_ok)
    assert resolve_precision(asked, torch.device("cuda", 0)) == expected


def test_precision_on_the_cpu():
    cpu = torch.device("cpu")
    assert resolve_precision("auto", cpu) == "fp32"
    assert resolve_precision("fp32", cpu) == "fp32"
    assert resolve_precision("bf16", cpu) == "bf16"
    with pytest.raises(ConfigError, match="fp16 needs a CUDA GPU"):
        resolve_precision("fp16", cpu)
    assert Runtime(cpu, "fp16").grad_scaler() is not None and Runtime(cpu, "bf16").grad_scaler() is None


def test_runtime_is_scoped_to_the_block():
    assert current().precision == "fp32"
    with use_runtime(Runtime(torch.device("cpu"), "bf16", 0)):
        assert current().precision == "bf16"
        with current().autocast():
            assert (torch.ones(2, 3) @ torch.ones(3, 2)).dtype == torch.bfloat16
    assert current().precision == "fp32"
    assert (torch.ones(2, 3) @ torch.ones(3, 2)).dtype == torch.float32


def _text_run(tmp_path, name, **kw):
    data = tmp_path / "text"
    if not data.exists():
        write_text_set(data, n_per_class=30)
    kw.setdefault("baselines", [])
    return tlcore.finetune(modality="text", target=str(data), backbone="tiny-text", strategy="full", epochs=3,
                           out=str(tmp_path / name), **kw).report


def test_report_records_device_and_precision_on_cpu(tmp_path):
    report = _text_run(tmp_path, "fp32")
    assert (report["device"], report["precision"], report["num_processes"]) == ("cpu", "fp32", 1)
    assert report["peak_accelerator_memory_bytes"] is None
    assert report["environment"]["device"] == "cpu" and report["environment"]["precision"] == "fp32"


def test_bf16_autocast_trains_on_the_cpu_close_to_fp32(tmp_path):
    fp32 = _text_run(tmp_path, "fp32", device="cpu", precision="fp32")
    bf16 = _text_run(tmp_path, "bf16", device="cpu", precision="bf16")
    assert bf16["precision"] == "bf16" and bf16["device"] == "cpu"
    losses32 = [h["train_loss"] for h in fp32["training"]["history"]]
    losses16 = [h["train_loss"] for h in bf16["training"]["history"]]
    assert losses16 != losses32                                  # autocast really changed the arithmetic
    assert np.allclose(losses16, losses32, atol=0.05)            # ... and only by bf16's rounding
    assert abs(bf16["after"]["accuracy"] - fp32["after"]["accuracy"]) <= 0.1


def test_feature_extraction_is_the_same_with_workers(tmp_path):
    from tlcore.data.loaders import load_dataset
    from tlcore.models.features import extract_features
    from tlcore.models.registry import build_backbone

    ds = load_dataset(write_image_set(tmp_path / "img", n_per_class=10), "image")
    backbone = build_backbone("tiny-image", "image", pretrained=False, seed=0)
    plain = extract_features(backbone, ds, batch_size=4, use_cache=False)
    with use_runtime(Runtime(torch.device("cpu"), "fp32", 2)):
        pooled = extract_features(backbone, ds, batch_size=4, use_cache=False)
    assert plain.shape == (20, backbone.feature_dim)
    np.testing.assert_array_equal(plain, pooled)


def test_augmented_fine_tuning_is_the_same_with_0_and_2_workers(tmp_path):
    data = write_image_set(tmp_path / "img", n_per_class=10)
    runs = [tlcore.finetune(modality="image", target=str(data), backbone="tiny-image", strategy="full", epochs=2,
                            batch_size=4, augment="standard", baselines=[], num_workers=w,
                            out=str(tmp_path / f"w{w}")).report for w in (0, 2)]
    assert runs[0]["training"]["history"][0]["train_loss"] > 0
    assert [h["train_loss"] for h in runs[0]["training"]["history"]] == \
           [h["train_loss"] for h in runs[1]["training"]["history"]]
    assert runs[0]["eval_predictions"]["after"] == runs[1]["eval_predictions"]["after"]
    assert runs[0]["training"]["augment"] == "standard"


def test_finetune_help_lists_the_scale_flags(capsys):
    from tlcore.cli import main

    with pytest.raises(SystemExit):
        main(["finetune", "--help"])
    text = capsys.readouterr().out
    for flag in ("--device", "--precision", "--num-workers", "--num-processes"):
        assert flag in text


def test_an_fp32_run_never_reads_features_extracted_at_bf16(tmp_path):
    """The feature cache is keyed by device type and precision (and the weights): bf16 features stay bf16's."""
    from tlcore.data.loaders import load_dataset
    from tlcore.models.features import extract_features
    from tlcore.models.registry import build_backbone
    from tlcore.paths import owned_cache_dir

    ds = load_dataset(write_text_set(tmp_path / "t", n_per_class=6), "text")
    backbone = build_backbone("tiny-text", "text", pretrained=True)
    cpu = torch.device("cpu")
    with use_runtime(Runtime(cpu, "bf16", 0)):
        at_bf16 = extract_features(backbone, ds)
    with use_runtime(Runtime(cpu, "fp32", 0)):
        at_fp32 = extract_features(backbone, ds)          # after the bf16 file is in the cache
        fresh = extract_features(backbone, ds, use_cache=False)
    np.testing.assert_array_equal(at_fp32, fresh)
    assert not np.array_equal(at_bf16, at_fp32)
    files = sorted(p.name for p in owned_cache_dir("features").glob("*.npy"))
    assert len(files) == 2 and files[0].endswith("-cpu-bf16.npy") and files[1].endswith("-cpu-fp32.npy")


def test_the_scratch_twin_reports_the_device_and_precision_it_ran_at(tmp_path):
    report = _text_run(tmp_path, "bf16", device="cpu", precision="bf16", baselines=["scratch"])
    twin = report["baselines"]["scratch"]["training"]
    assert (twin["device"], twin["precision"]) == ("cpu", "bf16")
