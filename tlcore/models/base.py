"""The backbone contract: a feature extractor that carries its own preprocessing.

Every backbone, whatever its modality, is an ``nn.Module`` that

* turns raw items into tensors with ``preprocess(items)`` (image paths / PIL images, text strings,
  audio paths / ``(waveform, sample_rate)`` pairs),
* maps those tensors to one pooled feature vector per item with ``forward(**batch) -> (B, feature_dim)``,
* lists its blocks bottom→top in ``blocks()`` (``partial`` unfreezes the top k) and the linear layers that
  LoRA adapts in ``lora_target_modules``,
* saves and restores itself (architecture config + processor) so a run folder is self-contained.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import torch
from torch import nn


@contextmanager
def private_rng(seed: int | None = None) -> Iterator[None]:
    """Run a block on a private copy of torch's CPU RNG: the caller's global RNG state is restored afterwards.

    With ``seed`` the block starts from that seed, so whatever it initialises is a deterministic function of
    ``seed``; without, it draws from a copy of the caller's current state. Only the CPU generator is seeded
    (models are built on the CPU), so CUDA RNG state is never touched.
    """
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.default_generator.manual_seed(int(seed))
        yield


class Backbone(nn.Module):
    modality: str = ""
    feature_dim: int = 0
    lora_target_modules: list[str] = []

    def preprocess(self, items: Sequence[Any]) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def forward(self, **batch: torch.Tensor) -> torch.Tensor:  # (B, feature_dim)
        raise NotImplementedError

    def blocks(self) -> list[nn.Module]:
        raise NotImplementedError

    def save_backbone(self, folder: Path) -> dict:
        """Write what is needed to rebuild the architecture + preprocessing into ``folder``; return a JSON-able spec."""
        raise NotImplementedError


@dataclass
class BackboneSpec:
    """A registry entry. ``build(pretrained)`` returns a Backbone; ``pretrained=False`` is the random-init twin.

    ``build`` draws any random initialisation from torch's global RNG: ``build_backbone`` calls it inside
    :func:`private_rng` (seeded with the run's seed for the twin), so builders must not reseed it themselves.
    """

    name: str
    modality: str
    description: str
    build: Callable[[bool], Backbone]
    weights: str = ""            # where the pretrained weights come from, and their license
    feature_dim: int = 0
    params_m: float = 0.0
    tiny: bool = False           # tiny random backbones are for tests only
    extra: dict = field(default_factory=dict)
