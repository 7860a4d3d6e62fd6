"""Does the ranking hold? Rank the candidate backbones (:func:`tlcore.diagnostics.rank.run_rank`), then fine-tune
every candidate (linear probe) on the same target and correlate each score with the accuracy it reached: Kendall's
tau per score, over the candidates. Classification only (a task's spec says ``rank_validation``)."""

from __future__ import annotations

import tempfile
from typing import Optional, Sequence

from tlcore.config import FinetuneConfig
from tlcore.diagnostics import kendall_tau
from tlcore.diagnostics.rank import run_rank
from tlcore.errors import ConfigError
from tlcore.progress import Progress, ProgressFn, no_progress
from tlcore.settings.inductive import run_finetune
from tlcore.tasks import get_task
from tlcore.tasks.detect import resolve_task


def validated_rank(modality: str, target: str, *, eval_path: Optional[str] = None,
                   backbones: Optional[Sequence[str]] = None, seed: int = 0, n_boot: int = 30,
                   task: Optional[str] = None, progress: ProgressFn = no_progress) -> dict:
    """:func:`run_rank`'s report plus ``validation`` (:func:`validate_ranking`); ``eval_path``: labeled eval data for
    the fine-tuned accuracies (else a split of ``target``). ConfigError for a task without rank validation, before
    any work."""
    task = resolve_task(task, modality, ("target", target))
    check_rank_validation(task)
    report = run_rank(modality, target, backbones=backbones, seed=seed, n_boot=n_boot, task=task, progress=progress)
    report["validation"] = validate_ranking(modality, target, report["ranking"], eval_path=eval_path, seed=seed,
                                            progress=progress)
    progress(Progress("done", 1, 1, f"best: {report['ranking'][0]['backbone']}"))
    return report


def check_rank_validation(task: str) -> None:
    """ConfigError for a task whose ranking cannot be validated by fine-tuning (its spec's ``rank_validation``):
    :class:`~tlcore.experiments.configs.RankConfig` checks a task given up front, :func:`validated_rank` a detected one."""
    if not get_task(task).rank_validation:
        raise ConfigError(f"validating the ranking by fine-tuning every candidate is available for classification "
                          f"only, not for task {task!r}; rank without --validate, then fine-tune the top candidates "
                          f"with `finetune --task {task}` and compare their reports")


def validate_ranking(modality: str, target: str, ranking: list[dict], *, eval_path: Optional[str], seed: int,
                     progress: ProgressFn = no_progress) -> dict:
    """Fine-tune (linear probe) every candidate of ``ranking`` (``run_rank(...)["ranking"]``) and correlate each
    score's point estimate with the real accuracy (Kendall tau; None where it is undefined)."""
    names = [row["backbone"] for row in ranking]
    scores = {row["backbone"]: {s: v["point"] for s, v in row["scores"].items()} for row in ranking}
    accuracy = {}
    for name in names:
        progress(Progress("validate", len(accuracy), len(names), f"fine-tuning {name}"))
        with tempfile.TemporaryDirectory() as out:
            cfg = FinetuneConfig(modality=modality, target=target, eval=eval_path, backbone=name, seed=seed,
                                 strategy="linear_probe", out=out, baselines=[])
            accuracy[name] = run_finetune(cfg)["after"]["accuracy"]
    score_names = sorted({s for per in scores.values() for s in per})
    tau = {s: kendall_tau({n: scores[n][s] for n in names if s in scores[n]}, accuracy) for s in score_names}
    return {"strategy": "linear_probe", "accuracy": accuracy,
            "kendall_tau": {k: (None if v != v else round(v, 3)) for k, v in tau.items()}}
