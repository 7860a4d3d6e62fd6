"""Embedding-level mismatch between two feature sets: one report bundling every distance we compute.

Each measure lives in its own small module (``mmd``, ``domain_classifier``, ``moments``, ``label_shift``,
``embedding_map``); this module re-exports them and adds :func:`compare_embeddings`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tlcore.diagnostics._common import JsonResult, check_pair
from tlcore.diagnostics.domain_classifier import PADResult, proxy_a_distance
from tlcore.diagnostics.embedding_map import MapResult, embedding_map
from tlcore.diagnostics.label_shift import LabelShiftResult, label_shift
from tlcore.diagnostics.mmd import MMDResult, mmd_rbf
from tlcore.diagnostics.moments import coral_distance, frechet_distance, frechet_distance_from_stats

__all__ = [
    "MMDResult", "PADResult", "MapResult", "LabelShiftResult", "MismatchReport",
    "mmd_rbf", "proxy_a_distance", "frechet_distance", "frechet_distance_from_stats", "coral_distance",
    "label_shift", "embedding_map", "compare_embeddings", "DEFINITIONS",
]

#: One-line definitions shown next to the numbers in reports and the app.
DEFINITIONS: dict[str, str] = {
    "mmd": "Maximum mean discrepancy (RBF kernel, median-heuristic bandwidth), unbiased MMD²; "
    "the p-value is from a permutation test (Gretton et al. 2012). Near 0 and p ≥ 0.05: no detectable shift.",
    "pad": "Proxy A-distance 2(1−2ε) from the cross-validated error ε of a logistic-regression domain "
    "classifier (Ben-David et al. 2007). 0: the sets cannot be told apart; 2: perfectly separable.",
    "frechet": "Fréchet distance² between Gaussians fitted to each set (the FID formula, Heusel et al. 2017); "
    "in squared feature units, comparable only within one backbone.",
    "coral": "CORAL distance ‖C_a − C_b‖²_F / (4d²) between feature covariances (Sun & Saenko 2016).",
    "label_shift": "Total variation ½Σ|p_a − p_b| between class proportions, with a chi-square test.",
}


@dataclass
class MismatchReport(JsonResult):
    """Everything :func:`compare_embeddings` measured; ``label_shift`` is None without labels for both."""

    mmd: MMDResult
    pad: PADResult
    frechet: float
    coral: float
    label_shift: LabelShiftResult | None
    map: MapResult | None
    n_a: int
    n_b: int
    dim: int
    seed: int
    definitions: dict


def compare_embeddings(
    features_a: np.ndarray,
    features_b: np.ndarray,
    *,
    seed: int = 0,
    labels_a: Sequence | None = None,
    labels_b: Sequence | None = None,
    n_permutations: int = 200,
    include_map: bool = True,
    map_method: str = "pca",
) -> MismatchReport:
    """Run every embedding-level mismatch measure on features_a (n×d) vs features_b (m×d).

    Measures (see each function for its paper and formula): :func:`mmd_rbf` (Gretton et al. 2012),
    :func:`proxy_a_distance` (Ben-David et al. 2007), :func:`frechet_distance` (Heusel et al. 2017),
    :func:`coral_distance` (Sun & Saenko 2016), :func:`label_shift` when both label vectors (n,), (m,)
    are given, and the 2-D PCA :func:`embedding_map` for plotting. The same ``seed`` drives every
    random step, so the report is reproducible.
    """
    a, b = check_pair(features_a, features_b, min_rows=2)
    shift = label_shift(labels_a, labels_b) if labels_a is not None and labels_b is not None else None
    return MismatchReport(
        mmd=mmd_rbf(a, b, seed=seed, n_permutations=n_permutations),
        pad=proxy_a_distance(a, b, seed=seed),
        frechet=frechet_distance(a, b),
        coral=coral_distance(a, b),
        label_shift=shift,
        map=(embedding_map(a, b, labels_a=labels_a, labels_b=labels_b, seed=seed, method=map_method)
             if include_map else None),
        n_a=int(a.shape[0]),
        n_b=int(b.shape[0]),
        dim=int(a.shape[1]),
        seed=int(seed),
        definitions=dict(DEFINITIONS),
    )
