"""Transferability scores against naive, line-by-line transcriptions of the papers' formulas."""

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.stats import multivariate_normal

from tlcore.diagnostics import (
    FEATURE_SCORES,
    bootstrap_score,
    h_score,
    kendall_tau,
    knn_cv_accuracy,
    leep,
    logme,
    nce,
    rank_backbones,
)


def small_case(seed=0, n=30, d=5, k=3):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    f = rng.standard_normal((n, d))
    f[:, 0] += y
    return f, y


# --- LogME -----------------------------------------------------------------------------------------


def naive_logme(f, y):
    """You et al. 2021: maximise the exact marginal likelihood y_k ~ N(0, FFᵀ/α + I/β) over (α, β)."""
    n = f.shape[0]
    total = 0.0
    classes = np.unique(y)
    for c in classes:
        t = (y == c).astype(float)

        def neg_log_evidence(log_ab, t=t):
            alpha, beta = np.exp(log_ab)
            return -multivariate_normal(np.zeros(n), f @ f.T / alpha + np.eye(n) / beta).logpdf(t)

        best = minimize(neg_log_evidence, [0.0, 0.0], method="Nelder-Mead",
                        options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 5000})
        total += -best.fun
    return total / len(classes) / n


def test_logme_equals_direct_maximisation_of_the_evidence():
    f, y = small_case()
    assert logme(f, y) == pytest.approx(naive_logme(f, y), rel=1e-7)


def test_logme_prefers_informative_features_and_handles_d_greater_than_n():
    f, y = small_case(seed=1, n=60)
    noise = np.random.default_rng(2).standard_normal(f.shape)
    assert logme(f, y) > logme(noise, y)
    wide = np.random.default_rng(3).standard_normal((10, 40))
    assert np.isfinite(logme(wide, np.arange(10) % 2))


# --- LEEP and NCE ----------------------------------------------------------------------------------


def naive_leep(theta, y):
    """Nguyen et al. 2020, Eq. (1)-(2), with explicit loops."""
    n, z_count = theta.shape
    classes = sorted(set(y.tolist()))
    joint = {(c, z): sum(theta[i, z] for i in range(n) if y[i] == c) / n for c in classes for z in range(z_count)}
    marginal = {z: sum(joint[(c, z)] for c in classes) for z in range(z_count)}
    total = 0.0
    for i in range(n):
        total += np.log(sum(joint[(y[i], z)] / marginal[z] * theta[i, z] for z in range(z_count)))
    return total / n


def test_leep_equals_naive_formula():
    rng = np.random.default_rng(4)
    logits = rng.standard_normal((25, 6))
    theta = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = rng.integers(0, 3, 25)
    assert leep(theta, y) == pytest.approx(naive_leep(theta, y), rel=1e-12)


def test_leep_is_zero_when_source_outputs_determine_labels():
    theta = np.eye(3)[[0, 1, 2, 0, 1, 2]]
    assert leep(theta, [5, 6, 7, 5, 6, 7]) == pytest.approx(0.0, abs=1e-12)


def naive_nce(z, y):
    """Tran et al. 2019: NCE = Σ_{y,z} P(y,z) log P(y|z), with explicit counting."""
    n = len(y)
    total = 0.0
    for yy in set(y.tolist()):
        for zz in set(z.tolist()):
            p_yz = np.sum((y == yy) & (z == zz)) / n
            p_z = np.sum(z == zz) / n
            if p_yz > 0:
                total += p_yz * np.log(p_yz / p_z)
    return total


def test_nce_equals_naive_formula_and_known_extremes():
    rng = np.random.default_rng(5)
    z, y = rng.integers(0, 4, 40), rng.integers(0, 3, 40)
    assert nce(z, y) == pytest.approx(naive_nce(z, y), rel=1e-12)
    assert nce([0, 1, 0, 1], ["a", "b", "a", "b"]) == pytest.approx(0.0)
    # Z tells nothing about a balanced binary Y: NCE = −log 2.
    assert nce([0, 0, 0, 0], [0, 1, 0, 1]) == pytest.approx(-np.log(2))


# --- H-score ---------------------------------------------------------------------------------------


def naive_h_score(f, y):
    """Bao et al. 2019: tr(cov(f)⁻¹ cov(E[f|y])) with explicit class means and a plain inverse."""
    n = f.shape[0]
    cov_f = np.cov(f, rowvar=False, bias=True)
    g = np.zeros_like(f)
    for c in np.unique(y):
        g[y == c] = f[y == c].mean(axis=0)
    cov_g = np.cov(g, rowvar=False, bias=True)
    assert n > f.shape[1]
    return np.trace(np.linalg.inv(cov_f) @ cov_g)


def test_h_score_equals_naive_formula():
    f, y = small_case(seed=6, n=50)
    assert h_score(f, y) == pytest.approx(naive_h_score(f, y), rel=1e-9)
    shrunk = h_score(f, y, inverse="shrinkage")
    assert np.isfinite(shrunk) and shrunk > 0
    with pytest.raises(ValueError, match="inverse"):
        h_score(f, y, inverse="nope")


def test_h_score_pinv_with_more_dims_than_items_is_number_of_classes_minus_one():
    # With d ≥ n the class means are always perfectly "explained": H = rank of cov(E[f|y]) = K − 1.
    rng = np.random.default_rng(7)
    assert h_score(rng.standard_normal((12, 50)), np.arange(12) % 3) == pytest.approx(2.0, rel=1e-6)


# --- kNN, bootstrap, ranking -----------------------------------------------------------------------


def test_knn_accuracy_on_separated_and_random_data():
    rng = np.random.default_rng(8)
    y = np.arange(60) % 3
    directions = np.eye(5)[y]  # cosine distance only sees directions
    assert knn_cv_accuracy(directions * rng.uniform(1, 10, (60, 1)) + 0.01 * rng.standard_normal((60, 5)), y) == 1.0
    assert knn_cv_accuracy(rng.standard_normal((60, 5)), y) < 0.6
    # folds capped by the smallest class (2 items) and still deterministic
    y_small = np.array([0, 0, 1, 1, 1, 1])
    f_small = np.eye(2)[y_small] + 0.01
    assert knn_cv_accuracy(f_small, y_small, k=1, seed=3) == knn_cv_accuracy(f_small, y_small, k=1, seed=3) == 1.0


def test_bootstrap_score_is_seeded_and_brackets_the_mean():
    x = np.random.default_rng(9).normal(5.0, 1.0, 400)
    point, lo, hi = bootstrap_score(np.mean, x, n_boot=300, seed=1)
    assert point == pytest.approx(x.mean())
    assert lo < point < hi and hi - lo == pytest.approx(2 * 1.96 / np.sqrt(400), rel=0.25)
    assert bootstrap_score(np.mean, x, n_boot=300, seed=1) == (point, lo, hi)
    f, y = small_case(seed=10, n=60)
    point, lo, hi = bootstrap_score(FEATURE_SCORES.get("logme"), f, y, n_boot=20, replace=False, fraction=0.8)
    assert point == logme(f, y) and lo <= hi


def test_rank_backbones_and_kendall_tau():
    scores = {
        "small": {"logme": (0.1, 0.0, 0.2), "knn_accuracy": (0.60, 0.55, 0.65)},
        "base": {"logme": (0.5, 0.4, 0.6), "knn_accuracy": (0.80, 0.75, 0.85)},
        "large": {"logme": (0.45, 0.35, 0.55), "knn_accuracy": (0.90, 0.86, 0.94)},
    }
    table = rank_backbones(scores)
    assert [row["backbone"] for row in table] == ["base", "large", "small"]  # mean ranks 1.5, 1.5 (name), 3
    assert [row["rank"] for row in table] == [1, 2, 3]
    assert table[1]["scores"]["logme"]["rank"] == 2.0 and table[1]["tied_with_best"] == ["knn_accuracy", "logme"]
    assert table[2]["tied_with_best"] == []
    assert kendall_tau({"a": 1, "b": 2, "c": 3}, {"c": 0.9, "b": 0.8, "a": 0.7}) == pytest.approx(1.0)
    assert kendall_tau([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert np.isnan(kendall_tau([1], [1]))
