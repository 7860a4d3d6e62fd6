"""One-click demos: queue a linear-probe run on a built-in demo data set, then the scratch baseline and more training
seeds as follow-ups."""

from __future__ import annotations

from tlcore.config import FinetuneConfig
from tlcore.data.demos import DEFAULT_DEMOS
from tlcore.errors import ConfigError
from tlcore.evaluation.policy import baseline_label, strongest_no_pretraining
from tlcore.runs.models import SCRATCH_JOB, SEEDS_JOB, completed_run
from tlcore.runs.records import Run
from tlcore.tasks import get_task, task_of
from ui import datasets
from ui.runs import get_store, start_run

# The demo shown for each modality on Home, and the backbone it uses (None: the modality's default).
HOME_DEMOS = DEFAULT_DEMOS
DEMO_BACKBONE = {"emoji": "efficientnet-lite0-128", "digits": "efficientnet-lite0-128",
                 "fashion-shift": "efficientnet-lite0-128"}
# The demo run computes the k-NN and the classical baselines (seconds), so its before/after is on screen quickly; the scratch
# baseline fully trains a random-init twin of the backbone (minutes on a laptop CPU) and follows as its own
# background job that adds it to the run's report (tlcore.runs.followup). The Fine-tune page computes both.
DEMO_BASELINES = ["knn", "classical"]
# Training seeds a demo run ends up with: after the scratch baseline, a follow-up trains "after" and every trained
# baseline with seeds 1 and 2 (tlcore.runs.seeds_followup); Compare shows the spread as each seed arrives.
DEMO_SEEDS = 3


def demo_config(name: str) -> FinetuneConfig:
    choice = datasets.resolve(f"demo:{name}")
    if choice is None:
        raise ConfigError(f"demo {name!r} is not available here")
    s = choice.splits
    return FinetuneConfig(modality=choice.modality, task=choice.task, source=s.get("source"), target=s.get("target"),
                          eval=s.get("eval"), strategy=get_task(choice.task).default_strategy,
                          backbone=DEMO_BACKBONE.get(name), baselines=list(DEMO_BASELINES))


def launch_demo(name: str) -> Run:
    """Queue the demo run and its follow-ups, the scratch baseline and then more seeds (training happens in the
    background worker); return the demo run. The seeds follow-up waits for the scratch one (so that it retrains the
    twin too, and the two never amend the report at the same time)."""
    cfg = demo_config(name)
    run = start_run(cfg, name=f"demo {name} · linear probe", dataset=f"demo:{name}")
    spec, store = get_task(cfg.task), get_store()
    after = run
    if spec.scratch_followup:
        after = store.create_run({"parent_out": str(run.out), "parent_run": run.id, "modality": cfg.modality},
                                 name=f"demo {name} · scratch baseline", owner=run.owner, dataset=f"demo:{name}",
                                 job=SCRATCH_JOB)
    if spec.seeds and DEMO_SEEDS > 1:
        store.create_run({"parent_out": str(run.out), "parent_run": after.id, "completes": run.id,
                          "modality": cfg.modality, "seeds": DEMO_SEEDS},
                         name=f"demo {name} · seeds 1-{DEMO_SEEDS - 1}", owner=run.owner, dataset=f"demo:{name}",
                         job=SEEDS_JOB)
    return run


def followups_of(run: Run, runs: list[Run]) -> list[Run]:
    """The follow-up runs (scratch baseline, more seeds) that complete ``run``, among ``runs``."""
    return [r for r in runs if completed_run(r.config) == run.id]


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
