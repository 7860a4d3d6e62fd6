"""What the speech recognition job asks of a kind of model: one :class:`Recognizer` subclass per kind — Whisper
(:mod:`tlcore.tasks.asr.whisper`), an encoder with a CTC head (:mod:`tlcore.tasks.asr.ctc`) — registered in
:mod:`tlcore.tasks.asr.kinds`, which picks the kind from the model's config.

The job (:class:`tlcore.tasks.asr.pipeline.Job`) owns the data, the splits, the scores and the report; a recognizer
owns its model and processor: how it is loaded, how the clips become model inputs (once per run), how it transcribes,
how each strategy trains it and how it is saved. Both kinds are scored by the same metrics code on the same splits.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar, Optional, Sequence

import numpy as np

from tlcore.progress import CancelFn
from tlcore.tasks.asr.data import AsrData
from tlcore.tasks.job import RunContext
from tlcore.training.trainer import TrainConfig, TrainResult

MAX_SECONDS = 30.0   # clips are cut to their first 30 s (Whisper's whole window; a CTC model gets the same cut)


class Recognizer(ABC):
    """A loaded speech recognizer (``model`` and ``processor``) and the inputs it prepared for a run's sets.

    Class attributes are the kind's facts: ``kind`` (saved in ``model/asr.json``), ``title`` (in messages),
    ``strategies`` it can train (a subset of the task's) with ``strategy_help`` and default ``lrs``, ``before_kind``
    (what "before" is, in the report), ``refusals`` (why a strategy of the task does not apply to this kind)."""

    kind: ClassVar[str] = ""
    title: ClassVar[str] = ""
    strategies: ClassVar[tuple[str, ...]] = ()
    strategy_help: ClassVar[dict[str, str]] = {}
    lrs: ClassVar[dict[str, float]] = {}
    before_kind: ClassVar[str] = ""
    refusals: ClassVar[dict[str, str]] = {}

    def __init__(self, model: Any, processor: Any):
        self.model, self.processor = model, processor
        self.sets: dict[str, AsrData] = {}

    @staticmethod
    @abstractmethod
    def matches(config: dict) -> bool:
        """Is a model with this ``config.json`` (as a dict) of this kind?"""

    @classmethod
    @abstractmethod
    def load(cls, source: Path | str) -> "Recognizer":
        """The pretrained recognizer in ``source`` (a folder or a hub id), in eval mode."""

    @property
    @abstractmethod
    def sample_rate(self) -> int:
        """The rate its processor expects audio at."""

    @abstractmethod
    def prepare(self, sets: dict[str, AsrData], longest: float) -> None:
        """Turn the clips of ``sets`` (``fit``, ``val``, ``eval`` and maybe ``source``) into model inputs, once;
        ``longest``: the longest clip in seconds (clips are cut to ``MAX_SECONDS``)."""

    @abstractmethod
    def transcribe(self, name: str, *, should_cancel: Optional[CancelFn] = None) -> list[str]:
        """Greedy transcripts of the prepared set ``name`` with the model as it is now."""

    @abstractmethod
    def train(self, ctx: RunContext, config: TrainConfig) -> tuple[TrainResult, dict]:
        """Fine-tune on the prepared ``fit`` set with ``ctx.cfg.strategy`` (early stopping on ``val`` when it has
        clips); afterwards the model is the adapted one, frozen, in eval mode. Returns the trainer's result and the
        kind's own keys of the report's ``training`` (``strategy_help``, ``trainable_params``, ...)."""

    @abstractmethod
    def transcribe_waves(self, waves: Sequence[np.ndarray], *, batch_size: int = 16) -> list[str]:
        """Greedy transcripts of new clips (mono, at :attr:`sample_rate`; cut to ``MAX_SECONDS``): ``predict``."""

    @abstractmethod
    def save(self, folder: Path) -> None:
        """Write the model and its processor as a standard ``save_pretrained`` folder."""

    def report(self) -> dict:
        """The kind's own report keys (Whisper: its encoder window)."""
        return {}


def trainable_params(model: Any) -> int:
    return int(sum(p.numel() for p in model.parameters() if p.requires_grad))
