"""Model inputs addressable by index for training loops (:class:`BatchSource`): images and audio decoded once (or
batch by batch when a set is too large to keep, or its inputs differ in length), text tokenized per batch, image
batches augmented on a private generator seeded from (seed, step). Used by every task's trainer and by end-to-end
domain adaptation (:mod:`tlcore.adaptation.backbone`)."""

from __future__ import annotations

import os
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch
from torch import nn

from tlcore.device import current, module_device, small_problem_threads, to_device
from tlcore.models.base import private_rng
from tlcore.training.loading import mapped_loader


def can_augment(backbone: nn.Module) -> bool:
    """Whether training inputs of ``backbone`` can be augmented: an image backbone with the ``pixels`` /
    ``normalize`` split of :mod:`tlcore.models.image`. Text and audio backbones cannot (their runs ignore
    the augmentation setting and report "none")."""
    return getattr(backbone, "modality", "") == "image" and hasattr(backbone, "pixels") and hasattr(backbone, "normalize")


def augment_seed(seed: int, step: int) -> int:
    """The generator seed of the batch at optimizer step ``step`` of a run seeded ``seed``."""
    return int(np.random.SeedSequence([int(seed), int(step)]).generate_state(1)[0])


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
                with private_rng(augment_seed), small_problem_threads():
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
