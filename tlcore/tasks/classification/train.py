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

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence

import numpy as np
import torch
from torch import nn

from tlcore.device import module_device, my_batch_starts, sum_over_processes, to_device
from tlcore.models.base import private_rng
from tlcore.progress import CancelFn, Progress, ProgressFn, never_cancel, no_progress
from tlcore.training.trainer import TrainConfig, Trainer, TrainResult, batchnorms


def can_augment(backbone: nn.Module) -> bool:
    """Whether training inputs of ``backbone`` can be augmented: an image backbone with the ``pixels`` /
    ``normalize`` split of :mod:`tlcore.models.image`. Text and audio backbones cannot (their runs ignore
    the augmentation setting and report "none")."""
    return getattr(backbone, "modality", "") == "image" and hasattr(backbone, "pixels") and hasattr(backbone, "normalize")


def augment_seed(seed: int, step: int) -> int:
    """The generator seed of the batch at optimizer step ``step`` of a run seeded ``seed``."""
    return int(np.random.SeedSequence([int(seed), int(step)]).generate_state(1)[0])


@contextmanager
def _one_thread() -> Iterator[None]:
    # Augmenting one small image at a time: intra-op threads add nothing, and on a busy machine their
    # synchronisation made a batch of 16 take ~2 s instead of ~35 ms (measured on the 2-core CI machine).
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def decode_cache_bytes() -> int:
    """How many bytes of decoded training inputs a run keeps in memory (``TRANSFERLAB_DECODE_CACHE_MB``, default
    256); a larger set is decoded batch by batch instead."""
    try:
        mb = float(os.environ.get("TRANSFERLAB_DECODE_CACHE_MB", "256"))
    except ValueError:
        mb = 256.0
    return int(max(mb, 0.0) * 2**20)


def decode(fn: Callable[[Sequence[Any]], Any], chunks: Sequence[Sequence[Any]]):
    """``fn(chunk)`` for each chunk, in order, decoded in the run's DataLoader workers (see
    :mod:`tlcore.training.loading`); in this process when it has none."""
    from tlcore.device import current
    from tlcore.training.loading import mapped_loader

    return mapped_loader(fn, chunks, current())


class BatchSource:
    """Preprocessed inputs addressable by index. Images/audio are decoded once; text is tokenized per batch
    (so padding fits the batch). With an ``augment`` level other than "none" (or ``flip``) and a backbone that
    :func:`can_augment`, the un-normalized pixels are kept instead, and ``get(idx, augment_seed=s)`` augments them
    one image at a time before the backbone's normalization; ``self.augment`` is that transform, else None."""

    def __init__(self, backbone: nn.Module, items: Sequence[Any], *, chunk: int = 64, augment: str = "none",
                 flip: bool = False, cache_bytes: Optional[int] = None):
        self.backbone = backbone
        self.items = list(items)
        self.cached: Optional[dict[str, torch.Tensor]] = None
        self.augment: Optional[Callable] = None
        self.lazy = False             # decoded batch by batch (in the DataLoader) instead of kept in memory
        chunks = [self.items[i:i + chunk] for i in range(0, len(self.items), chunk)]
        if backbone.modality == "text" or not chunks:
            return
        augmenting = (augment != "none" or flip) and can_augment(backbone)
        fn = backbone.pixels if augmenting else backbone.preprocess
        first = fn(chunks[0])
        parts = [first if isinstance(first, dict) else {"pixels": first}]
        per_item = sum(v.element_size() * v.nelement() for v in parts[0].values()) / len(chunks[0])
        budget = decode_cache_bytes() if cache_bytes is None else cache_bytes
        if augmenting:
            from tlcore.models.image import image_augmentation

            self.augment = image_augmentation(augment, tuple(parts[0]["pixels"].shape[-2:]), flip=flip)
        if per_item * len(self.items) > budget:
            # A large set: keeping every decoded item would grow memory with the data (50,000 images at 128 px are
            # 9.8 GB of float pixels); decode each batch when it is needed instead — same values, flat memory.
            self.lazy = True
            return
        parts += [p if isinstance(p, dict) else {"pixels": p} for p in decode(fn, chunks[1:])]
        if any(p[k].shape[1:] != parts[0][k].shape[1:] for p in parts for k in parts[0]):
            # Inputs padded per chunk to different lengths (raw waveforms of wav2vec2-style encoders, any
            # variable-length input): one cache would need one length, so each batch is preprocessed — and padded,
            # with its attention mask — when it is drawn, as text is.
            self.lazy = True
            return
        self.cached = {k: torch.cat([p[k] for p in parts]) for k in parts[0]}

    def __len__(self) -> int:
        return len(self.items)

    def get(self, idx: Sequence[int], *, augment_seed: Optional[int] = None) -> dict[str, torch.Tensor]:
        """The model inputs of items ``idx``: augmented from generator ``augment_seed`` when this source augments
        and a seed is given, else plain (exactly what ``preprocess`` gives)."""
        if self.augment is not None:
            pixels = (self.backbone.pixels([self.items[i] for i in idx]) if self.lazy
                      else self.cached["pixels"][torch.as_tensor(list(idx))])
            if augment_seed is not None:
                with private_rng(augment_seed), _one_thread():
                    pixels = torch.stack([self.augment(p) for p in pixels])
            return {"pixel_values": self.backbone.normalize(pixels)}
        if self.cached is not None:
            ix = torch.as_tensor(list(idx))
            return {k: v[ix] for k, v in self.cached.items()}
        return self.backbone.preprocess([self.items[i] for i in idx])

    def batches(self, batch_size: int):
        """Plain inputs of every item in order, on the backbone's device (for precise BatchNorm)."""
        device = module_device(self.backbone)
        for start in range(0, len(self), batch_size):
            yield to_device(self.get(range(start, min(start + batch_size, len(self)))), device)


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
