"""The one training loop of TransferLab (minGPT-style), used by every task and setting.

A task says only what differs, through :class:`TrainTask`: how many training items there are, the loss of a
batch of them, the validation score, and (optionally) its own parameter groups and an end-of-epoch step.
Classification, NER, speech recognition, the scratch baseline and domain adaptation are all such tasks.
Everything else lives here once: AdamW (or Adam) with warm-up + linear or cosine decay, gradient clipping, epochs
over a seeded permutation, keeping the best epoch by the validation score, early stopping, safetensors checkpoints
every epoch and resume, cancellation and progress. The last four are callbacks (:mod:`tlcore.training.callbacks`)
that read a :class:`TrainState` and set :class:`TrainControl` flags, as in transformers' ``TrainerCallback``.

Validation: the task's ``validate()`` returns a dict with ``score`` (higher is better, e.g. accuracy minus a small
loss tie-breaker, entity F1, or minus the token loss) plus whatever it wants in the history row; ``None`` when it
has no validation split: then the training loss decides and early stopping is off (nothing to stop on).
An epoch counts as better when its score exceeds the best one (``TrainConfig.min_delta`` above it).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Protocol, Sequence

import numpy as np
import torch
from torch import nn

from tlcore.device import broadcast_object, is_main_process, rank, sum_over_processes, world_size
from tlcore.device import current as current_runtime
from tlcore.progress import CancelFn, ProgressFn, never_cancel, no_progress
from tlcore.training.checkpoint import Resumed, load_checkpoint, restore_rng, trainable_state
from tlcore.training.loading import batches, sync_gradients


@dataclass
class TrainConfig:
    epochs: int = 10
    batch_size: int = 16
    lr: float = 1e-4
    head_lr: float = 1e-3
    weight_decay: float = 0.01
    patience: Optional[int] = 3          # epochs without improvement before stopping; None: never stop early
    seed: int = 0
    grad_clip: Optional[float] = 1.0
    warmup_frac: float = 0.1
    schedule: str = "warmup_linear"      # or "warmup_cosine", "constant"
    optimizer: str = "adamw"             # or "adam" (L2 penalty in the gradient, as the adapter papers use)
    min_delta: float = 0.0               # an epoch improves when score > best + min_delta
    keep_best: bool = True               # restore the best epoch's weights at the end (else keep the last)
    validate_every: int = 1              # validate every N epochs (and after the last one)
    # Pretrained BatchNorm statistics stay fixed (batch statistics of 16 small-data items would shift every
    # feature the head was fit on). Training from scratch must learn them: the task then re-estimates them
    # after each epoch (see ``TrainTask.end_epoch``).
    freeze_bn: bool = True


@dataclass
class TrainResult:
    epochs_run: int
    best_epoch: int
    best_val_score: Optional[float]
    history: list[dict] = field(default_factory=list)
    stopped_early: bool = False
    resumed_from_epoch: int = 0
    train_seconds: float = 0.0

    def best(self, key: str) -> Optional[float]:
        """``key`` (e.g. ``val_accuracy``) of the kept epoch's history row; None without one."""
        rows = [r for r in self.history if r.get("epoch") == self.best_epoch]
        return rows[-1].get(key) if rows else None


@dataclass
class TrainState:
    """What callbacks see: where training is and what happened so far."""

    stage: str
    epoch: int = 0                       # 1-based number of the epoch in progress / just finished
    step: int = 0                        # optimizer steps done in this run, all epochs
    total_steps: int = 0
    steps_per_epoch: int = 0
    start_step: int = 0                  # steps already done before a resume
    batch_loss: float = 0.0
    best_score: float = -math.inf
    best_state: Optional[dict] = None
    bad_epochs: int = 0
    has_val: bool = False                # the last epoch was scored on a validation split
    started: float = field(default_factory=time.time)
    result: TrainResult = field(default_factory=lambda: TrainResult(0, 0, None))
    rng: Optional[np.random.Generator] = None   # the epoch-order generator (checkpointed with torch's, for resume)


@dataclass
class TrainControl:
    should_training_stop: bool = False


class TrainTask(Protocol):
    """What a task supplies to :class:`Trainer`."""

    def __len__(self) -> int: ...                                    # training items

    def loss(self, idx: Sequence[int], state: TrainState) -> tuple[torch.Tensor, float]:
        """Mean loss over the batch ``idx`` and its weight (items, or tokens) for the epoch's mean loss."""
        ...

    def validate(self) -> Optional[dict]:
        """``{"score": higher-is-better, ...}`` for the history row, or None without a validation split."""
        ...

    # Optional: ``batch(idx, step) -> inputs`` prepares a batch on the CPU (decode, augment) in the DataLoader's
    # workers; the trainer then calls ``loss(idx, state, inputs)`` with the inputs on the run's device.


def _param_groups(model: nn.Module, config: TrainConfig) -> list[dict]:
    """The head (``model.head`` when there is one) at ``head_lr``, every other trainable parameter at ``lr``."""
    head = getattr(model, "head", None)
    head_params = [p for p in head.parameters() if p.requires_grad] if isinstance(head, nn.Module) else []
    head_ids = {id(p) for p in head_params}
    body = [p for p in model.parameters() if p.requires_grad and id(p) not in head_ids]
    groups = [{"params": head_params, "lr": config.head_lr}] if head_params else []
    return groups + ([{"params": body, "lr": config.lr}] if body else [])


def warmup_linear_schedule(optimizer: torch.optim.Optimizer, total_steps: int, warmup_frac: float):
    """Linear warm-up over ``warmup_frac`` of the steps, then linear decay to zero."""
    warmup = max(1, int(warmup_frac * total_steps))
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup) * max(0.0, (total_steps - s) / max(1, total_steps - warmup)))


def warmup_cosine_schedule(optimizer: torch.optim.Optimizer, total_steps: int, warmup_frac: float):
    """Linear warm-up over ``warmup_frac`` of the steps, then half a cosine down to zero (Loshchilov & Hutter,
    "SGDR", ICLR 2017, without restarts): the lr stays high longer than a linear decay and lands softly."""
    warmup = max(1, int(warmup_frac * total_steps))

    def factor(s: int) -> float:
        if s < warmup:
            return (s + 1) / warmup
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (s - warmup) / max(1, total_steps - warmup))))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


SCHEDULES = {"warmup_linear": warmup_linear_schedule, "warmup_cosine": warmup_cosine_schedule}


def batchnorms(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def snapshot_into(best: Optional[dict], model: nn.Module) -> dict:
    """:func:`trainable_state`, copied into the previous snapshot's buffers when they fit (no second copy of the
    weights alive at once)."""
    if best is None:
        return trainable_state(model)
    state = model.state_dict()
    if any(k not in state or state[k].shape != v.shape for k, v in best.items()):
        return trainable_state(model)
    with torch.no_grad():
        for k, v in best.items():
            v.copy_(state[k])
    return best


class Trainer:
    """Trains the parameters of ``model`` that have ``requires_grad`` on ``task``.

    ``train_modules`` are put in train mode each epoch; the rest of the model stays in eval mode, so frozen
    layers keep dropout off and (with ``freeze_bn``) BatchNorm statistics fixed. ``extra_modules`` hold more
    trainable parameters that are not part of ``model`` (a domain discriminator): optimized and checkpointed
    with it, not saved with the model.
    """

    def __init__(self, model: nn.Module, task: TrainTask, config: TrainConfig, *,
                 train_modules: Sequence[nn.Module] = (), extra_modules: Sequence[nn.Module] = (),
                 param_groups: Optional[list[dict]] = None, checkpoint_dir: Optional[Path] = None,
                 stage: str = "train", progress: ProgressFn = no_progress, should_cancel: CancelFn = never_cancel,
                 callbacks: Sequence[Any] = ()):
        from tlcore.training.callbacks import default_callbacks

        self.model, self.task, self.config = model, task, config
        self.train_modules = list(train_modules) + list(extra_modules)
        self.extra = nn.ModuleList(extra_modules)
        groups = param_groups if param_groups is not None else _param_groups(model, config)
        extra_params = [p for p in self.extra.parameters() if p.requires_grad]
        self.groups = groups + ([{"params": extra_params, "lr": config.head_lr}] if extra_params else [])
        self.params = [p for g in self.groups for p in g["params"]]
        self.state = TrainState(stage)
        self.control = TrainControl()
        self.checkpoint_dir = checkpoint_dir
        self.callbacks = default_callbacks(config, checkpoint_dir, progress, should_cancel) + list(callbacks)

    # ------------------------------------------------------------ pieces the callbacks use

    def checkpoint_modules(self) -> nn.Module:
        """What a checkpoint saves: the model and the extra modules."""
        return nn.ModuleDict({"model": self.model, "extra": self.extra}) if len(self.extra) else self.model

    def _optimizer(self) -> torch.optim.Optimizer:
        c = self.config
        # The fused kernel updates all tensors at once: on CPU the default per-tensor loop cost a quarter of a
        # fine-tuning step (see docs/benchmarks.md, P2). Same update rule.
        fused = {"fused": True} if self.params and all(
            p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in self.params) else {}
        cls = torch.optim.Adam if c.optimizer == "adam" else torch.optim.AdamW
        return cls(self.groups, weight_decay=c.weight_decay, **fused)

    def _schedule(self, total_steps: int):
        if self.config.schedule == "constant":
            return torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda s: 1.0)
        if self.config.schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {self.config.schedule!r}; known: constant, {', '.join(SCHEDULES)}")
        return SCHEDULES[self.config.schedule](self.optimizer, total_steps, self.config.warmup_frac)

    def _set_modes(self) -> None:
        self.model.eval()
        for module in self.train_modules:
            module.train()
        if self.config.freeze_bn:
            for module in batchnorms(self.model):
                module.eval()

    def _call(self, event: str) -> None:
        for cb in self.callbacks:
            hook = getattr(cb, event, None)
            if hook is not None:
                hook(self, self.state, self.control)

    # ------------------------------------------------------------ the loop

    def fit(self, *, resume: bool = False) -> TrainResult:
        c, s, rt = self.config, self.state, current_runtime()
        n = len(self.task)
        s.steps_per_epoch = max(1, math.ceil(n / c.batch_size))
        s.total_steps = s.steps_per_epoch * c.epochs
        # The model trains where the run's runtime says; moving keeps the Parameter objects, so the groups hold.
        self.model.to(rt.device)
        self.extra.to(rt.device)
        self.world = world_size()
        if self.world > 1:
            self._join_processes()
        self.optimizer = self._optimizer()
        self.scheduler = self._schedule(s.total_steps)
        self.scaler = rt.grad_scaler()
        with torch.random.fork_rng(devices=[]), torch.enable_grad():
            torch.manual_seed(c.seed)
            start_epoch, resumed = (self._resume() if resume else (0, None))
            rng = s.rng = np.random.default_rng([c.seed, start_epoch] if start_epoch else c.seed)
            if resumed is not None:          # continue every random stream where the checkpoint left it
                restore_rng(resumed, rng)
                if resumed.scaler is not None and self.scaler is not None:
                    self.scaler.load_state_dict(resumed.scaler)
            s.start_step = s.step = start_epoch * s.steps_per_epoch
            s.started = time.time()
            self._call("on_train_begin")
            for epoch in range(start_epoch, c.epochs):
                if self.control.should_training_stop:
                    break
                s.epoch = epoch + 1
                self._set_modes()
                order = rng.permutation(n)
                plan = [(epoch * s.steps_per_epoch + b, self._my_share(order[b * c.batch_size:(b + 1) * c.batch_size]))
                        for b in range(s.steps_per_epoch)]
                loss_sum, weight_sum, t_epoch = 0.0, 0.0, time.time()
                for step, idx, inputs in batches(self.task, [p for p in plan if len(p[1])], rt, c.seed, epoch):
                    # Gradients are dropped before the forward pass, so the last step's are not held beside the
                    # activations (lower peak memory).
                    self.optimizer.zero_grad(set_to_none=True)
                    with rt.autocast():
                        loss, weight = (self.task.loss(idx, s) if inputs is None
                                        else self.task.loss(idx, s, rt.to_device(inputs)))
                    self._backward_and_step(loss)
                    s.batch_loss = loss.item()
                    loss_sum += s.batch_loss * weight
                    weight_sum += weight
                    s.step = step + 1
                    self._call("on_step_end")
                # the epoch's mean loss over every rank's share
                loss_sum, weight_sum = sum_over_processes([loss_sum, weight_sum], rt.device)
                end_epoch = getattr(self.task, "end_epoch", None)
                if end_epoch is not None:
                    with rt.autocast():
                        end_epoch(s)
                row: dict[str, Any] = {"epoch": epoch + 1, "train_loss": loss_sum / max(weight_sum, 1e-12),
                                       "seconds": round(time.time() - t_epoch, 3)}
                validated = (epoch + 1) % c.validate_every == 0 or epoch + 1 == c.epochs
                with rt.autocast():
                    val = self.task.validate() if validated else None
                # Every rank holds the same weights; the classification and speech tasks split the validation set
                # between the ranks and sum their counts. Rank 0's verdict is taken everywhere, so early stopping
                # and the kept epoch cannot diverge between processes.
                val = broadcast_object(val) if self.world > 1 else val
                if val is not None:
                    score = float(val.pop("score"))
                    row.update(val)
                else:
                    score = -row["train_loss"]
                self._end_epoch(row, score, has_val=val is not None, validated=validated)
            if c.keep_best and s.best_state is not None:
                self.checkpoint_modules().load_state_dict(s.best_state, strict=False)
            self._call("on_train_end")
        s.result.train_seconds = time.time() - s.started
        self.model.eval()
        return s.result

    # ------------------------------------------------------------ devices and processes

    def _backward_and_step(self, loss: torch.Tensor) -> None:
        c = self.config
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()
        if self.world > 1:
            sync_gradients(self.params)
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        if c.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.params, c.grad_clip)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.scheduler.step()

    def _my_share(self, idx: np.ndarray) -> list[int]:
        """This process's part of one global batch: the batch is padded by repeating its items to a multiple of the
        process count and dealt out (as torch's ``DistributedSampler`` pads an epoch), so every rank steps together
        and the averaged gradients equal one process's over the global batch when the shares are equal."""
        idx = idx.tolist()
        if self.world == 1 or not idx:
            return idx
        padded = idx + idx[:(-len(idx)) % self.world] if len(idx) >= self.world else (idx * self.world)[:self.world]
        return padded[rank()::self.world]

    def _join_processes(self) -> None:
        """Start every rank from rank 0's weights, read rank 0's checkpoints (only rank 0 writes any)."""
        from accelerate.utils import broadcast

        with torch.no_grad():
            for t in list(self.checkpoint_modules().parameters()) + list(self.checkpoint_modules().buffers()):
                t.copy_(broadcast(t.detach().clone(), from_process=0))
        self.checkpoint_dir = broadcast_object(self.checkpoint_dir)
        if not is_main_process():
            from tlcore.training.callbacks import CheckpointCallback

            self.callbacks = [cb for cb in self.callbacks if not isinstance(cb, CheckpointCallback)]

    def _end_epoch(self, row: dict, score: float, *, has_val: bool, validated: bool) -> None:
        s, r = self.state, self.state.result
        r.history.append(row)
        r.epochs_run = s.epoch
        if validated and score > s.best_score + self.config.min_delta:
            s.best_score, r.best_epoch, s.bad_epochs = score, s.epoch, 0
            r.best_val_score = score if has_val else None
            if self.config.keep_best:
                s.best_state = snapshot_into(s.best_state, self.checkpoint_modules())
        elif validated:
            s.bad_epochs += 1
        s.has_val = has_val
        self._call("on_epoch_end")

    def _resume(self) -> tuple[int, Optional[Resumed]]:
        """Load the checkpoint (if any); returns the epoch it ends and what else it restores."""
        resumed = load_checkpoint(self.checkpoint_dir, self.checkpoint_modules(), self.optimizer, self.scheduler)
        if resumed is None:
            return 0, None
        s = self.state
        s.best_score, s.best_state = resumed.best_score, resumed.best_state
        saved = dict(resumed.result)
        if "best_val_accuracy" in saved:                 # checkpoints written before the one trainer
            saved["best_val_score"] = saved.pop("best_val_accuracy")
        saved.pop("best_val_loss", None)
        s.result = TrainResult(**{**saved, "resumed_from_epoch": resumed.epoch})
        s.bad_epochs = s.result.epochs_run - s.result.best_epoch if s.result.history else 0
        if s.result.stopped_early:                       # it had finished before the crash: nothing left to train
            self.control.should_training_stop = True
        return resumed.epoch, resumed
