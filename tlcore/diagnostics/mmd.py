"""Maximum mean discrepancy (MMD) with an RBF kernel and a permutation test.

Gretton, Borgwardt, Rasch, Schölkopf & Smola (2012), "A Kernel Two-Sample Test", JMLR 13.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tlcore.diagnostics._common import JsonResult, check_pair, subsample_rows

#: Pooled points used for the median heuristic (the median of ~500k distances is stable enough).
MEDIAN_HEURISTIC_POINTS = 1000


@dataclass
class MMDResult(JsonResult):
    """Outcome of :func:`mmd_rbf`.

    ``mmd2``: unbiased MMD² estimate (0 in expectation when both sets come from one distribution; may be
    slightly negative). ``p_value``: permutation-test p-value. ``bandwidth``: RBF length scale σ used.
    ``n_a`` / ``n_b``: items actually used per set. ``subsampled``: True when a set was larger than ``max_n``
    and a random subsample of ``max_n`` items was used instead.
    """

    mmd2: float
    p_value: float
    bandwidth: float
    n_a: int
    n_b: int
    subsampled: bool
    n_permutations: int = 0


def _squared_distances(z: np.ndarray) -> np.ndarray:
    """Pairwise squared Euclidean distances of the rows of z (N×d) -> (N×N), clipped at 0."""
    sq = np.einsum("ij,ij->i", z, z)
    d2 = sq[:, None] + sq[None, :] - 2.0 * (z @ z.T)
    np.maximum(d2, 0.0, out=d2)
    np.fill_diagonal(d2, 0.0)
    return d2


def _mmd2_from_quadratic(quad_aa: np.ndarray, s_r: np.ndarray, total: float, n: int, m: int) -> np.ndarray:
    """Unbiased MMD² from the quadratic forms of a split of the pooled kernel matrix K (k(x,x)=1).

    With s the 0/1 indicator of set A, r = K·1 and T = 1ᵀK1:
    ΣK_AA = sᵀKs, ΣK_AB = sᵀr − sᵀKs, ΣK_BB = T − 2sᵀr + sᵀKs; diagonals (all ones) are removed.
    """
    sum_ab = s_r - quad_aa
    sum_bb = total - 2.0 * s_r + quad_aa
    return (quad_aa - n) / (n * (n - 1)) + (sum_bb - m) / (m * (m - 1)) - 2.0 * sum_ab / (n * m)


def mmd_rbf(
    features_a: np.ndarray,
    features_b: np.ndarray,
    *,
    seed: int = 0,
    n_permutations: int = 200,
    max_n: int | None = 2000,
) -> MMDResult:
    """Unbiased squared MMD between two feature sets with an RBF kernel, plus a permutation-test p-value.

    Paper: Gretton et al. (2012), "A Kernel Two-Sample Test", JMLR 13 (Lemma 6, unbiased MMD²_u).

    Formula, with X = features_a (n×d), Y = features_b (m×d) and k(x, y) = exp(−‖x−y‖² / (2σ²)):

        MMD²_u = 1/(n(n−1)) Σ_{i≠j} k(x_i, x_j) + 1/(m(m−1)) Σ_{i≠j} k(y_i, y_j) − 2/(nm) Σ_{i,j} k(x_i, y_j)

    σ is the median heuristic: the median pairwise Euclidean distance within a random subsample of at most
    1000 pooled points. The p-value is (1 + #{permuted MMD²_u ≥ observed}) / (1 + P) over P random
    re-splits of the pooled items into sets of sizes n and m.

    Speed: the pooled kernel matrix K (N×N, N = n+m) is computed once; all P permutations are evaluated
    together as the quadratic forms sᵀKs of their 0/1 membership vectors (one N×N by N×P matrix product).
    Sets larger than ``max_n`` are subsampled to ``max_n`` items (``subsampled=True`` in the result);
    ``max_n=None`` uses everything (memory grows as N²).

    Args:
        features_a: array (n, d), n ≥ 2.
        features_b: array (m, d), m ≥ 2.
        seed: seeds subsampling, the median-heuristic subsample and the permutations.
        n_permutations: P; 0 skips the test (p_value is then NaN).
        max_n: cap on items per set.
    """
    a, b = check_pair(features_a, features_b, min_rows=2)
    rng = np.random.default_rng(seed)
    subsampled = (max_n is not None) and (a.shape[0] > max_n or b.shape[0] > max_n)
    a = subsample_rows(a, max_n, rng)
    b = subsample_rows(b, max_n, rng)
    n, m = a.shape[0], b.shape[0]
    pooled = np.concatenate([a, b], axis=0)
    # Centering does not change distances but keeps z·zᵀ well conditioned for large-offset features.
    pooled -= pooled.mean(axis=0, keepdims=True)
    big_n = n + m

    kernel = _squared_distances(pooled)
    probe = rng.choice(big_n, size=min(big_n, MEDIAN_HEURISTIC_POINTS), replace=False)
    sub = kernel[np.ix_(probe, probe)]
    dists = np.sqrt(sub[np.triu_indices(len(probe), k=1)])
    positive = dists[dists > 0]
    bandwidth = float(np.median(positive)) if positive.size else 1.0
    # In place: squared distances -> kernel values, avoiding a second N×N buffer.
    kernel *= -1.0 / (2.0 * bandwidth**2)
    np.exp(kernel, out=kernel)

    row_sums = kernel.sum(axis=1)
    total = float(row_sums.sum())
    s_obs = np.zeros(big_n)
    s_obs[:n] = 1.0
    quad_obs = float(s_obs @ kernel @ s_obs)
    mmd2 = float(_mmd2_from_quadratic(np.array(quad_obs), float(s_obs @ row_sums), total, n, m))

    p_value = float("nan")
    if n_permutations > 0:
        # Column j of `member` marks which pooled items permutation j assigns to A (exactly n of them).
        keys = rng.random((big_n, n_permutations))
        kth = np.partition(keys, n - 1, axis=0)[n - 1]
        member = (keys <= kth).astype(np.float64)
        quad = np.einsum("ij,ij->j", member, kernel @ member)
        perm_mmd2 = _mmd2_from_quadratic(quad, member.T @ row_sums, total, n, m)
        # Tiny tolerance so that exact ties (e.g. identical sets) count as "at least as extreme".
        exceed = int(np.sum(perm_mmd2 >= mmd2 - 1e-12))
        p_value = (1.0 + exceed) / (1.0 + n_permutations)
    return MMDResult(
        mmd2=mmd2,
        p_value=p_value,
        bandwidth=bandwidth,
        n_a=n,
        n_b=m,
        subsampled=bool(subsampled),
        n_permutations=int(n_permutations),
    )
