"""The sequence-to-sequence training loop for Whisper (mirrors :mod:`tlcore.training.loop`): AdamW with warm-up
and linear decay, early stopping on the token loss of a validation split of the *training* data (never the eval
split), safetensors checkpoints every epoch, cancellation (``Cancelled``) and resume.

Inputs are prepared once: log-mel windows, or, when the encoder is frozen, the encoder's outputs themselves
(then each step runs only the decoder: several times faster on CPU).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch
from torch import nn

from tlcore.errors import Cancelled
from tlcore.progress import CancelFn, Progress, ProgressFn, never_cancel, no_progress
from tlcore.tasks.asr_model import decoder_batch
from tlcore.training.loop import _save_checkpoint, _trainable_state, load_checkpoint, warmup_linear_schedule


@dataclass
class AsrTrainConfig:
    epochs: int = 5
    batch_size: int = 8
    lr: float = 1e-4
    weight_decay: float = 0.01
    patience: int = 3
    seed: int = 0
    grad_clip: float = 1.0
    warmup_frac: float = 0.1


@dataclass
class AsrTrainResult:
    epochs_run: int
    best_epoch: int
    best_val_loss: Optional[float]
    history: list[dict] = field(default_factory=list)
    stopped_early: bool = False
    resumed_from_epoch: int = 0
    train_seconds: float = 0.0


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


def _token_loss(model: nn.Module, batch: dict) -> tuple[torch.Tensor, int]:
    """Mean cross-entropy over scored tokens, and their count."""
    out = model(**batch)
    return out.loss, int((batch["labels"] != -100).sum())


@torch.no_grad()
def _val_loss(model: nn.Module, data: Utterances, batch_size: int) -> float:
    model.eval()
    total, count = 0.0, 0
    for start in range(0, len(data), batch_size):
        loss, n = _token_loss(model, data.batch(range(start, min(start + batch_size, len(data)))))
        total += loss.item() * n
        count += n
    return total / max(count, 1)


def train_asr(model: nn.Module, train: Utterances, val: Optional[Utterances], *, config: AsrTrainConfig,
              train_modules: Sequence[nn.Module] = (), checkpoint_dir: Optional[Path] = None, resume: bool = False,
              stage: str = "train", progress: ProgressFn = no_progress,
              should_cancel: CancelFn = never_cancel) -> AsrTrainResult:
    """Train the parameters of ``model`` that have ``requires_grad`` on ``train``; restore the best epoch at the end
    (lowest validation token loss; the last epoch when there is no validation split)."""
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    steps_per_epoch = max(1, math.ceil(len(train) / config.batch_size))
    total_steps = steps_per_epoch * config.epochs
    scheduler = warmup_linear_schedule(optimizer, total_steps, config.warmup_frac)
    result = AsrTrainResult(0, 0, None)
    best_state: Optional[dict] = None
    best_score = -math.inf
    start_epoch = 0
    resumed = load_checkpoint(checkpoint_dir, model, optimizer, scheduler) if resume else None
    if resumed is not None:
        start_epoch, best_score, best_state = resumed.epoch, resumed.best_score, resumed.best_state
        result = AsrTrainResult(**{**resumed.result, "resumed_from_epoch": start_epoch})
        rng = np.random.default_rng([config.seed, start_epoch])
    bad_epochs = result.epochs_run - result.best_epoch if result.history else 0
    t0 = time.time()
    for epoch in range(start_epoch, config.epochs):
        model.eval()
        for module in train_modules:
            module.train()
        order = rng.permutation(len(train))
        loss_sum, tokens, ep_t0 = 0.0, 0, time.time()
        for step in range(steps_per_epoch):
            if should_cancel():
                raise Cancelled(f"cancelled in epoch {epoch + 1}")
            idx = order[step * config.batch_size:(step + 1) * config.batch_size].tolist()
            if not idx:
                continue
            loss, n = _token_loss(model, train.batch(idx))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
            optimizer.step()
            scheduler.step()
            loss_sum += loss.item() * n
            tokens += n
            done = epoch * steps_per_epoch + step + 1
            per_step = (time.time() - t0) / max(done - start_epoch * steps_per_epoch, 1)
            progress(Progress(stage, done, total_steps, f"epoch {epoch + 1}/{config.epochs}",
                              metrics={"epoch": epoch + 1, "batch_loss": round(loss.item(), 4)},
                              eta_s=per_step * (total_steps - done)))
        row: dict[str, Any] = {"epoch": epoch + 1, "train_loss": loss_sum / max(tokens, 1),
                               "seconds": round(time.time() - ep_t0, 3)}
        if val is not None and len(val):
            row["val_loss"] = _val_loss(model, val, config.batch_size * 2)
            score = -row["val_loss"]
        else:
            score = -row["train_loss"]
        result.history.append(row)
        result.epochs_run = epoch + 1
        if score > best_score:
            best_score, result.best_epoch, bad_epochs = score, epoch + 1, 0
            result.best_val_loss = row.get("val_loss")
            best_state = _trainable_state(model)
        else:
            bad_epochs += 1
        progress(Progress(stage, (epoch + 1) * steps_per_epoch, total_steps, f"epoch {epoch + 1} done", metrics=row))
        if checkpoint_dir is not None:
            _save_checkpoint(checkpoint_dir, model, optimizer, scheduler, best_state, epoch + 1, best_score, result)
        if val is not None and len(val) and bad_epochs >= config.patience:
            result.stopped_early = True
            break
    if best_state is not None:
        model.load_state_dict(best_state, strict=False)
    result.train_seconds = time.time() - t0
    model.eval()
    return result
