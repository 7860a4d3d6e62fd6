"""Which backbone will transfer best? Rank candidates on the labeled target without fine-tuning.

* classify: LogME, H-score, k-NN CV accuracy on pooled features (LEEP and NCE where the backbone has a
  pretrained classifier), each with a subsampling interval; ``validate`` fine-tunes each candidate (Kendall tau).
* ner: the same scores on word features (hidden state at each word's first sub-token) with the word's BIO tag
  as the label; intervals subsample whole sentences, since words of one sentence are not independent.
* asr: the zero-shot word and character error rate of each candidate Whisper on the target (lower is better),
  with a bootstrap interval over clips: a decoder's error rate needs no training to measure, while
  feature-based scores do not apply to sequence outputs.

Checking a ranking against real fine-tuning is :mod:`tlcore.experiments.rank_validation` (it trains every candidate).
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import numpy as np

from tlcore.diagnostics import bootstrap_score, h_score, knn_cv_accuracy, logme, rank_backbones
from tlcore.models.registry import RANDOM_SUFFIX, list_backbones
from tlcore.progress import Progress, ProgressFn, no_progress
from tlcore.tasks import get_task
from tlcore.tasks.detect import resolve_task

SUBSAMPLE = dict(replace=False, fraction=0.8)


def candidate_backbones(modality: str, task: Optional[str] = None) -> list[str]:
    """Registered (non-test) backbones of the modality plus each one's random-init twin (a built-in control).
    For ``task="asr"``: the bundled Whisper and its random-init twin (the speech recognisers ``rank`` decodes with)."""
    diagnosis = get_task(task).part("diagnosis")
    if hasattr(diagnosis, "candidates"):       # a task with recognisers of its own (speech recognition: Whisper)
        return diagnosis.candidates(modality)
    names = [s.name for s in list_backbones(modality)]
    return names + [n + RANDOM_SUFFIX for n in names]


def feature_scores(features: np.ndarray, labels: np.ndarray, *, seed: int, n_boot: int,
                   groups: Optional[Sequence[np.ndarray]] = None) -> dict[str, tuple[float, float, float]]:
    """LogME, H-score (shrinkage) and k-NN CV accuracy of (features (n, d), labels (n,)), each as (point, lo, hi)
    from :func:`bootstrap_score` on 80% subsamples without replacement.

    ``groups``: row indices of each unit that must be drawn whole (the words of a sentence); the subsamples
    then draw 80% of the groups. Without groups each row is its own unit."""
    units = len(groups) if groups is not None else features.shape[0]

    def on_units(score: Callable[[np.ndarray, np.ndarray], float]) -> Callable[[np.ndarray], float]:
        def fn(idx: np.ndarray) -> float:
            rows = idx if groups is None else np.concatenate([groups[i] for i in idx])
            return score(features[rows], labels[rows])
        return fn

    scores = {"logme": logme, "h_score": lambda a, b: h_score(a, b, inverse="shrinkage"),
              "knn_accuracy": lambda a, b: knn_cv_accuracy(a, b, seed=seed)}
    return {name: bootstrap_score(on_units(fn), np.arange(units), n_boot=n_boot, seed=seed, **SUBSAMPLE)
            for name, fn in scores.items()}


def run_rank(modality: str, target: str, *, backbones: Optional[Sequence[str]] = None, seed: int = 0,
             n_boot: int = 30, task: Optional[str] = None, progress: ProgressFn = no_progress) -> dict:
    """Rank backbones for a labeled target set without fine-tuning (see the module docstring per task);
    ``task=None`` detects it from the data. Validating the ranking by fine-tuning every candidate is an experiment
    (:func:`tlcore.experiments.rank_validation.validated_rank`): this layer trains nothing."""
    task = resolve_task(task, modality, ("target", target))
    names = list(backbones or candidate_backbones(modality, task=task))
    report, _scores = get_task(task).part("diagnosis").rank(modality, target, names, seed=seed, n_boot=n_boot,
                                                            progress=progress)
    table = report["ranking"]
    report["advice"] = _advice(table)
    progress(Progress("done", 1, 1, f"best: {table[0]['backbone']}"))
    return report


def lower_is_better(scores: dict[str, dict[str, tuple[float, float, float]]]) -> list[dict]:
    """:func:`rank_backbones` for error rates: rank on the negated values, report the values themselves."""
    table = rank_backbones({b: {s: (-p, -hi, -lo) for s, (p, lo, hi) in per.items()} for b, per in scores.items()})
    for row in table:
        for s in row["scores"].values():
            s["point"], s["lo"], s["hi"] = -s["point"], -s["hi"], -s["lo"]
    return table


# ---------------------------------------------------------------- advice


SCORE_LABELS = {"logme": "LogME", "h_score": "H-score", "knn_accuracy": "k-NN accuracy", "leep": "LEEP", "nce": "NCE",
                "wer": "WER", "cer": "CER"}


def _advice(table: list[dict]) -> str:
    """One line: which candidate to start with, or why the data cannot say (overlapping intervals, or scores that
    favour different candidates)."""
    if len(table) < 2:
        return "Only one candidate: nothing to rank."
    best, second = table[0], table[1]
    favourite: dict[str, list[str]] = {}
    for name in best["scores"]:
        top = min(table, key=lambda row: row["scores"].get(name, {}).get("rank", float("inf")))
        favourite.setdefault(top["backbone"], []).append(SCORE_LABELS.get(name, name))
    if len(favourite) > 1:
        views = "; ".join(f"{', '.join(labels)} favour{'s' * (len(labels) == 1)} {b}" for b, labels in favourite.items())
        return (f"{best['backbone']} ranks first on the mean rank, but the scores disagree on the best backbone "
                f"({views}): fine-tune the top candidates before choosing.")
    close = [s for s in second["tied_with_best"]]
    if close:
        return (f"{best['backbone']} ranks first, but {second['backbone']} is within the interval on "
                f"{', '.join(close)}: the data cannot separate them; fine-tune both.")
    return f"{best['backbone']} ranks first on every score's interval; start with it."
