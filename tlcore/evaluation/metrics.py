"""Before/after evaluation on one eval split: accuracy, macro-F1, per-class scores, confusion matrix,
bootstrap confidence intervals, paired differences and the examples that flipped."""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support

N_BOOT = 1000
#: At most this many resampled indices are held at once (bootstrap in blocks beyond it: 32 MB of int64).
BOOT_BLOCK = 1 << 22
#: Above this many classes the report stores no confusion matrix: 5,000 classes make 25 million counts per matrix
#: (a report of hundreds of MB); the per-class precision, recall and support stay.
MAX_CONFUSION_CLASSES = 200


def bootstrap_ci(correct: np.ndarray, *, seed: int = 0, n_boot: int = N_BOOT,
                 groups: Optional[Sequence[str]] = None) -> list[float]:
    """Percentile 95% interval of the mean of a per-item vector (0/1 correctness, or a paired difference),
    resampling eval items; with ``groups`` (one per item) resampling whole groups instead (the cluster bootstrap:
    items of one object, speaker or drawing are not independent, so the interval must not treat them as such)."""
    if len(correct) == 0:
        return [0.0, 0.0]
    rng = np.random.default_rng(seed)
    if groups is not None:
        sums, counts = _group_sums(correct, groups)
        picks = rng.integers(0, len(sums), size=(n_boot, len(sums)))
        means = sums[picks].sum(1) / counts[picks].sum(1)
        return [float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))]
    n = len(correct)
    if n_boot * n <= BOOT_BLOCK:
        means = correct[rng.integers(0, n, size=(n_boot, n))].mean(1)
    else:
        # A large eval split: draw the resamples in blocks, so memory stays bounded (1000 × 60,000 indices at once
        # would take ~1 GB); the interval is the same estimator on different random resamples.
        rows = max(1, BOOT_BLOCK // n)
        means = np.concatenate([correct[rng.integers(0, n, size=(min(rows, n_boot - start), n))].mean(1)
                                for start in range(0, n_boot, rows)])
    return [float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))]


def _group_sums(values: np.ndarray, groups: Optional[Sequence[str]]) -> tuple[np.ndarray, np.ndarray]:
    """(sum of ``values`` per resampling unit, items per unit): units are the ``groups``, or single items without."""
    unit = (np.unique(np.asarray(groups, dtype=str), return_inverse=True)[1] if groups is not None
            else np.arange(len(values)))
    return np.bincount(unit, weights=values, minlength=unit.max() + 1), np.bincount(unit).astype(np.float64)


def _paired_items(y_true: np.ndarray, pred_a: Sequence[int], pred_b: Sequence[int]) -> np.ndarray:
    """Per eval item: 1 where only A is right, -1 where only B is, 0 otherwise (their mean: accuracy A − B)."""
    return (np.asarray(pred_a) == y_true).astype(float) - (np.asarray(pred_b) == y_true).astype(float)


def ci_method(groups: Optional[Sequence[str]]) -> dict:
    """How a report's intervals were computed: ``{"ci_method", "ci_groups"}`` (the number of groups resampled)."""
    if groups is None:
        return {"ci_method": f"percentile bootstrap over eval items ({N_BOOT} resamples)", "ci_groups": None}
    n = len(set(groups))
    return {"ci_method": f"cluster bootstrap over {n} eval groups (whole groups resampled, {N_BOOT} resamples)",
            "ci_groups": n}


def classification_metrics(y_true: Sequence[int], y_pred: Sequence[int], classes: Sequence[str], *, seed: int = 0,
                           groups: Optional[Sequence[str]] = None) -> dict:
    """The report's metric block (DESIGN.md): accuracy, macro_f1, accuracy_ci95 (over ``groups`` when given),
    ci_method, per_class, confusion."""
    yt, yp = np.asarray(y_true), np.asarray(y_pred)
    labels = list(range(len(classes)))
    p, r, f, s = precision_recall_fscore_support(yt, yp, labels=labels, zero_division=0)
    correct = (yt == yp).astype(np.float64)
    return {
        "accuracy": float(correct.mean()) if len(yt) else 0.0,
        # Averaged over the classes present in the truth or the predictions (sklearn's default, as seqeval does for
        # NER): a class absent from this eval split and never predicted has no F1 to count.
        "macro_f1": float(f1_score(yt, yp, labels=sorted(set(yt.tolist()) | set(yp.tolist())), average="macro",
                                   zero_division=0)) if len(yt) else 0.0,
        "accuracy_ci95": bootstrap_ci(correct, seed=seed, groups=groups),
        **ci_method(groups),
        "per_class": {c: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
                      for i, c in enumerate(classes)},
        **({"confusion": confusion_matrix(yt, yp, labels=labels).tolist()} if len(classes) <= MAX_CONFUSION_CLASSES
           else {"confusion_omitted": f"{len(classes)} classes: a {len(classes)} × {len(classes)} confusion matrix "
                                      f"is not stored (at most {MAX_CONFUSION_CLASSES} classes); see per_class"}),
    }


def paired_difference(y_true: Sequence[int], pred_a: Sequence[int], pred_b: Sequence[int], *, seed: int = 0,
                      groups: Optional[Sequence[str]] = None) -> dict:
    """Accuracy of A minus accuracy of B on the same items, with a paired bootstrap 95% interval (resampling whole
    ``groups`` when given)."""
    diff = _paired_items(np.asarray(y_true), pred_a, pred_b)
    lo, hi = bootstrap_ci(diff, seed=seed, groups=groups)
    return {"difference": float(diff.mean()) if len(diff) else 0.0, "ci95": [lo, hi], **ci_method(groups)}


def seeded_paired_difference(y_true: Sequence[int], afters: Sequence[Sequence[int]], refs: Sequence[Sequence[int]], *,
                             seed: int = 0, n_boot: int = N_BOOT, groups: Optional[Sequence[str]] = None) -> dict:
    """Accuracy of A minus accuracy of B averaged over training seeds (``afters[s]`` against ``refs[s]``, the same
    eval items for every seed), with a 95% interval covering both sources of noise: a hierarchical bootstrap that
    resamples the seeds, then the eval items (whole ``groups`` when given) shared by the picked seeds, and averages
    the paired per-item differences. One seed: the estimator of :func:`paired_difference`."""
    yt = np.asarray(y_true)
    diffs = np.stack([_paired_items(yt, a, b) for a, b in zip(afters, refs)])      # (seeds, items)
    per_seed = [float(d.mean()) if len(yt) else 0.0 for d in diffs]
    method = {"ci_method": f"hierarchical bootstrap over {len(diffs)} seeds and "
                           f"{'eval groups' if groups is not None else 'eval items'} ({n_boot} resamples)",
              "ci_groups": len(set(groups)) if groups is not None else None, "seeds": len(diffs), "per_seed": per_seed}
    if len(yt) == 0:
        return {"difference": 0.0, "ci95": [0.0, 0.0], **method}
    rng = np.random.default_rng(seed)
    sums = np.stack([_group_sums(d, groups)[0] for d in diffs])              # (seeds, units)
    counts = _group_sums(diffs[0], groups)[1]
    means = np.empty(n_boot)
    for b in range(n_boot):
        picked_seeds = rng.integers(0, len(diffs), size=len(diffs))
        picked_units = rng.integers(0, len(counts), size=len(counts))
        means[b] = sums[np.ix_(picked_seeds, picked_units)].sum(1).mean() / counts[picked_units].sum()
    return {"difference": float(np.mean(per_seed)),
            "ci95": [float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))], **method}


def flipped_examples(y_true: Sequence[int], before: Sequence[int], after: Sequence[int], classes: Sequence[str],
                     items: Sequence, names: Sequence[str], *, limit: int = 50) -> dict:
    """Eval items the transfer fixed (wrong -> right) and broke (right -> wrong)."""
    out: dict[str, list] = {"fixed": [], "broken": []}
    for i, (t, b, a) in enumerate(zip(y_true, before, after)):
        kind = "fixed" if (b != t and a == t) else "broken" if (b == t and a != t) else None
        if kind and len(out[kind]) < limit:
            out[kind].append({"index": i, "name": names[i] if names else str(i), "item": str(items[i]),
                              "true": classes[t], "before": classes[b], "after": classes[a]})
    out["n_fixed"] = int(sum((np.asarray(before) != np.asarray(y_true)) & (np.asarray(after) == np.asarray(y_true))))
    out["n_broken"] = int(sum((np.asarray(before) == np.asarray(y_true)) & (np.asarray(after) != np.asarray(y_true))))
    return out


