"""Deterministic stratified splits. The eval split of a target set is stored once and reused by every run,
so before/after numbers of different runs on the same data are comparable."""

from __future__ import annotations

import json
import os
import warnings
from collections import Counter, defaultdict
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold

from tlcore.data.dataset import Dataset
from tlcore.errors import DataError
from tlcore.paths import cache_dir


def stratified_split(labels: Sequence[str], fraction: float, *, seed: int = 0, min_per_class: int = 1) -> tuple[list[int], list[int]]:
    """Split indices into (keep, held_out) with ``fraction`` of every class held out (at least ``min_per_class``
    held out and at least one kept). Same labels + fraction + seed -> same split."""
    rng = np.random.default_rng(seed)
    by_class: dict[str, list[int]] = defaultdict(list)
    for i, y in enumerate(labels):
        by_class[y].append(i)
    keep, held = [], []
    single = sorted(y for y, idx in by_class.items() if len(idx) < 2)
    if single:
        many = f" ({len(single)} of {len(by_class)} classes have a single example)" if len(single) > 1 else ""
        raise DataError(f"class {single[0]!r} has 1 example; at least 2 per class are needed to hold some out for "
                        f"evaluation{many}; give an --eval set or add examples")
    for y in sorted(by_class):
        idx = np.array(by_class[y])
        rng.shuffle(idx)
        n_held = min(len(idx) - 1, max(min_per_class, int(round(fraction * len(idx)))))
        held += idx[:n_held].tolist()
        keep += idx[n_held:].tolist()
    return sorted(keep), sorted(held)


def grouped_split(labels: Sequence[str], groups: Sequence[str], fraction: float, *,
                  seed: int = 0) -> tuple[list[int], list[int]]:
    """Split indices into (keep, held_out) holding out whole groups: about ``fraction`` of the items, with the
    class balance kept as far as whole groups allow (scikit-learn's ``StratifiedGroupKFold``: the held-out part is one
    of ``round(1 / fraction)`` folds). No group is on both sides, so a model is scored on objects, speakers or
    drawings it never saw in training."""
    names = sorted(set(groups))
    if len(names) < 2:
        raise DataError(f"all {len(groups)} items are in one group ({names[0]!r}), so no group can be held out for "
                        "evaluation; give an --eval set, more groups, or no groups")
    # scikit-learn refuses more folds than the largest class has items: with small classes the held-out fold is then
    # a larger share (1 / the largest class size) rather than an error
    largest = max(Counter(labels).values())
    if largest < 2:
        raise DataError(f"every class has one item ({len(labels)} items), so none can be held out with its class "
                        "still in training; give an --eval set or add examples")
    folds = min(len(names), max(2, int(round(1 / max(fraction, 1e-9)))), largest)
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    with warnings.catch_warnings():       # "the least populated class has fewer members than n_splits": expected here
        warnings.simplefilter("ignore", UserWarning)
        keep, held = next(splitter.split(np.zeros(len(labels)), list(labels), list(groups)))
    return sorted(keep.tolist()), sorted(held.tolist())


def holdout_split(labels: Sequence[str], groups: Optional[Sequence[str]], fraction: float, *,
                  seed: int = 0) -> tuple[list[int], list[int]]:
    """(keep, held): whole groups held out when the data declares two or more (:func:`grouped_split`), else a
    stratified share of the items (:func:`stratified_split`)."""
    if groups is not None and len(set(groups)) >= 2:
        return grouped_split(labels, groups, fraction, seed=seed)
    return stratified_split(labels, fraction, seed=seed)


def stored_split(key: str, fraction: float, make: Callable[[], tuple[list[int], list[int]]]) -> tuple[list[int], list[int], Path]:
    """The (train, eval) indices of a data set's eval split: made once by ``make()`` and stored on disk under
    ``key`` (the data's content hash) + ``fraction``, then reused by every run of every task, so the before/after
    numbers of all runs on the same data are comparable. Written atomically (temp file + rename)."""
    path = cache_dir("splits") / f"{key}-{fraction:.3f}.json"
    if path.exists():
        stored = json.loads(path.read_text())
        return stored["train"], stored["eval"], path
    train_idx, eval_idx = make()
    tmp = path.with_suffix(".tmp%d" % os.getpid())
    tmp.write_text(json.dumps({"fraction": fraction, "train": train_idx, "eval": eval_idx}))
    os.replace(tmp, path)
    return train_idx, eval_idx, path


def eval_split(ds: Dataset, fraction: float) -> tuple[Dataset, Dataset, Path]:
    """Hold out ``fraction`` of a labeled target set for evaluation (stratified; whole groups when the set declares
    groups), stored by content hash and reused."""
    if ds.labels is None:
        raise DataError("the target set has no labels, so no eval split can be held out; give --eval or labeled data")
    labels, groups = ds.labels, ds.groups
    if groups is None:
        make = lambda: stratified_split(labels, fraction, seed=0)  # noqa: E731
    else:
        make = lambda: grouped_split(labels, groups, fraction, seed=0)  # noqa: E731
    train_idx, eval_idx, path = stored_split(ds.content_hash(), fraction, make)
    return ds.subset(train_idx), ds.subset(eval_idx), path


def cap_per_class(ds: Dataset, max_per_class: int | None, *, seed: int) -> Dataset:
    """Keep at most ``max_per_class`` examples of each class (a seeded choice)."""
    if max_per_class is None or ds.labels is None:
        return ds
    rng = np.random.default_rng(seed)
    by_class: dict[str, list[int]] = defaultdict(list)
    for i, y in enumerate(ds.labels):
        by_class[y].append(i)
    chosen = []
    for y in sorted(by_class):
        idx = np.array(by_class[y])
        rng.shuffle(idx)
        chosen += idx[:max_per_class].tolist()
    return ds.subset(sorted(chosen))
