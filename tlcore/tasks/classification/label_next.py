"""Classification's part of "what to label next" (:mod:`tlcore.experiments.label_next` calls it): its labeled data,
the probe behind the suggested labels and the margin strategies, the curve's metric (accuracy), and the labeled list
folded into a new version of the set (:mod:`tlcore.data.label_list`).

The probe is the linear probe of every run (:func:`~tlcore.strategies.linear_probe.fit_linear_head`, softmax over the
classes); its uncertainty is the margin ``1 − (p₁ − p₂)`` (Scheffer et al., IDA 2001;
:func:`~tlcore.experiments.selection.margin_uncertainty`) and its suggestion the most probable class.
"""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np
from scipy.special import softmax

from tlcore.data.dataset import Dataset
from tlcore.data.label_list import labeled_version, read_label_list
from tlcore.data.loaders import load_dataset
from tlcore.data.split import eval_split
from tlcore.errors import DataError
from tlcore.experiments.selection import margin_uncertainty
from tlcore.strategies.linear_probe import fit_linear_head

METRIC = "accuracy"
LIST_HINT = "each item's class"   # what the list's label column takes, for forms
MARGIN = ("margin sampling (Scheffer et al., IDA 2001): the smallest gap between the probe's top two classes, "
          "u = 1 - (p1 - p2)")


def load_pool(path: str, modality: str, on_bad_file: str) -> tuple[Dataset, bool]:
    """(the pool's items, whether it came with labels)."""
    ds = load_dataset(path, modality, on_error=on_bad_file)
    return ds, ds.labels is not None


def load_labeled(path: str, modality: str, on_bad_file: str, what: str) -> Dataset:
    """A labeled set of two classes or more; DataError otherwise, saying what to give instead."""
    ds = load_dataset(path, modality, on_error=on_bad_file)
    if ds.labels is None:
        raise DataError(f"the {what} {path} has no labels; give labeled data (e.g. <label>/<file> folders or a "
                        "'label' column), or leave it out")
    if what == "labeled target" and len(ds.classes) < 2:
        raise DataError(f"the labeled target {path} holds one class ({ds.classes[0]!r}); the probe behind the "
                        "suggested labels, the margin strategies and the projection needs two or more: label examples "
                        "of another class, or leave the target out (typiclust ranks without labels)")
    return ds


def split(data: Dataset, fraction: float) -> tuple[Dataset, Dataset]:
    """(train, eval): the eval split every run of the set holds out."""
    train, held, _ = eval_split(data, fraction)
    return train, held


def features_data(data: Dataset) -> Dataset:
    return data


def vocabulary(*sets: Dataset) -> list[str]:
    return sorted({y for d in sets for y in d.labels or []})


def targets(data: Dataset, classes: list[str]) -> np.ndarray:
    """(n,) class indices."""
    return np.array([classes.index(c) for c in data.labels or []], dtype=int)


def fit_probe(train_f: np.ndarray, y: np.ndarray, n_classes: int, seed: int) -> Callable[[np.ndarray], np.ndarray]:
    """The linear probe (its L2 strength cross-validated on the training items only) as a function from (n, d)
    features to (n, classes) probabilities."""
    weight, bias, _ = fit_linear_head(train_f, y, n_classes, seed=seed)
    w, b = weight.numpy().astype(np.float64), bias.numpy().astype(np.float64)
    return lambda f: softmax(np.asarray(f, dtype=np.float64) @ w.T + b, axis=1)


def uncertainty(probs: np.ndarray) -> np.ndarray:
    return margin_uncertainty(probs)


def suggest(probs: np.ndarray, classes: list[str]) -> list[tuple[str, float]]:
    """Per item: (the most probable class, its probability)."""
    return [(classes[int(p.argmax())], float(p.max())) for p in probs]


def score(probs: np.ndarray, y: np.ndarray) -> float:
    """Accuracy of the argmax."""
    return float((probs.argmax(1) == y).mean())


def curve_subset(y: np.ndarray, size: int, seed: int) -> np.ndarray:
    """``size`` training indices: one of each class (so the probe sees every class), the rest at random."""
    rng = np.random.default_rng(seed)
    first = [int(rng.choice(np.flatnonzero(y == c))) for c in np.unique(y)]
    rest = rng.permutation(np.setdiff1d(np.arange(len(y)), first))[:max(0, size - len(first))]
    return np.sort(np.concatenate([first, rest]).astype(int))


def smallest_curve_size(y: np.ndarray) -> int:
    return len(np.unique(y))


def new_version(target: str, pool: str, sheet: str, *, modality: str, eval: Optional[str],
                eval_fraction: float) -> tuple[dict[str, tuple[str, bytes]], int]:
    """(the new version's files, how many items were labeled) from the filled-in list ``sheet``; without ``eval``, the
    target's held-out eval items are kept as the new version's eval split (:func:`~tlcore.data.label_list.
    labeled_version`)."""
    pool_ds = load_dataset(pool, modality)
    picked, labels = read_label_list(sheet, pool_ds)
    data = load_dataset(target, modality)
    held = None
    if eval is None:
        data, held, _ = eval_split(data, eval_fraction)
    return labeled_version(data, pool_ds, picked, labels, eval=held), len(picked)
