"""One-click demos: queue a linear-probe run on a built-in demo data set, then the scratch baseline as a follow-up."""

from __future__ import annotations

from tlcore.config import FinetuneConfig
from tlcore.errors import ConfigError
from tlcore.evaluation.policy import baseline_label, strongest_no_pretraining
from tlcore.runs.models import SCRATCH_JOB
from tlcore.runs.records import Run
from tlcore.tasks import get_task, task_of
from ui import datasets
from ui.runs import get_store, start_run

# The demo shown for each modality on Home, and the backbone it uses (None: the modality's default).
HOME_DEMOS = {"image": "emoji", "text": "sentiment", "audio": "spoken-digits"}
DEMO_BACKBONE = {"emoji": "efficientnet-lite0-128", "digits": "efficientnet-lite0-128",
                 "fashion-shift": "efficientnet-lite0-128"}
# The demo run computes the k-NN and the classical baselines (seconds), so its before/after is on screen quickly; the scratch
# baseline fully trains a random-init twin of the backbone (minutes on a laptop CPU) and follows as its own
# background job that adds it to the run's report (tlcore.runs.followup). The Fine-tune page computes both.
DEMO_BASELINES = ["knn", "classical"]


def demo_config(name: str) -> FinetuneConfig:
    choice = datasets.resolve(f"demo:{name}")
    if choice is None:
        raise ConfigError(f"demo {name!r} is not available here")
    s = choice.splits
    return FinetuneConfig(modality=choice.modality, task=choice.task, source=s.get("source"), target=s.get("target"),
                          eval=s.get("eval"), strategy=get_task(choice.task).default_strategy,
                          backbone=DEMO_BACKBONE.get(name), baselines=list(DEMO_BASELINES))


def launch_demo(name: str) -> Run:
    """Queue the demo run and its scratch-baseline follow-up (training happens in the background worker); return
    the demo run."""
    cfg = demo_config(name)
    run = start_run(cfg, name=f"demo {name} · linear probe", dataset=f"demo:{name}")
    if get_task(cfg.task).scratch_followup:
        get_store().create_run({"parent_out": str(run.out), "parent_run": run.id, "modality": cfg.modality},
                               name=f"demo {name} · scratch baseline", owner=run.owner, dataset=f"demo:{name}",
                               job=SCRATCH_JOB)
    return run


def followups_of(run: Run, runs: list[Run]) -> list[Run]:
    """The follow-up runs (scratch baseline) of ``run`` among ``runs``, newest first."""
    return [r for r in runs if r.config.get("parent_run") == run.id]


def demo_result_line(report: dict, *, scratch_pending: bool = False) -> str:
    """One line with a finished demo's result against the strongest baseline without pretrained weights: "pretrained
    0.79 vs TF-IDF + logistic regression 0.68 with 40 labels" (or "vs scratch 0.50"); without any, the before/after;
    ``scratch_pending``: the scratch baseline is on its way."""
    metric = task_of(report).metric
    key = metric.key
    after = (report.get("after") or {}).get(key)
    if after is None:
        return ""
    labels = (report.get("data") or {}).get("train")
    best = strongest_no_pretraining(report, key, higher_is_better=metric.higher_is_better)
    scratch = ((report.get("baselines") or {}).get("scratch") or {}).get(key)
    line = f"pretrained {after:.2f}"
    line += (f" vs {baseline_label(report, best)} {report['baselines'][best][key]:.2f}" if best is not None
             else f" (before transfer {report['before'][key]:.2f})")
    line += f" with {labels} labels" if labels else ""
    return line + ("; scratch baseline training" if scratch is None and scratch_pending else "")
