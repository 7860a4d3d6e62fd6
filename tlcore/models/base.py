"""The backbone contract: a feature extractor that carries its own preprocessing.

Every backbone, whatever its modality, is an ``nn.Module`` that

* turns raw items into tensors with ``preprocess(items)`` (image paths / PIL images, text strings,
  audio paths / ``(waveform, sample_rate)`` pairs),
* maps those tensors to one pooled feature vector per item with ``forward(**batch) -> (B, feature_dim)``,
* lists its blocks bottom→top in ``blocks()`` (``partial`` unfreezes the top k) and the linear layers that
  LoRA adapts in ``lora_target_modules``,
* saves and restores itself (architecture config + processor) so a run folder is self-contained,
* declares its preprocessing as data, in the spirit of timm's ``PretrainedCfg``: ``preprocessing()`` is a JSON-able
  dict (image: input size, resize / interpolation, crop, mean / std, colour; text: tokenizer, ``max_length``,
  padding / truncation; audio: sample rate, feature extractor, window / padding) saved as ``preprocessing.json`` in a
  model folder; ``use_preprocessing(config)`` reads it back, and ``preprocessor(folder, config)`` rebuilds the same
  preprocessing without the network (what an ONNX export runs).

A preprocessing config names its backbone ``kind`` (the ``backbone_spec["kind"]`` of a saved model). Keys a config
lacks keep the backbone's current values, so an older, shorter config (an export's ``attrs``) still reads.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence

import torch
from torch import nn

from tlcore.errors import ConfigError

#: A backbone's preprocessing as a function: raw items -> the input tensors of ``forward``.
Preprocess = Callable[[Sequence[Any]], dict[str, torch.Tensor]]
#: The file of a model folder that holds its backbone's ``preprocessing()``.
PREPROCESSING_FILE = "preprocessing.json"


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


def check_preprocessing(config: dict, kind: str, fixed: dict[str, Any]) -> None:
    """Refuse a preprocessing config for another backbone kind, or one that changes a fact TransferLab's preprocessing
    of ``kind`` cannot change (``fixed``: key -> the only value it supports)."""
    if config.get("kind", kind) != kind:
        raise ConfigError(f"{PREPROCESSING_FILE} describes a {config['kind']!r} backbone, but the saved model's backbone "
                          f"is {kind!r}; restore the file the model was saved with")
    for key, value in fixed.items():
        if key in config and config[key] != value:
            raise ConfigError(f"{PREPROCESSING_FILE}: {key} {config[key]!r} is not supported by the {kind} backbone "
                              f"(only {value!r})")


class Backbone(nn.Module):
    kind: str = ""                 # how a saved model names its class (``backbone_spec["kind"]``)
    modality: str = ""
    feature_dim: int = 0
    lora_target_modules: list[str] = []

    def preprocess(self, items: Sequence[Any]) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def forward(self, **batch: torch.Tensor) -> torch.Tensor:  # (B, feature_dim)
        raise NotImplementedError

    def input_length(self, item: Any) -> Optional[int]:
        """A cheap estimate of how long ``item``'s padded input is, for batching items of similar length together
        where padding is per batch and masked (feature extraction); None: every input has the same size."""
        return None

    def blocks(self) -> list[nn.Module]:
        raise NotImplementedError

    def save_backbone(self, folder: Path) -> dict:
        """Write what is needed to rebuild the architecture + preprocessing into ``folder``; return a JSON-able spec."""
        raise NotImplementedError

    @classmethod
    def from_folder(cls, folder: Path, spec: dict) -> "Backbone":
        """Rebuild the architecture and processor :meth:`save_backbone` wrote (``spec``: what it returned)."""
        raise NotImplementedError

    def save_processor(self, folder: Path) -> None:
        """Write the processor / tokenizer / feature extractor files the preprocessing reads (none by default)."""

    def preprocessing(self) -> dict:
        """This backbone's preprocessing as JSON-able data (``kind``, ``modality`` and the kind's facts)."""
        raise NotImplementedError

    def use_preprocessing(self, config: dict) -> None:
        """Read back a config written by :meth:`preprocessing` (keys it lacks keep their values); ConfigError for a
        config of another kind or a value this backbone cannot use."""
        raise NotImplementedError

    @classmethod
    def preprocessor(cls, folder: Path, config: dict) -> Preprocess:
        """The preprocessing alone, from the processor files in ``folder`` (:meth:`save_processor`) and ``config``."""
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
    # For a Hugging Face Hub model card (tlcore.inference.hub_export): the pretrained weights' license as a Hub
    # license id ("apache-2.0", "mit"; "" when unknown), and the Hub model they were converted from ("" when none).
    license: str = ""
    upstream: str = ""
