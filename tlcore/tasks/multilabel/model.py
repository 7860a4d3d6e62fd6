"""Multi-label models: a sigmoid per label on the backbone's features, with a decision threshold per label.

* :func:`fit_sigmoid_head` — the linear probe: one logistic regression per label (binary cross-entropy) on
  standardized features, fitted jointly by L-BFGS, the L2 strength chosen by 3-fold cross-validated log loss on the
  training features (the grid of :data:`C_GRID`, as classification's probe); the standardization is folded into the
  ``nn.Linear`` so it takes raw backbone features.
* :func:`centroid_head` — the training-free reference ("before" without a source): per label, the cosine of an
  item to the mean of the label's positive items minus its cosine to the mean of its negative items.
* :class:`MultiLabelTask` — binary cross-entropy on ``model(**inputs)`` for the one trainer (partial, full, LoRA,
  the scratch twin); validation scores by the loss (threshold-free), micro-F1 at 0.5 is logged beside it.

The thresholds are saved next to the model (``thresholds.json``) and used by ``predict``, Try it and the ONNX
export's consumers; scores above a label's threshold mean the label is predicted. The model's scores are
``sigmoid(logits / T)`` with the temperature ``T`` saved in ``calibration.json`` (1 without it;
:mod:`tlcore.tasks.multilabel.calibrate`), and the thresholds are on that scale.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch
from sklearn.model_selection import KFold
from torch import nn

from tlcore.device import autocast_for, module_device, small_problem_threads, sum_over_processes, to_device
from tlcore.evaluation.calibration import sigmoid  # noqa: F401 - sigmoid(logits, T): this task's scores, re-exported
from tlcore.models.batches import BatchSource, augment_seed
from tlcore.models.before import BeforeHead
from tlcore.strategies.linear_probe import C_GRID, standardize
from tlcore.tasks.classification.train import ClassifyTask

THRESHOLDS_FILE = "thresholds.json"


def _lbfgs_fit(z: np.ndarray, y: np.ndarray, c: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """argmin of mean BCE + ||W||² / (2·C·n) (sklearn's logistic-regression objective divided by C·n)."""
    torch.manual_seed(seed)
    x, t = torch.as_tensor(z, dtype=torch.float64), torch.as_tensor(y, dtype=torch.float64)
    w = torch.zeros(t.shape[1], x.shape[1], dtype=torch.float64, requires_grad=True)
    prior = t.mean(0).clamp(1e-3, 1 - 1e-3)
    b = torch.log(prior / (1 - prior)).clone().requires_grad_(True)
    opt = torch.optim.LBFGS([w, b], max_iter=500, tolerance_grad=1e-7, line_search_fn="strong_wolfe")
    penalty = 1.0 / (2.0 * c * len(x))

    def closure():
        opt.zero_grad()
        loss = nn.functional.binary_cross_entropy_with_logits(x @ w.T + b, t, reduction="sum") / len(x)
        loss = loss + penalty * (w ** 2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach(), b.detach()


def _log_loss(z: np.ndarray, y: np.ndarray, w: torch.Tensor, b: torch.Tensor) -> float:
    logits = torch.as_tensor(z, dtype=torch.float64) @ w.T + b
    return float(nn.functional.binary_cross_entropy_with_logits(logits, torch.as_tensor(y, dtype=torch.float64)))


def fit_sigmoid_head(features: np.ndarray, y: np.ndarray, *, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """(weight (L, d), bias (L,), info) of the multi-label linear probe on raw ``features`` (n, d), ``y`` (n, L)."""
    z, mu, sd = standardize(np.asarray(features, dtype=np.float64))
    y = np.asarray(y, dtype=np.float64)
    folds = min(3, len(z))
    scores: dict[float, float] = {}
    with small_problem_threads(z):
        if folds >= 2:
            for c in C_GRID:
                losses = []
                for fit, held in KFold(folds, shuffle=True, random_state=seed).split(z):
                    w, b = _lbfgs_fit(z[fit], y[fit], c, seed)
                    losses.append(_log_loss(z[held], y[held], w, b))
                scores[c] = float(np.mean(losses))
        best_c = min(C_GRID, key=lambda c: (scores.get(c, 0.0), abs(np.log10(c))))
        w, b = _lbfgs_fit(z, y, best_c, seed)
    weight = w.numpy() / sd
    bias = b.numpy() - (w.numpy() * mu / sd).sum(1)
    info = {"C": best_c, "cv_log_loss": scores.get(best_c), "cv_folds": folds if scores else 0}
    return torch.tensor(weight, dtype=torch.float32), torch.tensor(bias, dtype=torch.float32), info


def centroid_head(features: np.ndarray, y: np.ndarray) -> BeforeHead:
    """Per label: unit mean of the positives minus unit mean of the negatives, as a cosine head (score > 0: the item
    is nearer the label's positives). A label without positives (or negatives) gets no direction and bias −1."""
    x = np.asarray(features, dtype=np.float64)
    x = x / (np.linalg.norm(x, axis=1, keepdims=True) + 1e-8)
    weight = np.zeros((y.shape[1], x.shape[1]), np.float32)
    bias = np.zeros(y.shape[1], np.float32)
    for j in range(y.shape[1]):
        pos, neg = y[:, j] > 0, y[:, j] <= 0
        if not pos.any() or not neg.any():
            bias[j] = -1.0
            continue
        mp, mn = x[pos].mean(0), x[neg].mean(0)
        weight[j] = mp / (np.linalg.norm(mp) + 1e-8) - mn / (np.linalg.norm(mn) + 1e-8)
    return BeforeHead(torch.from_numpy(weight), torch.from_numpy(bias), "cosine")


@torch.no_grad()
def model_logits(model: nn.Module, items: Sequence[Any], *, batch_size: int = 32) -> np.ndarray:
    """(n, L) logits of a :class:`~tlcore.models.transfer_model.TransferModel` with a multi-label head."""
    was_training = model.training
    model.eval()
    out, device = [], module_device(model)
    for start in range(0, len(items), batch_size):
        batch = to_device(model.backbone.preprocess(list(items[start:start + batch_size])), device)
        with autocast_for(model):
            out.append(model(**batch).float().cpu().numpy())
    model.train(was_training)
    return np.concatenate(out) if out else np.zeros((0, len(model.classes)), np.float32)


class MultiLabelTask(ClassifyTask):
    """Binary cross-entropy per label on ``model(**inputs)``; validation score = −loss (micro-F1 at 0.5 logged)."""

    def __init__(self, model: nn.Module, items: Sequence[Any], y: np.ndarray, *, val_items: Sequence[Any] = (),
                 val_y: Optional[np.ndarray] = None, batch_size: int = 16, precise_bn: bool = False,
                 augment: str = "none", flip: bool = False, seed: int = 0):
        self.model = model
        self.train_src = BatchSource(model.backbone, items, augment=augment, flip=flip)
        self.val_src = BatchSource(model.backbone, val_items)
        self.y = torch.as_tensor(np.asarray(y), dtype=torch.float32)
        self.val_y = torch.as_tensor(np.zeros((0, self.y.shape[1])) if val_y is None else np.asarray(val_y),
                                     dtype=torch.float32)
        self.batch_size, self.precise_bn, self.seed = batch_size, precise_bn, seed

    def loss(self, idx: Sequence[int], state, inputs: Optional[dict] = None) -> tuple[torch.Tensor, float]:
        if inputs is None:
            inputs = self.train_src.get(idx, augment_seed=augment_seed(self.seed, state.step))
        logits = self.model(**inputs)
        y = self.y[list(idx)].to(logits.device)
        return nn.functional.binary_cross_entropy_with_logits(logits.float(), y), float(len(idx))

    @torch.no_grad()
    def validate(self) -> Optional[dict]:
        if not len(self.val_y):
            return None
        loss_sum, tp, fp_fn = 0.0, 0.0, 0.0
        for logits, y in self.val_batches():
            loss_sum += nn.functional.binary_cross_entropy_with_logits(logits, y, reduction="sum").item() / y.shape[1]
            pred = logits > 0
            tp += float((pred & (y > 0)).sum())
            fp_fn += float((pred ^ (y > 0)).sum())
        loss_sum, tp, fp_fn = sum_over_processes([loss_sum, tp, fp_fn], module_device(self.model))
        loss = loss_sum / len(self.val_y)
        return {"score": -loss, "val_loss": loss, "val_micro_f1": 2 * tp / (2 * tp + fp_fn) if tp + fp_fn else 0.0}


def save_thresholds(folder: Path, labels: Sequence[str], thresholds: np.ndarray, *, score: str, chosen_on: str) -> None:
    """``thresholds.json``: the label order, one threshold each, what the scores are and where they were chosen."""
    (Path(folder) / THRESHOLDS_FILE).write_text(json.dumps({
        "labels": list(labels), "thresholds": [float(t) for t in thresholds], "score": score,
        "chosen_on": chosen_on}, indent=1), encoding="utf-8")


def read_thresholds(folder: Path) -> dict:
    return json.loads((Path(folder) / THRESHOLDS_FILE).read_text(encoding="utf-8"))
