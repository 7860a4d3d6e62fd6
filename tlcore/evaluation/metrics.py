"""Before/after evaluation on one eval split: accuracy, macro-F1, per-class scores, confusion matrix,
bootstrap confidence intervals, paired differences and the examples that flipped."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support

N_BOOT = 1000
#: At most this many resampled indices are held at once (bootstrap in blocks beyond it: 32 MB of int64).
BOOT_BLOCK = 1 << 22
#: Above this many classes the report stores no confusion matrix: 5,000 classes make 25 million counts per matrix
#: (a report of hundreds of MB); the per-class precision, recall and support stay.
MAX_CONFUSION_CLASSES = 200


def bootstrap_ci(correct: np.ndarray, *, seed: int = 0, n_boot: int = N_BOOT) -> list[float]:
    """Percentile 95% interval of the mean of a 0/1 vector, resampling eval items."""
    if len(correct) == 0:
        return [0.0, 0.0]
    rng = np.random.default_rng(seed)
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


def classification_metrics(y_true: Sequence[int], y_pred: Sequence[int], classes: Sequence[str], *, seed: int = 0) -> dict:
    """The report's metric block (DESIGN.md): accuracy, macro_f1, accuracy_ci95, per_class, confusion."""
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
        "accuracy_ci95": bootstrap_ci(correct, seed=seed),
        "per_class": {c: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
                      for i, c in enumerate(classes)},
        **({"confusion": confusion_matrix(yt, yp, labels=labels).tolist()} if len(classes) <= MAX_CONFUSION_CLASSES
           else {"confusion_omitted": f"{len(classes)} classes: a {len(classes)} × {len(classes)} confusion matrix "
                                      f"is not stored (at most {MAX_CONFUSION_CLASSES} classes); see per_class"}),
    }


def paired_difference(y_true: Sequence[int], pred_a: Sequence[int], pred_b: Sequence[int], *, seed: int = 0) -> dict:
    """Accuracy of A minus accuracy of B on the same items, with a paired bootstrap 95% interval."""
    yt = np.asarray(y_true)
    diff = (np.asarray(pred_a) == yt).astype(float) - (np.asarray(pred_b) == yt).astype(float)
    lo, hi = bootstrap_ci(diff, seed=seed)
    return {"difference": float(diff.mean()) if len(diff) else 0.0, "ci95": [lo, hi]}


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


