"""Follow-up jobs that complete a finished run: the scratch baseline after a fast one-click demo (queued by the app;
its job path is :data:`~tlcore.runs.models.SCRATCH_JOB`).

A one-click demo shows its before/after as soon as the linear probe is done; training the random-init twin takes
minutes more, so it runs afterwards as its own background job (:func:`scratch_job`). The job rebuilds the run's
data exactly as the run did (:func:`~tlcore.tasks.classification.pipeline.prepare_data`: the stored eval split, the same
training items), refuses when the data changed since, trains the twin with the run's settings in its own folder,
and then adds ``baselines.scratch``, ``comparisons.scratch`` and the scratch predictions to the run's report (and
its model card), re-deriving the negative-transfer warnings. The amendment is recorded in the report.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np

from tlcore.config import FinetuneConfig, settings_from_dict
from tlcore.device import runtime_for, use_runtime
from tlcore.errors import ConfigError, DataError
from tlcore.evaluation.metrics import classification_metrics, paired_difference
from tlcore.evaluation.policy import report_alerts, split_alerts, transfer_alerts, transfer_warnings
from tlcore.progress import CancelFn, Progress, ProgressFn, never_cancel, no_progress
from tlcore.reporting.envelope import amend_report
from tlcore.reporting.files import write_json
from tlcore.runs.models import SCRATCH_JOB
from tlcore.tasks import task_of
from tlcore.tasks.classification.pipeline import prepare_data
from tlcore.tasks.classification.scratch import scratch_twin

__all__ = ["SCRATCH_JOB", "ScratchFollowupConfig", "scratch_job"]


@dataclass
class ScratchFollowupConfig:
    """Settings of a scratch follow-up: which finished run to complete (``parent_out``), and this job's own folder."""

    parent_out: str = ""                 # the finished run folder whose report gets the scratch baseline
    parent_run: str = ""                 # that run's id in the run store (the app waits for it); empty from Python
    modality: str = ""                   # copied from the run, for names and lists
    kind: str = "scratch baseline"
    out: str = ""                        # this job's folder: checkpoints of the twin and scratch.json

    @classmethod
    def from_dict(cls, data: dict) -> ScratchFollowupConfig:
        return settings_from_dict(cls, data, "a scratch follow-up")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def scratch_job(cfg: ScratchFollowupConfig, *, progress: Optional[ProgressFn] = None,
                should_cancel: Optional[CancelFn] = None, resume: bool = False) -> dict:
    """Train the scratch baseline for the finished run in ``cfg.parent_out`` and add it to that run's report.
    Returns this job's own small report (also ``out/report.json``): the scratch metrics and the comparison."""
    progress = progress or no_progress
    should_cancel = should_cancel or never_cancel
    parent, out = Path(cfg.parent_out), Path(cfg.out)
    if not cfg.out:
        raise ConfigError("no folder for the scratch follow-up: set 'out'")
    report = finished_report(parent, what="the scratch baseline")
    done = (report.get("baselines") or {}).get("scratch")
    if done is not None:  # already added (a resumed job, or the run computed it itself)
        return _own_report(out, report, parent)
    run_cfg = FinetuneConfig.from_dict(json.loads((parent / "config.json").read_text(encoding="utf-8")))
    progress(Progress("data", 0, 1, "rebuilding the run's training and eval split"))
    d = prepare_data(run_cfg)
    stored = report.get("eval_predictions") or {}
    if [str(x) for x in d.eval.items] != list(stored.get("items", [])) or d.classes != report["data"]["classes"]:
        raise DataError(f"the data of run {parent} changed since it ran (its eval items or classes differ now); "
                        "the scratch baseline would not be comparable — start a new run with scratch in its baselines")
    if len(d.train) != report["data"]["train"]:
        raise DataError(f"the training data of run {parent} changed since it ran ({len(d.train)} items now, "
                        f"{report['data']['train']} then); start a new run with scratch in its baselines")
    progress(Progress("data", 1, 1, f"{len(d.train)} train / {len(d.eval)} eval items, {len(d.classes)} classes"))
    t0 = time.time()
    out.mkdir(parents=True, exist_ok=True)
    # This folder is the job's own: checkpoints in it come from an earlier attempt (it yielded the queue to a run a
    # user was waiting for, or its worker died), so continue from them.
    resume = resume or (out / "checkpoints" / "scratch").exists()
    with use_runtime(runtime_for(run_cfg)):      # the run's own device and precision, recorded in ``info``
        pred, info = scratch_twin(run_cfg, d.train, d.y_train, d.eval.items, d.classes, out, resume, progress,
                                  should_cancel)
    elapsed = time.time() - t0

    y_eval, pred_after = np.asarray(stored["true"]), np.asarray(stored["after"])
    metrics = {**classification_metrics(y_eval, pred, d.classes, seed=run_cfg.seed, groups=d.eval.groups),
               "training": info}
    comparisons = {**report.get("comparisons", {}),
                   "scratch": paired_difference(y_eval, pred_after, pred, seed=run_cfg.seed, groups=d.eval.groups)}
    # the comparison warnings are computed again with the scratch comparison; the run's other warnings stay
    old_policy = set(transfer_warnings(report.get("comparisons", {}), metric="accuracy"))
    warnings, detail = split_alerts(transfer_alerts(comparisons, metric="accuracy")
                                    + [w for w in report_alerts(report) if w["text"] not in old_policy])
    skipped = {k: v for k, v in (report.get("baselines_skipped") or {}).items() if k != "scratch"}
    amended = {**report, "baselines": {**report.get("baselines", {}), "scratch": metrics}, "comparisons": comparisons,
               "warnings": warnings, "warnings_detail": detail, "baselines_skipped": skipped,
               "eval_predictions": {**stored, "scratch": np.asarray(pred).tolist()},
               "timings_s": {**report.get("timings_s", {}), "scratch": round(elapsed, 3)}}
    progress(Progress("save", 0, 1, "adding the scratch baseline to the run's report"))
    amended = amend_report(parent, amended, what=f"baselines.scratch (follow-up job, folder {out})")
    result = _own_report(out, amended, parent)
    progress(Progress("done", 1, 1, f"scratch accuracy {metrics['accuracy']:.3f} "
                                    f"(pretrained {amended['after']['accuracy']:.3f})"))
    return result


def finished_report(parent: Path, *, what: str) -> dict:
    """The report of the finished classification run in ``parent`` that a follow-up adding ``what`` completes."""
    try:
        report = json.loads((parent / "report.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{parent} holds no finished run (no report.json); {what} follows a finished run") from None
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read {parent / 'report.json'}: {exc}") from None
    if not task_of(report).scratch_followup or report.get("setting", "inductive") != "inductive":
        raise ConfigError(f"a follow-up adding {what} completes classification runs with labeled target data; "
                          f"{parent} is a {report.get('setting')} {report.get('task')} run")
    return report


def _own_report(out: Path, report: dict, parent: Path) -> dict:
    """This job's report: what it added to which run (the Runs list shows its scratch accuracy)."""
    scratch = report["baselines"]["scratch"]
    own: dict[str, Any] = {
        "kind": "scratch baseline", "parent_out": str(parent), "task": task_of(report).name,
        "modality": report.get("modality"), "backbone": report.get("backbone"),
        "baselines": {"scratch": scratch}, "comparisons": {"scratch": report["comparisons"]["scratch"]},
        "after": {"accuracy": report["after"]["accuracy"]}, "data": {"train": report["data"]["train"],
                                                                    "eval": report["data"]["eval"]},
    }
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "report.json", own)
    return own


scratch_job.config_class = ScratchFollowupConfig  # type: ignore[attr-defined]
