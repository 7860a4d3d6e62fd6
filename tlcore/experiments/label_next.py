"""What to label next: rank an unlabeled pool for labeling, and project the accuracy more labels would bring.

:func:`run_label_next` loads the pool (and the labeled target, when there is one), extracts the backbone's pretrained
features (cached), chooses ``budget`` pool items with a strategy of :mod:`tlcore.experiments.selection` and, when the
labeled data allows, projects "expected accuracy with N more labels" from a data-efficiency curve
(:mod:`tlcore.experiments.projection`). The curve is a curve run's report (``curve``) or, without one, measured here
cheaply: a linear probe (:func:`~tlcore.strategies.linear_probe.fit_linear_head`) on the pretrained features of
seeded subsets of the labeled training items, 3 seeds per size, scored on the eval split (the set's eval data, else
the split every run of the set holds out). The projection assumes new labels like the curve's (drawn at random), so
it is reported as a projection, never as a measurement.

Strategies: ``typiclust`` (default: suits budgets of about a label or a few per class, needs no labels),
``margin_kcenter``, ``margin``, ``kcenter`` and ``random``; ``margin`` and ``margin_kcenter`` need a labeled target
of two classes or more (their uncertainty comes from a probe trained on it). Measured against random selection in
docs/benchmarks.md (benchmarks/label_next_table.py).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
from scipy.special import softmax

from tlcore.config import LIMITS
from tlcore.data.dataset import Dataset
from tlcore.data.loaders import load_dataset
from tlcore.data.overlap import content_key, item_kind
from tlcore.data.split import eval_split
from tlcore.errors import DataError
from tlcore.experiments.projection import fit_learning_curve
from tlcore.experiments.selection import kcenter_greedy, margin_select, margin_uncertainty, random_select, typiclust
from tlcore.models.features import extract_features
from tlcore.models.registry import build_backbone
from tlcore.progress import Progress, ProgressFn, no_progress
from tlcore.strategies.linear_probe import fit_linear_head

#: The most pool items one ranking takes (k-means, k-center distances and typicality stay within seconds to a minute).
MAX_POOL = 20_000
MAX_BUDGET = LIMITS["budget"]["max"]
LABEL_NEXT_STRATEGIES = ("typiclust", "margin_kcenter", "margin", "kcenter", "random")
NEEDS_LABELS = ("margin_kcenter", "margin")
CURVE_SEEDS = (0, 1, 2)
CURVE_SIZES = 6
PROJECTION_STEPS = 20


@dataclass
class LabelNextResult:
    """The ranked pool items (``ranked``: rank, item, name, score, suggested label), the projection (or why there is
    none, ``projection_missing``) and warnings; ``to_dict`` is the JSON the CLI writes."""

    modality: str
    backbone: str
    strategy: str
    budget: int
    pool: dict
    labeled: dict
    ranked: list = field(default_factory=list)
    projection: Optional[dict] = None
    projection_missing: Optional[str] = None
    warnings: list = field(default_factory=list)
    method: str = ""

    def to_dict(self) -> dict:
        return {"kind": "label_next", **asdict(self)}


METHODS = {
    "typiclust": "TypiClust (Hacohen, Dekel & Weinshall, ICML 2022): k-means into labeled + budget clusters, then the "
                 "most typical item (inverse mean distance to its 20 nearest neighbours) of the largest cluster with "
                 "the fewest labels, one per pick",
    "margin_kcenter": "margin x k-center greedy: argmax of (1 - (p1 - p2)) x distance to the nearest labeled or chosen "
                      "item (margin: Scheffer et al. 2001; k-center greedy: Sener & Savarese, ICLR 2018)",
    "margin": "margin sampling (Scheffer et al., IDA 2001): the smallest gap between the probe's top two classes",
    "kcenter": "k-center greedy (Sener & Savarese, ICLR 2018): the item farthest from every labeled or chosen item",
    "random": "uniformly at random (the baseline)",
}


def _load_labeled(path: str, modality: str, on_bad_file: str, what: str) -> Dataset:
    ds = load_dataset(path, modality, on_error=on_bad_file)
    if ds.labels is None:
        raise DataError(f"the {what} {path} has no labels; give labeled data (e.g. <label>/<file> folders or a "
                        "'label' column), or leave it out")
    return ds


def fit_probe(train_f: np.ndarray, y: np.ndarray, n_classes: int, seed: int):
    """The linear probe (:func:`~tlcore.strategies.linear_probe.fit_linear_head`, its L2 strength cross-validated on
    the training items only) fitted on (``train_f``, ``y``), as a function from (n, d) features to (n, classes)
    probabilities."""
    weight, bias, _ = fit_linear_head(train_f, y, n_classes, seed=seed)
    w, b = weight.numpy().astype(np.float64), bias.numpy().astype(np.float64)
    return lambda f: softmax(np.asarray(f, dtype=np.float64) @ w.T + b, axis=1)


def select(strategy: str, pool_f: np.ndarray, labeled_f: np.ndarray, budget: int, *, probs: Optional[np.ndarray] = None,
           seed: int = 0) -> tuple[list[int], Optional[np.ndarray]]:
    """(chosen pool indices in order, a per-pool-item score or None) of one strategy. ``probs``: (n, classes) class
    probabilities of the pool items, needed by the margin strategies."""
    if strategy in NEEDS_LABELS and probs is None:
        raise DataError(f"strategy {strategy} needs a labeled target with two classes or more; give one, or use "
                        "typiclust")
    if strategy == "typiclust":
        return typiclust(pool_f, labeled_f, budget, seed=seed), None
    if strategy == "margin":
        return margin_select(probs, budget), margin_uncertainty(probs)   # type: ignore[arg-type]
    if strategy == "margin_kcenter":
        u = margin_uncertainty(probs)   # type: ignore[arg-type]
        return kcenter_greedy(pool_f, labeled_f, budget, weights=u, seed=seed), u
    if strategy == "kcenter":
        return kcenter_greedy(pool_f, labeled_f, budget, seed=seed), None
    if strategy == "random":
        return random_select(len(pool_f), budget, seed=seed), None
    raise DataError(f"unknown strategy {strategy!r}; known: {', '.join(LABEL_NEXT_STRATEGIES)}")


def curve_subset(y: np.ndarray, size: int, seed: int) -> np.ndarray:
    """``size`` training indices: one of each class (so the probe sees every class), the rest at random."""
    rng = np.random.default_rng(seed)
    first = [int(rng.choice(np.flatnonzero(y == c))) for c in np.unique(y)]
    rest = rng.permutation(np.setdiff1d(np.arange(len(y)), first))[:max(0, size - len(first))]
    return np.sort(np.concatenate([first, rest]).astype(int))


def probe_curve(train_f: np.ndarray, y: np.ndarray, eval_f: np.ndarray, eval_y: np.ndarray, n_classes: int, *,
                seeds=CURVE_SEEDS, sizes: Optional[list[int]] = None) -> list[dict]:
    """Measured points ``{"train": n, "values": [accuracy per seed]}``: a linear probe on ``n`` seeded training items
    (:func:`curve_subset`), scored on the eval features, at ``sizes`` (default: up to :data:`CURVE_SIZES` sizes spaced
    geometrically from one per class to every training item)."""
    n_train, lo = len(y), len(np.unique(y))
    if sizes is None:
        sizes = sorted({int(round(s)) for s in np.geomspace(max(lo, 2), n_train, CURVE_SIZES)})
    points = []
    for size in sizes:
        values = []
        for seed in seeds:
            idx = curve_subset(y, size, seed) if size < n_train else np.arange(n_train)
            predict = fit_probe(train_f[idx], y[idx], n_classes, seed)
            values.append(float((predict(eval_f).argmax(1) == eval_y).mean()))
            if size >= n_train:
                break      # every training item: the seeds draw the same subset
        points.append({"train": int(size), "values": values, "mean": float(np.mean(values))})
    return points


def curve_points_from_report(path: str) -> tuple[list[dict], str]:
    """The pretrained side of a data-efficiency curve run (its report.json or its folder) as measured points."""
    file = Path(path).expanduser()
    file = file / "report.json" if file.is_dir() else file
    try:
        report = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read the curve report {file}: {exc}; give a curve run's folder or its report.json") from exc
    rows = report.get("points") if isinstance(report, dict) else None
    if not rows or not all(isinstance(p, dict) and "train" in p and "pretrained" in p for p in rows):
        raise DataError(f"{file} is no data-efficiency curve report (no points with 'train' and 'pretrained'); run "
                        "`python -m tlcore curve ... --json` first")
    points = [{"train": int(p["train"]), "values": [float(v) for v in p["pretrained"].get("values")
                                                    or [p["pretrained"]["mean"]]],
               "mean": float(p["pretrained"]["mean"])} for p in rows]
    return points, f"the curve run {file} ({report.get('strategy', 'strategy not recorded')}, pretrained)"


def project(points: list[dict], n_now: int, budget: int, *, seed: int = 0) -> dict:
    """The fitted projection at ``n_now + N`` for N from 0 to ``budget`` (about :data:`PROJECTION_STEPS` steps)."""
    extra = sorted({int(round(x)) for x in np.linspace(0, budget, PROJECTION_STEPS + 1)})
    n = [p["train"] for p in points for _ in p["values"]]
    acc = [v for p in points for v in p["values"]]
    fit = fit_learning_curve(n, acc, [n_now + e for e in extra], seed=seed)
    return {**fit, "n_now": n_now, "more_labels": extra} if "missing" not in fit else fit


def run_label_next(modality: str, pool: str, *, target: Optional[str] = None, eval: Optional[str] = None,
                   backbone: Optional[str] = None, strategy: str = "typiclust", budget: int = 20, seed: int = 0,
                   eval_fraction: float = 0.3, curve: Optional[str] = None, on_bad_file: str = "skip",
                   progress: ProgressFn = no_progress) -> LabelNextResult:
    """Rank ``budget`` items of ``pool`` to label next (see the module docstring). Raises ``DataError`` for an empty
    pool, a pool over :data:`MAX_POOL` items, a labeled target of one class, and data that cannot be read."""
    progress(Progress("data", 0, 1, "loading the pool"))
    pool_ds = load_dataset(pool, modality, on_error=on_bad_file)
    if len(pool_ds) == 0:
        raise DataError(f"the pool {pool} holds no items; give unlabeled data to rank")
    if len(pool_ds) > MAX_POOL:
        raise DataError(f"the pool {pool} has {len(pool_ds):,} items; at most {MAX_POOL:,} are ranked at once: rank a "
                        "sample or part of it")
    warnings = [f"the pool's labels were not used ({pool} is labeled); the ranking treats it as unlabeled"] \
        if pool_ds.labels is not None else []
    train = eval_ds = None
    if target:
        full = _load_labeled(target, modality, on_bad_file, "labeled target")
        if len(full.classes) < 2:
            raise DataError(f"the labeled target {target} holds one class ({full.classes[0]!r}); the probe behind "
                            "the suggested labels, the margin strategies and the projection needs two or more: label "
                            "examples of another class, or leave the target out (typiclust ranks without labels)")
        if eval:
            train, eval_ds = full, _load_labeled(eval, modality, on_bad_file, "eval data")
        else:
            train, eval_ds, _ = eval_split(full, eval_fraction)
    elif strategy in NEEDS_LABELS:
        raise DataError(f"strategy {strategy} needs a labeled target with two classes or more; give one, or use "
                        "typiclust")
    # pool items that are already labeled (same content as a training or eval item) are not offered again
    kind = item_kind(modality)
    known = {content_key(x, kind) for d in (train, eval_ds) if d is not None for x in d.items}
    keep = [i for i, x in enumerate(pool_ds.items) if content_key(x, kind) not in known] if known else \
        list(range(len(pool_ds)))
    if len(keep) < len(pool_ds):
        warnings.append(f"{len(pool_ds) - len(keep)} pool item(s) are copies of labeled target or eval items; left out")
        if not keep:
            raise DataError(f"every item of the pool {pool} is already in the labeled target or eval data; nothing "
                            "is left to label")
        pool_ds = pool_ds.subset(keep)
    if budget > len(pool_ds):
        warnings.append(f"the budget ({budget}) is more than the pool's {len(pool_ds)} items: all are ranked")
    progress(Progress("data", 1, 1, f"pool of {len(pool_ds)} items"))
    bb = build_backbone(backbone, modality)
    pool_f = extract_features(bb, pool_ds, progress=progress, stage="features")
    labeled_f = np.zeros((0, pool_f.shape[1]), np.float32)
    probs = classes = None
    labeled: dict = {"path": target, "n": 0}
    if train is not None and eval_ds is not None:
        classes = sorted(set(train.labels or []) | set(eval_ds.labels or []))
        y = np.array([classes.index(c) for c in train.labels])   # type: ignore[union-attr]
        labeled_f = extract_features(bb, train, progress=progress, stage="features")
        probs = fit_probe(labeled_f, y, len(classes), seed)(pool_f)
        labeled = {"path": target, "n": len(train), "eval": len(eval_ds), "classes": classes,
                   "eval_from": eval or f"{eval_fraction:.0%} of the target, held out as every run holds it out"}
    progress(Progress("select", 0, 1, f"choosing {min(budget, len(pool_ds))} items ({strategy})"))
    chosen, score = select(strategy, pool_f, labeled_f, budget, probs=probs, seed=seed)
    ranked = []
    for rank, i in enumerate(chosen, 1):
        row = {"rank": rank, "item": pool_ds.items[i], "name": pool_ds.names[i] if pool_ds.names else str(i)}
        if score is not None:
            row["uncertainty"] = round(float(score[i]), 4)
        if probs is not None:
            row["suggested"], row["suggested_p"] = classes[int(probs[i].argmax())], round(float(probs[i].max()), 4)  # type: ignore[index]
        ranked.append(row)
    progress(Progress("select", 1, 1, "chosen"))
    result = LabelNextResult(modality, getattr(bb, "backbone_name", str(backbone)), strategy, budget,
                             {"path": pool, "n": len(pool_ds)}, labeled, ranked, warnings=warnings,
                             method=METHODS[strategy])
    progress(Progress("projection", 0, 1, "fitting the learning curve"))
    _add_projection(result, curve, train, eval_ds, labeled_f, bb, classes, progress, budget, seed)
    progress(Progress("done", 1, 1, "ranked"))
    return result


def _add_projection(result: LabelNextResult, curve: Optional[str], train: Optional[Dataset],
                    eval_ds: Optional[Dataset], train_f: np.ndarray, bb, classes, progress: ProgressFn, budget: int,
                    seed: int) -> None:
    if curve:
        points, source = curve_points_from_report(curve)
        n_now = len(train) if train is not None else max(p["train"] for p in points)
    elif train is not None and eval_ds is not None:
        y = np.array([classes.index(c) for c in train.labels])
        eval_f = extract_features(bb, eval_ds, progress=progress, stage="features")
        eval_y = np.array([classes.index(c) for c in eval_ds.labels])
        if len(train) < len(classes) + 2:
            result.projection_missing = (f"the labeled training part has {len(train)} items for {len(classes)} "
                                         "classes: too few to measure a curve; label a few more, or give a curve run")
            return
        points = probe_curve(train_f, y, eval_f, eval_y, len(classes))
        source = ("measured here: a linear probe on the pretrained features of random subsets of the labeled training "
                  f"items ({len(CURVE_SEEDS)} seeds per size), scored on the eval split")
        n_now = len(train)
    else:
        result.projection_missing = ("no labeled target and no curve run: the projection is fitted to a measured "
                                     "data-efficiency curve; give a labeled target (or a curve run's report)")
        return
    proj = project(points, n_now, min(budget, result.pool["n"]), seed=seed)
    if "missing" in proj:
        result.projection_missing = proj["missing"]
        return
    result.projection = {**proj, "points": points, "source": source, "kind": "projection",
                         "assumes": "new labels drawn like the curve's (at random); the chosen items may do better "
                                    "or worse"}


def ranked_csv(result: LabelNextResult | dict) -> str:
    """The ranked list as CSV: ``rank,item,name,suggested,uncertainty,label`` (``item``: the text, or the file's
    path; ``label`` left empty for the labeler to fill in and bring back on the Data page)."""
    rows = (result.to_dict() if isinstance(result, LabelNextResult) else result)["ranked"]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["rank", "item", "name", "suggested", "uncertainty", "label"])
    for r in rows:
        writer.writerow([r["rank"], r["item"], r["name"], r.get("suggested", ""), r.get("uncertainty", ""), ""])
    return out.getvalue()
