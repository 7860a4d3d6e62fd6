"""A 2-D map of two feature sets (PCA or UMAP fitted on both), for a scatter plot coloured by domain or label."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from sklearn.decomposition import PCA

from tlcore.diagnostics._common import JsonResult, check_pair


@dataclass
class MapResult(JsonResult):
    """Outcome of :func:`embedding_map`: one entry per plotted point.

    ``x``, ``y``: first and second principal-component coordinates. ``domain``: "A" or "B" (or the given
    names). ``label``: the item's label as a string, or None when no labels were given.
    ``explained_variance``: share of pooled variance on each of the two axes (PCA only; empty for UMAP).
    ``method``: "pca" or "umap".
    """

    x: list = field(default_factory=list)
    y: list = field(default_factory=list)
    domain: list = field(default_factory=list)
    label: list = field(default_factory=list)
    explained_variance: list = field(default_factory=list)
    method: str = "pca"


MAP_METHODS = ("pca", "umap")


def _pick(n: int, cap: int, rng: np.random.Generator) -> np.ndarray:
    return np.arange(n) if n <= cap else np.sort(rng.choice(n, size=cap, replace=False))


def embedding_map(
    features_a: np.ndarray,
    features_b: np.ndarray,
    *,
    labels_a: Sequence | None = None,
    labels_b: Sequence | None = None,
    seed: int = 0,
    max_points: int = 2000,
    domain_names: tuple[str, str] = ("A", "B"),
    method: str = "pca",
) -> MapResult:
    """Project both feature sets onto the first two principal components of the pooled data.

    Method: Pearson (1901) / Hotelling (1933) PCA. Z = [A; B] (after subsampling), centred by its mean μ;
    the axes are the top-2 right singular vectors V₂ of Z − μ, and each point's coordinates are
    (z − μ) V₂. Fitting on the pooled set puts both domains in one frame, so a visible separation between
    the colours means the main directions of variation differ between the sets.

    Shapes: features_a (n, d), features_b (m, d); labels_a (n,), labels_b (m,) optional.
    At most ``max_points`` points per domain are kept (seeded random subsample), for a readable plot.

    ``method="umap"``: McInnes, Healy & Melville (2018) UMAP (umap-learn) on the pooled points with cosine
    distance, ``n_neighbors`` = min(15, n − 1), seeded. Unlike PCA it keeps local neighbourhoods, so clusters
    (classes, or a target domain that sits apart) show up that a linear projection can overlap; distances between
    far-apart groups and the axes themselves mean nothing. Fewer than 4 points fall back to PCA.
    """
    if method not in MAP_METHODS:
        raise ValueError(f"unknown map method {method!r}; choose one of {', '.join(MAP_METHODS)}")
    a, b = check_pair(features_a, features_b, min_rows=1)
    rng = np.random.default_rng(seed)
    ia, ib = _pick(a.shape[0], max_points, rng), _pick(b.shape[0], max_points, rng)
    pooled = np.concatenate([a[ia], b[ib]], axis=0)
    if method == "umap" and pooled.shape[0] >= 4:
        coords, explained = _umap(pooled, seed), []
    else:
        method = "pca"
        n_comp = int(min(2, pooled.shape[0], pooled.shape[1]))
        pca = PCA(n_components=n_comp, random_state=seed)
        coords = pca.fit_transform(pooled) if n_comp > 0 else np.zeros((pooled.shape[0], 0))
        if coords.shape[1] < 2:
            coords = np.concatenate([coords, np.zeros((coords.shape[0], 2 - coords.shape[1]))], axis=1)
        explained = list(pca.explained_variance_ratio_) + [0.0] * (2 - n_comp)

    def labels_for(labels: Sequence | None, idx: np.ndarray, n: int, which: str) -> list:
        if labels is None:
            return [None] * len(idx)
        arr = np.asarray(labels).ravel()
        if arr.shape[0] != n:
            raise ValueError(f"labels_{which} has {arr.shape[0]} entries but features_{which} has {n} rows")
        return [str(v) for v in arr[idx].tolist()]

    return MapResult(
        x=[float(v) for v in coords[:, 0]],
        y=[float(v) for v in coords[:, 1]],
        domain=[domain_names[0]] * len(ia) + [domain_names[1]] * len(ib),
        label=labels_for(labels_a, ia, a.shape[0], "a") + labels_for(labels_b, ib, b.shape[0], "b"),
        explained_variance=[float(v) for v in explained],
        method=method,
    )


def _umap(points: np.ndarray, seed: int) -> np.ndarray:
    import warnings

    import umap

    n = points.shape[0]
    reducer = umap.UMAP(n_components=2, n_neighbors=int(min(15, n - 1)), metric="cosine", random_state=seed,
                        init="spectral" if n > 10 else "random")
    with warnings.catch_warnings():  # "n_jobs overridden to 1 by setting random_state": wanted (reproducible)
        warnings.simplefilter("ignore", UserWarning)
        return np.asarray(reducer.fit_transform(points.astype(np.float32)), dtype=np.float64)
