"""The one pipeline of every fine-tuning run: data → before → after → baselines → evaluation → report.

A setting (inductive, transductive) picks the task's job (:class:`~tlcore.tasks.job.TaskJob`) and calls
:func:`run_stages`; the task's job does what is specific to the task, this function does everything else once:
the order of the stages, progress and timings, scoring every model with the one evaluator (the job's ``score``),
the paired comparisons of "after" against "before" and against every baseline that uses no pretrained weights,
the transfer warnings, the source-vs-target diagnosis summary, the report's shared keys and the run folder.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from tlcore.config import NO_PRETRAINING, FinetuneConfig
from tlcore.device import num_workers_notice
from tlcore.diagnostics.summary import diagnosis_summary
from tlcore.evaluation.policy import alert, transfer_alerts
from tlcore.progress import CancelFn, Progress, ProgressFn, never_cancel, no_progress
from tlcore.reporting.writer import begin_run
from tlcore.tasks import get_task
from tlcore.tasks.job import Outcome, RunContext, TaskJob


def run_stages(job_class: type[TaskJob], cfg: FinetuneConfig, *, setting: str, progress: Optional[ProgressFn] = None,
               should_cancel: Optional[CancelFn] = None, resume: bool = False) -> dict:
    """Run ``job_class``'s stages for ``cfg`` in the ``setting``; write the run folder; return the report."""
    spec, metric = get_task(cfg.task), get_task(cfg.task).metrics[0]
    ctx = RunContext(cfg, begin_run(cfg, resume=resume), progress or no_progress, should_cancel or never_cancel, resume)
    ctx.warnings += [alert("num_workers", text) for text in [num_workers_notice(cfg.num_workers)] if text]
    torch.manual_seed(cfg.seed)
    job = job_class(ctx)
    ctx.progress(Progress("data", 0, 1, "loading data"))
    with ctx.timed("data"):
        ctx.progress(Progress("data", 1, 1, job.load()))
    with ctx.timed("before"):
        ctx.progress(Progress("before", 0, 1, "scoring the model before transfer"))
        outcomes: dict[str, Outcome] = {"before": job.before()}
    with ctx.timed("train"):
        outcomes["after"] = job.after()
    for name in cfg.baselines:
        if name in spec.baselines and name not in job.skipped:
            with ctx.timed(name):
                outcomes[name] = job.baseline(name)
    with ctx.timed("eval"):
        ctx.progress(Progress("eval", 0, 1, "scoring every model on the eval split"))
        scores = {name: job.score(o.pred) for name, o in outcomes.items()}
        after = outcomes["after"].pred
        refs = ["before"] * outcomes["before"].comparable + [n for n in NO_PRETRAINING if n in outcomes]
        comparisons = {ref: job.compare(after, outcomes[ref].pred) for ref in refs}
    seeds = _more_seeds(job, ctx, outcomes, refs) if cfg.seeds > 1 else None
    verdict = seeds["comparisons"] if seeds else comparisons     # over every seed: the interval covers seed noise
    own = job.report(outcomes)       # the task's keys (it may add warnings, e.g. forgetting on the source)
    baselines = {name: {**scores[name], **o.extra, **({"training": o.info} if o.info else {})}
                 for name, o in outcomes.items() if name not in ("before", "after")}
    report = {
        "modality": cfg.modality, "task": spec.name, "backbone": job.backbone_name, "strategy": cfg.strategy,
        "seed": cfg.seed, "before": {**scores["before"], "kind": outcomes["before"].kind}, "after": scores["after"],
        "baselines": baselines, "comparisons": verdict,
        "warnings": transfer_alerts(verdict, metric=metric.card_label or metric.label,
                                    higher_is_better=metric.higher_is_better) + ctx.warnings,
        "notes": ctx.notes, "training": outcomes["after"].info, **own, "timings_s": ctx.timings,
        **({"seeds": {**seeds, "first_seed_comparisons": comparisons}} if seeds else {}),
    }
    ctx.progress(Progress("save", 0, 1, "saving the model"))
    report = ctx.writer.finish(report, setting=setting, save_model=job.save_model, save_before=job.save_before,
                               skipped=job.skipped, diagnosis=diagnosis_summary(cfg.to_dict()))
    ctx.progress(Progress("done", 1, 1, f"after {metric.label} {metric.fmt(scores['after'][metric.key])} "
                                        f"(before {metric.fmt(scores['before'][metric.key])})"))
    return report


def _more_seeds(job: TaskJob, ctx: RunContext, outcomes: dict[str, Outcome], refs: list[str]) -> dict:
    """``--seeds K``: train "after" and every seeded baseline again with seeds ``seed+1 .. seed+K-1`` on the same
    split (the before model and unseeded baselines such as k-NN are scored once); every seed's headline metric and
    eval predictions (in ``eval_predictions``' item order), mean and standard deviation, and comparisons whose
    intervals cover seed and eval-sample noise (the verdict's)."""
    cfg = ctx.cfg
    runs = [{name: o.pred for name, o in outcomes.items()}]
    for seed in range(cfg.seed + 1, cfg.seed + cfg.seeds):
        ctx.progress(Progress("seeds", seed - cfg.seed, cfg.seeds, f"training again with seed {seed}"))
        with ctx.timed("seeds"):
            again = job.reseeded(ctx.for_seed(seed))
            runs.append({name: again.after().pred if name == "after" else
                         again.baseline(name).pred if name in job.seeded_baselines else pred
                         for name, pred in runs[0].items()})
    return seeds_summary(job, runs, list(range(cfg.seed, cfg.seed + cfg.seeds)), refs)


def seeds_summary(job: TaskJob, runs: list[dict], seeds: list[int], refs: list[str]) -> dict:
    """The report's ``seeds`` block from ``runs[s]`` = {model: eval predictions} of training seed ``seeds[s]``: every
    seed's headline metric and predictions, mean and standard deviation, and the comparisons of "after" against
    ``refs`` over every seed (their intervals cover seed and eval-sample noise: the verdict's)."""
    metric = get_task(job.cfg.task).metrics[0]
    scores = {name: [float(job.score(run[name])[metric.key]) for run in runs] for name in runs[0]}
    return {"seeds": list(seeds), "metric": metric.key, "scores": scores,
            "mean": {name: float(np.mean(v)) for name, v in scores.items()},
            "std": {name: float(np.std(v, ddof=1)) for name, v in scores.items()},
            "predictions": {name: [np.asarray(run[name]).tolist() for run in runs] for name in runs[0]},
            "comparisons": {ref: job.compare_seeds([r["after"] for r in runs], [r[ref] for r in runs]) for ref in refs}}
