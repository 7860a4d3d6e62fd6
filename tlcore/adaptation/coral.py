"""CORAL: align second-order statistics of source and target features.

* :func:`coral_align` — Sun, Feng & Saenko, "Return of Frustratingly Easy Domain Adaptation", AAAI 2016.
  Closed form, no training: whiten the source with its own covariance and re-colour it with the target's,
  so a classifier fit on the aligned source applies to the raw target features.
* :func:`deep_coral_loss` — Sun & Saenko, "Deep CORAL: Correlation Alignment for Deep Domain Adaptation",
  ECCV-W 2016. The same idea as a differentiable loss between two batches of network activations.
"""

from __future__ import annotations

import numpy as np
from torch import Tensor

from tlcore.diagnostics._common import check_pair


def _sym_power(cov: np.ndarray, power: float) -> np.ndarray:
    """``cov ** power`` for a symmetric positive-definite matrix, through its eigendecomposition."""
    vals, vecs = np.linalg.eigh(cov)
    vals = np.clip(vals, 1e-12, None)
    return (vecs * vals**power) @ vecs.T


def coral_align(source_f: np.ndarray, target_f: np.ndarray, *, eps: float = 1.0) -> np.ndarray:
    """Source features re-coloured to the target's mean and covariance (CORAL, Sun et al. 2016).

    With C_s = cov(X_s) + eps·I and C_t = cov(X_t) + eps·I::

        X_s' = (X_s − μ_s) · C_s^(−1/2) · C_t^(1/2) + μ_t

    The paper adds the identity to both covariances for unit-variance features. To make ``eps`` mean the
    same for backbones whose features have any scale, both sets are first divided by one global scalar
    (the root mean per-feature variance of the pooled features) and the result is multiplied back, i.e.
    ``eps`` is in units of the average feature variance. Unlike the paper we also move the source mean to
    the target mean, so an affine shift of the target is undone too.

    Args:
        source_f: (n_s, d) source features.
        target_f: (n_t, d) target features (unlabeled); same d.
        eps: ridge added to both covariances (relative to the average feature variance); > 0.

    Returns:
        (n_s, d) float32 aligned source features; fit a classifier on them with the source labels and apply
        it to the *raw* target features.
    """
    if eps <= 0:
        raise ValueError(f"eps must be > 0 (it keeps the covariances invertible); got {eps}")
    xs, xt = check_pair(source_f, target_f)
    scale = float(np.sqrt(np.concatenate([xs, xt]).var(axis=0).mean())) or 1.0
    xs, xt = xs / scale, xt / scale
    eye = np.eye(xs.shape[1])
    cs = np.cov(xs, rowvar=False).reshape(eye.shape) + eps * eye
    ct = np.cov(xt, rowvar=False).reshape(eye.shape) + eps * eye
    aligned = (xs - xs.mean(0)) @ _sym_power(cs, -0.5) @ _sym_power(ct, 0.5) + xt.mean(0)
    return (aligned * scale).astype(np.float32)


def _covariance(x: Tensor) -> Tensor:
    """Unbiased covariance (d, d) of a batch (n, d)."""
    centred = x - x.mean(0, keepdim=True)
    return centred.T @ centred / max(x.shape[0] - 1, 1)


def deep_coral_loss(fs: Tensor, ft: Tensor) -> Tensor:
    """Deep CORAL loss (Sun & Saenko 2016): ``‖C_s − C_t‖_F² / (4 d²)``.

    Args:
        fs: (n_s, d) source activations; ft: (n_t, d) target activations (n_s, n_t ≥ 2).

    Returns:
        A scalar tensor, differentiable with respect to both inputs; 0 for batches with equal covariance.
    """
    if fs.ndim != 2 or ft.ndim != 2 or fs.shape[1] != ft.shape[1]:
        raise ValueError(f"deep_coral_loss needs two (n, d) batches with the same d; got {tuple(fs.shape)} and {tuple(ft.shape)}")
    d = fs.shape[1]
    return (_covariance(fs) - _covariance(ft)).pow(2).sum() / (4 * d * d)


def mean_difference_loss(fs: Tensor, ft: Tensor) -> Tensor:
    """``‖μ_s − μ_t‖² / d``: the first-moment term TLlib adds to Deep CORAL (covariances ignore a shift)."""
    return (fs.mean(0) - ft.mean(0)).pow(2).mean()


__all__ = ["coral_align", "deep_coral_loss", "mean_difference_loss"]
