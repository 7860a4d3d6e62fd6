"""The one envelope every report gets — fine-tuning, clustering, curve, sweep, diagnosis — and the one way a finished
report may change afterwards.

:func:`envelope` is the part every kind shares: ``report_schema`` (one number for every kind), ``tlcore_version``,
``kind`` (absent for fine-tuning reports, which predate kinds), ``setting``, ``task``, ``modality``, ``seed``, where
the networks ran (``device``, ``precision``, ``environment``), ``config``, and structured ``warnings`` /
``warnings_detail``; :func:`complete_analysis` puts it around an analysis's report. For fine-tuning,
:func:`complete_report` adds ``report_schema``, ``tlcore_version``, ``setting``, ``task``, ``environment``,
``config``, ``baselines_skipped`` (every baseline that was not computed, with the reason), and ``timings_s``
rounded to milliseconds. Counts in ``data`` mean the same for every task: ``train`` = labeled target items used for
training (including the ``val`` items held out of them for early stopping), ``val`` = those held out, ``eval`` =
the held-out eval items, ``source`` / ``unlabeled`` = items of those sets.

:func:`amend_report` lets a follow-up job add to a finished report (the scratch baseline); it never drops a key.
"""

from __future__ import annotations

import hashlib
import json
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Optional

import torch

from tlcore.device import current, peak_memory_bytes
from tlcore.evaluation.policy import split_alerts
from tlcore.reporting.files import write_json, write_text
from tlcore.reporting.model_card import model_card_markdown
from tlcore.tasks import DEFAULT_TASK, get_task
from tlcore.version import __version__

REPORT_SCHEMA = 2


def envelope(config: dict, *, setting: str, kind: Optional[str] = None) -> dict:
    """The keys every report starts from (module docstring); the report's own keys win where both set one."""
    runtime = current().describe()       # where the networks of this run ran (tlcore.device.use_runtime)
    return {
        **({"kind": kind} if kind else {}),
        "report_schema": REPORT_SCHEMA, "tlcore_version": __version__, "setting": setting,
        "task": config.get("task", DEFAULT_TASK), "modality": config.get("modality"), "seed": config.get("seed", 0),
        "device": runtime["device"], "precision": runtime["precision"], "num_processes": runtime["num_processes"],
        "peak_accelerator_memory_bytes": peak_memory_bytes(),
        "environment": {"python": platform.python_version(), "torch": torch.__version__,
                        "threads": torch.get_num_threads(), **runtime},
        "config": config, "warnings": [], "notes": [],
    }


def _finish(out: dict) -> dict:
    out["timings_s"] = {k: round(float(v), 3) for k, v in out.get("timings_s", {}).items()}
    out["warnings"], out["warnings_detail"] = split_alerts(list(out["warnings"]))
    return out


def complete_analysis(report: dict, config: dict, *, kind: str, setting: str) -> dict:
    """An analysis's report (clustering, curve, sweep, diagnosis) inside the shared envelope."""
    return _finish({**envelope(config, setting=setting, kind=kind), **report})


def complete_report(report: dict, config: dict, *, setting: str, skipped: Optional[dict[str, str]] = None) -> dict:
    """The shared envelope around a task's report (module docstring); the task's keys win where both set one."""
    requested = list(config.get("baselines") or [])
    task = get_task(config.get("task") or DEFAULT_TASK)
    have = set(report.get("baselines", {}))
    not_requested = {name: f"not requested (baselines = {', '.join(requested) or 'none'})"
                     for name in task.baselines if name not in requested and name not in have}
    not_requested |= {name: f"not available for {task.description}"
                      for name in requested if name not in task.baselines and name not in have}
    if setting != "inductive":       # the pipelines of the other settings say which they skip and why
        not_requested |= {name: f"not computed in the {setting} setting" for name in requested
                          if name in task.baselines and name not in have}
    out = {**envelope(config, setting=setting), "baselines": {}, **report}
    out["baselines_skipped"] = {**not_requested, **(skipped or {}), **report.get("baselines_skipped", {})}
    return _finish(out)


#: The keys of ``eval_predictions`` that say *what* was scored (items and their truth), not what a model predicted.
_EVAL_IDENTITY = ("items", "names", "true", "tokens", "gold", "reference", "groups")


def comparison_key(report: dict) -> str:
    """Runs are comparable only when this is equal: the same task and setting, scored on the same eval items with the
    same truth (a hash of them). The strategy ladder, Home and the sweep compare only runs with one key; runs on the
    same data set name but another eval split, another task or an adaptation setting get another key."""
    preds = report.get("eval_predictions") or {}
    h = hashlib.sha256(json.dumps([report.get("task") or DEFAULT_TASK, report.get("setting") or "inductive",
                                   {k: preds.get(k) for k in _EVAL_IDENTITY if k in preds}],
                                  sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


def amend_report(folder: str | Path, report: dict, *, what: str) -> dict:
    """Rewrite a finished run's report.json and model card with results a follow-up job added (the scratch baseline).

    Only additions are allowed: every key of the old report stays (values may be extended), and the amendment is
    recorded in ``report["amendments"]`` with its time, so nothing the run saved is silently changed."""
    folder = Path(folder)
    old = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    missing = sorted(set(old) - set(report))
    if missing:
        raise ValueError(f"an amendment may only add to a report; it drops {missing}")
    report = {**report, "amendments": [*old.get("amendments", []),
                                       {"added": what, "at": datetime.now(UTC).isoformat(timespec="seconds")}]}
    write_json(folder / "report.json", report)
    write_text(folder / "README.md", model_card_markdown(report))
    return report
