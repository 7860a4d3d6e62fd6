"""Calibration of a multi-label run (the report's ``calibration`` block, the shape classification's has): each
(item, label) probability is a binary event — the label is on the item or not — and the expected calibration error
pools every pair of the eval split (equal-mass bins; the interval resamples whole eval items, all their labels
together, or whole groups when the eval set declares them). Formulas: :mod:`tlcore.evaluation.calibration`.

One temperature for every label (Guo et al., ICML 2017, applied to the sigmoid: ``p = sigmoid(z / T)``) is fitted
on the run's **validation part** of the training items (:func:`~tlcore.tasks.multilabel.pipeline.validation_split`,
never the eval split): the binary cross-entropy of its (item, label) pairs under the "after" model's logits. The
per-label decision thresholds are then chosen on the *calibrated* probabilities of the same validation items, so the
saved thresholds and ``predict`` / Try it read the same scale (``calibration.json`` beside ``thresholds.json``). A run
without a validation part (too few training items) fits no temperature (T = 1) and says why.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from tlcore.evaluation.calibration import binary_calibration_summary, ece_method, fit_binary_temperature, sigmoid

METHOD = ("temperature scaling of the sigmoid outputs (Guo et al., 'On Calibration of Modern Neural Networks', ICML "
          "2017): one scalar T > 0 for every label, probabilities sigmoid(logits / T), T minimising the binary "
          "cross-entropy of the validation items' (item, label) pairs (never the eval split); the per-label thresholds "
          "are then chosen on the calibrated probabilities of the same validation items")
EVENTS = ("each (item, label) probability as a binary event (its outcome: the item has the label), pooled over every "
          "eval item and label")
#: The reliability diagram's axes for these events, and what predict does with T (the Compare page shows both).
AXES = {"x": "mean predicted probability of the (item, label) pairs", "y": "share of the pairs with the label"}
USE = ("Predict and Try it show the calibrated probabilities, and the per-label thresholds were chosen on them (on "
       "the validation items), so predictions can differ slightly from thresholds chosen at T = 1.")
BEFORE_SKIPPED = ("the training-free reference scores centroid contrasts (cosine differences), not probabilities: it "
                  "has no calibration to measure")


def fit_on_validation(val_logits: np.ndarray, y_val: np.ndarray, rule: str) -> tuple[Optional[float], dict]:
    """(temperature, where it was fitted) from the "after" model's (n_val, L) logits on the validation items, or
    (None, {"skipped": why}) when there are none (``rule``: the run's validation rule in words)."""
    if not len(y_val):
        return None, {"skipped": f"no validation part ({rule}): no held-out training items (never eval) to fit a "
                                 "temperature on, so the model keeps T = 1"}
    return fit_binary_temperature(val_logits, y_val), {
        "split": "validation", "items": int(len(y_val)), "pairs": int(np.asarray(y_val).size),
        "how": "the after model's logits on the validation part of the training items (the items its thresholds are "
               "chosen on; never eval)"}


def calibration_block(*, before_proba: Optional[np.ndarray], eval_logits: np.ndarray, y_eval: np.ndarray,
                      temperature: Optional[float], fitted: dict, seed: int = 0,
                      groups: Optional[Sequence[str]] = None) -> dict:
    """The report's ``calibration`` block: ``before`` (its (n, L) sigmoid probabilities, or skipped when it has none),
    ``after`` (T = 1) and, when a temperature was fitted, ``after_calibrated`` (T), on the eval split's pairs."""
    units = "" if groups is not None else "eval items, each with all its labels"
    block: dict = {"method": METHOD, **ece_method(groups, events=EVENTS, counted="pairs", units=units),
                   "events": EVENTS, "axes": AXES, "use": USE}
    summary = lambda p: binary_calibration_summary(p, y_eval, seed=seed, groups=groups)  # noqa: E731
    block["before"] = summary(before_proba) if before_proba is not None else {"skipped": BEFORE_SKIPPED}
    block["after"] = summary(sigmoid(eval_logits))
    if temperature is None:
        block.update(temperature=None, fitted_on=None, skipped=fitted["skipped"])
        return block
    block.update(temperature=temperature, fitted_on=fitted, after_calibrated=summary(sigmoid(eval_logits, temperature)))
    return block
