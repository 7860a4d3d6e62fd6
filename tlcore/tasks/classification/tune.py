"""The same tuning budget for every trained model (``--tune N``, issue 18): N trials per network trained in a loop —
the fine-tuned model and the scratch twin alike — each trial trained on part of the *training* items and scored on
the rest (never the eval split). The linear probe's C and the classical baseline's C are chosen by k-fold
cross-validation of the training items whether or not ``--tune`` is given; the report says so for every model.

The search is Optuna's TPE sampler (seeded: the same data and seed give the same trials) over the learning rate,
log-uniform from a tenth to ten times the untuned default, which is trial 0 (so a tuned run can only lose against
the default when the validation part misleads it)."""

from __future__ import annotations

import logging
from typing import Callable, Optional, Sequence

import numpy as np

from tlcore.data.split import holdout_split

TUNE_FRACTION = 0.25     # of the training items, held out to score the trials when there is no validation part


def tuning_split(labels: Sequence[str], groups: Optional[Sequence[str]], val_idx: np.ndarray, fit_idx: np.ndarray,
                 seed: int) -> tuple[np.ndarray, np.ndarray, str]:
    """(trial fit indices, trial validation indices, the rule in words): the run's validation part when it has one,
    else a stratified (whole groups, for grouped data) ``TUNE_FRACTION`` of the training items."""
    if len(val_idx):
        return fit_idx, val_idx, f"trials fitted on {len(fit_idx)} training items, scored on the {len(val_idx)} " \
                                 "held out for early stopping (never eval)"
    keep, held = holdout_split(labels, groups, TUNE_FRACTION, seed=seed)
    return np.array(keep), np.array(held), (f"trials fitted on {len(keep)} training items, scored on {len(held)} "
                                            "others held out of the training items (never eval); the final model "
                                            "then trains on all of them with the chosen lr")


def tune_lr(score: Callable[[float, int], float], default: float, trials: int, *, seed: int, rule: str) -> tuple[float, dict]:
    """Search the learning rate with ``trials`` Optuna trials of ``score(lr, trial number)`` (validation accuracy,
    higher is better); return (the chosen lr, what the report records: every trial, the chosen value, how)."""
    import optuna  # a tuning dependency: loaded only when --tune is used

    logging.getLogger("optuna").setLevel(logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.enqueue_trial({"lr": default})
    study.optimize(lambda t: score(t.suggest_float("lr", default / 10, default * 10, log=True), t.number),
                   n_trials=trials)
    table = [{"trial": t.number, "lr": t.params["lr"], "val_accuracy": t.value} for t in study.trials]
    best = study.best_trial
    return float(best.params["lr"]), {
        "trials": table, "chosen": {"lr": float(best.params["lr"])}, "default": {"lr": default},
        "how": f"Optuna TPE (seed {seed}), {trials} trial(s) over lr in [{default / 10:.3g}, {default * 10:.3g}] "
               f"(log scale; trial 0 = the default); {rule}"}
