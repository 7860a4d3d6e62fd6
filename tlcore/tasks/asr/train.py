"""Speech recognition as a task of the one trainer (:mod:`tlcore.training.trainer`): the model's own loss
(Whisper's token cross-entropy; a CTC model's CTC loss, with its clips from :class:`tlcore.tasks.asr.ctc.CtcClips`),
early stopping on that loss over a validation split of the *training* data (never the eval split).

Whisper's inputs are prepared once: log-mel windows, or, when the encoder is frozen, the encoder's outputs themselves
(then each step runs only the decoder: several times faster on CPU).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Protocol, Sequence

import torch
from torch import nn

from tlcore.device import module_device, my_batch_starts, sum_over_processes, to_device
from tlcore.progress import CancelFn, ProgressFn, never_cancel, no_progress
from tlcore.tasks.asr.model import decoder_batch
from tlcore.training.trainer import TrainConfig, Trainer, TrainResult


class Batches(Protocol):
    """Training data the loss is computed on: its items, and the model's keyword inputs of some of them."""

    def __len__(self) -> int: ...

    def batch(self, idx: Sequence[int]) -> dict[str, Any]: ...


class Utterances:
    """Model inputs (``input_features`` or ``encoder_outputs``) and target token ids, batched by index."""

    def __init__(self, inputs: torch.Tensor, targets: Sequence[Sequence[int]], *, encoded: bool,
                 prompt: Sequence[int], eot: int):
        self.inputs, self.targets, self.encoded = inputs, list(targets), encoded
        self.prompt, self.eot = list(prompt), eot

    def __len__(self) -> int:
        return len(self.targets)

    def batch(self, idx: Sequence[int]) -> dict[str, Any]:
        decoder_input_ids, labels = decoder_batch([self.targets[i] for i in idx], self.prompt, self.eot)
        x = self.inputs[torch.as_tensor(list(idx))]
        key = {"encoder_outputs": (x,)} if self.encoded else {"input_features": x}
        return {**key, "decoder_input_ids": decoder_input_ids, "labels": labels}


@torch.no_grad()
def encoder_states(whisper: nn.Module, features: torch.Tensor, *, batch_size: int = 16) -> torch.Tensor:
    """The (frozen) encoder's last hidden states for log-mel ``features``: ``(n, positions, d_model)``."""
    encoder = whisper.model.encoder
    encoder.eval()
    parts = [encoder(input_features=features[i:i + batch_size]).last_hidden_state
             for i in range(0, len(features), batch_size)]
    return torch.cat(parts) if parts else torch.zeros(0)


class Seq2SeqTask:
    """The model's loss on a batch (``data.batch(idx)`` holds its ``labels``, -100 where nothing is scored), weighted
    by the scored tokens; score = − validation loss."""

    def __init__(self, model: nn.Module, train: Batches, val: Optional[Batches], batch_size: int):
        self.model, self.train, self.val, self.batch_size = model, train, val, batch_size

    def __len__(self) -> int:
        return len(self.train)

    def _loss(self, data: Batches, idx: Sequence[int]) -> tuple[torch.Tensor, float]:
        batch = to_device(data.batch(idx), module_device(self.model))
        return self.model(**batch).loss.float(), float((batch["labels"] != -100).sum())

    def loss(self, idx: Sequence[int], state) -> tuple[torch.Tensor, float]:
        return self._loss(self.train, idx)

    @torch.no_grad()
    def validate(self) -> Optional[dict]:
        if self.val is None or not len(self.val):
            return None
        self.model.eval()
        total, count, bs = 0.0, 0.0, 2 * self.batch_size
        for start in my_batch_starts(len(self.val), bs):   # the processes of a multi-process run split the split
            loss, n = self._loss(self.val, range(start, min(start + bs, len(self.val))))
            total += loss.item() * n
            count += n
        total, count = sum_over_processes([total, count], module_device(self.model))
        val_loss = total / max(count, 1.0)
        return {"score": -val_loss, "val_loss": val_loss}


def train_asr(model: nn.Module, train: Batches, val: Optional[Batches], *, config: TrainConfig,
              train_modules: Sequence[nn.Module] = (), checkpoint_dir: Optional[Path] = None, resume: bool = False,
              stage: str = "train", progress: ProgressFn = no_progress,
              should_cancel: CancelFn = never_cancel) -> TrainResult:
    """Train the parameters of ``model`` that have ``requires_grad`` (all at ``config.lr``) on ``train``; restore the
    best epoch at the end (lowest validation token loss; by training loss when there is no validation split)."""
    params = [p for p in model.parameters() if p.requires_grad]
    return Trainer(model, Seq2SeqTask(model, train, val, config.batch_size), config, train_modules=train_modules,
                   param_groups=[{"params": params, "lr": config.lr}], checkpoint_dir=checkpoint_dir, stage=stage,
                   progress=progress, should_cancel=should_cancel).fit(resume=resume)
