"""Self-training: iterative, confidence-thresholded, class-balanced pseudo-labelling of the target.

In the spirit of Lee, "Pseudo-Label" (ICML-W 2013) with the class-balanced selection of Zou, Yu, Kumar &
Wang, "Unsupervised Domain Adaptation for Semantic Segmentation via Class-Balanced Self-Training", ECCV
2018. Each round r = 1..R:

    1. fit a logistic-regression head on source items plus the target items selected in round r − 1;
    2. predict the target: p_i = max_c P(c | x_i), ŷ_i = argmax_c P(c | x_i);
    3. select, per predicted class c, the most confident items with p_i ≥ threshold, at most
       ⌈(r / R) · n_t / C⌉ of them, so no class can take over the pseudo-labels (the cap grows each round,
       as in curriculum self-training).

Pseudo-labels are recomputed every round (not accumulated), so early mistakes can be corrected.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression

from tlcore.device import small_problem_threads


def _fit(clf: LogisticRegression, z: np.ndarray, y: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Fit ``clf`` on standardised ``z``; return (weight (C, d), bias (C,)), absent classes never predicted."""
    with small_problem_threads(z):
        clf.fit(z, y)
    weight = np.zeros((n_classes, z.shape[1]))
    bias = np.full(n_classes, -1e4)
    if len(clf.classes_) == 2:           # sklearn stores one row for two classes
        coef = np.vstack([-clf.coef_[0] / 2, clf.coef_[0] / 2])
        intercept = np.array([-clf.intercept_[0] / 2, clf.intercept_[0] / 2])
    else:
        coef, intercept = clf.coef_, clf.intercept_
    weight[clf.classes_] = coef
    bias[clf.classes_] = intercept
    return weight, bias


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def select_pseudo_labels(probs: np.ndarray, threshold: float, per_class_cap: int) -> np.ndarray:
    """Indices of target items to pseudo-label: per predicted class, the ≤ cap most confident with p ≥ threshold."""
    pred, conf = probs.argmax(1), probs.max(1)
    chosen = []
    for c in range(probs.shape[1]):
        idx = np.flatnonzero((pred == c) & (conf >= threshold))
        idx = idx[np.argsort(-conf[idx], kind="stable")][:per_class_cap]
        chosen.append(idx)
    return np.sort(np.concatenate(chosen)).astype(np.int64)


def self_train(source_f: np.ndarray, source_y: np.ndarray, target_f: np.ndarray, n_classes: int, *,
               threshold: float = 0.9, rounds: int = 5, C: float = 1.0,
               seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """Self-train a linear head on labeled source + unlabeled target features (see the module docstring).

    Features are standardised with the pooled source + target mean μ and std σ; the fitted head (W, b) on
    standardised features is folded back to raw features: ``W' = W / σ``, ``b' = b − Σ_j W_j μ_j / σ_j``.

    Args:
        source_f: (n_s, d) source features; source_y: (n_s,) integer labels in [0, n_classes).
        target_f: (n_t, d) unlabeled target features.
        n_classes: number of classes C.
        threshold: minimum max-probability for a pseudo-label.
        rounds: number of pseudo-labelling rounds R (R = 0 gives the source-only head).
        C: inverse L2 strength of the logistic regression (sklearn convention).
        seed: random state passed to the solver (the fit is deterministic).

    Returns:
        (weight (C, d) float32, bias (C,) float32, info) for ``logits = x @ weight.T + bias`` on raw
        features, as in ``nn.Linear``. ``info``: ``rounds`` (list of dicts with ``n_selected`` and
        ``per_class``), ``n_pseudo`` (pseudo-labels used by the final head), ``threshold``, ``C``.
    """
    from tlcore.adaptation.trainer import check_labeled_pair

    xs, ys, xt = check_labeled_pair(source_f, source_y, target_f, n_classes)
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be in (0, 1); got {threshold}")
    pooled = np.concatenate([xs, xt])
    mu, sd = pooled.mean(0), pooled.std(0) + 1e-6
    zs, zt = (xs - mu) / sd, (xt - mu) / sd

    # warm_start: each round starts L-BFGS from the previous head (same optimum, a few times faster).
    clf = LogisticRegression(C=C, max_iter=2000, random_state=seed, warm_start=True)
    weight, bias = _fit(clf, zs, ys, n_classes)
    selected = np.zeros(0, np.int64)
    pseudo = np.zeros(0, np.int64)
    history = []
    for r in range(1, rounds + 1):
        probs = _softmax(zt @ weight.T + bias)
        cap = math.ceil(r / rounds * xt.shape[0] / n_classes)
        new = select_pseudo_labels(probs, threshold, cap)
        new_pseudo = probs[new].argmax(1)
        history.append({"round": r, "n_selected": int(new.size),
                        "per_class": np.bincount(new_pseudo, minlength=n_classes).tolist()})
        if r > 1 and np.array_equal(new, selected) and np.array_equal(new_pseudo, pseudo):
            break                        # fixed point: refitting would give the same head
        selected, pseudo = new, new_pseudo
        weight, bias = _fit(clf, np.concatenate([zs, zt[selected]]), np.concatenate([ys, pseudo]), n_classes)

    w_raw = weight / sd
    b_raw = bias - (weight * mu / sd).sum(1)
    info = {"rounds": history, "n_pseudo": int(selected.size), "threshold": threshold, "C": C}
    return torch.tensor(w_raw, dtype=torch.float32), torch.tensor(b_raw, dtype=torch.float32), info
