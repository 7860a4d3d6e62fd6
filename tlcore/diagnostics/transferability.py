"""Transferability scores: predict how well a backbone will fine-tune on a target task, without fine-tuning.

All inputs are arrays computed once per backbone: features (n×d) of the labeled target items, or the
pretrained classifier's outputs on them. Higher is better for every score.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence

import numpy as np
from scipy import stats
from sklearn.covariance import LedoitWolf
from sklearn.model_selection import StratifiedKFold
from sklearn.neighbors import KNeighborsClassifier

from tlcore.diagnostics._common import as_features
from tlcore.registry import Registry

#: Floor on mᵀm, ‖Fm − y‖² and n − γ in LogME's fixed point (the paper's code adds 1e-5 likewise).
EVIDENCE_FLOOR = 1e-5
#: Relative singular-value cut-off of H-score's pseudo-inverse.
PINV_RCOND = 1e-8


def _labels(labels: Sequence, n: int) -> np.ndarray:
    """Labels (n,) of any hashable type -> integer codes 0..K−1."""
    arr = np.asarray(labels).ravel()
    if arr.shape[0] != n:
        raise ValueError(f"labels has {arr.shape[0]} entries but there are {n} feature rows")
    return np.unique(arr, return_inverse=True)[1].ravel()


def logme(features: np.ndarray, labels: Sequence, *, max_iter: int = 1000, tol: float = 1e-10) -> float:
    """LogME: log marginal evidence of a Bayesian linear model from features to one-hot labels, per item.

    Paper: You, Liu, Wang & Long (2021), "LogME: Practical Assessment of Pre-trained Models for Transfer
    Learning", ICML (Algorithm 1).

    Model per class k: y_k = F w + ε, prior w ~ N(0, α⁻¹ I_d), noise ε ~ N(0, β⁻¹ I_n), with F (n×d) the
    features and y_k (n,) the one-hot indicator of class k. Log evidence:

        L(α, β) = d/2 log α + n/2 log β − n/2 log 2π − β/2 ‖F m − y‖² − α/2 mᵀm − ½ log|A|,
        A = α I + β FᵀF,  m = β A⁻¹ Fᵀ y.

    α, β maximise L by MacKay's fixed point (evaluated in the SVD F = U S Vᵀ, σ_i = s_i²):
        γ = Σ_i βσ_i / (α + βσ_i),  α ← γ / mᵀm,  β ← (n − γ) / ‖F m − y‖².
    LogME = (1/K) Σ_k L_k(α_k*, β_k*) / n, with m recomputed at the converged α, β. mᵀm, ‖Fm − y‖² and
    n − γ are floored at 1e-5 so that d ≥ n (targets exactly fitted, β → ∞) still gives a finite score.

    Shapes: features (n, d), labels (n,). Deterministic.
    """
    f = as_features(features, "features")
    n, d = f.shape
    y_idx = _labels(labels, n)
    targets = np.eye(int(y_idx.max()) + 1)[y_idx]  # (n, K) one-hot
    u, s, _ = np.linalg.svd(f, full_matrices=False)
    sigma = s**2                                    # nonzero part of the spectrum of FᵀF; the rest is 0
    z = u.T @ targets                               # (r, K) targets in the column space of F
    outside = np.maximum((targets**2).sum(axis=0) - (z**2).sum(axis=0), 0.0)  # ‖y‖² − ‖Uᵀy‖²
    n_zero = d - sigma.size                         # eigenvalues of FᵀF that are exactly 0

    def parts(alpha: np.ndarray, beta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        denom = alpha[None, :] + beta[None, :] * sigma[:, None]
        m2 = ((beta[None, :] * s[:, None] * z / denom) ** 2).sum(axis=0)          # mᵀm
        res2 = ((alpha[None, :] * z / denom) ** 2).sum(axis=0) + outside          # ‖F m − y‖²
        # Floors (as TLlib's epsilon): with d ≥ n the targets lie in F's column space, the residual
        # tends to 0 and β would grow without bound; flooring keeps α, β and L finite.
        m2, res2 = np.maximum(m2, EVIDENCE_FLOOR), np.maximum(res2, EVIDENCE_FLOOR)
        gamma = (beta[None, :] * sigma[:, None] / denom).sum(axis=0)
        return m2, res2, gamma

    k = targets.shape[1]
    alpha, beta = np.ones(k), np.ones(k)
    for _ in range(max_iter):
        m2, res2, gamma = parts(alpha, beta)
        new_alpha = gamma / m2
        new_beta = np.maximum(n - gamma, EVIDENCE_FLOOR) / res2
        done = np.all(np.abs(new_alpha - alpha) <= tol * alpha) and np.all(np.abs(new_beta - beta) <= tol * beta)
        alpha, beta = new_alpha, new_beta
        if done:
            break
    m2, res2, _ = parts(alpha, beta)
    log_det = np.log(alpha[None, :] + beta[None, :] * sigma[:, None]).sum(axis=0) + n_zero * np.log(alpha)
    evidence = (
        d / 2.0 * np.log(alpha) + n / 2.0 * np.log(beta) - n / 2.0 * np.log(2.0 * np.pi)
        - beta / 2.0 * res2 - alpha / 2.0 * m2 - 0.5 * log_det
    )
    return float(np.mean(evidence) / n)


def leep(source_probs: np.ndarray, labels: Sequence) -> float:
    """LEEP: log expected empirical prediction of the pretrained classifier's outputs for the target labels.

    Paper: Nguyen, Hassner, Seeger & Archambeau (2020), "LEEP: A New Measure to Evaluate Transferability of
    Learned Representations", ICML (Eq. 1–2).

    Formula, with θ(x_i) (z source classes) the pretrained model's probabilities and y_i the target labels:
        P̂(y, z) = 1/n Σ_{i: y_i = y} θ(x_i)_z,   P̂(y | z) = P̂(y, z) / Σ_{y'} P̂(y', z),
        LEEP = 1/n Σ_i log Σ_z P̂(y_i | z) θ(x_i)_z      (≤ 0; closer to 0 is better).

    Shapes: source_probs (n, z) with rows summing to 1, labels (n,). Deterministic.
    """
    theta = as_features(source_probs, "source_probs")
    n = theta.shape[0]
    y = _labels(labels, n)
    joint = np.zeros((int(y.max()) + 1, theta.shape[1]))
    np.add.at(joint, y, theta / n)
    conditional = joint / np.maximum(joint.sum(axis=0, keepdims=True), 1e-300)
    eep = np.einsum("iz,iz->i", conditional[y], theta)
    return float(np.mean(np.log(np.maximum(eep, 1e-300))))


def nce(source_pseudo_labels: Sequence, labels: Sequence) -> float:
    """NCE: negative conditional entropy of target labels given the source model's predicted labels.

    Paper: Tran, Nguyen & Hassner (2019), "Transferability and Hardness of Supervised Classification Tasks",
    ICCV (Eq. 2–4).

    Formula, with z_i the source pseudo-label (argmax of the pretrained classifier) and y_i the target label:
        P̂(y, z) = #{i: y_i = y, z_i = z} / n,   NCE = −H(Y | Z) = Σ_{y,z} P̂(y, z) log (P̂(y, z) / P̂(z)).
    ≤ 0; 0 when the source labels determine the target labels. Shapes: both (n,). Deterministic.
    """
    z_raw = np.asarray(source_pseudo_labels).ravel()
    y = _labels(labels, z_raw.shape[0])
    z = _labels(z_raw, z_raw.shape[0])
    joint = np.zeros((int(y.max()) + 1, int(z.max()) + 1))
    np.add.at(joint, (y, z), 1.0 / y.shape[0])
    pz = joint.sum(axis=0, keepdims=True)
    nz = joint > 0
    return float(np.sum(joint[nz] * np.log((joint / np.maximum(pz, 1e-300))[nz])))


def h_score(features: np.ndarray, labels: Sequence, *, inverse: str = "pinv") -> float:
    """H-score: how much of the feature covariance is explained by the class-conditional means.

    Paper: Bao, Li, Huang, Wang, Zhang & Zheng (2019), "An Information-Theoretic Approach to Transferability
    in Task Transfer Learning", ICIP (Definition 2). Shrinkage variant: Ibrahim, Ponomareva & Mazumder
    (2022), "Newer is not always better: Rethinking transferability metrics, their peculiarities, stability
    and performance", ECML-PKDD (arXiv:2110.06893).

    g_i = mean of f over the items of class y_i (g(x) = E[f | y]); Σ = cov(f) and cov(g) are (d×d) sample
    covariances, both normalised by n − 1 (any common normalisation cancels in the ratio below).

    ``inverse="pinv"`` (Bao et al.):  H(f) = tr( Σ⁺ cov(g) ), Σ⁺ the Moore–Penrose pseudo-inverse
    (robust to singular covariances, d > n).

    ``inverse="shrinkage"`` (Ibrahim et al.):  H_α(f) = tr( Σ_α⁻¹ (1 − α) cov(g) ),
        Σ_α = (1 − α) Σ + α μ I,  μ = tr(Σ) / d,
    the Ledoit–Wolf (2004) shrunk covariance with α the Ledoit–Wolf intensity (sklearn's
    ``LedoitWolf().shrinkage_``). The (1 − α) factor shrinks cov(g) like Σ. Without it, pure-noise features
    with d > n (α near 1) score about in proportion to d, above any informative features (≈ 13 at n = 60,
    d = 500, K = 3 classes, where informative features score at most K − 1); with it they score ≈ 0.45.
    The factor bounds the inflation but does not remove it: for d ≫ n² noise again approaches K − 1.
    Computed in the thin SVD X = U S Vᵀ of the centred features (rows of g lie in X's row space):
        H_α = (1 − α) Σ_j ‖g v_j‖² / ((1 − α) s_j² + α Σ_k s_k² / d).

    Shapes: features (n, d), labels (n,). Deterministic.
    """
    f = as_features(features, "features")
    y = _labels(labels, f.shape[0])
    centred = f - f.mean(axis=0, keepdims=True)
    class_means = np.zeros((int(y.max()) + 1, f.shape[1]))
    np.add.at(class_means, y, centred)
    class_means /= np.bincount(y)[:, None]
    g = class_means[y]
    if inverse not in ("pinv", "shrinkage"):
        raise ValueError(f"inverse must be 'pinv' or 'shrinkage'; got {inverse!r}")
    # Σ = XᵀX/(n−1) = V diag(s²/(n−1)) Vᵀ for the thin SVD X = U S Vᵀ; cov(g) = GᵀG/(n−1). The (n−1)
    # cancels, so both traces are sums over ‖G v_j‖²: cheap when d > n. Singular values below
    # 1e-8·s_max (rounding noise of a rank-deficient X) are dropped; G has no component along them.
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    keep = s > PINV_RCOND * (s[0] if s.size else 0.0)
    gv2 = np.sum((g @ vt[keep].T) ** 2, axis=0)     # ‖G v_j‖²
    if inverse == "pinv":
        return float(np.sum(gv2 / s[keep] ** 2))
    alpha = float(LedoitWolf(assume_centered=True).fit(centred).shrinkage_)
    if alpha >= 1.0:
        return 0.0                                   # Σ_α = μI and (1 − α) cov(g) = 0
    target = alpha * np.sum(s**2) / f.shape[1]       # α μ, times (n − 1)
    return float((1.0 - alpha) * np.sum(gv2 / ((1.0 - alpha) * s[keep] ** 2 + target)))


def knn_cv_accuracy(features: np.ndarray, labels: Sequence, *, k: int = 5, folds: int = 5, seed: int = 0) -> float:
    """Cross-validated accuracy of a cosine k-nearest-neighbour classifier on the features.

    Method: Cover & Hart (1967) kNN with cosine distance 1 − ⟨a, b⟩ / (‖a‖‖b‖), majority vote of the k
    nearest training items; stratified K-fold with K = min(folds, smallest class size) (at least 2,
    shuffled with ``seed``); returns the share of items whose out-of-fold prediction is right.
    k is capped by the training-fold size. Shapes: features (n, d), labels (n,), at least 2 classes.
    """
    f = as_features(features, "features")
    y = _labels(labels, f.shape[0])
    counts = np.bincount(y)
    if counts.size < 2:
        raise ValueError("knn_cv_accuracy needs at least 2 classes")
    n_folds = int(max(2, min(folds, counts.min())))
    cv = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    correct = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "least populated class has only 1 member"
        splits = list(cv.split(f, y))
    for train, test in splits:
        model = KNeighborsClassifier(n_neighbors=min(k, len(train)), metric="cosine", algorithm="brute")
        model.fit(f[train], y[train])
        correct += int(np.sum(model.predict(f[test]) == y[test]))
    return correct / f.shape[0]


def bootstrap_score(
    fn: Callable[..., float],
    *arrays: np.ndarray,
    n_boot: int = 200,
    seed: int = 0,
    ci: float = 0.95,
    replace: bool = True,
    fraction: float = 1.0,
) -> tuple[float, float, float]:
    """Point estimate and percentile bootstrap interval of ``fn(*arrays)``, resampling rows jointly.

    Method: Efron (1979) percentile bootstrap: draw round(fraction·n) row indices (the same indices for
    every array), recompute fn, repeat ``n_boot`` times; the interval is the ((1−ci)/2, (1+ci)/2)
    quantiles of the replicates. Replicates where fn raises ValueError / LinAlgError (e.g. a resample
    with a single class) are skipped; if all fail the interval is (NaN, NaN).

    Caveat: rows drawn twice look like perfectly repeated items. Scores that reward fitting the sample
    (LogME and H-score when d is near or above n, kNN accuracy, whose duplicates land in both train and
    test folds) are then biased upwards, and the interval may not even contain the point estimate. For
    those, use ``replace=False, fraction=0.8`` (subsampling, Politis & Romano 1994): no duplicates; the
    spread then describes the score at 0.8·n items.

    Shapes: every array has the same first dimension n. Returns (point, lo, hi).
    """
    arrays_np = [np.asarray(a) for a in arrays]
    if not arrays_np:
        raise ValueError("bootstrap_score needs at least one array")
    n = arrays_np[0].shape[0]
    if any(a.shape[0] != n for a in arrays_np):
        raise ValueError(f"all arrays must have the same number of rows; got {[a.shape[0] for a in arrays_np]}")
    if not 0.0 < fraction <= 1.0 and not (replace and fraction > 0):
        raise ValueError(f"fraction must be in (0, 1] when sampling without replacement; got {fraction}")
    size = max(1, int(round(fraction * n)))
    point = float(fn(*arrays_np))
    rng = np.random.default_rng(seed)
    reps: list[float] = []
    for _ in range(n_boot):
        idx = rng.integers(0, n, size=size) if replace else rng.choice(n, size=size, replace=False)
        try:
            reps.append(float(fn(*(a[idx] for a in arrays_np))))
        except (ValueError, np.linalg.LinAlgError):
            continue
    if not reps:
        return point, float("nan"), float("nan")
    lo, hi = np.quantile(reps, [(1.0 - ci) / 2.0, (1.0 + ci) / 2.0])
    return point, float(lo), float(hi)


#: Scores computable from (features, labels) alone: what ``rank`` runs for every backbone.
FEATURE_SCORES: Registry[Callable[..., float]] = Registry("transferability score")
FEATURE_SCORES.register("logme", logme)
FEATURE_SCORES.register("h_score", h_score)
FEATURE_SCORES.register("knn_accuracy", knn_cv_accuracy)


def rank_backbones(scores: Mapping[str, Mapping[str, tuple[float, float, float]]]) -> list[dict]:
    """Ranking table of backbones from their transferability scores (higher score = better).

    Input: {backbone: {score_name: (point, lo, hi)}} (e.g. from :func:`bootstrap_score`).
    Output: one dict per backbone, best first: {"backbone", "rank", "mean_rank", "scores": {name:
    {"point", "lo", "hi", "rank"}}, "tied_with_best": [score names whose interval overlaps the best
    backbone's interval, i.e. the data cannot separate this backbone from the best one]}.
    Per score, ranks are 1 = best, ties share the average rank (scipy.stats.rankdata); backbones missing
    a score get the worst rank for it. Ordering: mean rank over scores, then name.
    """
    names = sorted(scores)
    score_names = sorted({s for per in scores.values() for s in per})
    ranks: dict[str, dict[str, float]] = {b: {} for b in names}
    best_interval: dict[str, tuple[float, float]] = {}
    for s in score_names:
        points = np.array([scores[b][s][0] if s in scores[b] else -np.inf for b in names], dtype=float)
        points = np.where(np.isfinite(points), points, -np.inf)
        r = stats.rankdata(-points, method="average")
        for b, rank in zip(names, r, strict=True):
            ranks[b][s] = float(rank)
        top = names[int(np.argmax(points))]
        best_interval[s] = (float(scores[top][s][1]), float(scores[top][s][2])) if s in scores[top] else (np.nan, np.nan)
    table = []
    for b in names:
        per = {}
        tied = []
        for s in score_names:
            if s in scores[b]:
                point, lo, hi = (float(v) for v in scores[b][s])
                per[s] = {"point": point, "lo": lo, "hi": hi, "rank": ranks[b][s]}
                blo, bhi = best_interval[s]
                if not (hi < blo or lo > bhi):
                    tied.append(s)
        mean_rank = float(np.mean(list(ranks[b].values()))) if score_names else float("nan")
        table.append({"backbone": b, "mean_rank": mean_rank, "scores": per, "tied_with_best": tied})
    table.sort(key=lambda row: (row["mean_rank"], row["backbone"]))
    for i, row in enumerate(table, start=1):
        row["rank"] = i
    return table


def kendall_tau(scores: Mapping[str, float] | Sequence[float], accuracies: Mapping[str, float] | Sequence[float]) -> float:
    """Kendall rank correlation τ_b between a transferability score and the fine-tuned accuracies.

    Kendall (1938); τ_b as in scipy.stats.kendalltau. Inputs: two sequences of equal length, or two
    dicts {backbone: value} (aligned on their common keys). 1: the score orders backbones exactly as
    fine-tuning does; NaN with fewer than 2 backbones.
    """
    if isinstance(scores, Mapping) and isinstance(accuracies, Mapping):
        keys = sorted(set(scores) & set(accuracies))
        x = [float(scores[k]) for k in keys]
        y = [float(accuracies[k]) for k in keys]
    else:
        x, y = [float(v) for v in scores], [float(v) for v in accuracies]  # type: ignore[union-attr]
    if len(x) != len(y):
        raise ValueError(f"scores and accuracies differ in length ({len(x)} vs {len(y)})")
    if len(x) < 2:
        return float("nan")
    return float(stats.kendalltau(x, y).statistic)
