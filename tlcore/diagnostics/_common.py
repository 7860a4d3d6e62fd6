"""Small helpers shared by the diagnostics: input checks, seeded subsampling and JSON conversion."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np


def as_features(x: Any, name: str) -> np.ndarray:
    """Return ``x`` as a finite float64 array of shape (n, d); raise ValueError saying what is wrong."""
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (n_items, n_features); got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} is empty: at least one row of features is needed")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values; clean or impute the features first")
    return arr


def check_pair(a: Any, b: Any, min_rows: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Validate two feature sets that must share their feature dimension."""
    a = as_features(a, "features_a")
    b = as_features(b, "features_b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(
            f"features_a and features_b have different dimensions ({a.shape[1]} vs {b.shape[1]}); "
            "extract both with the same backbone"
        )
    if a.shape[0] < min_rows or b.shape[0] < min_rows:
        raise ValueError(f"need at least {min_rows} items per set; got {a.shape[0]} and {b.shape[0]}")
    return a, b


def subsample_rows(x: np.ndarray, max_n: int | None, rng: np.random.Generator) -> np.ndarray:
    """At most ``max_n`` rows of ``x``, drawn without replacement (order kept); ``x`` itself when small enough."""
    if max_n is None or x.shape[0] <= max_n:
        return x
    idx = np.sort(rng.choice(x.shape[0], size=max_n, replace=False))
    return x[idx]


def jsonable(value: Any) -> Any:
    """Convert dataclasses, numpy scalars/arrays, tuples and non-finite floats into plain JSON values.

    NaN and infinities become ``None`` so that ``json.dumps(..., allow_nan=False)`` succeeds.
    """
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [jsonable(v) for v in value.tolist()]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        f = float(value)
        return f if math.isfinite(f) else None
    return value


class JsonResult:
    """Mixin for result dataclasses: ``to_dict()`` returns a JSON-serialisable dict."""

    def to_dict(self) -> dict:
        return jsonable(self)
