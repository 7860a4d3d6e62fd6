"""A small training loop (minGPT-style): AdamW, mini-batches of raw items, early stopping on a validation split
of the *training* data, safetensors checkpoints every epoch, cancellation and resume.

Progress and control go through plain callables (``progress``, ``should_cancel``), never prints.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from tlcore.errors import Cancelled
from tlcore.progress import CancelFn, Progress, ProgressFn, never_cancel, no_progress


@dataclass
class TrainConfig:
    epochs: int = 10
    batch_size: int = 16
    lr: float = 1e-4
    head_lr: float = 1e-3
    weight_decay: float = 0.01
    patience: int = 3
    seed: int = 0
    grad_clip: float = 1.0
    warmup_frac: float = 0.1
    # Pretrained BatchNorm statistics stay fixed (batch statistics of 16 small-data items would shift every
    # feature the head was fit on). Training from scratch must learn them: then the running statistics are
    # re-estimated over the whole training set after each epoch ("precise BN"), because a few dozen
    # momentum updates leave them far from the statistics the weights now produce.
    freeze_bn: bool = True


@dataclass
class TrainResult:
    epochs_run: int
    best_epoch: int
    best_val_accuracy: Optional[float]
    history: list[dict] = field(default_factory=list)
    stopped_early: bool = False
    resumed_from_epoch: int = 0
    train_seconds: float = 0.0


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

    def get(self, idx: Sequence[int]) -> dict[str, torch.Tensor]:
        if self.cached is not None:
            ix = torch.as_tensor(list(idx))
            return {k: v[ix] for k, v in self.cached.items()}
        return self.backbone.preprocess([self.items[i] for i in idx])


def warmup_linear_schedule(optimizer: torch.optim.Optimizer, total_steps: int, warmup_frac: float):
    """Linear warm-up over ``warmup_frac`` of the steps, then linear decay to zero."""
    warmup = max(1, int(warmup_frac * total_steps))
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup) * max(0.0, (total_steps - s) / max(1, total_steps - warmup)))


@dataclass
class Resumed:
    """What :func:`load_checkpoint` restored besides the model, optimizer and scheduler state."""

    epoch: int
    best_score: float
    result: dict                  # the saved result dataclass, as a dict
    best_state: Optional[dict]


def load_checkpoint(checkpoint_dir: Optional[Path], model: nn.Module, optimizer, scheduler) -> Optional[Resumed]:
    """Restore the last checkpoint written by :func:`_save_checkpoint` into model/optimizer/scheduler, if any."""
    if checkpoint_dir is None or not (checkpoint_dir / "state.json").exists():
        return None
    state = json.loads((checkpoint_dir / "state.json").read_text())
    model.load_state_dict(load_file(str(checkpoint_dir / "last.safetensors")), strict=False)
    saved = torch.load(checkpoint_dir / "optimizer.pt", weights_only=True)
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    best = load_file(str(checkpoint_dir / "best.safetensors")) if (checkpoint_dir / "best.safetensors").exists() else None
    best_score = state["best_score"] if state["best_score"] is not None else -math.inf
    return Resumed(state["epoch"], best_score, state["result"], best)


def _batchnorms(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def _precise_bn(model: nn.Module, source: "BatchSource", n: int, batch_size: int) -> None:
    """Re-estimate BatchNorm running statistics over the training set (cumulative average)."""
    from tlcore.adaptation import adabn

    batches = (source.get(range(i, min(i + batch_size, n))) for i in range(0, n, batch_size))
    adabn(model.backbone, batches)


def _trainable_state(model: nn.Module) -> dict[str, torch.Tensor]:
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    return {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()
            if k in names or "running_" in k or "num_batches_tracked" in k}


@torch.no_grad()
def _accuracy(model: nn.Module, source: BatchSource, y: torch.Tensor, batch_size: int) -> tuple[float, float]:
    model.eval()
    correct, loss_sum = 0, 0.0
    for start in range(0, len(y), batch_size):
        idx = list(range(start, min(start + batch_size, len(y))))
        logits = model(**source.get(idx))
        loss_sum += nn.functional.cross_entropy(logits, y[idx], reduction="sum").item()
        correct += (logits.argmax(1) == y[idx]).sum().item()
    return correct / max(len(y), 1), loss_sum / max(len(y), 1)


def train_classifier(model: nn.Module, train_items: Sequence[Any], train_y: Sequence[int], *,
                     val_items: Sequence[Any] = (), val_y: Sequence[int] = (), config: TrainConfig,
                     train_modules: Sequence[nn.Module] = (), checkpoint_dir: Optional[Path] = None,
                     resume: bool = False, stage: str = "train", progress: ProgressFn = no_progress,
                     should_cancel: CancelFn = never_cancel) -> TrainResult:
    """Train the parameters of ``model`` that have ``requires_grad``; ``model.head`` gets ``head_lr``.

    ``train_modules`` are put in train mode each epoch (the rest stays in eval mode, so frozen BatchNorm
    statistics and dropout stay fixed). The best epoch on the validation split is restored at the end.
    """
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    y = torch.as_tensor(list(train_y), dtype=torch.long)
    vy = torch.as_tensor(list(val_y), dtype=torch.long)
    progress(Progress(stage, 0, config.epochs, "preparing inputs"))
    src, vsrc = BatchSource(model.backbone, train_items), BatchSource(model.backbone, val_items)
    head_params = [p for p in model.head.parameters() if p.requires_grad]
    head_ids = {id(p) for p in head_params}
    body_params = [p for p in model.parameters() if p.requires_grad and id(p) not in head_ids]
    groups = [{"params": head_params, "lr": config.head_lr}]
    if body_params:
        groups.append({"params": body_params, "lr": config.lr})
    optimizer = torch.optim.AdamW(groups, weight_decay=config.weight_decay)
    steps_per_epoch = max(1, math.ceil(len(y) / config.batch_size))
    total_steps = steps_per_epoch * config.epochs
    scheduler = warmup_linear_schedule(optimizer, total_steps, config.warmup_frac)

    result = TrainResult(0, 0, None)
    best_state: Optional[dict] = None
    best_score = -math.inf
    start_epoch = 0
    resumed = load_checkpoint(checkpoint_dir, model, optimizer, scheduler) if resume else None
    if resumed is not None:
        start_epoch, best_score, best_state = resumed.epoch, resumed.best_score, resumed.best_state
        result = TrainResult(**{**resumed.result, "resumed_from_epoch": start_epoch})
        rng = np.random.default_rng([config.seed, start_epoch])
    t0 = time.time()
    bad_epochs = result.epochs_run - result.best_epoch if result.history else 0
    for epoch in range(start_epoch, config.epochs):
        model.eval()
        for module in train_modules:
            module.train()
        if config.freeze_bn:
            for module in _batchnorms(model):
                module.eval()
        order = rng.permutation(len(y))
        loss_sum, seen, ep_t0 = 0.0, 0, time.time()
        for step in range(steps_per_epoch):
            if should_cancel():
                raise Cancelled(f"cancelled in epoch {epoch + 1}")
            idx = order[step * config.batch_size:(step + 1) * config.batch_size].tolist()
            if not idx:
                continue
            logits = model(**src.get(idx))
            loss = nn.functional.cross_entropy(logits, y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_([p for g in groups for p in g["params"]], config.grad_clip)
            optimizer.step()
            scheduler.step()
            loss_sum += loss.item() * len(idx)
            seen += len(idx)
            done = epoch * steps_per_epoch + step + 1
            elapsed = time.time() - t0
            per_step = elapsed / max(done - start_epoch * steps_per_epoch, 1)
            progress(Progress(stage, done, total_steps, f"epoch {epoch + 1}/{config.epochs}",
                              metrics={"epoch": epoch + 1, "batch_loss": round(loss.item(), 4)},
                              eta_s=per_step * (total_steps - done)))
        if not config.freeze_bn and _batchnorms(model):
            _precise_bn(model, src, len(y), config.batch_size)
        row: dict[str, Any] = {"epoch": epoch + 1, "train_loss": loss_sum / max(seen, 1), "seconds": time.time() - ep_t0}
        if len(vy):
            row["val_accuracy"], row["val_loss"] = _accuracy(model, vsrc, vy, config.batch_size * 2)
            score = row["val_accuracy"] - 1e-3 * row["val_loss"]   # accuracy first, loss breaks ties
        else:
            score = -row["train_loss"]
        result.history.append(row)
        result.epochs_run = epoch + 1
        if score > best_score:
            best_score, result.best_epoch, bad_epochs = score, epoch + 1, 0
            result.best_val_accuracy = row.get("val_accuracy")
            best_state = _trainable_state(model)
        else:
            bad_epochs += 1
        progress(Progress(stage, (epoch + 1) * steps_per_epoch, total_steps, f"epoch {epoch + 1} done", metrics=row))
        if checkpoint_dir is not None:
            _save_checkpoint(checkpoint_dir, model, optimizer, scheduler, best_state, epoch + 1, best_score, result)
        if len(vy) and bad_epochs >= config.patience:
            result.stopped_early = True
            break
    if best_state is not None:
        model.load_state_dict(best_state, strict=False)
    result.train_seconds = time.time() - t0
    model.eval()
    return result


def _save_checkpoint(folder: Path, model: nn.Module, optimizer, scheduler, best_state, epoch: int,
                     best_score: float, result: TrainResult) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    save_file(_trainable_state(model), str(folder / "last.safetensors.tmp"))
    (folder / "last.safetensors.tmp").replace(folder / "last.safetensors")
    if best_state is not None:
        save_file(best_state, str(folder / "best.safetensors.tmp"))
        (folder / "best.safetensors.tmp").replace(folder / "best.safetensors")
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}, folder / "optimizer.pt")
    state = {"epoch": epoch, "best_score": best_score if math.isfinite(best_score) else None, "result": asdict(result)}
    (folder / "state.json.tmp").write_text(json.dumps(state))
    (folder / "state.json.tmp").replace(folder / "state.json")
