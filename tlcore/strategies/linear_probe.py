"""Feature extraction: frozen backbone, new linear head trained on cached features.

The head is a multinomial logistic regression (L-BFGS) on standardized features with the L2 strength chosen
by stratified cross-validation on the training features; the standardization is folded into the ``nn.Linear``
so the fitted model takes raw backbone features like every other strategy.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score

from tlcore.device import small_problem_threads
from tlcore.strategies.base import STRATEGIES, Strategy

C_GRID = (0.01, 0.1, 1.0, 10.0)


def standardize(features: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(z, mean, scale) of (n, d) features; fold ``weight / scale`` and ``bias - (weight * mean / scale).sum()`` back
    into a head fitted on ``z`` to get one that takes raw features."""
    mu = features.mean(0)
    sd = features.std(0)
    # Floor the scale: near-constant features (dead ReLUs) would otherwise get weights of 1/1e-6, and the
    # slightest change of them during later fine-tuning (LP-FT starts from this head) explodes the logits.
    sd = np.maximum(sd, 0.1 * float(np.median(sd)) + 1e-6)
    return (features - mu) / sd, mu, sd


def fit_linear_head(features: np.ndarray, y: np.ndarray, n_classes: int, *, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """Fit logistic regression; return (weight (classes, d), bias (classes,), info) for raw features."""
    z, mu, sd = standardize(features)
    counts = np.bincount(y, minlength=n_classes)
    present = counts[counts > 0]
    folds = int(min(5, present.min())) if len(present) > 1 else 0
    best_c, scores = 1.0, {}
    with small_problem_threads(z):
        if folds >= 2:
            cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
            for c in C_GRID:
                clf = LogisticRegression(C=c, max_iter=2000)
                scores[c] = float(cross_val_score(clf, z, y, cv=cv).mean())
            best_c = max(C_GRID, key=lambda c: (scores[c], -abs(np.log10(c))))
        clf = LogisticRegression(C=best_c, max_iter=5000).fit(z, y)
    weight = np.zeros((n_classes, features.shape[1]), np.float64)
    bias = np.full(n_classes, -1e4)      # classes absent from training are never predicted
    if len(clf.classes_) == 2:           # sklearn stores one row for two classes
        coef = np.vstack([-clf.coef_[0] / 2, clf.coef_[0] / 2])
        intercept = np.array([-clf.intercept_[0] / 2, clf.intercept_[0] / 2])
    else:
        coef, intercept = clf.coef_, clf.intercept_
    for row, cls in enumerate(clf.classes_):
        weight[cls] = coef[row] / sd
        bias[cls] = intercept[row] - (coef[row] * mu / sd).sum()
    info = {"C": best_c, "cv_accuracy": scores.get(best_c), "cv_folds": folds}
    return torch.tensor(weight, dtype=torch.float32), torch.tensor(bias, dtype=torch.float32), info


STRATEGIES.register("linear_probe", Strategy(
    "linear_probe", "Feature extraction: frozen pretrained backbone, new linear head on cached features.",
    uses_loop=False, default_lr=0.0))
