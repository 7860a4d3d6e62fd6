"""More training seeds for a finished one-click demo run, as a background follow-up (its job path is
:data:`~tlcore.runs.models.SEEDS_JOB`).

A one-click demo trains once (seed 0) so that its before/after is on screen in seconds; with 40-150 labels another
seed moves the result by several points. This job trains "after" and every trained baseline the run has (the
classical model, and the scratch twin once its own follow-up added it) again with the next seeds on the same split,
exactly as ``--seeds K`` would in the run itself (:func:`tlcore.settings.pipeline.seeds_summary`), and adds the
result to the run's report after *each* seed: Compare shows the spread as it arrives. The verdict (``comparisons``
and the transfer warnings) then covers seed and eval-sample noise; the first seed's comparisons stay in
``seeds.first_seed_comparisons``. The data is rebuilt the way the run built it and checked against the report, as the
scratch follow-up does; each amendment is recorded in the report.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from tlcore.config import LIMITS, FinetuneConfig, settings_from_dict
from tlcore.device import runtime_for, use_runtime
from tlcore.errors import ConfigError, DataError
from tlcore.evaluation.policy import report_alerts, split_alerts, transfer_alerts, transfer_warnings
from tlcore.progress import CancelFn, Progress, ProgressFn, never_cancel, no_progress
from tlcore.reporting.envelope import amend_report
from tlcore.reporting.files import write_json
from tlcore.runs.followup import finished_report
from tlcore.runs.models import SEEDS_JOB
from tlcore.settings.pipeline import seeds_summary
from tlcore.tasks import get_task
from tlcore.tasks.job import RunContext

__all__ = ["SEEDS_JOB", "SeedsFollowupConfig", "seeds_job"]


@dataclass
class SeedsFollowupConfig:
    """Settings of a seeds follow-up: which finished run to complete (``parent_out``), how many training seeds it
    should have in all (``seeds``, counting the run's own), and this job's own folder."""

    parent_out: str = ""                 # the finished run folder whose report gets the seeds
    parent_run: str = ""                 # the run this job waits for in the run store (the demo's scratch follow-up)
    completes: str = ""                  # the run whose report it completes (Compare shows its progress there)
    modality: str = ""                   # copied from the run, for names and lists
    kind: str = "more seeds"
    seeds: int = 3                       # training seeds in all, the run's own included
    out: str = ""                        # this job's folder: checkpoints of each seed's training

    @classmethod
    def from_dict(cls, data: dict) -> SeedsFollowupConfig:
        cfg = settings_from_dict(cls, data, "a seeds follow-up")
        lo, hi = LIMITS["seeds"]["min"], LIMITS["seeds"]["max"]
        if not isinstance(cfg.seeds, int) or not 2 <= cfg.seeds <= hi:
            raise ConfigError(f"seeds = {cfg.seeds!r}: a seeds follow-up needs a whole number of seeds from 2 "
                              f"(the run's own and one more) to {hi}; {lo} seed needs no follow-up")
        return cfg

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


class _Folder:
    """Where the job's trainings keep their checkpoints (what a run writer gives a run's stages)."""

    def __init__(self, out: Path):
        self.out = out

    def checkpoints(self, stage: str) -> Path:
        return self.out / "checkpoints" / stage


def seeds_job(cfg: SeedsFollowupConfig, *, progress: Optional[ProgressFn] = None,
              should_cancel: Optional[CancelFn] = None, resume: bool = False) -> dict:
    """Train the finished run in ``cfg.parent_out`` with its next training seeds and add them to its report, one
    seed at a time. Returns this job's own small report (also ``out/report.json``)."""
    progress, should_cancel = progress or no_progress, should_cancel or never_cancel
    parent, out = Path(cfg.parent_out), Path(cfg.out)
    if not cfg.out:
        raise ConfigError("no folder for the seeds follow-up: set 'out'")
    report = finished_report(parent, what="more training seeds")
    if not get_task(report.get("task")).seeds:
        raise ConfigError(f"{parent} is a {report.get('task')} run: several training seeds are available for "
                          "classification runs only")
    run_cfg = FinetuneConfig.from_dict(json.loads((parent / "config.json").read_text(encoding="utf-8")))
    wanted = list(range(run_cfg.seed, run_cfg.seed + cfg.seeds))
    have = list((report.get("seeds") or {}).get("seeds") or [run_cfg.seed])
    if have[: len(wanted)] == wanted:     # already there (a resumed job, or the run trained them itself)
        return _own_report(out, report, parent)

    progress(Progress("data", 0, 1, "rebuilding the run's training and eval split"))
    out.mkdir(parents=True, exist_ok=True)
    resume = resume or (out / "checkpoints").exists()   # an earlier attempt of this job: continue from it
    own_cfg = dataclasses.replace(run_cfg, out=str(out), seeds=1)
    ctx = RunContext(own_cfg, _Folder(out), progress, should_cancel, resume)
    with use_runtime(runtime_for(run_cfg)):           # the run's own device and precision
        job = get_task(run_cfg.task).part("pipeline").Job(ctx)
        job.load()
        stored = report.get("eval_predictions") or {}
        if [str(x) for x in job.d.eval.items] != list(stored.get("items", [])) or job.d.classes != report["data"]["classes"]:
            raise DataError(f"the data of run {parent} changed since it ran (its eval items or classes differ now); "
                            "more seeds would not be comparable — start a new run with --seeds")
        if len(job.d.train) != report["data"]["train"]:
            raise DataError(f"the training data of run {parent} changed since it ran ({len(job.d.train)} items now, "
                            f"{report['data']['train']} then); start a new run with --seeds")
        progress(Progress("data", 1, 1, f"{len(job.d.train)} train / {len(job.d.eval)} eval items"))
        models = ["before", "after", *(report.get("baselines") or {})]
        models = [m for m in models if m in stored]
        refs = [r for r in (report.get("comparisons") or {}) if r in stored]
        trained = [m for m in models if m in (job.seeded_baselines or ())]
        earlier = (report.get("seeds") or {}).get("predictions") or {}
        if have == wanted[: len(have)] and all(len(earlier.get(m) or []) == len(have) for m in models):
            runs = [{m: earlier[m][i] for m in models} for i in range(len(have))]   # the seeds added so far
        else:                                                                       # (e.g. a model added since)
            runs = [{m: stored[m] for m in models}]
        for seed in wanted[len(runs):]:
            progress(Progress("seeds", len(runs), len(wanted), f"training again with seed {seed}"))
            again = job.reseeded(ctx.for_seed(seed))
            runs.append({m: again.after().pred if m == "after" else again.baseline(m).pred if m in trained
                         else runs[0][m] for m in models})
            report = _amend(parent, finished_report(parent, what="more training seeds"), job, runs,
                            wanted[: len(runs)], refs, trained)
    result = _own_report(out, report, parent)
    m = report["seeds"]["metric"]
    progress(Progress("done", 1, 1, f"after {m} over {len(runs)} seeds: mean {report['seeds']['mean']['after']:.3f} "
                                    f"(sd {report['seeds']['std']['after']:.3f})"))
    return result


def _amend(parent: Path, report: dict, job, runs: list[dict], seeds: list[int], refs: list[str],
           trained: list[str]) -> dict:
    """Add the seeds so far to the run's report; the verdict and its warnings are recomputed over them."""
    block = seeds_summary(job, runs, seeds, refs)
    metric = get_task(report.get("task")).metrics[0]
    label = metric.card_label or metric.label
    first = (report.get("seeds") or {}).get("first_seed_comparisons") or report.get("comparisons") or {}
    verdict = {**report.get("comparisons", {}), **block["comparisons"]}
    old_policy = set(transfer_warnings(report.get("comparisons", {}), metric=label,
                                       higher_is_better=metric.higher_is_better))
    warnings, detail = split_alerts(transfer_alerts(verdict, metric=label, higher_is_better=metric.higher_is_better)
                                    + [w for w in report_alerts(report) if w["text"] not in old_policy])
    block = {**block, "first_seed_comparisons": first, "retrained": ["after", *trained],
             "source": "follow-up job (one-click demo)"}
    amended = {**report, "seeds": block, "comparisons": verdict, "warnings": warnings, "warnings_detail": detail}
    return amend_report(parent, amended, what=f"seeds {seeds[0]}-{seeds[-1]} (follow-up job)")


def _own_report(out: Path, report: dict, parent: Path) -> dict:
    """This job's report: what it added to which run (the Runs list shows the seeds' mean)."""
    seeds = report.get("seeds") or {}
    own = {"kind": "more seeds", "parent_out": str(parent), "task": report.get("task"),
           "modality": report.get("modality"), "backbone": report.get("backbone"),
           "seeds": {k: seeds.get(k) for k in ("seeds", "metric", "scores", "mean", "std")},
           "after": report.get("after"), "comparisons": report.get("comparisons"),
           "data": {"train": report["data"]["train"], "eval": report["data"]["eval"]}}
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "report.json", own)
    return own


seeds_job.config_class = SeedsFollowupConfig  # type: ignore[attr-defined]
