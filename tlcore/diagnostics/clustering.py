"""Unsupervised view of a data set: do pretrained features cluster by class better than raw inputs?

* :func:`cluster_features` — k-means on L2-normalised, PCA-reduced features, k chosen by the silhouette
  coefficient (Rousseeuw, "Silhouettes: a graphical aid to the interpretation and validation of cluster
  analysis", J. Comput. Appl. Math. 1987) when not given.
* :func:`cluster_scores` — agreement with known labels: normalised mutual information (Strehl & Ghosh 2002,
  arithmetic normalisation) and the adjusted Rand index (Hubert & Arabie 1985).
* :func:`raw_features` — the "no pretraining" baseline: pixels, TF-IDF + SVD, or MFCC statistics.
* :func:`compare_clustering` — both representations side by side.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA, TruncatedSVD
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score, silhouette_score

from tlcore.diagnostics._common import JsonResult, as_features

#: PCA dimensions kept before k-means (fewer when there are fewer items or features).
MAX_PCA_DIMS = 50
#: Silhouette is computed on at most this many (seeded) items; it is O(n²).
SILHOUETTE_SAMPLE = 2000
IMAGE_SIZE = 32
TEXT_MAX_FEATURES = 5000
TEXT_SVD_DIMS = 100


@dataclass
class ClusterResult(JsonResult):
    """Outcome of :func:`cluster_features`.

    ``labels``: (n,) cluster index per item. ``k``: number of clusters. ``silhouette_by_k``: {k: mean
    silhouette} for every k tried (only the given k when k was fixed). ``silhouette``: the chosen k's
    silhouette in [−1, 1] (None when it is undefined, e.g. k = 1).
    """

    labels: np.ndarray
    k: int
    silhouette_by_k: dict[int, float] = field(default_factory=dict)
    silhouette: float | None = None


def _prepare(features: np.ndarray, seed: int) -> np.ndarray:
    """Centre, L2-normalise rows, then PCA to ≤ ``MAX_PCA_DIMS`` dimensions (seeded).

    Centring first matters: all-positive inputs (pixels, ReLU features) otherwise normalise to nearly one
    direction, and the brightness/magnitude differences between clusters vanish."""
    x = as_features(features, "features")
    x = x - x.mean(axis=0, keepdims=True)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    n_comp = min(MAX_PCA_DIMS, x.shape[0] - 1, x.shape[1])
    if n_comp >= 1 and n_comp < x.shape[1]:
        x = PCA(n_components=n_comp, random_state=seed).fit_transform(x)
    return x


def _kmeans(x: np.ndarray, k: int, seed: int) -> tuple[np.ndarray, float | None]:
    labels = KMeans(n_clusters=k, n_init=5, random_state=seed).fit_predict(x)
    if not 2 <= len(np.unique(labels)) <= x.shape[0] - 1:
        return labels, None
    sample = min(SILHOUETTE_SAMPLE, x.shape[0])
    return labels, float(silhouette_score(x, labels, sample_size=sample, random_state=seed))


def cluster_features(features: np.ndarray, *, k: int | None = None, k_range: tuple[int, int] = (2, 12),
                     seed: int = 0) -> ClusterResult:
    """k-means clusters of (n, d) features; k by the highest silhouette over ``k_range`` when not given.

    Rows are L2-normalised (so Euclidean k-means ≈ cosine clustering, the geometry pretrained features are
    compared in) and reduced by PCA to ≤ 50 dimensions. The silhouette of item i is
    ``s_i = (b_i − a_i) / max(a_i, b_i)`` with a_i the mean distance to its own cluster and b_i to the
    nearest other cluster; the score is the mean over (at most 2000, seeded) items.

    Args:
        features: (n, d) features, n ≥ 3 when k is chosen.
        k: number of clusters, or None to choose it.
        k_range: inclusive (k_min, k_max) tried when k is None; clipped to [2, n − 1].
        seed: seeds PCA, k-means initialisation and the silhouette sample.
    """
    x = _prepare(features, seed)
    n = x.shape[0]
    if k is not None:
        if not 1 <= k <= n:
            raise ValueError(f"k must be between 1 and the number of items ({n}); got {k}")
        labels, sil = _kmeans(x, k, seed)
        return ClusterResult(labels=labels, k=k, silhouette_by_k={k: sil} if sil is not None else {}, silhouette=sil)
    lo, hi = max(2, k_range[0]), min(k_range[1], n - 1)
    if lo > hi:
        raise ValueError(f"cannot choose k in {k_range} for {n} items: need at least {lo + 1} items, or pass k")
    runs = {kk: _kmeans(x, kk, seed) for kk in range(lo, hi + 1)}
    by_k = {kk: sil for kk, (_, sil) in runs.items() if sil is not None}
    best = max(by_k, key=lambda kk: (by_k[kk], -kk)) if by_k else lo
    return ClusterResult(labels=runs[best][0], k=best, silhouette_by_k=by_k, silhouette=by_k.get(best))


def cluster_scores(true_labels: Sequence, cluster_labels: Sequence) -> dict[str, float]:
    """{"nmi": normalised mutual information, "ari": adjusted Rand index} of two labelings of the same items.

    NMI = I(Y; K) / ((H(Y) + H(K)) / 2) ∈ [0, 1]; ARI ∈ [−0.5, 1], 0 for chance. Both ignore label names.
    """
    y, c = np.asarray(true_labels), np.asarray(cluster_labels)
    if y.shape != c.shape or y.ndim != 1:
        raise ValueError(f"need two 1-D labelings of the same items; got shapes {y.shape} and {c.shape}")
    return {"nmi": float(normalized_mutual_info_score(y, c)), "ari": float(adjusted_rand_score(y, c))}


def _image_pixels(paths: Sequence) -> np.ndarray:
    from PIL import Image

    rows = []
    for p in paths:
        with Image.open(p) as im:
            g = im.convert("L").resize((IMAGE_SIZE, IMAGE_SIZE), Image.BILINEAR)
            rows.append(np.asarray(g, dtype=np.float32).ravel() / 255.0)
    return np.stack(rows)


def _text_tfidf(texts: Sequence[str], seed: int) -> np.ndarray:
    from sklearn.feature_extraction.text import TfidfVectorizer

    tfidf = TfidfVectorizer(max_features=TEXT_MAX_FEATURES).fit_transform([str(t) for t in texts])
    n_comp = min(TEXT_SVD_DIMS, tfidf.shape[1] - 1, tfidf.shape[0] - 1)
    if n_comp < 1:
        return tfidf.toarray().astype(np.float32)
    return TruncatedSVD(n_components=n_comp, random_state=seed).fit_transform(tfidf).astype(np.float32)


def _audio_mfcc(paths: Sequence) -> np.ndarray:
    import torch

    from tlcore.data.audio import clip_mfcc

    rows = []
    for p in paths:
        m = clip_mfcc(p)                                                    # (n_mfcc, frames)
        rows.append(torch.cat([m.mean(1), m.std(1, unbiased=False)]).numpy())
    return np.stack(rows).astype(np.float32)


def raw_features(items: Sequence, modality: str, *, seed: int = 0) -> np.ndarray:
    """Features computed without any pretrained model, as a baseline for the backbone's features.

    * image (paths): grayscale pixels resized to 32×32, in [0, 1], flattened → (n, 1024).
    * text (strings): TF-IDF over ≤ 5000 words, then truncated SVD (seeded) → (n, min(100, vocab − 1, n − 1)).
    * audio (paths): 20 MFCCs (16 kHz, 25 ms windows, 10 ms hop, 40 mel bands), mean and std over time → (n, 40).
    """
    if len(items) == 0:
        raise ValueError("no items given: raw features need at least one item")
    if modality == "image":
        return _image_pixels(items)
    if modality == "text":
        return _text_tfidf(items, seed)
    if modality == "audio":
        return _audio_mfcc(items)
    raise ValueError(f"unknown modality {modality!r}; use image, text or audio")


def compare_clustering(pretrained_f: np.ndarray, raw_f: np.ndarray, labels: Sequence | None = None, *,
                       k: int | None = None, seed: int = 0) -> dict:
    """Cluster the same items twice, on pretrained and on raw features.

    Returns ``{"pretrained": {...}, "raw": {...}}``, each a :meth:`ClusterResult.to_dict` plus ``"nmi"`` and
    ``"ari"`` against ``labels`` when they are given. With ``k=None`` each representation gets its own k by
    silhouette; pass ``k`` (e.g. the number of classes) to compare at the same k.
    """
    if len(pretrained_f) != len(raw_f):
        raise ValueError(f"pretrained_f has {len(pretrained_f)} rows but raw_f has {len(raw_f)}; use the same items")
    out = {}
    for name, f in (("pretrained", pretrained_f), ("raw", raw_f)):
        result = cluster_features(f, k=k, seed=seed)
        row = result.to_dict()
        if labels is not None:
            row.update(cluster_scores(labels, result.labels))
        out[name] = row
    return out
