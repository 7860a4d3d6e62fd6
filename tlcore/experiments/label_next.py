"""What to label next: rank an unlabeled pool for labeling, and project the accuracy more labels would bring.

:func:`run_label_next` loads the pool (and the labeled target, when there is one), extracts the backbone's pretrained
features (cached), chooses ``budget`` pool items with a strategy of :mod:`tlcore.experiments.selection` and, when the
labeled data allows, projects "expected accuracy with N more labels" from a data-efficiency curve
(:mod:`tlcore.experiments.projection`). The curve is a curve run's report (``curve``) or, without one, measured here
cheaply: the task's linear probe on the pretrained features of seeded subsets of the labeled training items, 3 seeds
per size, scored by the task's metric on the eval split (the set's eval data, else the split every run of the set
holds out). The projection assumes new labels like the curve's (drawn at random), so it is reported as a projection,
never as a measurement.

What depends on the task — its labeled data, the probe, its uncertainty, the suggested label, the curve's metric, the
labeled list as a new version of the set — is the task's ``label_next`` part (``tlcore/tasks/<task>/label_next.py``:
classification's softmax probe, margin and accuracy; multi-label's sigmoid probe, min-margin over labels and
micro-F1). The task is ``task``, else detected from the labeled target (else the pool).

Strategies: ``typiclust`` (default: suits budgets of about a label or a few per class, needs no labels),
``margin_kcenter``, ``margin``, ``kcenter`` and ``random``; ``margin`` and ``margin_kcenter`` need a labeled target
(their uncertainty comes from a probe trained on it). Measured against random selection in docs/benchmarks.md
(benchmarks/label_next_table.py).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Optional

import numpy as np

from tlcore.config import LIMITS
from tlcore.data.overlap import content_key, item_kind
from tlcore.errors import ConfigError, DataError
from tlcore.experiments.projection import fit_learning_curve
from tlcore.experiments.selection import kcenter_greedy, most_uncertain, random_select, typiclust
from tlcore.models.features import extract_features
from tlcore.models.registry import build_backbone
from tlcore.progress import Progress, ProgressFn, no_progress
from tlcore.tasks import DEFAULT_TASK, get_task
from tlcore.tasks.detect import resolve_task

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
    task: str = DEFAULT_TASK

    def to_dict(self) -> dict:
        return {"kind": "label_next", **asdict(self)}


METHODS = {
    "typiclust": "TypiClust (Hacohen, Dekel & Weinshall, ICML 2022): k-means into labeled + budget clusters, then the "
                 "most typical item (inverse mean distance to its 20 nearest neighbours) of the largest cluster with "
                 "the fewest labels, one per pick",
    "margin_kcenter": "margin x k-center greedy: argmax of uncertainty x distance to the nearest labeled or chosen "
                      "item (k-center greedy: Sener & Savarese, ICLR 2018); uncertainty: {margin}",
    "margin": "{margin}",
    "kcenter": "k-center greedy (Sener & Savarese, ICLR 2018): the item farthest from every labeled or chosen item",
    "random": "uniformly at random (the baseline)",
}


def task_part(task: str) -> ModuleType:
    """The task's ``label_next`` part (module docstring); ConfigError for a task that has none."""
    spec = get_task(task)
    try:
        return spec.part("label_next")
    except ConfigError:
        raise ConfigError(f"what to label next covers classification and multi-label sets; task {spec.name!r} "
                          f"({spec.description}) has none in this version") from None


def select(strategy: str, pool_f: np.ndarray, labeled_f: np.ndarray, budget: int, *,
           uncertainty: Optional[np.ndarray] = None, seed: int = 0) -> tuple[list[int], Optional[np.ndarray]]:
    """(chosen pool indices in order, a per-pool-item score or None) of one strategy. ``uncertainty``: (n,) the
    probe's uncertainty of each pool item (higher: less certain; the task part's ``uncertainty``), needed by the
    margin strategies."""
    if strategy in NEEDS_LABELS and uncertainty is None:
        raise DataError(f"strategy {strategy} needs a labeled target (a probe's uncertainty); give one, or use "
                        "typiclust")
    if strategy == "typiclust":
        return typiclust(pool_f, labeled_f, budget, seed=seed), None
    if strategy == "margin":
        return most_uncertain(uncertainty, budget), np.asarray(uncertainty, dtype=np.float64)
    if strategy == "margin_kcenter":
        return kcenter_greedy(pool_f, labeled_f, budget, weights=uncertainty, seed=seed), uncertainty
    if strategy == "kcenter":
        return kcenter_greedy(pool_f, labeled_f, budget, seed=seed), None
    if strategy == "random":
        return random_select(len(pool_f), budget, seed=seed), None
    raise DataError(f"unknown strategy {strategy!r}; known: {', '.join(LABEL_NEXT_STRATEGIES)}")


def probe_curve(part: ModuleType, train_f: np.ndarray, y: np.ndarray, eval_f: np.ndarray, eval_y: np.ndarray,
                n_classes: int, *, seeds=CURVE_SEEDS, sizes: Optional[list[int]] = None) -> list[dict]:
    """Measured points ``{"train": n, "values": [metric per seed]}``: the task's probe on ``n`` seeded training items
    (its ``curve_subset``), scored by its metric on the eval features, at ``sizes`` (default: up to
    :data:`CURVE_SIZES` sizes spaced geometrically from the task's smallest subset to every training item)."""
    n_train, lo = len(y), part.smallest_curve_size(y)
    if sizes is None:
        sizes = sorted({int(round(s)) for s in np.geomspace(max(lo, 2), n_train, CURVE_SIZES)})
    points = []
    for size in sizes:
        values = []
        for seed in seeds:
            idx = part.curve_subset(y, size, seed) if size < n_train else np.arange(n_train)
            predict = part.fit_probe(train_f[idx], y[idx], n_classes, seed)
            values.append(float(part.score(predict(eval_f), eval_y)))
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


def resolve_label_next_task(task: Optional[str], modality: str, pool: str, target: Optional[str]) -> str:
    """The task of a ranking: ``task`` when given, else the one detected from the labeled target, else the pool (an
    unlabeled pool can look like any task's data; a labeled target says which task it is)."""
    return resolve_task(task, modality, ("target", target) if target else ("pool", pool))


def run_label_next(modality: str, pool: str, *, target: Optional[str] = None, eval: Optional[str] = None,
                   backbone: Optional[str] = None, strategy: str = "typiclust", budget: int = 20, seed: int = 0,
                   eval_fraction: float = 0.3, curve: Optional[str] = None, on_bad_file: str = "skip",
                   task: Optional[str] = None, progress: ProgressFn = no_progress) -> LabelNextResult:
    """Rank ``budget`` items of ``pool`` to label next (see the module docstring). Raises ``DataError`` for an empty
    pool, a pool over :data:`MAX_POOL` items, a labeled target the probe cannot learn from (one class; one label, or
    a label on every item), and data that cannot be read; ``ConfigError`` for a task without this analysis."""
    task = resolve_label_next_task(task, modality, pool, target)
    part = task_part(task)
    progress(Progress("data", 0, 1, "loading the pool"))
    pool_ds, pool_labeled = part.load_pool(pool, modality, on_bad_file)
    if len(pool_ds) == 0:
        raise DataError(f"the pool {pool} holds no items; give unlabeled data to rank")
    if len(pool_ds) > MAX_POOL:
        raise DataError(f"the pool {pool} has {len(pool_ds):,} items; at most {MAX_POOL:,} are ranked at once: rank a "
                        "sample or part of it")
    warnings = [f"the pool's labels were not used ({pool} is labeled); the ranking treats it as unlabeled"] \
        if pool_labeled else []
    train: Any = None
    eval_data: Any = None
    if target:
        full = part.load_labeled(target, modality, on_bad_file, "labeled target")
        if eval:
            train, eval_data = full, part.load_labeled(eval, modality, on_bad_file, "eval data")
        else:
            train, eval_data = part.split(full, eval_fraction)
    elif strategy in NEEDS_LABELS:
        raise DataError(f"strategy {strategy} needs a labeled target (a probe's uncertainty); give one, or use "
                        "typiclust")
    # pool items that are already labeled (same content as a training or eval item) are not offered again
    kind = item_kind(modality)
    known = {content_key(x, kind) for d in (train, eval_data) if d is not None for x in d.items}
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
    if train is not None and eval_data is not None:
        classes = part.vocabulary(train, eval_data)
        labeled_f = extract_features(bb, part.features_data(train), progress=progress, stage="features")
        probs = part.fit_probe(labeled_f, part.targets(train, classes), len(classes), seed)(pool_f)
        labeled = {"path": target, "n": len(train), "eval": len(eval_data), "classes": classes,
                   "eval_from": eval or f"{eval_fraction:.0%} of the target, held out as every run holds it out"}
    progress(Progress("select", 0, 1, f"choosing {min(budget, len(pool_ds))} items ({strategy})"))
    chosen, score = select(strategy, pool_f, labeled_f, budget,
                           uncertainty=None if probs is None else part.uncertainty(probs), seed=seed)
    suggested = part.suggest(probs[chosen], classes) if probs is not None else None
    ranked = []
    for rank, i in enumerate(chosen, 1):
        row = {"rank": rank, "item": pool_ds.items[i], "name": pool_ds.names[i] if pool_ds.names else str(i)}
        if score is not None:
            row["uncertainty"] = round(float(score[i]), 4)
        if suggested is not None:
            row["suggested"], row["suggested_p"] = suggested[rank - 1][0], round(suggested[rank - 1][1], 4)
        ranked.append(row)
    progress(Progress("select", 1, 1, "chosen"))
    result = LabelNextResult(modality, getattr(bb, "backbone_name", str(backbone)), strategy, budget,
                             {"path": pool, "n": len(pool_ds)}, labeled, ranked, warnings=warnings,
                             method=METHODS[strategy].format(margin=part.MARGIN), task=task)
    progress(Progress("projection", 0, 1, "fitting the learning curve"))
    _add_projection(result, part, curve, train, eval_data, labeled_f, bb, classes, progress, budget, seed)
    progress(Progress("done", 1, 1, "ranked"))
    return result


def _add_projection(result: LabelNextResult, part: ModuleType, curve: Optional[str], train: Any, eval_data: Any,
                    train_f: np.ndarray, bb, classes, progress: ProgressFn, budget: int, seed: int) -> None:
    metric = part.METRIC
    if curve:
        points, source = curve_points_from_report(curve)
        n_now = len(train) if train is not None else max(p["train"] for p in points)
    elif train is not None and eval_data is not None:
        y = part.targets(train, classes)
        if len(train) < part.smallest_curve_size(y) + 2:
            result.projection_missing = (f"the labeled training part has {len(train)} items for {len(classes)} "
                                         f"{'labels' if y.ndim > 1 else 'classes'}: too few to measure a curve; "
                                         "label a few more, or give a curve run")
            return
        eval_f = extract_features(bb, part.features_data(eval_data), progress=progress, stage="features")
        points = probe_curve(part, train_f, y, eval_f, part.targets(eval_data, classes), len(classes))
        source = ("measured here: the linear probe on the pretrained features of random subsets of the labeled "
                  f"training items ({len(CURVE_SEEDS)} seeds per size), {metric} on the eval split")
        n_now = len(train)
    else:
        result.projection_missing = ("no labeled target and no curve run: the projection is fitted to a measured "
                                     "data-efficiency curve; give a labeled target (or a curve run's report)")
        return
    proj = project(points, n_now, min(budget, result.pool["n"]), seed=seed)
    if "missing" in proj:
        result.projection_missing = proj["missing"]
        return
    result.projection = {**proj, "points": points, "source": source, "kind": "projection", "metric": metric,
                         "assumes": "new labels drawn like the curve's (at random); the chosen items may do better "
                                    "or worse"}


def new_version_files(modality: str, target: str, pool: str, sheet: str, *, eval: Optional[str] = None,
                      eval_fraction: float = 0.3, task: Optional[str] = None) -> tuple[dict[str, tuple[str, bytes]], int]:
    """(the files of a new version of the set, how many items were labeled): the target plus the pool items whose
    ``label`` the filled-in list ``sheet`` (:func:`ranked_csv`) gives, in the task's own format (the task part's
    ``new_version``); the rest of the pool, and without ``eval`` the target's held-out eval items (so the new version
    is scored on the very same items). The caller stores them as a new set; the old one is never changed."""
    part = task_part(resolve_label_next_task(task, modality, pool, target))
    return part.new_version(target, pool, sheet, modality=modality, eval=eval, eval_fraction=eval_fraction)


def ranked_csv(result: LabelNextResult | dict) -> str:
    """The ranked list as CSV: ``rank,item,name,suggested,uncertainty,label`` (``item``: the text, or the file's
    path; ``suggested``: the probe's class, or for multi-label its label set as ``a|b``; ``label`` left empty for the
    labeler to fill in, in the same form, and bring back on the Data page)."""
    rows = (result.to_dict() if isinstance(result, LabelNextResult) else result)["ranked"]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["rank", "item", "name", "suggested", "uncertainty", "label"])
    for r in rows:
        writer.writerow([r["rank"], r["item"], r["name"], r.get("suggested", ""), r.get("uncertainty", ""), ""])
    return out.getvalue()
