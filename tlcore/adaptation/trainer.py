"""Train an adapted head on cached features: source labels + an alignment loss on unlabeled target features.

The model is an MLP ``x → ReLU(W₁ z + b₁) = f → W₂ f + b₂`` (z: standardised features, f: the
bottleneck). Each step draws a labeled source batch and an unlabeled target batch and minimises::

    L = CE(C(F(x_s)), y_s) + trade_off · L_align

    method        L_align                                                         paper
    source_only   0                                                               —
    dann          BCE of a domain discriminator on F(x) through gradient reversal   Ganin et al. 2016
    coral         ‖C_s − C_t‖_F² / (4d²) + ‖μ_s − μ_t‖²/d on bottleneck features   Sun & Saenko 2016
    mcc           minimum class confusion of the target logits                    Jin et al. 2020

The Deep CORAL term gets the mean-difference term of TLlib because a covariance cannot see a shift.
Standardisation (pooled source + target mean and std) is folded into the first ``nn.Linear`` at the end,
so ``result.head(raw_features)`` gives logits.

Choosing ``trade_off`` without target labels (:func:`select_trade_off`) uses DomainBed's "training-domain
validation" (Gulrajani & Lopez-Paz, "In Search of Lost Domain Generalization", ICLR 2021): hold out part
of the source, train once per grid value, and keep the *largest* trade-off whose source-validation
accuracy is within ``tolerance`` of the best. Source accuracy cannot tell which alignment helps the
target; it only catches an alignment strong enough to destroy the source classes, so among the harmless
values the strongest is kept.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.model_selection import train_test_split
from torch import nn

from tlcore.adaptation.coral import deep_coral_loss, mean_difference_loss
from tlcore.adaptation.dann import DomainDiscriminator, domain_adversarial_loss, grl_coefficient
from tlcore.adaptation.mcc import mcc_loss
from tlcore.device import module_device
from tlcore.diagnostics._common import JsonResult, check_pair
from tlcore.progress import ProgressFn, no_progress
from tlcore.training.trainer import TrainConfig, Trainer

Method = Literal["source_only", "dann", "coral", "mcc"]
#: The alignment losses this module implements (:func:`alignment_objective`); a strategy names one as its
#: ``alignment`` (tlcore/strategies/adaptation.py).
ALIGNMENT_LOSSES: tuple[str, ...] = ("dann", "coral", "mcc")
METHODS: tuple[str, ...] = ("source_only", *ALIGNMENT_LOSSES)
TRADE_OFF_GRID: tuple[float, ...] = (0.3, 1.0, 3.0)
#: With ``epochs=None`` training runs at least this many steps (and at least 30 epochs): the adversarial and
#: alignment terms need a few hundred updates to act, whatever the size of the source.
MIN_STEPS = 600


@dataclass
class AdapterResult(JsonResult):
    """Outcome of :func:`train_adapter`.

    ``head``: ``nn.Sequential(Linear(d, hidden), ReLU(), Linear(hidden, C))`` on raw features, eval mode, CPU.
    ``source_val_accuracy``: accuracy on the held-out source items (None when nothing was held out).
    ``history``: one dict per epoch (``epoch``, ``loss_cls``, ``loss_align``, ``coeff``, ``source_val_accuracy``,
    and ``domain_accuracy`` for DANN). ``hyper``: every setting used (method, trade_off, hidden, epochs, ...).
    """

    head: nn.Module
    source_val_accuracy: float | None
    history: list[dict] = field(default_factory=list)
    hyper: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """Everything but the head (save it with ``torch.save(result.head.state_dict(), ...)``)."""
        d = super().to_dict()
        d.pop("head")
        return d


def check_labeled_pair(source_f: np.ndarray, source_y, target_f: np.ndarray,
                       n_classes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(source features, integer labels, target features) checked: same feature width, one label per source item,
    labels in [0, n_classes)."""
    xs, xt = check_pair(source_f, target_f)
    ys = np.asarray(source_y, dtype=np.int64).ravel()
    if ys.shape[0] != xs.shape[0]:
        raise ValueError(f"source_y has {ys.shape[0]} labels for {xs.shape[0]} source items")
    if ys.min() < 0 or ys.max() >= n_classes:
        raise ValueError(f"source labels must lie in [0, {n_classes}); got range [{ys.min()}, {ys.max()}]")
    return xs, ys, xt


def _split_source(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified (when possible) train / validation indices of the source."""
    idx = np.arange(y.shape[0])
    n_val = int(round(fraction * y.shape[0]))
    if fraction <= 0 or n_val < 1 or y.shape[0] - n_val < 2:
        return idx, idx[:0]
    counts = np.bincount(y)
    stratify = y if counts[counts > 0].min() >= 2 and n_val >= (counts > 0).sum() else None
    train, val = train_test_split(idx, test_size=n_val, random_state=seed, stratify=stratify)
    return np.sort(train), np.sort(val)


def _fold_standardisation(first: nn.Linear, mu: torch.Tensor, sd: torch.Tensor) -> None:
    """Turn ``first((x − μ) / σ)`` into ``first(x)``: W' = W / σ, b' = b − W (μ / σ)."""
    with torch.no_grad():
        first.bias -= first.weight @ (mu / sd)
        first.weight /= sd


def train_adapter(source_f: np.ndarray, source_y: np.ndarray, target_f: np.ndarray, n_classes: int, *,
                  method: Method = "dann", hidden: int = 256, epochs: int | None = None, lr: float = 1e-3,
                  batch_size: int = 64, weight_decay: float = 1e-4, trade_off: float = 1.0, seed: int = 0,
                  source_val_fraction: float = 0.2, num_threads: int | None = 1,
                  progress: ProgressFn | None = None) -> AdapterResult:
    """Train an MLP head with ``method``'s alignment loss on unlabeled target features (module docstring).

    Args:
        source_f: (n_s, d) source features; source_y: (n_s,) integer labels in [0, n_classes).
        target_f: (n_t, d) unlabeled target features (n_t ≥ 2).
        n_classes: number of classes C.
        method: "source_only", "dann", "coral" or "mcc".
        hidden: bottleneck width h. lr, weight_decay: Adam.
        epochs: passes over the source training part; None: max(30, enough for ``MIN_STEPS`` steps).
        batch_size: items per domain per step. trade_off: weight of the alignment loss.
        seed: seeds initialisation and batch order; the global torch RNG is left untouched.
        source_val_fraction: part of the source held out (stratified) for ``source_val_accuracy``.
        num_threads: torch intra-op threads while training, restored afterwards (None: leave as is). The
            matrices are too small to gain from more; on a busy 2-core machine 2 threads made a 1000×384 run
            10–40× slower than 1 thread.
        progress: optional callback receiving a :class:`tlcore.progress.Progress` per epoch (stage "adapt").

    Returns:
        :class:`AdapterResult`; ``result.head(torch.as_tensor(raw_features))`` gives (n, C) logits.
    """
    if method not in METHODS:
        raise ValueError(f"unknown adaptation method {method!r}; known: {', '.join(METHODS)}")
    xs, ys, xt = check_labeled_pair(source_f, source_y, target_f, n_classes)
    if epochs is not None and epochs < 1:
        raise ValueError(f"epochs must be ≥ 1 (or None for the default); got {epochs}")
    train_idx, val_idx = _split_source(ys, source_val_fraction, seed)

    pooled = np.concatenate([xs, xt])
    mu = torch.tensor(pooled.mean(0), dtype=torch.float32)
    sd = torch.tensor(pooled.std(0) + 1e-6, dtype=torch.float32)
    zs = (torch.tensor(xs, dtype=torch.float32) - mu) / sd
    zt = (torch.tensor(xt, dtype=torch.float32) - mu) / sd
    ys_t = torch.from_numpy(ys)
    z_train, y_train = zs[train_idx], ys_t[train_idx]
    z_val, y_val = zs[val_idx], ys_t[val_idx]

    prev_threads = torch.get_num_threads()
    if num_threads is not None:
        torch.set_num_threads(num_threads)
    try:
        with torch.enable_grad():   # train even when called under torch.no_grad()
            head, history, epochs, n_train = _train(
                z_train, y_train, z_val, y_val, zt, n_classes, method=method, hidden=hidden, epochs=epochs, lr=lr,
                batch_size=batch_size, weight_decay=weight_decay, trade_off=trade_off, seed=seed, progress=progress)
    finally:
        torch.set_num_threads(prev_threads)

    _fold_standardisation(head[0], mu, sd)
    head.eval()
    hyper = {"method": method, "hidden": hidden, "epochs": epochs, "lr": lr, "batch_size": batch_size,
             "weight_decay": weight_decay, "trade_off": trade_off, "seed": seed,
             "source_val_fraction": source_val_fraction, "n_source_train": int(n_train),
             "n_source_val": int(len(val_idx)), "n_target": int(zt.shape[0]), "standardisation": "pooled source + target"}
    return AdapterResult(head=head, source_val_accuracy=history[-1]["source_val_accuracy"] if history else None,
                         history=history, hyper=hyper)


def alignment_objective(method: str, fs: torch.Tensor, ft: torch.Tensor, ys: torch.Tensor, classifier: nn.Module,
                        disc: nn.Module | None, coeff: float, trade_off: float) -> tuple[torch.Tensor, dict]:
    """``CE(classifier(fs), ys) + trade_off · L_align(fs, ft)`` (module docstring) for source features ``fs`` with
    labels ``ys`` and target features ``ft``; also the terms' values for the history."""
    loss_cls = F.cross_entropy(classifier(fs), ys)
    terms = {"loss_cls": loss_cls.item()}
    if method == "dann":
        loss_align, terms["domain_accuracy"] = domain_adversarial_loss(disc, fs, ft, coeff)
    elif method == "coral":
        loss_align = deep_coral_loss(fs, ft) + mean_difference_loss(fs, ft)
    elif method == "mcc":
        loss_align = mcc_loss(classifier(ft))
    else:
        loss_align = torch.zeros(())
    terms["loss_align"] = loss_align.item()
    return loss_cls + trade_off * loss_align, terms


class AlignmentTask:
    """What the two adapters (MLP head on features, whole backbone) share as trainer tasks: the GRL schedule, the
    objective, the epoch's mean terms and the history row with the source-validation accuracy."""

    method: str
    trade_off: float
    disc: nn.Module | None

    def _reset_terms(self) -> None:
        self.sums: dict[str, float] = {}
        self.steps, self.coeff = 0, 0.0

    def _objective(self, state, fs: torch.Tensor, ft: torch.Tensor, ys: torch.Tensor,
                   classifier: nn.Module) -> torch.Tensor:
        self.coeff = grl_coefficient(state.step / max(state.total_steps - 1, 1))
        loss, terms = alignment_objective(self.method, fs, ft, ys, classifier, self.disc, self.coeff, self.trade_off)
        for k, v in terms.items():
            self.sums[k] = self.sums.get(k, 0.0) + v
        self.steps += 1
        return loss

    def _epoch_row(self, source_val_accuracy: float | None) -> dict:
        row = {"coeff": self.coeff, "source_val_accuracy": source_val_accuracy,
               **{k: v / max(self.steps, 1) for k, v in self.sums.items()}}
        self.sums, self.steps = {}, 0
        score = source_val_accuracy if source_val_accuracy is not None else -row.get("loss_cls", 0.0)
        return {"score": score, **row}


class _AlignTask(AlignmentTask):
    """Each step: the labeled source batch ``idx`` and the next unlabeled target batch; the loss of the module
    docstring. The epoch's mean terms and the source-validation accuracy go into the history row."""

    def __init__(self, head: nn.Sequential, disc: nn.Module | None, method: str, trade_off: float,
                 z_train: torch.Tensor, y_train: torch.Tensor, z_val: torch.Tensor, y_val: torch.Tensor,
                 zt: torch.Tensor, batch_size: int, seed: int):
        self.head, self.disc, self.method, self.trade_off = head, disc, method, trade_off
        self.z_train, self.y_train, self.z_val, self.y_val, self.zt = z_train, y_train, z_val, y_val, zt
        self.bs_t = min(batch_size, zt.shape[0])
        self.gen = torch.Generator().manual_seed(seed)
        self.t_perm, self.t_pos = torch.randperm(zt.shape[0], generator=self.gen), 0
        self._reset_terms()

    def __len__(self) -> int:
        return self.z_train.shape[0]

    def _target_batch(self) -> torch.Tensor:
        if self.t_pos + self.bs_t > self.zt.shape[0]:
            self.t_perm, self.t_pos = torch.randperm(self.zt.shape[0], generator=self.gen), 0
        idx, self.t_pos = self.t_perm[self.t_pos:self.t_pos + self.bs_t], self.t_pos + self.bs_t
        return self.zt[idx]

    def loss(self, idx, state) -> tuple[torch.Tensor, float]:
        head = self.head
        dev = module_device(head)
        fs, ft = head[1](head[0](self.z_train[idx].to(dev))), head[1](head[0](self._target_batch().to(dev)))
        return self._objective(state, fs.float(), ft.float(), self.y_train[idx].to(dev), head[2]), float(len(idx))

    @torch.no_grad()
    def validate(self) -> dict:
        self.head.eval()
        logits = self.head(self.z_val.to(module_device(self.head))).cpu()
        val_acc = float((logits.argmax(1) == self.y_val).float().mean()) if len(self.y_val) else None
        return self._epoch_row(val_acc)


def _train(z_train: torch.Tensor, y_train: torch.Tensor, z_val: torch.Tensor, y_val: torch.Tensor, zt: torch.Tensor,
           n_classes: int, *, method: str, hidden: int, epochs: int | None, lr: float, batch_size: int,
           weight_decay: float, trade_off: float, seed: int,
           progress: ProgressFn | None) -> tuple[nn.Sequential, list[dict], int, int]:
    """Train with the one trainer on standardised tensors (the last epoch is kept); returns (head, history,
    epochs, n_train)."""
    with torch.random.fork_rng(devices=[]):
        # Seeds initialisation; the caller's global RNG state is restored afterwards.
        torch.manual_seed(seed)
        head = nn.Sequential(nn.Linear(zt.shape[1], hidden), nn.ReLU(), nn.Linear(hidden, n_classes))
        # A narrow discriminator with dropout: a saturated one (domain accuracy 1) gives no gradient to reverse.
        disc = DomainDiscriminator(hidden, hidden=max(32, hidden // 4), dropout=0.5) if method == "dann" else None
    n_train = z_train.shape[0]
    bs_s = min(batch_size, n_train)
    if epochs is None:
        epochs = max(30, math.ceil(MIN_STEPS / max(1, math.ceil(n_train / bs_s))))
    task = _AlignTask(head, disc, method, trade_off, z_train, y_train, z_val, y_val, zt, batch_size, seed)
    config = TrainConfig(epochs=epochs, batch_size=bs_s, lr=lr, head_lr=lr, weight_decay=weight_decay, patience=None,
                         seed=seed, grad_clip=None, schedule="constant", optimizer="adam", keep_best=False, freeze_bn=False)
    result = Trainer(head, task, config, train_modules=[head], extra_modules=[disc] if disc is not None else [],
                     stage="adapt", progress=progress or no_progress).fit()
    head.cpu().eval()       # a small head on features: callers score numpy features with it
    return head, result.history, epochs, n_train


def select_trade_off(source_f: np.ndarray, source_y: np.ndarray, target_f: np.ndarray, n_classes: int, *,
                     method: Method = "dann", grid: Sequence[float] = TRADE_OFF_GRID, tolerance: float = 0.01,
                     **train_kwargs) -> tuple[AdapterResult, dict[float, float | None]]:
    """Pick ``trade_off`` from ``grid`` without target labels (training-domain validation, module docstring).

    Trains one adapter per grid value (keep the grid to ≤ 3 values; the default is (0.3, 1, 3)) and keeps the
    largest trade-off whose source-validation accuracy is ≥ best − ``tolerance``. ``train_kwargs`` go to
    :func:`train_adapter` (``source_val_fraction`` must be > 0).

    Returns:
        (the chosen :class:`AdapterResult` — its ``hyper`` has ``trade_off`` and ``trade_off_scores`` —,
        {trade_off: source-validation accuracy}).
    """
    if not grid:
        raise ValueError("grid of trade-off values is empty")
    if method == "source_only":
        grid = (0.0,)                     # nothing to trade off
    if train_kwargs.get("source_val_fraction", 0.2) <= 0:
        raise ValueError("select_trade_off needs held-out source items: set source_val_fraction > 0")
    results = {float(t): train_adapter(source_f, source_y, target_f, n_classes, method=method, trade_off=float(t),
                                       **train_kwargs) for t in grid}
    scores = {t: r.source_val_accuracy for t, r in results.items()}
    best = max(s for s in scores.values() if s is not None) if any(s is not None for s in scores.values()) else None
    ok = [t for t, s in scores.items() if best is None or (s is not None and s >= best - tolerance)]
    chosen = results[max(ok)]
    chosen.hyper["trade_off_scores"] = {str(t): s for t, s in scores.items()}
    chosen.hyper["trade_off_selection"] = f"largest of {list(scores)} within {tolerance} of the best source-val accuracy"
    return chosen, scores
