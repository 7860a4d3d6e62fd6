"""Calibration of a classification run (the report's ``calibration`` block): the expected calibration error of "before"
and "after" on the eval split, a temperature fitted for "after" on held-out *training* items (never eval), saved with
the model (``calibration.json``, read by :meth:`TransferModel.from_pretrained`, so ``predict`` and Try it show
calibrated probabilities), and the ECE after temperature scaling. Formulas: :mod:`tlcore.evaluation.calibration`.

Where the temperature is fitted, by strategy:

* a loop strategy (partial, full, LoRA) **with a validation split** (:func:`loop_validation`): the model's logits on
  those validation items. They also picked the kept epoch, as in Guo et al., ICML 2017, whose T is fitted on the
  validation set used for model selection.
* the **linear probe** (no validation split): out-of-fold logits of k-fold cross-validation on the training features
  (k = min(5, smallest class)), each fold a probe with the C the run's probe chose, refitted without the fold's items
  — the cross-validated calibration of scikit-learn's ``CalibratedClassifierCV(ensemble=False)``.
* a loop strategy **without** a validation split (fewer than ``MIN_VAL_ITEMS`` validation items): nothing held out
  that the model has not trained on, so no temperature (T = 1), with the reason in the block.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from tlcore.device import small_problem_threads
from tlcore.evaluation.calibration import METHOD, calibration_summary, ece_method, fit_temperature, softmax
from tlcore.strategies import get_strategy
from tlcore.strategies.linear_probe import standardize

#: Folds of the probe's out-of-fold logits (fewer when the smallest class has fewer training items).
PROBE_FOLDS = 5


def probe_out_of_fold_logits(features: np.ndarray, y: np.ndarray, n_classes: int, *, C: float,
                             seed: int = 0) -> tuple[Optional[np.ndarray], int]:
    """((n, classes) out-of-fold log-probabilities, folds) of a linear probe with L2 strength ``C`` on (n, d) training
    ``features``: each item scored by a probe fitted without it (its fold). Log-probabilities are logits up to a
    per-item constant, which softmax (at any temperature) ignores. (None, folds) when the smallest class has fewer
    than 2 items or there is one class (no stratified folds)."""
    counts = np.bincount(y, minlength=n_classes)
    folds = int(min(PROBE_FOLDS, counts[counts > 0].min())) if (counts > 0).sum() > 1 else 0
    if folds < 2:
        return None, folds
    out = np.full((len(y), n_classes), -1e4)           # a class a fold never saw is never predicted (as the probe)
    for fit, held in StratifiedKFold(folds, shuffle=True, random_state=seed).split(features, y):
        z, mu, sd = standardize(features[fit])
        with small_problem_threads(z):
            clf = LogisticRegression(C=C, max_iter=2000).fit(z, y[fit])
        out[np.ix_(held, clf.classes_)] = clf.predict_log_proba((features[held] - mu) / sd)
    return out, folds


def _fitting_data(job: Any, info: dict) -> tuple[Optional[np.ndarray], Optional[np.ndarray], dict]:
    """(held-out logits, their labels, where) for the temperature of ``job``'s "after" model, or (None, None, why)."""
    d = job.d
    if not get_strategy(job.cfg.strategy).uses_loop:    # the linear probe: no loop, no validation split
        probe = info.get("linear_probe") or {}
        logits, folds = probe_out_of_fold_logits(job.f["train"], d.y_train, len(d.classes),
                                                 C=float(probe.get("C", 1.0)), seed=job.cfg.seed)
        if logits is None:
            return None, None, {"skipped": "the smallest class has fewer than 2 training items: no cross-validation "
                                           "folds to fit a temperature on"}
        return logits, d.y_train, {
            "split": "cross-validation", "items": int(len(d.y_train)),
            "how": f"out-of-fold logits of the linear probe ({folds}-fold cross-validation of the training features, "
                   f"C {probe.get('C', 1.0):g}; never eval)"}
    val_idx = job.val_idx
    if len(val_idx):
        logits = job.model.predict_logits([d.train.items[i] for i in val_idx], batch_size=64)
        return logits, d.y_train[val_idx], {
            "split": "validation", "items": int(len(val_idx)),
            "how": "the after model's logits on its validation split (training items held out of fitting, never eval)"}
    rule = str(info.get("early_stopping", "")).removeprefix("off: ")
    return None, None, {"skipped": f"no validation split{f' ({rule})' if rule else ''}: no held-out training items "
                                   "(never eval) to fit a temperature on, so the model keeps T = 1"}


def calibrate_run(job: Any, outcomes: dict) -> dict:
    """The report's ``calibration`` block of a classification :class:`~tlcore.tasks.classification.pipeline.Job` after
    its ``after()``; sets ``job.model.temperature`` (saved with the model by ``save_model``). Needs ``job.eval_logits``
    (the after model's uncalibrated eval logits) and, for a loop strategy, ``job.val_idx`` (its validation items)."""
    d, seed, groups = job.d, job.cfg.seed, job.d.eval.groups
    block: dict = {"method": METHOD, **ece_method(groups)}
    head = job.before_head
    block["before"] = (calibration_summary(head.scores(job.f["eval"]), d.y_eval, seed=seed, groups=groups)
                       if head.score == "softmax" else
                       {"skipped": "the before model (nearest class mean) scores cosine similarities to the class means, "
                                   "not probabilities: it has no calibration to measure"})
    block["after"] = calibration_summary(softmax(job.eval_logits), d.y_eval, seed=seed, groups=groups)
    logits, labels, where = _fitting_data(job, outcomes["after"].info)
    if logits is None:
        block.update(temperature=None, fitted_on=None, skipped=where["skipped"])
        return block
    t = fit_temperature(logits, labels)
    job.model.temperature = t
    job.model.calibration = {"method": METHOD, "fitted_on": where}
    block.update(temperature=t, fitted_on=where,
                 after_calibrated=calibration_summary(softmax(job.eval_logits, t), d.y_eval, seed=seed, groups=groups))
    return block
