"""Classification (image, text, audio) as a task of the one trainer: batches of raw items, cross-entropy on the
head's logits, validation accuracy (the loss breaks ties), precise BatchNorm for models trained from scratch, and
training-time augmentation of image batches.

Augmentation (:func:`tlcore.models.image.image_augmentation`) touches the *training* batches only: the validation
split, the eval split, the cached features of the linear probe and the "before" model all see the plain
``preprocess`` of the backbone. Each batch is augmented on a private generator seeded from (seed, step): the same
seed gives the same augmented batches, whatever else draws from torch's generator (dropout, initialisation).
Text and audio have no augmentation here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

import torch
from torch import nn

from tlcore.device import module_device, my_batch_starts, sum_over_processes, to_device
from tlcore.models.batches import BatchSource, augment_seed
from tlcore.progress import CancelFn, Progress, ProgressFn, never_cancel, no_progress
from tlcore.training.trainer import TrainConfig, Trainer, TrainResult, batchnorms


class ClassifyTask:
    """Cross-entropy on ``model(**inputs)``; validation score = accuracy − 10⁻³ · loss (accuracy first).
    ``augment`` applies to the training batches only (the validation source never gets it)."""

    def __init__(self, model: nn.Module, items: Sequence[Any], y: Sequence[int], *, val_items: Sequence[Any] = (),
                 val_y: Sequence[int] = (), batch_size: int = 16, precise_bn: bool = False,
                 augment: str = "none", flip: bool = False, seed: int = 0):
        self.model = model
        self.train_src = BatchSource(model.backbone, items, augment=augment, flip=flip)
        self.val_src = BatchSource(model.backbone, val_items)
        self.y = torch.as_tensor(list(y), dtype=torch.long)
        self.val_y = torch.as_tensor(list(val_y), dtype=torch.long)
        self.batch_size, self.precise_bn, self.seed = batch_size, precise_bn, seed

    def __len__(self) -> int:
        return len(self.y)

    def batch(self, idx: Sequence[int], step: int) -> dict[str, torch.Tensor]:
        """The CPU-side inputs of the training batch ``idx`` at optimizer step ``step`` (gathered, augmented): what
        the trainer's DataLoader workers prepare ahead of the model."""
        return self.train_src.get(idx, augment_seed=augment_seed(self.seed, step))

    def loss(self, idx: Sequence[int], state, inputs: Optional[dict] = None) -> tuple[torch.Tensor, float]:
        if inputs is None:
            inputs = self.batch(idx, state.step)
        logits = self.model(**inputs)
        y = self.y[list(idx)].to(logits.device)
        return nn.functional.cross_entropy(logits.float(), y), float(len(idx))

    def end_epoch(self, state) -> None:
        # From-scratch BatchNorm: re-estimate the running statistics over the whole training set ("precise BN"),
        # because a few dozen momentum updates leave them far from the statistics the weights now produce.
        if self.precise_bn and batchnorms(self.model):
            from tlcore.adaptation import adabn

            adabn(self.model.backbone, self.train_src.batches(self.batch_size))

    def val_batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(logits on the CPU, targets) of this process's share of the validation split, batch by batch (the
        processes of a multi-process run split the split; sum what you count with ``sum_over_processes``)."""
        self.model.eval()
        n, bs = len(self.val_y), 2 * self.batch_size
        device = module_device(self.model)
        for start in my_batch_starts(n, bs):
            idx = range(start, min(start + bs, n))
            yield self.model(**to_device(self.val_src.get(idx), device)).float().cpu(), self.val_y[start:start + bs]

    @torch.no_grad()
    def validate(self) -> Optional[dict]:
        if not len(self.val_y):
            return None
        correct, loss_sum = 0, 0.0
        for logits, y in self.val_batches():
            loss_sum += nn.functional.cross_entropy(logits, y, reduction="sum").item()
            correct += int((logits.argmax(1) == y).sum())
        correct, loss_sum = sum_over_processes([correct, loss_sum], module_device(self.model))
        n = len(self.val_y)
        acc, loss = correct / n, loss_sum / n
        return {"score": acc - 1e-3 * loss, "val_accuracy": acc, "val_loss": loss}


def train_classifier(model: nn.Module, train_items: Sequence[Any], train_y: Sequence[int], *,
                     val_items: Sequence[Any] = (), val_y: Sequence[int] = (), config: TrainConfig,
                     train_modules: Sequence[nn.Module] = (), checkpoint_dir: Optional[Path] = None,
                     resume: bool = False, stage: str = "train", progress: ProgressFn = no_progress,
                     should_cancel: CancelFn = never_cancel, augment: str = "none", augment_flip: bool = False,
                     param_groups: Optional[list[dict]] = None) -> TrainResult:
    """Train a :class:`TransferModel` (``model.head`` at ``head_lr``, or ``param_groups``) with the one trainer; the
    best epoch on the validation split is restored at the end. ``config.freeze_bn=False`` (scratch) turns on
    precise BatchNorm. ``augment`` ("none", "light", "standard") and ``augment_flip`` transform the training images
    (image backbones only, see :func:`can_augment`; the validation split is never augmented)."""
    progress(Progress(stage, 0, config.epochs, "preparing inputs"))
    task = ClassifyTask(model, train_items, train_y, val_items=val_items, val_y=val_y, batch_size=config.batch_size,
                        precise_bn=not config.freeze_bn, augment=augment, flip=augment_flip, seed=config.seed)
    return Trainer(model, task, config, train_modules=train_modules, param_groups=param_groups,
                   checkpoint_dir=checkpoint_dir, stage=stage, progress=progress, should_cancel=should_cancel
                   ).fit(resume=resume)
