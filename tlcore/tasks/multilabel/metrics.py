"""Multi-label evaluation: micro / macro F1, subset accuracy and per-label precision / recall / F1, each with a
bootstrap 95% interval over eval items; the paired difference of two models' micro-F1 on the same items; the
per-label decision thresholds chosen on a validation split; the eval items whose label set was fixed or broken.

Arrays: ``y_true`` and ``y_pred`` are (n items, L labels) 0/1 matrices. Per item and label the counts of true
positives, false positives and false negatives are summed over a bootstrap resample by one matrix product with the
resample's multiplicity weights (n_boot × n), so memory grows with n_boot · n + n · L, never n_boot · n · L.

* micro-F1 = 2·TP / (2·TP + FP + FN) over every (item, label) pair (Manning et al., *Introduction to Information
  Retrieval*, 13.6); the headline number.
* macro-F1 = the mean of the per-label F1 over labels present in the truth or the predictions (as classification's
  macro-F1 and seqeval do: a label absent from the eval split and never predicted has no F1 to count).
* subset accuracy = the share of items whose predicted label set equals the true one exactly.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

N_BOOT = 1000
#: At most this many resample weights are held at once (the bootstrap runs in blocks beyond it).
BOOT_BLOCK = 1 << 22


def _counts(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """(n, 3L) per item: TP per label, then FP per label, then FN per label."""
    t, p = y_true.astype(bool), y_pred.astype(bool)
    return np.concatenate([t & p, ~t & p, t & ~p], axis=1).astype(np.float64)


def _f1(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    denom = 2 * tp + fp + fn
    return np.divide(2 * tp, denom, out=np.zeros_like(denom, dtype=np.float64), where=denom > 0)


def _scores(sums: np.ndarray, exact: np.ndarray, n: np.ndarray, labels: int) -> dict[str, np.ndarray]:
    """Micro-F1, macro-F1, subset accuracy and per-label F1 from summed counts (rows: resamples)."""
    tp, fp, fn = sums[:, :labels], sums[:, labels:2 * labels], sums[:, 2 * labels:]
    per_label = _f1(tp, fp, fn)
    present = (tp + fp + fn) > 0
    macro = np.divide((per_label * present).sum(1), present.sum(1), out=np.zeros(len(sums)), where=present.sum(1) > 0)
    return {"micro_f1": _f1(tp.sum(1), fp.sum(1), fn.sum(1)), "macro_f1": macro,
            "subset_accuracy": np.divide(exact, n, out=np.zeros(len(sums)), where=n > 0), "per_label_f1": per_label}


def _resample_weights(n: int, n_boot: int, seed: int):
    """Blocks of (rows, n) multiplicity weights of ``n_boot`` bootstrap resamples of n items."""
    rng = np.random.default_rng(seed)
    rows = max(1, BOOT_BLOCK // max(n, 1))
    for start in range(0, n_boot, rows):
        m = min(rows, n_boot - start)
        idx = rng.integers(0, n, size=(m, n))
        w = np.zeros((m, n))
        np.add.at(w, (np.repeat(np.arange(m), n), idx.ravel()), 1.0)
        yield w


def _interval(values: np.ndarray) -> list[float]:
    return [float(np.quantile(values, 0.025)), float(np.quantile(values, 0.975))]


def multilabel_metrics(y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[str], *, seed: int = 0,
                       n_boot: int = N_BOOT) -> dict:
    """The report's metric block: micro_f1, macro_f1, subset_accuracy (each with ``<name>_ci95``), hamming_loss and
    ``per_class`` (per label: precision, recall, f1 with f1_ci95, support) — the shape classification's per-class
    block has, so the same views show it."""
    y_true, y_pred = np.asarray(y_true, dtype=np.float64), np.asarray(y_pred, dtype=np.float64)
    n, n_labels = y_true.shape
    counts = _counts(y_true, y_pred)
    exact = (y_true == y_pred).all(1).astype(np.float64)
    point = _scores(counts.sum(0, keepdims=True), exact.sum(keepdims=True), np.array([n]), n_labels)
    boot: dict[str, list[np.ndarray]] = {k: [] for k in point}
    if n:
        for w in _resample_weights(n, n_boot, seed):
            for k, v in _scores(w @ counts, w @ exact, w.sum(1), n_labels).items():
                boot[k].append(v)
    ci = {k: np.concatenate(v) for k, v in boot.items() if v}
    tp, fp, fn = (counts[:, i * n_labels:(i + 1) * n_labels].sum(0) for i in range(3))
    precision = np.divide(tp, tp + fp, out=np.zeros(n_labels), where=(tp + fp) > 0)
    recall = np.divide(tp, tp + fn, out=np.zeros(n_labels), where=(tp + fn) > 0)
    out = {}
    for key in ("micro_f1", "macro_f1", "subset_accuracy"):
        out[key] = float(point[key][0])
        out[f"{key}_ci95"] = _interval(ci[key]) if ci else [0.0, 0.0]
    out["hamming_loss"] = float((y_true != y_pred).mean()) if n and n_labels else 0.0
    out["per_class"] = {label: {"precision": float(precision[j]), "recall": float(recall[j]),
                                "f1": float(point["per_label_f1"][0, j]),
                                "f1_ci95": _interval(ci["per_label_f1"][:, j]) if ci else [0.0, 0.0],
                                "support": int(tp[j] + fn[j])} for j, label in enumerate(labels)}
    return out


def paired_micro_f1_difference(y_true: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray, *, seed: int = 0,
                               n_boot: int = N_BOOT) -> dict:
    """micro-F1(A) − micro-F1(B) on the same items, with a paired bootstrap 95% interval (both scored on each
    resample)."""
    y_true = np.asarray(y_true, dtype=np.float64)
    n, n_labels = y_true.shape
    ca, cb = _counts(y_true, np.asarray(pred_a)), _counts(y_true, np.asarray(pred_b))

    def micro(sums: np.ndarray) -> np.ndarray:
        return _f1(sums[:, :n_labels].sum(1), sums[:, n_labels:2 * n_labels].sum(1), sums[:, 2 * n_labels:].sum(1))

    diff = float((micro(ca.sum(0, keepdims=True)) - micro(cb.sum(0, keepdims=True)))[0])
    if not n:
        return {"difference": 0.0, "ci95": [0.0, 0.0]}
    boot = np.concatenate([micro(w @ ca) - micro(w @ cb) for w in _resample_weights(n, n_boot, seed)])
    return {"difference": diff, "ci95": _interval(boot)}


def choose_thresholds(scores: np.ndarray, y: np.ndarray, default: float) -> np.ndarray:
    """Per label, the decision threshold on ``scores`` (n, L) that maximises that label's F1 on these (validation)
    items; candidates are the midpoints between consecutive distinct scores and ``default``, ties go to the one
    nearest ``default``. A label without positives here keeps ``default`` (its F1 cannot be measured)."""
    thresholds = np.full(scores.shape[1], default, dtype=np.float64)
    for j in range(scores.shape[1]):
        s, t = scores[:, j], y[:, j].astype(bool)
        if not t.any():
            continue
        values = np.unique(s)
        candidates = np.unique(np.concatenate([(values[1:] + values[:-1]) / 2, [default]]))
        pred = s[None, :] > candidates[:, None]
        tp = (pred & t).sum(1)
        f1 = _f1(tp.astype(float), (pred & ~t).sum(1).astype(float), (~pred & t).sum(1).astype(float))
        best = np.flatnonzero(f1 == f1.max())
        thresholds[j] = candidates[best[np.argmin(np.abs(candidates[best] - default))]]
    return thresholds


def label_set_text(row: np.ndarray, labels: Sequence[str]) -> str:
    names = [labels[j] for j in np.flatnonzero(row)]
    return " | ".join(names) if names else "(none)"


def flipped_items(y_true: np.ndarray, before: np.ndarray, after: np.ndarray, labels: Sequence[str], items: Sequence,
                  names: Sequence[str], *, limit: int = 50) -> dict:
    """Eval items whose whole label set the transfer fixed (wrong → exactly right) or broke (right → wrong), in
    the shape classification's flipped examples have (label sets written as ``a | b``)."""
    right_b, right_a = (before == y_true).all(1), (after == y_true).all(1)
    out: dict = {"fixed": [], "broken": []}
    for i in range(len(y_true)):
        kind = "fixed" if right_a[i] and not right_b[i] else "broken" if right_b[i] and not right_a[i] else None
        if kind and len(out[kind]) < limit:
            out[kind].append({"index": i, "name": names[i] if names else str(i), "item": str(items[i]),
                              "true": label_set_text(y_true[i], labels), "before": label_set_text(before[i], labels),
                              "after": label_set_text(after[i], labels)})
    out["n_fixed"], out["n_broken"] = int((right_a & ~right_b).sum()), int((right_b & ~right_a).sum())
    return out
