"""Classification (image, text, audio) as a task of the one trainer: batches of raw items, cross-entropy on the
head's logits, validation accuracy (the loss breaks ties), and precise BatchNorm for models trained from scratch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence

import torch
from torch import nn

from tlcore.progress import CancelFn, Progress, ProgressFn, never_cancel, no_progress
from tlcore.training.trainer import TrainConfig, Trainer, TrainResult, batchnorms


class BatchSource:
    """Preprocessed inputs addressable by index. Images/audio are decoded once; text is tokenized per batch
    (so padding fits the batch)."""

    def __init__(self, backbone: nn.Module, items: Sequence[Any], *, chunk: int = 64):
        self.backbone = backbone
        self.items = list(items)
        self.cached: Optional[dict[str, torch.Tensor]] = None
        if backbone.modality != "text":
            parts = [backbone.preprocess(self.items[i:i + chunk]) for i in range(0, len(self.items), chunk)]
            self.cached = {k: torch.cat([p[k] for p in parts]) for k in parts[0]} if parts else {}

    def __len__(self) -> int:
        return len(self.items)

    def get(self, idx: Sequence[int]) -> dict[str, torch.Tensor]:
        if self.cached is not None:
            ix = torch.as_tensor(list(idx))
            return {k: v[ix] for k, v in self.cached.items()}
        return self.backbone.preprocess([self.items[i] for i in idx])

    def batches(self, batch_size: int):
        for start in range(0, len(self), batch_size):
            yield self.get(range(start, min(start + batch_size, len(self))))


class ClassifyTask:
    """Cross-entropy on ``model(**inputs)``; validation score = accuracy − 10⁻³ · loss (accuracy first)."""

    def __init__(self, model: nn.Module, items: Sequence[Any], y: Sequence[int], *, val_items: Sequence[Any] = (),
                 val_y: Sequence[int] = (), batch_size: int = 16, precise_bn: bool = False):
        self.model = model
        self.train_src, self.val_src = BatchSource(model.backbone, items), BatchSource(model.backbone, val_items)
        self.y = torch.as_tensor(list(y), dtype=torch.long)
        self.val_y = torch.as_tensor(list(val_y), dtype=torch.long)
        self.batch_size, self.precise_bn = batch_size, precise_bn

    def __len__(self) -> int:
        return len(self.y)

    def loss(self, idx: Sequence[int], state) -> tuple[torch.Tensor, float]:
        logits = self.model(**self.train_src.get(idx))
        return nn.functional.cross_entropy(logits, self.y[idx]), float(len(idx))

    def end_epoch(self, state) -> None:
        # From-scratch BatchNorm: re-estimate the running statistics over the whole training set ("precise BN"),
        # because a few dozen momentum updates leave them far from the statistics the weights now produce.
        if self.precise_bn and batchnorms(self.model):
            from tlcore.adaptation import adabn

            adabn(self.model.backbone, self.train_src.batches(self.batch_size))

    @torch.no_grad()
    def validate(self) -> Optional[dict]:
        if not len(self.val_y):
            return None
        self.model.eval()
        n, bs = len(self.val_y), 2 * self.batch_size
        correct, loss_sum = 0, 0.0
        for start in range(0, n, bs):
            idx = range(start, min(start + bs, n))
            logits, y = self.model(**self.val_src.get(idx)), self.val_y[start:start + bs]
            loss_sum += nn.functional.cross_entropy(logits, y, reduction="sum").item()
            correct += int((logits.argmax(1) == y).sum())
        acc, loss = correct / n, loss_sum / n
        return {"score": acc - 1e-3 * loss, "val_accuracy": acc, "val_loss": loss}


def train_classifier(model: nn.Module, train_items: Sequence[Any], train_y: Sequence[int], *,
                     val_items: Sequence[Any] = (), val_y: Sequence[int] = (), config: TrainConfig,
                     train_modules: Sequence[nn.Module] = (), checkpoint_dir: Optional[Path] = None,
                     resume: bool = False, stage: str = "train", progress: ProgressFn = no_progress,
                     should_cancel: CancelFn = never_cancel) -> TrainResult:
    """Train a :class:`TransferModel` (``model.head`` at ``head_lr``) with the one trainer; the best epoch on the
    validation split is restored at the end. ``config.freeze_bn=False`` (scratch) turns on precise BatchNorm."""
    progress(Progress(stage, 0, config.epochs, "preparing inputs"))
    task = ClassifyTask(model, train_items, train_y, val_items=val_items, val_y=val_y, batch_size=config.batch_size,
                        precise_bn=not config.freeze_bn)
    return Trainer(model, task, config, train_modules=train_modules, checkpoint_dir=checkpoint_dir, stage=stage,
                   progress=progress, should_cancel=should_cancel).fit(resume=resume)
