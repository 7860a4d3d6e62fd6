"""Property drift: which simple per-item properties (brightness, length, loudness...) differ between two sets.

Per property a two-sample test (Kolmogorov–Smirnov, or chi-square for few-valued properties), an effect
size, and Benjamini–Hochberg control of the false discovery rate over all properties.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from tlcore.diagnostics._common import JsonResult

#: A numeric property with at most this many distinct integer values is treated as categorical.
MAX_DISCRETE_VALUES = 10
#: Default minimal effect size for ``drifting`` (normalised Wasserstein for continuous properties,
#: total variation for categorical ones): 0.1 pooled std / 10 percentage points of probability mass.
MIN_EFFECT = 0.1


@dataclass
class PropertyDrift(JsonResult):
    """One row of a :class:`DriftReport`.

    ``test``: "ks" (continuous) or "chi2" (categorical / few-valued). ``statistic``: KS D or chi-square.
    ``p_value``: raw p-value; ``q_value``: Benjamini–Hochberg adjusted p-value over all rows.
    ``effect``: W₁ / pooled std for "ks" rows, total variation distance for "chi2" rows.
    ``mean_a`` / ``mean_b``: means (None for non-numeric properties). ``drifting``: q < alpha and
    effect ≥ min_effect. ``n_a`` / ``n_b``: finite values used.
    """

    name: str
    test: str
    statistic: float
    p_value: float
    q_value: float
    effect: float
    mean_a: float | None
    mean_b: float | None
    drifting: bool
    n_a: int = 0
    n_b: int = 0


@dataclass
class DriftReport(JsonResult):
    """Outcome of :func:`property_drift`: one row per property present in both tables (in input order)."""

    rows: list[PropertyDrift] = field(default_factory=list)
    alpha: float = 0.05
    min_effect: float = MIN_EFFECT
    skipped: list[str] = field(default_factory=list)

    @property
    def drifting(self) -> list[PropertyDrift]:
        """Rows flagged as drifting, largest effect first."""
        return sorted((r for r in self.rows if r.drifting), key=lambda r: -r.effect)


def _clean(values: Sequence) -> tuple[np.ndarray, bool]:
    """Return (values without missing entries, is_numeric)."""
    arr = np.asarray(values).ravel()
    if arr.dtype.kind in "biuf":
        arr = arr.astype(np.float64)
        return arr[np.isfinite(arr)], True
    keep = np.array([v is not None and v == v for v in arr.tolist()], dtype=bool)  # v == v drops NaN
    return np.array([str(v) for v in arr[keep].tolist()], dtype=object), False


def _is_categorical(a: np.ndarray, b: np.ndarray, numeric: bool) -> bool:
    if not numeric:
        return True
    pooled = np.concatenate([a, b])
    if not np.all(pooled == np.round(pooled)):
        return False
    return np.unique(pooled).size <= MAX_DISCRETE_VALUES


def _chi2_row(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """(chi-square statistic, p-value, total variation) for two samples of categorical values."""
    values = np.unique(np.concatenate([a, b]))
    count_a = np.array([np.sum(a == v) for v in values], dtype=float)
    count_b = np.array([np.sum(b == v) for v in values], dtype=float)
    tv = 0.5 * float(np.abs(count_a / count_a.sum() - count_b / count_b.sum()).sum())
    if values.size < 2:
        return 0.0, 1.0, tv
    chi2, p, _, _ = stats.chi2_contingency(np.stack([count_a, count_b]), correction=False)
    return float(chi2), float(p), tv


def _ks_row(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """(KS statistic, p-value, Wasserstein-1 / pooled std) for two samples of continuous values."""
    with warnings.catch_warnings():
        # Small samples with ties: scipy falls back from the exact to the asymptotic p-value; that is fine.
        warnings.filterwarnings("ignore", message=".*Exact calculation unsuccessful.*")
        res = stats.ks_2samp(a, b)
    pooled_std = float(np.sqrt(0.5 * (np.var(a, ddof=1) + np.var(b, ddof=1)))) if min(a.size, b.size) > 1 else 0.0
    w1 = float(stats.wasserstein_distance(a, b))
    if pooled_std > 0:
        effect = w1 / pooled_std
    else:
        effect = 0.0 if w1 == 0 else float("inf")
    return float(res.statistic), float(res.pvalue), effect


def property_drift(
    props_a: Mapping[str, Sequence],
    props_b: Mapping[str, Sequence],
    *,
    alpha: float = 0.05,
    min_effect: float = MIN_EFFECT,
) -> DriftReport:
    """Test every property for a change in distribution between set A and set B.

    Papers: Kolmogorov (1933) / Smirnov (1948) two-sample test; Pearson chi-square test of homogeneity;
    Benjamini & Hochberg (1995), "Controlling the false discovery rate", JRSS-B 57.

    Per property (a 1-D array per set, NaN / None entries dropped):
      * categorical (non-numeric, or ≤ 10 distinct integer values, e.g. channels, sample rate):
        chi-square on the 2×K table of counts; effect = TV = ½ Σ_k |p_a(k) − p_b(k)|;
      * continuous: KS statistic D = sup_x |F_a(x) − F_b(x)|; effect = W₁(A, B) / s_pooled with
        s_pooled = √((s_a² + s_b²)/2) (for a pure mean shift this is |Δmean| / s, Cohen's d).
    BH q-values: sort the k p-values, q_(i) = min_{j ≥ i} (k / j) p_(j), capped at 1.
    ``drifting`` = q < alpha AND effect ≥ min_effect — the effect floor keeps huge sets from flagging
    shifts too small to matter.

    Shapes: props_a = {name: (n,)}, props_b = {name: (m,)}; names in only one table, or with fewer than
    2 values in a set, are listed in ``skipped``. Deterministic (no seed: the tests are exact).
    """
    rows: list[PropertyDrift] = []
    skipped: list[str] = []
    for name in props_a:
        if name not in props_b:
            skipped.append(name)
            continue
        a, num_a = _clean(props_a[name])
        b, num_b = _clean(props_b[name])
        numeric = num_a and num_b
        if not numeric:
            a, b = np.array([str(v) for v in a], dtype=object), np.array([str(v) for v in b], dtype=object)
        if a.size < 2 or b.size < 2:
            skipped.append(name)
            continue
        if _is_categorical(a, b, numeric):
            test = "chi2"
            statistic, p_value, effect = _chi2_row(a, b)
        else:
            test = "ks"
            statistic, p_value, effect = _ks_row(a, b)
        rows.append(
            PropertyDrift(
                name=str(name), test=test, statistic=statistic, p_value=p_value, q_value=float("nan"),
                effect=effect, mean_a=float(np.mean(a)) if numeric else None,
                mean_b=float(np.mean(b)) if numeric else None, drifting=False, n_a=int(a.size), n_b=int(b.size),
            )
        )
    skipped.extend(n for n in props_b if n not in props_a)
    if rows:
        q_values = stats.false_discovery_control(np.array([r.p_value for r in rows]), method="bh")
        for row, q in zip(rows, q_values, strict=True):
            row.q_value = float(q)
            row.drifting = bool(q < alpha and row.effect >= min_effect)
    return DriftReport(rows=rows, alpha=float(alpha), min_effect=float(min_effect), skipped=skipped)
