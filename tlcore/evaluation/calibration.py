"""Calibration of a classifier's probabilities: expected calibration error (ECE) with equal-mass bins, its bootstrap
interval, reliability-diagram data, and temperature scaling.

* **ECE** (Naeini et al., AAAI 2015; Guo et al., "On Calibration of Modern Neural Networks", ICML 2017) of the
  top-class confidence ``c_i = max_k p_ik`` and correctness ``a_i = [argmax_k p_ik == y_i]`` over ``n`` items::

      ECE = sum_b (|B_b| / n) * | mean_{i in B_b} a_i - mean_{i in B_b} c_i |

  The bins are **equal-mass** (adaptive binning, Nixon et al., "Measuring Calibration in Deep Learning", CVPR
  Workshops 2019): the items sorted by confidence are cut into ``min(N_BINS, n)`` bins of (nearly) equal count, so no
  bin is empty and every bin's accuracy rests on about ``n / N_BINS`` items. ``N_BINS = 10``: with the small eval splits
  of few-shot transfer (tens to hundreds of items) more bins would hold a handful of items each, and ECE's upward
  bias from noisy bin accuracies grows as bins shrink.
* **Interval**: percentile 95% bootstrap of the ECE, resampling eval items, or whole groups when the eval set declares
  them (the same units as :func:`tlcore.evaluation.metrics.bootstrap_ci`). ECE is not a mean of per-item values, so
  each resample is re-binned and its ECE recomputed.
* **Temperature scaling** (Guo et al., ICML 2017, section 4.2): one scalar ``T > 0`` dividing the logits,
  ``p = softmax(z / T)``, chosen to minimise the negative log-likelihood on held-out data (never the eval split).
  It changes no prediction: ``argmax(z / T) == argmax(z)``, so accuracy and every confusion count stay the same.

Shapes: ``probs`` and ``logits`` are (n, classes); ``y`` is (n,) integer class indices.

The ECE, its interval and the bins are computed on **events**: a confidence ``c_i`` in [0, 1] and an outcome
``a_i`` in {0, 1} each. Single-label items (and NER's tokens) give top-class events (:func:`top_label_events`);
multi-label items give one event per (item, label) pair, its sigmoid probability and whether the item has the label
(:func:`label_events`: the class-wise calibration of Kull et al., NeurIPS 2019, pooled over labels). ``units`` (one
per event) are what the bootstrap resamples when events are not independent: an eval group, a sentence's tokens, an
item's labels.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import logsumexp

from tlcore.evaluation.metrics import N_BOOT, ci_method

N_BINS = 10
#: The fitted temperature is kept within these bounds: a held-out split the model gets all right drives the NLL's
#: minimum towards T -> 0 (ever sharper), one it gets all wrong towards T -> infinity (uniform).
T_BOUNDS = (0.05, 20.0)
METHOD = ("temperature scaling (Guo et al., 'On Calibration of Modern Neural Networks', ICML 2017): one scalar T > 0, "
          "probabilities softmax(logits / T), T minimising the negative log-likelihood of held-out items (never the "
          "eval split); predictions and accuracy do not change")


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """(n, classes) probabilities ``softmax(logits / temperature)``, computed stably in float64."""
    z = np.asarray(logits, dtype=np.float64) / float(temperature)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _bins(conf: np.ndarray, n_bins: int) -> list[np.ndarray]:
    """Item indices of each equal-mass bin, by increasing confidence (stable sort: ties keep their item order)."""
    order = np.argsort(conf, kind="stable")
    return [b for b in np.array_split(order, min(n_bins, len(conf))) if len(b)]


def _ece_rows(conf: np.ndarray, correct: np.ndarray, n_bins: int) -> np.ndarray:
    """The ECE of each row of (rows, n) ``conf`` / ``correct`` (one row: one model's items, or one resample of them):
    the equal-mass bins of :func:`_bins` by row, and a bin's ``len * |accuracy - confidence|`` is
    ``|sum(correct - conf)|`` over its items, so the bins are sums over the sorted rows."""
    n = conf.shape[1]
    order = np.argsort(conf, axis=1, kind="stable")
    gap = np.take_along_axis(correct - conf, order, axis=1)
    sizes = [len(b) for b in np.array_split(np.arange(n), min(n_bins, n))]
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(int)
    return np.abs(np.add.reduceat(gap, starts, axis=1)).sum(1) / n


def top_label_events(probs: np.ndarray, y: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """((n,) top-class confidences ``max_k p_ik``, (n,) 1.0 where the top class is ``y_i``) of (n, classes) ``probs``."""
    p, yt = np.asarray(probs, dtype=np.float64), np.asarray(y)
    if len(yt) == 0:
        return np.zeros(0), np.zeros(0)
    return p.max(1), (p.argmax(1) == yt).astype(np.float64)


def label_events(probs: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Multi-label: one event per (item, label) pair, item-major: ((n * L,) probabilities ``p_il``, (n * L,) the 0/1
    truth ``y_il``) of (n, L) ``probs`` and (n, L) ``y``."""
    return np.asarray(probs, dtype=np.float64).ravel(), np.asarray(y, dtype=np.float64).ravel()


def events_ece(conf: np.ndarray, outcome: np.ndarray, *, n_bins: int = N_BINS) -> float:
    """ECE of (n,) confidences against (n,) 0/1 outcomes with ``n_bins`` equal-mass bins; 0 for no events."""
    c = np.asarray(conf, dtype=np.float64)
    if len(c) == 0:
        return 0.0
    return float(_ece_rows(c[None], np.asarray(outcome, dtype=np.float64)[None], n_bins)[0])


def expected_calibration_error(probs: np.ndarray, y: Sequence[int], *, n_bins: int = N_BINS) -> float:
    """ECE of the top-class confidence with ``n_bins`` equal-mass bins (module docstring); 0 for no items."""
    return events_ece(*top_label_events(probs, y), n_bins=n_bins)


#: Resampled item indices held at once by :func:`ece_interval` (bounded memory on large eval splits).
_BLOCK_ITEMS = 2_000_000


def events_ece_interval(conf: np.ndarray, outcome: np.ndarray, *, seed: int = 0, n_boot: int = N_BOOT,
                        n_bins: int = N_BINS, units: Optional[Sequence] = None) -> list[float]:
    """Percentile 95% bootstrap interval of :func:`events_ece`: ``n_boot`` resamples of the ``n`` events with
    replacement, or (with ``units``, one per event) of as many whole units as there are, drawn with replacement, each
    bringing all its events. Units of one size (a multi-label item's L labels) are resampled in blocks of rows."""
    conf, correct = np.asarray(conf, dtype=np.float64), np.asarray(outcome, dtype=np.float64)
    n = len(conf)
    if n == 0:
        return [0.0, 0.0]
    rng = np.random.default_rng(seed)
    block = max(1, _BLOCK_ITEMS // n)
    if units is None:
        eces = np.concatenate([_ece_rows(conf[idx], correct[idx], n_bins) for idx in
                               (rng.integers(0, n, size=(min(block, n_boot - start), n))
                                for start in range(0, n_boot, block))])
    else:
        unit = np.unique(np.asarray(units, dtype=str), return_inverse=True)[1]
        members = [np.flatnonzero(unit == u) for u in range(unit.max() + 1)]
        draws = (rng.integers(0, len(members), size=len(members)) for _ in range(n_boot))   # one resample each
        if len({len(m) for m in members}) == 1:       # equal units: a resample is a row of a (units, size) table
            table = np.stack(members)
            rows = [np.stack([next(draws) for _ in range(min(block, n_boot - start))]) for start in
                    range(0, n_boot, block)]
            eces = np.concatenate([_ece_rows(conf[idx], correct[idx], n_bins) for idx in
                                   (table[r].reshape(len(r), -1) for r in rows)])
        else:
            eces = np.array([_ece_rows(conf[idx][None], correct[idx][None], n_bins)[0] for idx in
                             (np.concatenate([members[u] for u in d]) for d in draws)])
    return [float(np.quantile(eces, 0.025)), float(np.quantile(eces, 0.975))]


def ece_interval(probs: np.ndarray, y: Sequence[int], *, seed: int = 0, n_boot: int = N_BOOT, n_bins: int = N_BINS,
                 groups: Optional[Sequence[str]] = None) -> list[float]:
    """Percentile 95% bootstrap interval of :func:`expected_calibration_error`: ``n_boot`` resamples of ``n`` items
    with replacement, or (with ``groups``) of as many whole groups as there are, drawn with replacement, each bringing
    all its items."""
    return events_ece_interval(*top_label_events(probs, y), seed=seed, n_boot=n_boot, n_bins=n_bins, units=groups)


def events_bins(conf: np.ndarray, outcome: np.ndarray, *, n_bins: int = N_BINS) -> list[dict]:
    """Reliability-diagram data of events: per equal-mass bin (by increasing confidence) its mean ``confidence``, the
    mean outcome (``accuracy``), the ``count`` of its events and the bin's confidence range (``lower``, ``upper``)."""
    conf, correct = np.asarray(conf, dtype=np.float64), np.asarray(outcome, dtype=np.float64)
    if len(conf) == 0:
        return []
    return [{"confidence": float(conf[b].mean()), "accuracy": float(correct[b].mean()), "count": int(len(b)),
             "lower": float(conf[b].min()), "upper": float(conf[b].max())} for b in _bins(conf, n_bins)]


def reliability_bins(probs: np.ndarray, y: Sequence[int], *, n_bins: int = N_BINS) -> list[dict]:
    """Reliability-diagram data: per equal-mass bin (by increasing confidence) its mean top-class ``confidence``, the
    ``accuracy`` of its items, their ``count`` and the bin's confidence range (``lower``, ``upper``)."""
    return events_bins(*top_label_events(probs, y), n_bins=n_bins)


def negative_log_likelihood(probs: np.ndarray, y: Sequence[int]) -> float:
    """Mean ``-log p_i[y_i]`` (probabilities floored at 1e-12)."""
    p, yt = np.asarray(probs, dtype=np.float64), np.asarray(y)
    return float(-np.log(np.maximum(p[np.arange(len(yt)), yt], 1e-12)).mean()) if len(yt) else 0.0


def events_summary(conf: np.ndarray, outcome: np.ndarray, nll: float, *, seed: int = 0,
                   units: Optional[Sequence] = None) -> dict:
    """One model's calibration from its events: ``{"ece", "ece_ci95", "nll", "bins"}`` (``nll`` as given)."""
    return {"ece": events_ece(conf, outcome), "ece_ci95": events_ece_interval(conf, outcome, seed=seed, units=units),
            "nll": float(nll), "bins": events_bins(conf, outcome)}


def calibration_summary(probs: np.ndarray, y: Sequence[int], *, seed: int = 0,
                        groups: Optional[Sequence[str]] = None) -> dict:
    """One model's calibration on the eval split: ``{"ece", "ece_ci95", "nll", "bins"}`` of its top-class events;
    ``groups`` (one per item): the interval resamples them whole."""
    return events_summary(*top_label_events(probs, y), negative_log_likelihood(probs, y), seed=seed, units=groups)


def binary_calibration_summary(probs: np.ndarray, y: np.ndarray, *, seed: int = 0,
                               groups: Optional[Sequence[str]] = None) -> dict:
    """Multi-label: the same block over every (item, label) event of (n, L) sigmoid ``probs`` and 0/1 ``y``
    (:func:`label_events`); the interval resamples whole items (all their labels together), or whole ``groups`` (one
    per item) when given. ``nll``: the binary cross-entropy averaged over the events."""
    p, t = np.asarray(probs, dtype=np.float64), np.asarray(y, dtype=np.float64)
    n_labels = p.shape[1] if p.ndim == 2 else 1
    per_item = np.arange(len(p)).astype(str) if groups is None else np.asarray(groups, dtype=str)
    q = np.clip(p, 1e-12, 1 - 1e-12)
    nll = float(-(t * np.log(q) + (1 - t) * np.log(1 - q)).mean()) if p.size else 0.0
    return events_summary(*label_events(p, t), nll, seed=seed, units=np.repeat(per_item, n_labels))


def ece_method(groups: Optional[Sequence[str]], *, events: str = "the top-class confidence", counted: str = "items",
               units: str = "") -> dict:
    """How the report's ECE and its interval were computed: ``events`` says what was binned, ``counted`` what a bin
    holds; ``units`` (when given) names what the bootstrap resampled instead of
    :func:`~tlcore.evaluation.metrics.ci_method`'s items / groups."""
    out = {"ece_definition": f"expected calibration error of {events}, {N_BINS} equal-mass bins "
                             f"({counted} sorted by confidence, cut into bins of equal count)",
           "n_bins": N_BINS, **ci_method(groups)}
    if units:
        out["ci_method"] = f"percentile bootstrap over {units} ({N_BOOT} resamples)"
    return out


def fit_temperature(logits: np.ndarray, y: Sequence[int], *, tolerance: float = 1e-6) -> float:
    """The temperature ``T`` minimising the mean NLL of ``softmax(logits / T)`` for labels ``y`` (Guo et al., ICML 2017),
    within :data:`T_BOUNDS`: Brent's bounded search on ``log T`` (the NLL is convex in ``1 / T``, so it has one
    minimum on the interval). 1.0 for no items.

    ``logits``: (n, classes) held-out logits (never the eval split's); ``y``: (n,) class indices."""
    yt = np.asarray(y, dtype=int)
    if len(yt) == 0:
        return 1.0
    z = np.asarray(logits, dtype=np.float64)
    picked = z[np.arange(len(yt)), yt]

    def nll(log_t: float) -> float:
        scaled = z / np.exp(log_t)
        return float(np.mean(logsumexp(scaled, axis=1) - picked / np.exp(log_t)))

    lo, hi = np.log(T_BOUNDS[0]), np.log(T_BOUNDS[1])
    found = minimize_scalar(nll, bounds=(lo, hi), method="bounded", options={"xatol": tolerance})
    return float(np.exp(np.clip(found.x, lo, hi)))


def fit_binary_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """Multi-label: the one temperature ``T`` minimising the mean binary cross-entropy of ``sigmoid(z / T)`` over every
    (item, label) pair of (n, L) held-out ``logits`` and 0/1 ``y``. A sigmoid is the softmax of the two logits
    ``(0, z)``, so this is :func:`fit_temperature` on those pairs."""
    z = np.asarray(logits, dtype=np.float64).ravel()
    return fit_temperature(np.stack([np.zeros_like(z), z], 1), np.asarray(y).astype(int).ravel())


def sigmoid(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """``sigmoid(logits / temperature)`` elementwise, in float64 (the scaled logits clipped at ±60, as multi-label's
    :func:`~tlcore.tasks.multilabel.model.sigmoid`, so it never overflows)."""
    z = np.asarray(logits, dtype=np.float64) / float(temperature)
    return 1.0 / (1.0 + np.exp(-np.clip(z, -60, 60)))
