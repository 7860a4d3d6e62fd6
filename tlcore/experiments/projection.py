"""Expected accuracy with more labels: a learning curve fitted to measured (labeled examples, accuracy) points.

The model is the inverse power law of learning curves (Figueroa et al., "Predicting sample size required for
classification performance", BMC Medical Informatics and Decision Making 2012; Hestness et al., "Deep Learning
Scaling is Predictable, Empirically", 2017)::

    acc(n) = a − b · n^(−c),   0 ≤ a ≤ 1,  b ≥ 0,  0 < c ≤ 3

with ``n`` the number of labeled training examples, fitted by least squares to every measured (n, accuracy)
observation (each seed of each point). The band is a 95% case-bootstrap interval: the observations are resampled with
replacement, the curve refitted, and the 2.5th / 97.5th percentiles of the refitted curves taken at each ``n``.

It is a **projection**, not a measurement: it assumes the new labels are drawn like the measured points' ones (at
random, from the same distribution), and it says nothing certain beyond the measured range (``extrapolated`` marks
the points past twice the largest measured ``n``).
"""

from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np
from scipy.optimize import OptimizeWarning, curve_fit

N_BOOT = 200
MIN_SIZES = 3   # distinct training sizes a fit needs (three parameters)
BOUNDS = ([0.0, 0.0, 1e-3], [1.0, 10.0, 3.0])


def power_law(n: np.ndarray, a: float, b: float, c: float) -> np.ndarray:
    """``a − b · n^(−c)``."""
    return a - b * np.power(np.asarray(n, dtype=np.float64), -c)


def _fit(n: np.ndarray, acc: np.ndarray) -> np.ndarray | None:
    start = [float(min(1.0, acc.max() + 0.02)), 0.5, 0.5]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OptimizeWarning)
            params, _ = curve_fit(power_law, n, acc, p0=start, bounds=BOUNDS, maxfev=5000)
    except (RuntimeError, ValueError):
        return None
    return params


def fit_learning_curve(n: Sequence[float], acc: Sequence[float], at: Sequence[float], *, seed: int = 0,
                       n_boot: int = N_BOOT) -> dict:
    """Fit :func:`power_law` to observations (``n[i]``, ``acc[i]``) and project it at the sizes ``at``.

    Returns ``{"model", "params": {a, b, c}, "at", "mean", "low", "high", "extrapolated", "measured_max_n"}``
    (``low``/``high``: the 95% bootstrap band), or ``{"missing": reason}`` when the observations cannot carry a
    fit (fewer than :data:`MIN_SIZES` distinct sizes, or the fit does not converge)."""
    n_arr, acc_arr = np.asarray(n, dtype=np.float64), np.asarray(acc, dtype=np.float64)
    if len(set(n_arr.tolist())) < MIN_SIZES:
        return {"missing": f"the measured curve has {len(set(n_arr.tolist()))} training size(s); a fit needs at "
                           f"least {MIN_SIZES}"}
    params = _fit(n_arr, acc_arr)
    if params is None:
        return {"missing": "the learning curve fit did not converge on the measured points"}
    grid = np.asarray(at, dtype=np.float64)
    rng = np.random.default_rng(seed)
    curves = []
    for _ in range(n_boot):
        pick = rng.integers(len(n_arr), size=len(n_arr))
        if len(set(n_arr[pick].tolist())) < MIN_SIZES:
            continue
        boot = _fit(n_arr[pick], acc_arr[pick])
        if boot is not None:
            curves.append(power_law(grid, *boot))
    mean = power_law(grid, *params)
    band = np.percentile(np.vstack(curves), [2.5, 97.5], axis=0) if len(curves) >= 20 else np.vstack([mean, mean])
    clip = lambda v: [float(min(1.0, max(0.0, x))) for x in v]  # noqa: E731
    return {"model": "acc(n) = a - b * n^(-c)", "params": dict(zip("abc", map(float, params))),
            "at": [float(x) for x in grid], "mean": clip(mean), "low": clip(band[0]), "high": clip(band[1]),
            "band": "95% case bootstrap" if len(curves) >= 20 else "none (too few bootstrap fits converged)",
            "measured_max_n": float(n_arr.max()), "extrapolated": [bool(x > 2 * n_arr.max()) for x in grid]}
