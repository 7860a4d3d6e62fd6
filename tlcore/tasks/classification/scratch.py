"""The classification runs' one validation rule and the scratch twin trained under it.

:func:`loop_validation` is the rule of every network trained in a loop (partial, full, LoRA and the twin);
:func:`scratch_twin` trains the random-init twin of the backbone on the same items, under the same rule, epochs and
batch size as the fine-tuned model (used by the run's pipeline and by the scratch follow-up job).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import torch

from tlcore.config import FinetuneConfig
from tlcore.data.dataset import Dataset
from tlcore.data.split import holdout_split
from tlcore.device import current as current_runtime
from tlcore.models.registry import build_backbone
from tlcore.models.transfer_model import TransferModel
from tlcore.progress import CancelFn, Progress, ProgressFn
from tlcore.recipe import setting
from tlcore.strategies.finetune import prepare_full
from tlcore.tasks.classification.train import train_classifier
from tlcore.tasks.classification.tune import tune_lr, tuning_split
from tlcore.training.trainer import TrainConfig

SCRATCH_LR = 1e-3
# Early stopping of the loop strategies needs at least this many validation items (else: the whole schedule).


def accuracy_of(y: np.ndarray, pred: np.ndarray) -> float:
    return float((np.asarray(pred) == y).mean()) if len(y) else 0.0


def loop_validation(labels: list[str], cfg: FinetuneConfig,
                    groups: Optional[list[str]] = None) -> tuple[np.ndarray, np.ndarray, str]:
    """The one validation rule of every network trained in a loop (partial, full, LoRA and the scratch twin):
    (fit indices, validation indices, the rule in words).

    A stratified ``val_fraction`` of the *training* items (never the eval split) is held out for early stopping when
    it holds at least the recipe's ``min_val_items`` (:mod:`tlcore.recipe`). Below that, epochs differ by a few
    points while the accuracy of n
    validation items has a 95% interval of about ±100/sqrt(n) points (±22 for 20 items), so stopping on it picks an
    epoch at random (measured on the image demos: 1-4 points lost against the end of the schedule): the model then
    trains the whole schedule on every training item and keeps the last epoch. With ``groups`` (two or more) whole
    groups are held out, as the eval split does."""
    counts: dict[str, int] = {}
    for y in labels:
        counts[y] = counts.get(y, 0) + 1
    everything = np.arange(len(labels))
    if cfg.val_fraction <= 0 or min(counts.values()) < 4:
        return everything, np.array([], dtype=np.int64), (
            f"off: no validation split (val_fraction {cfg.val_fraction:g}, smallest class {min(counts.values())} "
            f"items); trained the whole schedule on all {len(labels)} training items and kept the last epoch")
    grouped = groups is not None and len(set(groups)) >= 2
    keep, held = holdout_split(labels, groups, cfg.val_fraction, seed=cfg.seed)
    min_val = setting("min_val_items")
    if len(held) < min_val:
        return everything, np.array([], dtype=np.int64), (
            f"off: {len(held)} validation items cannot tell epochs apart (needs {min_val}); trained the "
            f"whole schedule on all {len(labels)} training items and kept the last epoch")
    return np.array(keep), np.array(held), (
        f"on: {len(keep)} training items fitted, {len(held)} held out of them{' (whole groups)' * grouped} (never "
        "eval) to keep the best epoch "
        f"(patience {cfg.patience})")


def scratch_twin(cfg: FinetuneConfig, train_ds: Dataset, y_train: np.ndarray, eval_items: list, classes: list[str], out: Path,
             resume: bool, progress: ProgressFn, should_cancel: CancelFn, *,
             stage: str = "scratch") -> tuple[np.ndarray, dict]:
    """The random-init twin of the backbone, trained on the same training items under the same validation rule
    (:func:`loop_validation`), epochs and batch size as the fine-tuned model; its learning rate is a fixed default
    (``SCRATCH_LR``) or, with ``--tune N``, chosen by the same N trials as the fine-tuned model's."""
    fit_idx, val_idx, rule = loop_validation(train_ds.labels, cfg, train_ds.groups)  # type: ignore[arg-type]

    def train(lr: float, fit: np.ndarray, val: np.ndarray, where: str):
        torch.manual_seed(cfg.seed)
        model = TransferModel(build_backbone(cfg.backbone, cfg.modality, pretrained=False, seed=cfg.seed), classes,
                              strategy="scratch")
        tcfg = TrainConfig(epochs=cfg.epochs, batch_size=cfg.batch_size, lr=lr, head_lr=lr, patience=cfg.patience,
                           seed=cfg.seed, freeze_bn=False, keep_best=bool(len(val)))
        result = train_classifier(model, [train_ds.items[i] for i in fit], y_train[fit],
                                  val_items=[train_ds.items[i] for i in val], val_y=y_train[val], config=tcfg,
                                  train_modules=prepare_full(model), checkpoint_dir=out / "checkpoints" / where,
                                  resume=resume, stage=stage, progress=progress, should_cancel=should_cancel)
        return model, result, tcfg

    lr, tuning = SCRATCH_LR, f"not tuned: lr fixed at {SCRATCH_LR:g} (a default)"
    if cfg.tune:
        t_fit, t_val, how = tuning_split(train_ds.labels, train_ds.groups, val_idx, fit_idx, cfg.seed)  # type: ignore[arg-type]

        def trial(lr: float, n: int) -> float:
            model = train(lr, t_fit, t_val, f"{stage}-tune-{n}")[0]
            return accuracy_of(y_train[t_val], model.predict_proba([train_ds.items[i] for i in t_val]).argmax(1))

        lr, tuning = tune_lr(trial, SCRATCH_LR, cfg.tune, seed=cfg.seed, rule=how)
    model, result, tcfg = train(lr, fit_idx, val_idx, stage)
    progress(Progress("scratch", 1, 1, "scoring the scratch baseline"))
    runtime = current_runtime().describe()     # where the twin ran (a follow-up job sets the run's own runtime)
    return model.predict_proba(eval_items, batch_size=64).argmax(1), {
        "epochs_run": result.epochs_run, "best_epoch": result.best_epoch if tcfg.keep_best else result.epochs_run,
        "stopped_early": result.stopped_early, "train_size": len(fit_idx), "val_size": len(val_idx),
        "early_stopping": rule, "lr": lr, "tuned": tuning if isinstance(tuning, str) else tuning["how"],
        "tuning": tuning, "device": runtime["device"], "precision": runtime["precision"], "history": result.history}
