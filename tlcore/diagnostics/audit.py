"""Label issues and data problems of one labeled set, found with cleanlab on out-of-sample probabilities and
pretrained features (``python -m tlcore audit``, :func:`tlcore.api.audit`, the Data page's "Audit labels").

* **Likely mislabeled** (confident learning: Northcutt, Jiang & Chuang, "Confident Learning: Estimating Uncertainty
  in Dataset Labels", JAIR 2021): ``cleanlab.filter.find_label_issues`` with ``prune_by_noise_rate`` on (n, classes)
  out-of-sample predicted probabilities ``p`` (each item scored by a model that never saw it); the score is
  ``cleanlab.rank.get_label_quality_scores`` (self-confidence ``p_i[y_i]``), the suggested label ``argmax_k p_ik``.
* **Exact duplicates**: items with the same content key (file bytes or normalised text). Copies under one label:
  every copy after the first is flagged (removing it leaves one); copies under different labels: every copy is
  flagged as a conflict (which label is right is for a person to say).
* **Near-duplicates**: cleanlab Datalab's rule (``NearDuplicateIssueManager``): items ``i, j`` whose cosine distance on
  the pretrained features is below ``NEAR_DUPLICATE_FACTOR`` x the median nearest-neighbour distance of the set.
  Score ``exp(-d / median)`` (Datalab's near-duplicate score); pairs under different labels are conflicts.
* **Train/eval duplicates** (with an eval set): training items identical or near-identical (the same radius) to an
  eval item; the training item is flagged, the eval set is never changed.
* **Outliers**: ``cleanlab.outlier.OutOfDistribution`` on the features (score: cleanlab's, from the mean distance to
  the ``k`` nearest neighbours); flagged by Datalab's rule for features: a mean kNN distance above
  ``Q3 + (1 / OUTLIER_THRESHOLD - 1) x IQR`` of the set's mean kNN distances.

Every score is in [0, 1] with cleanlab's convention: **lower = more likely a problem**. Shapes: ``labels`` (n,) class
indices, ``pred_probs`` (n, classes), ``features`` (n, d), ``eval_features`` (m, d).
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator, Optional, Sequence

import numpy as np
from cleanlab.filter import find_label_issues
from cleanlab.multilabel_classification import get_label_quality_scores as multilabel_quality_scores
from cleanlab.outlier import OutOfDistribution
from cleanlab.rank import get_label_quality_scores
from sklearn.neighbors import NearestNeighbors

from tlcore.diagnostics._common import JsonResult, as_features
from tlcore.errors import ConfigError, DataError
from tlcore.progress import ProgressFn, no_progress
from tlcore.tasks import get_task
from tlcore.tasks.detect import resolve_task

#: Datalab's defaults (cleanlab 2.9: ``NearDuplicateIssueManager.threshold``, ``OutlierIssueManager`` for features).
NEAR_DUPLICATE_FACTOR = 0.13
OUTLIER_THRESHOLD = 0.37037
OUTLIER_K = 10

#: The kinds of issue, in the order a table lists them, with what each means.
KINDS = {
    "label": "likely mislabeled: the cross-validated probe puts little probability on the given label",
    "conflict": "identical or near-identical items with different labels",
    "train_eval_duplicate": "a training item identical or near-identical to an eval item",
    "exact_duplicate": "an identical copy of another item under the same label",
    "near_duplicate": "a near-identical copy of another item under the same label (pretrained features)",
    "outlier": "far from every other item on the pretrained features",
}

METHOD = {
    "label": "cleanlab.filter.find_label_issues (confident learning, prune_by_noise_rate) on out-of-fold probabilities "
             "of a linear probe on the pretrained features; score: cleanlab.rank.get_label_quality_scores "
             "(self-confidence), suggested label: the probe's most probable class",
    "near_duplicate": f"cosine distance on the pretrained features below {NEAR_DUPLICATE_FACTOR} x the median "
                      "nearest-neighbour distance (cleanlab Datalab's near-duplicate rule); score exp(-d / median)",
    "exact_duplicate": "identical file bytes or text (white space and Unicode normalisation ignored)",
    "outlier": f"cleanlab.outlier.OutOfDistribution on the features ({OUTLIER_K} nearest neighbours, cosine); flagged "
               f"when the mean neighbour distance exceeds Q3 + {1 / OUTLIER_THRESHOLD - 1:.2f} x IQR (Datalab's rule)",
    "scores": "every score is in [0, 1]; lower = more likely a problem (cleanlab's convention)",
}


@dataclass
class DataIssue(JsonResult):
    """One problem with one item: ``index`` into the audited set, ``kind`` (a :data:`KINDS` key), ``score`` in [0, 1]
    (lower = worse), ``reason`` in words; ``suggested``: the class index a label issue suggests (multi-label: the
    label indices); ``other``: the item it duplicates (an index into the same set, or into the eval set for
    ``train_eval_duplicate``)."""

    index: int
    kind: str
    score: float
    reason: str
    suggested: Optional[int | list[int]] = None
    other: Optional[int] = None


@dataclass
class IssueScan(JsonResult):
    """What :func:`find_data_issues` found in one set: its issues (by kind in :data:`KINDS` order, then score) and
    the counts per kind; ``label_skipped`` says why label issues were not looked for (else None)."""

    n: int
    issues: list[DataIssue] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    median_nn_distance: Optional[float] = None
    label_skipped: Optional[str] = None
    notes: list[str] = field(default_factory=list)     # what cleanlab warned about (e.g. classes too small)


@contextmanager
def cleanlab_notes(notes: list[str]) -> Iterator[None]:
    """cleanlab's warnings (a class too small to estimate its noise rate...) into ``notes``, not onto stderr: library
    code never prints, and the report shows them."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for w in caught:
        if str(w.message) not in notes:
            notes.append(str(w.message))


def _nearest(features: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(outlier scores (n,), distances (n, k), neighbour indices (n, k)) of cleanlab's OutOfDistribution on the
    features; the distances exclude each item itself."""
    ood = OutOfDistribution(params={"k": k})
    scores = ood.fit_score(features=features, verbose=False)
    dist, idx = ood.params["knn"].kneighbors()
    return np.asarray(scores, dtype=np.float64), dist, idx


def _pairs_within(dist: np.ndarray, idx: np.ndarray, radius: float) -> list[tuple[int, int, float]]:
    """Unordered pairs (i < j, distance) of neighbours closer than ``radius``, closest first."""
    found: dict[tuple[int, int], float] = {}
    for i in range(len(idx)):
        for d, j in zip(dist[i], idx[i]):
            if d < radius and i != j:
                found[(min(i, int(j)), max(i, int(j)))] = float(d)
    return sorted(((i, j, d) for (i, j), d in found.items()), key=lambda t: (t[2], t[0], t[1]))


def find_data_issues(labels: Sequence[int], pred_probs: Optional[np.ndarray], features: np.ndarray, *,
                     classes: Sequence[str], names: Optional[Sequence[str]] = None,
                     keys: Optional[Sequence[str]] = None, eval_features: Optional[np.ndarray] = None,
                     eval_keys: Optional[Sequence[str]] = None, eval_names: Optional[Sequence[str]] = None,
                     label_skipped: Optional[str] = None) -> IssueScan:
    """Label issues, exact and near-duplicates, train/eval duplicates and outliers of one labeled set (module
    docstring for each rule). ``pred_probs`` None: no label issues (``label_skipped`` says why). ``keys``: content
    keys for exact duplicates (None: none looked for); ``names``: how items are named in reasons (default ``#i``).
    Deterministic: cleanlab runs in one process and the neighbour search is exact."""
    y = np.asarray(labels, dtype=int)
    x = as_features(features, "features")
    n = len(y)
    if x.shape[0] != n:
        raise ValueError(f"features has {x.shape[0]} rows for {n} labels")
    name = (lambda i: str(names[i])) if names is not None else (lambda i: f"#{i}")
    cls = lambda k: repr(str(classes[k]))  # noqa: E731
    issues: list[DataIssue] = []
    notes: list[str] = []
    if pred_probs is not None:
        p = np.asarray(pred_probs, dtype=np.float64)
        with cleanlab_notes(notes):
            quality = get_label_quality_scores(y, p)
            flagged = find_label_issues(y, p, filter_by="prune_by_noise_rate", n_jobs=1)
        for i in np.flatnonzero(flagged):
            top = int(p[i].argmax())
            issues.append(DataIssue(int(i), "label", float(quality[i]), suggested=top, reason=(
                f"labeled {cls(y[i])}, but the cross-validated probe gives it {p[i, y[i]]:.2f} and {cls(top)} "
                f"{p[i, top]:.2f}")))
    # exact duplicates (by content)
    exact: set[tuple[int, int]] = set()
    if keys is not None:
        groups: dict[str, list[int]] = {}
        for i, key in enumerate(keys):
            groups.setdefault(key, []).append(i)
        for members in groups.values():
            if len(members) < 2:
                continue
            exact.update((a, b) for a in members for b in members if a < b)
            if len({int(y[i]) for i in members}) > 1:
                for i in members:
                    others = [j for j in members if j != i and y[j] != y[i]]
                    issues.append(DataIssue(i, "conflict", 0.0, other=others[0], reason=(
                        f"identical to {name(others[0])}, which is labeled {cls(y[others[0]])} (this one: "
                        f"{cls(y[i])})")))
            else:
                issues += [DataIssue(i, "exact_duplicate", 0.0, other=members[0], reason=(
                    f"identical to {name(members[0])} (same label {cls(y[i])}): one item counted twice"))
                    for i in members[1:]]
    median = None
    if n >= 3:
        k = min(OUTLIER_K, n - 1)
        ood, dist, idx = _nearest(x, k)
        median = max(float(np.median(dist[:, 0])), 1e-12)
        radius = NEAR_DUPLICATE_FACTOR * median
        flagged_near: set[int] = set()
        for i, j, d in _pairs_within(dist, idx, radius):
            if (i, j) in exact:
                continue
            score = float(np.exp(-d / median))
            if y[i] != y[j]:
                for a, b in ((i, j), (j, i)):
                    issues.append(DataIssue(a, "conflict", score, other=b, reason=(
                        f"nearly identical to {name(b)} on the pretrained features (distance {d:.3g}, "
                        f"{d / median:.2f} x the median neighbour distance) but labeled {cls(y[a])} where it is "
                        f"{cls(y[b])}")))
            elif j not in flagged_near:
                flagged_near.add(j)
                issues.append(DataIssue(j, "near_duplicate", score, other=i, reason=(
                    f"nearly identical to {name(i)} (same label {cls(y[j])}) on the pretrained features: distance "
                    f"{d:.3g}, {d / median:.2f} x the median neighbour distance")))
        mean_dist = dist.mean(1)
        q1, q3 = np.percentile(mean_dist, [25, 75])
        limit = float(q3 + (1 / OUTLIER_THRESHOLD - 1) * (q3 - q1))
        for i in np.flatnonzero(mean_dist > limit):
            issues.append(DataIssue(int(i), "outlier", float(ood[i]), reason=(
                f"far from every other item on the pretrained features: mean distance to its {k} nearest neighbours "
                f"{mean_dist[i]:.3g}, above the set's outlier limit {limit:.3g}")))
        if eval_features is not None and len(eval_features):
            issues += _train_eval(x, as_features(eval_features, "eval_features"), radius, name, keys, eval_keys,
                                  eval_names)
    order = list(KINDS)
    issues.sort(key=lambda t: (order.index(t.kind), t.score, t.index))
    counts = {kind: sum(t.kind == kind for t in issues) for kind in KINDS}
    return IssueScan(n=n, issues=issues, counts=counts, median_nn_distance=median, label_skipped=label_skipped,
                     notes=notes)


def find_multilabel_issues(label_sets: Sequence[Sequence[int]], pred_probs: np.ndarray, *, classes: Sequence[str],
                           notes: Optional[list[str]] = None) -> list[DataIssue]:
    """Likely wrong label sets of multi-label items: ``cleanlab.filter.find_label_issues(multi_label=True)`` on (n, K)
    out-of-sample per-label probabilities ``pred_probs`` (one-vs-rest); score
    ``cleanlab.multilabel_classification.get_label_quality_scores``; the suggested set is the labels with
    probability >= 0.5. ``label_sets``: each item's label indices (possibly none)."""
    p = np.asarray(pred_probs, dtype=np.float64)
    sets = [sorted(int(k) for k in ys) for ys in label_sets]
    with cleanlab_notes(notes if notes is not None else []):
        quality = multilabel_quality_scores(sets, p)
        flagged = find_label_issues(sets, p, filter_by="prune_by_noise_rate", multi_label=True, n_jobs=1)
    names = lambda ks: "{" + ", ".join(repr(str(classes[k])) for k in ks) + "}"  # noqa: E731
    out = []
    for i in np.flatnonzero(flagged):
        suggested = [int(k) for k in np.flatnonzero(p[i] >= 0.5)]
        given, wanted = set(sets[i]), set(suggested)
        doubts = [f"{classes[k]!r} {p[i, k]:.2f}" for k in sorted(given - wanted)]
        missing = [f"{classes[k]!r} {p[i, k]:.2f}" for k in sorted(wanted - given)]
        why = "; ".join(([f"the cross-validated probes doubt {', '.join(doubts)}"] if doubts else [])
                        + ([f"they also give {', '.join(missing)}"] if missing else [])) or "low confidence in the set"
        out.append(DataIssue(int(i), "label", float(quality[i]), suggested=suggested,
                             reason=f"labeled {names(sets[i])}: {why}"))
    return out


def _train_eval(x: np.ndarray, e: np.ndarray, radius: float, name: Callable[[int], str],
                keys: Optional[Sequence[str]], eval_keys: Optional[Sequence[str]],
                eval_names: Optional[Sequence[str]]) -> list[DataIssue]:
    """Training items identical (content keys) or within ``radius`` (cosine, pretrained features) of an eval item."""
    ename = (lambda j: str(eval_names[j])) if eval_names is not None else (lambda j: f"eval #{j}")
    out: dict[int, DataIssue] = {}
    if keys is not None and eval_keys is not None:
        where = {key: j for j, key in enumerate(eval_keys)}
        for i, key in enumerate(keys):
            if key in where:
                out[i] = DataIssue(i, "train_eval_duplicate", 0.0, other=where[key], reason=(
                    f"identical to eval item {ename(where[key])}: the eval score would count an item the model "
                    "trained on"))
    dist, idx = NearestNeighbors(n_neighbors=1, metric="cosine").fit(e).kneighbors(x)
    for i in np.flatnonzero(dist[:, 0] < radius):
        if int(i) not in out:
            j, d = int(idx[i, 0]), float(dist[i, 0])
            out[int(i)] = DataIssue(int(i), "train_eval_duplicate", float(np.exp(-d / (radius / NEAR_DUPLICATE_FACTOR))),
                                    other=j, reason=(f"nearly identical to eval item {ename(j)} on the pretrained "
                                                     f"features (distance {d:.3g}): the eval score would count an "
                                                     "item much like one the model trained on"))
    return list(out.values())


def run_audit(modality: str, target: str, *, eval: Optional[str] = None, source: Optional[str] = None,
              backbone: Optional[str] = None, task: Optional[str] = None, seed: int = 0,
              progress: ProgressFn = no_progress) -> dict:
    """The audit report of a labeled target (and source) set: the task's ``audit`` part does the work (classification
    only in this version); ``task=None`` detects it from the data."""
    task = resolve_task(task, modality, ("target", target))
    spec = get_task(task)
    try:
        part = spec.part("audit")
    except ConfigError:
        raise ConfigError(f"the label audit covers classification; task {spec.name!r} ({spec.description}) has none "
                          "in this version") from None
    return part.audit(modality, target, eval_path=eval, source=source, backbone=backbone, seed=seed, progress=progress)


def require_classes(labels: Optional[Sequence[str]], what: str) -> None:
    """DataError for a set the audit cannot use: no labels, or one class (no other label to suggest)."""
    if labels is None:
        raise DataError(f"{what} has no labels: the audit checks labels against a model trained on the others; give "
                        "a labeled set (label folders or a 'label' column), or cluster unlabeled data with "
                        "`python -m tlcore cluster`")
    if len(set(labels)) < 2:
        only = next(iter(set(labels)), "")
        raise DataError(f"{what} has a single class ({only!r}): the audit compares each label with the other classes; "
                        "give at least 2 classes")
