"""Which unlabeled items to label next: pure, seeded selection functions on pretrained features.

Every function takes the pool's features ``pool`` (n, d) and the labeled items' features ``labeled`` (m, d; m may be
0), and returns ``budget`` distinct pool indices in the order they were chosen (the first is the one to label first).

* **TypiClust** (Hacohen, Dekel & Weinshall, "Active Learning on a Budget: Opposite Strategies Suit High and Low
  Budgets", ICML 2022), for tiny budgets (about one to a few labels per class): cluster labeled ∪ pool into
  ``min(m + budget, 500)`` k-means clusters; ``budget`` times, take the cluster with the fewest labeled (or already
  chosen) items, the largest among those, and choose its most *typical* pool item::

      typicality(x) = ( (1/K) Σ_{x_i ∈ KNN_K(x)} ||x − x_i||₂ )^(-1),   K = min(20, |cluster| − 1)

  (neighbours within the cluster). Clusters of fewer than 5 items are skipped while larger ones remain (outliers),
  as in the authors' code. Needs no labels and no model, so it also works from zero labels.
* **Margin** (Scheffer, Decomain & Wrobel, "Active Hidden Markov Models for Information Extraction", IDA 2001):
  uncertainty ``u(x) = 1 − (p₁(x) − p₂(x))``, ``p₁ ≥ p₂`` the two largest class probabilities of a classifier
  trained on the labeled items; the ``budget`` most uncertain items.
* **k-center greedy** (Sener & Savarese, "Active Learning for Convolutional Neural Networks: A Core-Set Approach",
  ICLR 2018): repeatedly take the pool item farthest from its nearest labeled-or-chosen item,
  ``argmax_x min_{s ∈ S} ||x − s||₂`` (a seeded random first item when nothing is labeled).
* **Margin × k-center**: k-center greedy with each distance weighted by the item's uncertainty,
  ``argmax_x u(x) · min_{s ∈ S} ||x − s||₂``: uncertain items, spread over the feature space (the combination issue
  19 names; diversity keeps a batch from being several near-copies of one confusing item).

Features are L2-normalised first (distances between directions, as the papers' self-supervised embeddings are);
TypiClust's k-means runs on their first 64 principal components (speed), its typicality on the full features.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.neighbors import NearestNeighbors

TYPICLUST_MAX_CLUSTERS = 500
TYPICLUST_MIN_CLUSTER = 5
TYPICLUST_K = 20
CLUSTER_DIMS = 64


def unit_rows(x: np.ndarray) -> np.ndarray:
    """(n, d) float32 rows scaled to length 1 (zero rows stay zero)."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


def margin_uncertainty(probs: np.ndarray) -> np.ndarray:
    """(n,) ``1 − (p₁ − p₂)`` of (n, classes) probabilities: 1 = a tie between the top two classes, 0 = certain."""
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[1] < 2:
        raise ValueError("margin needs probabilities of at least two classes, shape (n, classes)")
    top = np.sort(probs, axis=1)[:, -2:]
    return 1.0 - (top[:, 1] - top[:, 0])


def most_uncertain(uncertainty: np.ndarray, budget: int) -> list[int]:
    """The ``budget`` items of highest uncertainty, e.g. the smallest margin (ties: the lower index first)."""
    u = np.asarray(uncertainty, dtype=np.float64)
    return [int(i) for i in np.lexsort((np.arange(len(u)), -u))[:budget]]


def kcenter_greedy(pool: np.ndarray, labeled: np.ndarray, budget: int, *, weights: Optional[np.ndarray] = None,
                   seed: int = 0) -> list[int]:
    """k-center greedy (Sener & Savarese 2018) on L2-normalised features; ``weights`` (n,) ≥ 0 multiply each pool
    item's distance (margin × k-center). Returns ``min(budget, n)`` pool indices."""
    x = unit_rows(pool)
    n = len(x)
    budget = min(budget, n)
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    chosen: list[int] = []
    if len(labeled):
        dist = _nearest_distance(x, unit_rows(labeled))
    else:
        first = int(np.random.default_rng(seed).integers(n))
        chosen.append(first)
        dist = _nearest_distance(x, x[first:first + 1])
    taken = np.zeros(n, bool)
    taken[chosen] = True
    while len(chosen) < budget:
        score = np.where(taken, -np.inf, w * dist)
        best = int(np.argmax(score))
        chosen.append(best)
        taken[best] = True
        dist = np.minimum(dist, _nearest_distance(x, x[best:best + 1]))
    return chosen


def _nearest_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a),) distance of each unit row of ``a`` to its nearest unit row of ``b``: ``||u − v||² = 2 − 2·u·v`` for
    unit vectors, so one matrix product per block (a large pool never holds a pool × labeled matrix at once)."""
    out = np.empty(len(a), np.float64)
    for start in range(0, len(a), 4096):
        sim = (a[start:start + 4096] @ b.T).max(1).astype(np.float64)
        out[start:start + 4096] = np.sqrt(np.maximum(2.0 - 2.0 * sim, 0.0))
    return out


def typicality(features: np.ndarray, k: int) -> np.ndarray:
    """(n,) inverse mean distance of each row to its ``k`` nearest other rows (Hacohen et al. 2022, eq. 4)."""
    n = len(features)
    if n == 1:
        return np.ones(1)
    k = max(1, min(k, n - 1))
    nn = NearestNeighbors(n_neighbors=k + 1).fit(features)
    dist, _ = nn.kneighbors(features)
    return 1.0 / (dist[:, 1:].mean(1) + 1e-12)


def _reduced(x: np.ndarray, seed: int) -> np.ndarray:
    """The first :data:`CLUSTER_DIMS` principal components of ``x`` (``x`` itself when it has no more dimensions or
    rows): k-means on 20,000 items of 1,280 dimensions took two minutes on two busy cores, on 64 components under a
    second."""
    if x.shape[1] <= CLUSTER_DIMS or len(x) <= CLUSTER_DIMS:
        return x
    return PCA(CLUSTER_DIMS, svd_solver="randomized", random_state=seed).fit_transform(x)


def typiclust(pool: np.ndarray, labeled: np.ndarray, budget: int, *, seed: int = 0) -> list[int]:
    """TypiClust (Hacohen et al. 2022); see the module docstring. Returns ``min(budget, n)`` pool indices."""
    n = len(pool)
    budget = min(budget, n)
    x = unit_rows(np.vstack([pool, labeled]) if len(labeled) else pool)
    k = max(1, min(len(labeled) + budget, TYPICLUST_MAX_CLUSTERS, len(x)))
    assign = KMeans(k, n_init=3, random_state=seed).fit_predict(_reduced(x, seed)) if k > 1 else np.zeros(len(x), int)
    sizes = np.bincount(assign, minlength=k)
    covered = np.bincount(assign[n:], minlength=k)      # labeled items per cluster
    free = np.ones(n, bool)
    usable = sizes >= TYPICLUST_MIN_CLUSTER
    chosen: list[int] = []
    while len(chosen) < budget:
        left = np.bincount(assign[:n][free], minlength=k)
        open_ = (left > 0) & (usable if (usable & (left > 0)).any() else True)
        # fewest labeled-or-chosen first, then the largest cluster, then the lower cluster id
        order = np.lexsort((np.arange(k), -sizes, covered))
        cluster = int(next(c for c in order if open_[c]))
        members = np.flatnonzero(assign == cluster)          # pool and labeled alike: typicality in the whole cluster
        typ = typicality(x[members], TYPICLUST_K)
        candidates = [(t, m) for t, m in zip(typ, members) if m < n and free[m]]
        best = max(candidates, key=lambda tm: (tm[0], -tm[1]))[1]
        chosen.append(int(best))
        free[best] = False
        covered[cluster] += 1
    return chosen


def random_select(n: int, budget: int, *, seed: int = 0) -> list[int]:
    """``min(budget, n)`` pool indices drawn uniformly at random (the baseline every strategy is measured against)."""
    return [int(i) for i in np.random.default_rng(seed).permutation(n)[:budget]]
