"""Label shift: how different the class proportions of two labeled sets are."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.spatial.distance import jensenshannon
from scipy.stats import chi2_contingency

from tlcore.diagnostics._common import JsonResult


@dataclass
class LabelShiftResult(JsonResult):
    """Outcome of :func:`label_shift`.

    ``total_variation``: ½ Σ_c |p_a(c) − p_b(c)| in [0, 1]. ``js_divergence``: Jensen–Shannon divergence
    (base 2) in [0, 1]. ``chi2_p_value``: p-value of the chi-square test of homogeneity (1.0 when only one
    class occurs). ``proportions``: class -> {"a": p_a(c), "b": p_b(c)}; ``counts`` likewise with counts.
    """

    total_variation: float
    js_divergence: float
    chi2_p_value: float
    proportions: dict = field(default_factory=dict)
    counts: dict = field(default_factory=dict)


def label_shift(labels_a: Sequence, labels_b: Sequence) -> LabelShiftResult:
    """Compare the class distributions of two label vectors.

    Formulas, with p_a, p_b the class proportions over the union of classes C:
        TV = ½ Σ_{c∈C} |p_a(c) − p_b(c)|
        JS = ½ KL(p_a ‖ q) + ½ KL(p_b ‖ q), q = (p_a + p_b)/2, log base 2 (Lin 1991)
        chi-square test of homogeneity on the 2×|C| contingency table of counts (Pearson 1900).

    Shapes: labels_a (n,), labels_b (m,), any hashable labels (ints or strings); n, m ≥ 1.
    Deterministic (no seed).
    """
    la = np.asarray(labels_a).ravel()
    lb = np.asarray(labels_b).ravel()
    if la.size == 0 or lb.size == 0:
        raise ValueError("label_shift needs at least one label in each set")
    classes = sorted(set(la.tolist()) | set(lb.tolist()), key=lambda c: (str(type(c)), c))
    count_a = np.array([np.sum(la == c) for c in classes], dtype=float)
    count_b = np.array([np.sum(lb == c) for c in classes], dtype=float)
    p_a = count_a / count_a.sum()
    p_b = count_b / count_b.sum()
    tv = 0.5 * float(np.abs(p_a - p_b).sum())
    js = float(jensenshannon(p_a, p_b, base=2) ** 2)
    if len(classes) < 2:
        p_value = 1.0
    else:
        p_value = float(chi2_contingency(np.stack([count_a, count_b]), correction=False)[1])
    names = [str(c) for c in classes]
    return LabelShiftResult(
        total_variation=tv,
        js_divergence=js,
        chi2_p_value=p_value,
        proportions={k: {"a": float(x), "b": float(y)} for k, x, y in zip(names, p_a, p_b, strict=True)},
        counts={k: {"a": int(x), "b": int(y)} for k, x, y in zip(names, count_a, count_b, strict=True)},
    )
