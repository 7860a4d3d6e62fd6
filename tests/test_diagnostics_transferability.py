"""Transferability scores against naive, line-by-line transcriptions of the papers' formulas."""

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.stats import multivariate_normal
from sklearn.covariance import LedoitWolf

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
    # Ledoit–Wolf picks α = 1 here (near-isotropic features): Σ_α = μI and (1 − α) cov(g) = 0.
    assert LedoitWolf().fit(f).shrinkage_ == 1.0 and shrunk == 0.0
    with pytest.raises(ValueError, match="inverse"):
        h_score(f, y, inverse="nope")


def test_h_score_pinv_with_more_dims_than_items_is_number_of_classes_minus_one():
    # With d ≥ n the class means are always perfectly "explained": H = rank of cov(E[f|y]) = K − 1.
    rng = np.random.default_rng(7)
    assert h_score(rng.standard_normal((12, 50)), np.arange(12) % 3) == pytest.approx(2.0, rel=1e-6)


def naive_shrinkage_h_score(f, y):
    """Ibrahim, Ponomareva & Mazumder 2022: tr(Σ_α⁻¹ (1 − α) cov(g)), Σ_α = (1 − α) Σ + α tr(Σ)/d I, with
    Σ, cov(g) the (n − 1) sample covariances and α sklearn's Ledoit–Wolf intensity."""
    n, d = f.shape
    lw = LedoitWolf().fit(f)
    alpha = lw.shrinkage_
    cov_f = np.cov(f, rowvar=False, ddof=1).reshape(d, d)
    sigma_alpha = (1 - alpha) * cov_f + alpha * np.trace(cov_f) / d * np.eye(d)
    # sklearn's covariance_ is the same shrinkage of the 1/n covariance: n/(n − 1) times smaller.
    np.testing.assert_allclose(lw.covariance_ * n / (n - 1), sigma_alpha, rtol=1e-10, atol=1e-12)
    g = np.zeros_like(f)
    for c in np.unique(y):
        g[y == c] = f[y == c].mean(axis=0)
    cov_g = np.cov(g, rowvar=False, ddof=1).reshape(d, d)
    return np.trace(np.linalg.solve(sigma_alpha, (1 - alpha) * cov_g)), alpha


def test_shrinkage_h_score_equals_the_papers_formula():
    f, y = small_case(seed=11, n=12, d=6)
    expected, alpha = naive_shrinkage_h_score(f, y)
    assert 0.05 < alpha < 0.95                      # a case where the (1 − α) factor matters
    assert h_score(f, y, inverse="shrinkage") == pytest.approx(expected, rel=1e-9)
    # d > n: Σ is singular, Σ_α is not.
    wide = np.random.default_rng(12).standard_normal((10, 25))
    wide_y = np.arange(10) % 2
    wide[:, 0] += 2 * wide_y
    assert h_score(wide, wide_y, inverse="shrinkage") == pytest.approx(naive_shrinkage_h_score(wide, wide_y)[0], rel=1e-9)


def test_shrinkage_h_score_one_feature_hand_case():
    # d = 1: sklearn's Ledoit–Wolf gives α = 0, so H_α = H = between-class / total variance.
    # f = 0, 2 | 4, 6: class means 1, 5, overall mean 3 -> Σ(g − 3)² = 4·4 = 16, Σ(f − 3)² = 9+1+1+9 = 20.
    f = np.array([[0.0], [2.0], [4.0], [6.0]])
    y = np.array([0, 0, 1, 1])
    assert LedoitWolf().fit(f).shrinkage_ == 0.0
    assert h_score(f, y, inverse="shrinkage") == pytest.approx(16 / 20, rel=1e-12)
    assert h_score(f, y) == pytest.approx(16 / 20, rel=1e-12)


def test_shrinkage_h_score_ranks_high_dimensional_noise_last():
    # Two informative backbones (class c shifts feature c) and one of 500-dimensional pure noise, n = 60.
    # Without the (1 − α) factor the noise, with α ≈ 0.97, scored ≈ 13, far above the informative
    # features (≤ K − 1 = 2): tr(Σ_α⁻¹ cov(g)) grows with d.
    rng = np.random.default_rng(13)
    n, k = 60, 3
    y = np.arange(n) % k
    onehot = np.eye(k)[y]
    backbones = {
        "strong": np.c_[4 * onehot, np.zeros((n, 2))] + rng.standard_normal((n, 5)),
        "medium": np.c_[3 * onehot, np.zeros((n, 7))] + rng.standard_normal((n, 10)),
        "noise": rng.standard_normal((n, 500)),
    }
    scores = {name: h_score(f, y, inverse="shrinkage") for name, f in backbones.items()}
    assert LedoitWolf().fit(backbones["noise"]).shrinkage_ > 0.9
    assert sorted(scores, key=scores.get, reverse=True) == ["strong", "medium", "noise"]
    assert scores["noise"] < 0.5 * scores["medium"]
    assert all(0 < v < k - 1 for v in scores.values())
    table = rank_backbones({name: {"h_score": (v, v, v)} for name, v in scores.items()})
    assert table[-1]["backbone"] == "noise"


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
