"""Multi-label's part of "what to label next" (:mod:`tlcore.experiments.label_next` calls it): label-set data, the
sigmoid probe behind the suggested label sets and the margin strategies, the curve's metric (micro-F1, the task's
headline), and the labeled list folded into a new version of the set in the set's own format.

* **Probe** — the task's multi-label linear probe (:func:`~tlcore.tasks.multilabel.model.fit_sigmoid_head`: one
  logistic regression per label, L2 strength by cross-validated log loss on the training items), ``p_j(x) =
  σ(w_j·x + b_j)``. It is fitted on every labeled training item, so no validation part is left to choose thresholds
  on: the suggested set is the labels with ``p_j > 0.5`` (the default threshold of
  :func:`~tlcore.tasks.multilabel.metrics.choose_thresholds`), written ``a|b`` (``(none)`` for the empty set).
* **Uncertainty** — the min-margin rule of multi-label active learning (Brinker, "On Active Learning in Multi-label
  Classification", GfKl 2006: the example whose *least certain* binary decision is closest to the boundary): per
  label the binary margin ``m_j = |p_j − (1 − p_j)| = |2 p_j − 1|``, per item the smallest over labels, and
  ``u(x) = 1 − min_j |2 p_j(x) − 1|`` (1: some label at p = 0.5; 0: every label certain), the scale of
  classification's ``1 − (p₁ − p₂)``. ``suggested_p`` is the probe's confidence in its weakest decision,
  ``min_j max(p_j, 1 − p_j) = (1 + min_j m_j) / 2``.
* **Curve** — micro-F1 at threshold 0.5 (:mod:`tlcore.tasks.multilabel.metrics`) of the probe on seeded subsets;
  each subset holds one positive item of each label first (where the training items have one), then random items.
"""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path
from typing import Callable, Optional

import numpy as np
from scipy.special import expit

from tlcore.data.dataset import Dataset
from tlcore.data.label_list import read_label_list, unique_name
from tlcore.data.loaders import load_dataset, resolve_data_path
from tlcore.errors import DataError
from tlcore.tasks.multilabel.data import (
    MultiLabelData,
    check_trainable,
    eval_split,
    find_table,
    load_multilabel,
    parse_labels,
)
from tlcore.tasks.multilabel.model import fit_sigmoid_head

METRIC = "micro-F1"
LIST_HINT = "each item's labels as `a|b` (`(none)` for an item with none of them)"   # for forms
THRESHOLD = 0.5
NO_LABELS = "(none)"   # the empty label set in the list (an empty cell means "not labeled yet")
MARGIN = ("min-margin over labels (Brinker, GfKl 2006): per label the binary margin |2p - 1| of the sigmoid probe, "
          "per item the smallest (its most uncertain label), u = 1 - min_j |2p_j - 1|")


def _load(path: str, modality: str, on_bad_file: str, *, require_labels: bool = False) -> MultiLabelData:
    data = load_multilabel(path, on_bad_file=on_bad_file, require_labels=require_labels)
    if data.modality != modality:
        raise DataError(f"{path} is a table of {data.modality} items, not {modality}; give --modality {data.modality}")
    return data


def load_pool(path: str, modality: str, on_bad_file: str) -> tuple[Dataset, bool]:
    """(the pool's items, whether it came with labels): a multi-label table (with or without its ``labels`` column),
    else a plain folder or .zip of files (an upload of unlabeled images)."""
    try:
        find_table(resolve_data_path(path))
    except DataError:
        ds = load_dataset(path, modality, on_error=on_bad_file)
        return Dataset(modality, ds.items, None, origin=ds.origin, names=ds.names, problems=ds.problems), False
    data = _load(path, modality, on_bad_file)
    return data.dataset(), data.label_sets is not None


def load_labeled(path: str, modality: str, on_bad_file: str, what: str) -> MultiLabelData:
    """A labeled multi-label set (the target: two labels or more, none on every item); DataError otherwise."""
    data = _load(path, modality, on_bad_file)
    if data.label_sets is None:
        raise DataError(f"the {what} {path} has no 'labels' column; give each row its labels as a|b or a JSON list, "
                        "or leave it out")
    if what == "labeled target":
        try:
            check_trainable(data)
        except DataError as exc:
            raise DataError(f"the labeled target: {exc}; the probe behind the suggested labels, the margin strategies "
                            "and the projection need it (typiclust ranks without labels: leave the target out)") from None
    return data


def split(data: MultiLabelData, fraction: float) -> tuple[MultiLabelData, MultiLabelData]:
    """(train, eval): the eval split every multi-label run of the set holds out."""
    train, held, _ = eval_split(data, fraction)
    return train, held


def features_data(data: MultiLabelData) -> Dataset:
    return data.dataset()


def vocabulary(*sets: MultiLabelData) -> list[str]:
    return sorted({y for d in sets for y in d.vocabulary()})


def targets(data: MultiLabelData, classes: list[str]) -> np.ndarray:
    """(n, labels) 0/1 matrix."""
    return data.multi_hot(classes)


def fit_probe(train_f: np.ndarray, y: np.ndarray, n_classes: int, seed: int) -> Callable[[np.ndarray], np.ndarray]:
    """The sigmoid probe as a function from (n, d) features to (n, labels) probabilities."""
    weight, bias, _ = fit_sigmoid_head(train_f, y, seed=seed)
    w, b = weight.numpy().astype(np.float64), bias.numpy().astype(np.float64)
    return lambda f: expit(np.asarray(f, dtype=np.float64) @ w.T + b)


def min_margin(probs: np.ndarray) -> np.ndarray:
    """(n,) ``min_j |2 p_j − 1|`` of (n, labels) sigmoid probabilities: the margin of each item's most uncertain
    label (module docstring)."""
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[1] < 1:
        raise ValueError("min-margin needs per-label probabilities, shape (n, labels)")
    return np.abs(2.0 * probs - 1.0).min(1)


def uncertainty(probs: np.ndarray) -> np.ndarray:
    """(n,) ``1 − min_j |2 p_j − 1|``: 1 when some label sits at p = 0.5, 0 when every label is certain."""
    return 1.0 - min_margin(probs)


def label_set_text(labels) -> str:
    """A label set as the set's tables write it: ``a|b``, or :data:`NO_LABELS` for the empty set."""
    return "|".join(labels) or NO_LABELS


def suggest(probs: np.ndarray, classes: list[str]) -> list[tuple[str, float]]:
    """Per item: (the labels with p > 0.5 as ``a|b``, the confidence of its weakest decision)."""
    conf = (1.0 + min_margin(probs)) / 2.0
    return [(label_set_text([classes[j] for j in np.flatnonzero(p > THRESHOLD)]), float(c))
            for p, c in zip(probs, conf)]


def score(probs: np.ndarray, y: np.ndarray) -> float:
    """Micro-F1 at threshold 0.5: ``2·TP / (2·TP + FP + FN)`` over every (item, label) pair."""
    pred, truth = probs > THRESHOLD, np.asarray(y) > 0
    tp, wrong = float((pred & truth).sum()), float((pred ^ truth).sum())
    return 2 * tp / (2 * tp + wrong) if tp + wrong else 0.0


def curve_subset(y: np.ndarray, size: int, seed: int) -> np.ndarray:
    """``size`` training indices: one positive item of each label (each label the probe can learn), the rest at
    random."""
    rng = np.random.default_rng(seed)
    first: list[int] = []
    for j in range(y.shape[1]):
        on = np.setdiff1d(np.flatnonzero(y[:, j] > 0), first)
        if len(on) and not (y[first, j] > 0).any():
            first.append(int(rng.choice(on)))
    rest = rng.permutation(np.setdiff1d(np.arange(len(y)), first))[:max(0, size - len(first))]
    return np.sort(np.concatenate([first, rest]).astype(int))


def smallest_curve_size(y: np.ndarray) -> int:
    return max(2, int((y.sum(0) > 0).sum()))


# ---------------------------------------------------------------- the labeled list as a new version of the set

def read_label_sets(sheet: str, pool: Dataset) -> tuple[list[int], list[tuple[str, ...]]]:
    """(pool indices, label sets) of the list's filled-in rows: ``a|b`` or a JSON list, :data:`NO_LABELS` for an item
    that has none of the labels."""
    picked, cells = read_label_list(sheet, pool)
    return picked, [() if c == NO_LABELS else parse_labels(c, f"the list's label of {pool.names[i]!r}")
                    for i, c in zip(picked, cells)]


def _csv(header: list[str], rows: list[list]) -> str:
    out = io.StringIO()
    csv.writer(out).writerows([header] + rows)
    return out.getvalue()


def _table(split: str, modality: str, items: list, label_sets: Optional[list],
           groups: Optional[list]) -> tuple[str, bytes]:
    """(file name, bytes) of one split: a ``text,labels`` CSV, or a .zip of ``labels.csv`` (``path,labels``) and the
    images under ``images/`` — the tables :func:`~tlcore.tasks.multilabel.data.load_multilabel` reads."""
    header = ["text" if modality == "text" else "path"] + (["labels"] if label_sets is not None else []) + (
        ["group"] if groups is not None else [])

    def row(i: int, value: str) -> list:
        return [value] + (["|".join(label_sets[i])] if label_sets is not None else []) + (
            [groups[i]] if groups is not None else [])

    if modality == "text":
        return f"{split}.csv", _csv(header, [row(i, x) for i, x in enumerate(items)]).encode("utf-8")
    buf, rows, used = io.BytesIO(), [], set()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for i, x in enumerate(items):
            rel = unique_name(f"images/{Path(x).name}", used)
            z.write(x, rel)
            rows.append(row(i, rel))
        z.writestr("labels.csv", _csv(header, rows))
    return f"{split}.zip", buf.getvalue()


def new_version(target: str, pool: str, sheet: str, *, modality: str, eval: Optional[str],
                eval_fraction: float) -> tuple[dict[str, tuple[str, bytes]], int]:
    """(the new version's files ``{"target": (name, bytes), "unlabeled": ..., "eval": ...}``, how many items were
    labeled): the target's label sets plus the newly labeled pool items, the pool's other items, and (without
    ``eval``) the target's held-out eval items, so the new version is scored on the very same items. A target that
    declares groups keeps them; each newly labeled item is its own group."""
    pool_ds, _ = load_pool(pool, modality, "skip")
    picked, sets = read_label_sets(sheet, pool_ds)
    data = _load(target, modality, "skip")
    if data.label_sets is None:
        raise DataError("the target has no labels; the new version adds label sets to a labeled target")
    held = None
    if eval is None:
        data, held = split(data, eval_fraction)
    groups = None if data.groups is None else data.groups + [f"new-{pool_ds.names[i]}" for i in picked]
    files = {"target": _table("target", modality, data.items + [pool_ds.items[i] for i in picked],
                              list(data.label_sets or []) + sets, groups)}
    rest = [x for i, x in enumerate(pool_ds.items) if i not in set(picked)]
    if rest:
        files["unlabeled"] = _table("unlabeled", modality, rest, None, None)
    if held is not None:
        files["eval"] = _table("eval", modality, held.items, held.label_sets, held.groups)
    return files, len(picked)
