"""Re-derive the default learning rates of partial, full and LoRA fine-tuning on development data that no reported
number uses, and write where each default came from.

Development data: each demo's labeled ``target`` split only. Every run holds out a stratified 30% of it (whole
groups where the demo declares them) and is scored there; the demos' ``eval`` splits, which the README's tables
report, are never read. Grid: a few learning rates per strategy and modality family, fixed in advance from the usual
ranges (transformers fine-tune at 1e-5 to 2e-4, the EfficientNet CNN at 1e-4 to 1e-3, LoRA adapters at about ten
times those); 10 epochs, seed 0, no baselines. Rule: per strategy and modality, the learning rate with the highest
mean development accuracy over that modality's demos; a tie goes to the smaller rate.

NER and speech recognition (``--tasks ner,asr``): the same protocol on their demos' ``target`` splits (ner-shift with
its source sentences, 10 epochs; accent-asr with its source accent, 5 epochs, whole speakers held out), over
each task spec's ``lr_grid``, scored by entity F1 and by 1 - WER; the rule is the same. Their evidence goes to
``docs/task_default_lrs.json``.

The recipe's other settings (``--recipe``; :mod:`tlcore.recipe`: schedule, head initialisation, layer decay,
augmentation, the early-stopping threshold): the same development data and protocol, each strategy at its derived
learning rate, one setting varied at a time around the prior recipe (the values the code shipped with), partial, full
and LoRA on the development demos of the learning rates (digits, fashion-shift, sentiment, spoken-digits). Rule: per setting, the value with the
highest mean development accuracy over every cell it applies to; a tie keeps the prior. Evidence:
``docs/recipe.json``; with ``--write``, the choice goes to ``tlcore/recipe.json``.

Writes ``docs/default_lrs.json`` (every run: demo, strategy, lr, development accuracy, sizes) and, with ``--write``,
the chosen rates to ``tlcore/strategies/default_lrs.json``, which the strategies read (``Strategy.lr_for``; the task
specs read ``tlcore/tasks/default_lrs.json``); ``tests/test_default_lrs.py`` checks that the two agree with the rule above.

Usage: .venv/bin/python benchmarks/derive_defaults.py [--demos digits,sentiment] [--workers 2] [--write]
       .venv/bin/python benchmarks/derive_defaults.py --tasks ner,asr [--workers 2] [--write]
       .venv/bin/python benchmarks/derive_defaults.py --recipe [--workers 2] [--write] [--cache runs.jsonl]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from parallel_runs import run_jobs  # noqa: E402  (after the sys.path lines above)

from tlcore.recipe import PRIOR  # noqa: E402
from tlcore.strategies.defaults import GRIDS, choose_lrs  # noqa: E402

#: Development data: the training splits of these demos (emoji, a third image demo, was left out for time).
DEMOS = ("digits", "fashion-shift", "sentiment", "spoken-digits")
STRATEGIES = ("partial", "full", "lora")
EVIDENCE = ROOT / "docs" / "default_lrs.json"
TASK_EVIDENCE = ROOT / "docs" / "task_default_lrs.json"
CHOSEN = ROOT / "tlcore" / "strategies" / "default_lrs.json"
TASK_CHOSEN = ROOT / "tlcore" / "tasks" / "default_lrs.json"
RECIPE_EVIDENCE = ROOT / "docs" / "recipe.json"
#: the development demos of the recipe's settings
RECIPE_DEMOS = DEMOS
#: the development score each task's rule maximises (speech recognition: 1 - WER, so lower WER wins)
TASK_SCORES = {"ner": "entity F1", "asr": "1 - WER"}
#: task -> (demo, modality, epochs, training seeds): the configuration of the README's task tables
#: (benchmarks/task_tables.py); NER's runs take seconds, so each rate is scored as the mean over three training seeds
TASK_DEMOS = {"ner": ("ner-shift", "text", 10, (0, 1, 2)), "asr": ("accent-asr", "audio", 5, (0,))}


def _develop(job: dict, **config) -> dict:
    """One development run in a worker process with one torch thread: trained on 70% of the demo's target split
    (and whatever ``config`` adds, e.g. its source), scored on the other 30% (whole groups where the demo has them);
    the eval split is never read. The report's fields every evidence row records, and the report as ``report``."""
    import torch

    torch.set_num_threads(1)
    from tlcore.config import FinetuneConfig
    from tlcore.data.demos import demo_dir
    from tlcore.settings.inductive import run_finetune

    with tempfile.TemporaryDirectory() as out:
        t0 = time.time()
        r = run_finetune(FinetuneConfig(modality=job["modality"], target=str(demo_dir(job["demo"]) / "target"),
                                        eval=None, eval_fraction=0.3, strategy=job["strategy"], epochs=job["epochs"],
                                        baselines=[], out=out, **config))
    return {"report": r, "data": f"{job['demo']} demo, target split (eval_path: {r['data']['eval_path']})",
            "train": r["data"]["train"], "dev": r["data"]["eval"], "backbone": r["backbone"],
            "seconds": round(time.time() - t0, 1)}


def _run(job: dict) -> dict:
    """One development run of a learning rate."""
    run = _develop(job, lr=job["lr"], seed=0)
    r = run.pop("report")
    return {**job, "dev_accuracy": r["after"]["accuracy"], **run}


def _run_task(job: dict) -> dict:
    """One NER / speech recognition development run: trained on the demo's source and 70% of its target split, scored
    on the other 30% of the target split (whole speakers for speech)."""
    from tlcore.data.demos import demo_dir

    run = _develop(job, task=job["task"], source=str(demo_dir(job["demo"]) / "source"), lr=job["lr"], seed=job["seed"])
    after = run.pop("report")["after"]
    value = after["entity_f1"] if job["task"] == "ner" else after["wer"]
    return {**job, "dev_metric": "entity_f1" if job["task"] == "ner" else "wer",
            "dev_value": value, "dev_score": value if job["task"] == "ner" else 1.0 - value, **run}


def _run_recipe(job: dict) -> dict:
    """One development run of the recipe derivation: every setting at its prior except ``factor`` = ``value``."""
    from tlcore.recipe import override, setting

    changed = {} if job["factor"] == "base" else {job["factor"]: job["value"]}
    with override(**{**PRIOR, **changed}):
        run = _develop(job, seed=0, layer_decay=setting("layer_decay"), augment=setting("augment"))
        recipe = {name: setting(name) for name in PRIOR}
    r = run.pop("report")
    return {**job, "recipe": recipe, "lr": r["training"].get("lr"),
            "dev_accuracy": r["after"]["accuracy"], **run}


def _derive_recipe(a: argparse.Namespace) -> None:
    from tlcore.data.demos import DEMOS as REGISTERED
    from tlcore.recipe import CHOSEN_FILE, FACTORS, applies, choose_recipe

    jobs = []
    for demo in RECIPE_DEMOS:
        modality = REGISTERED.get(demo).modality
        for strategy in STRATEGIES:
            jobs.append({"demo": demo, "modality": modality, "strategy": strategy, "factor": "base",
                         "value": None, "epochs": a.epochs})
            jobs += [{"demo": demo, "modality": modality, "strategy": strategy, "factor": name, "value": value,
                      "epochs": a.epochs}
                     for name, values in FACTORS.items() if applies(name, strategy, modality) for value in values[1:]]
    runs = run_jobs(_run_recipe, jobs, key=("demo", "strategy", "factor", "value", "epochs"), workers=a.workers,
                    cache=a.cache, describe=lambda r: f"{r['demo']} {r['strategy']} {r['factor']}={r['value']}: dev "
                                                      f"accuracy {r['dev_accuracy']:.3f} ({r['train']} train / "
                                                      f"{r['dev']} dev, {r['seconds']:.0f} s)")
    chosen = choose_recipe(runs)
    rule = " ".join(p.replace("\n", " ") for p in __doc__.split("\n\n")[1:4:2])
    evidence = {"derived": time.strftime("%Y-%m-%d"), "rule": rule, "factors": FACTORS, "prior": PRIOR,
                "runs": runs, "chosen": chosen}
    RECIPE_EVIDENCE.write_text(json.dumps(evidence, indent=2) + "\n")
    print(json.dumps(chosen, indent=2))
    if a.write:
        CHOSEN_FILE.write_text(json.dumps({"derived": evidence["derived"], "evidence": "docs/recipe.json",
                                           "recipe": chosen}, indent=2) + "\n")


def _derive_tasks(a: argparse.Namespace) -> None:
    from tlcore.tasks import get_task

    jobs, grids = [], {}
    for task in a.tasks.split(","):
        demo, modality, epochs, seeds = TASK_DEMOS[task]
        grids[task] = get_task(task).lr_grid
        for strategy, grid in grids[task].items():
            jobs += [{"task": task, "demo": demo, "modality": modality, "strategy": strategy, "lr": lr,
                      "epochs": epochs, "seed": seed} for seed in seeds for lr in grid]
    runs = run_jobs(_run_task, jobs, key=("task", "strategy", "lr", "epochs", "seed"), workers=a.workers, cache=a.cache,
                    describe=lambda r: f"{r['task']} {r['strategy']} lr {r['lr']:g} seed {r['seed']}: dev {r['dev_metric']} "
                                       f"{r['dev_value']:.3f} ({r['train']} train / {r['dev']} dev, {r['seconds']:.0f} s)")
    chosen = choose_lrs(runs, family="task", score="dev_score")
    rule = __doc__.split("\n\n")[1].replace("\n", " ") + " " + __doc__.split("\n\n")[2].replace("\n", " ")
    evidence = {"derived": time.strftime("%Y-%m-%d"), "rule": rule, "scores": TASK_SCORES,
                "grids": grids, "runs": runs, "chosen": chosen}
    TASK_EVIDENCE.write_text(json.dumps(evidence, indent=2) + "\n")
    print(json.dumps(chosen, indent=2))
    if a.write:
        by_task: dict = {}
        for strategy, lrs in chosen.items():
            for task, lr in lrs.items():
                by_task.setdefault(task, {})[strategy] = lr
        TASK_CHOSEN.write_text(json.dumps({"derived": evidence["derived"], "evidence": "docs/task_default_lrs.json",
                                           "lrs": by_task}, indent=2) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--demos", default=",".join(DEMOS))
    ap.add_argument("--strategies", default=",".join(STRATEGIES))
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--workers", type=int, default=2, help="runs in parallel (one torch thread each)")
    ap.add_argument("--write", action="store_true", help=f"write the chosen rates to {CHOSEN.relative_to(ROOT)}")
    ap.add_argument("--cache", help="JSON-lines file of finished runs: appended as runs finish, and the runs it holds "
                                    "are not run again (an interrupted derivation goes on where it stopped)")
    ap.add_argument("--tasks", help="derive NER's / speech recognition's rates instead (ner,asr)")
    ap.add_argument("--recipe", action="store_true", help="derive the recipe's other settings instead (tlcore/recipe.py)")
    a = ap.parse_args()
    if a.recipe:
        return _derive_recipe(a)
    if a.tasks:
        return _derive_tasks(a)
    from tlcore.data.demos import DEMOS as REGISTERED

    jobs = []
    for demo in a.demos.split(","):
        spec = REGISTERED.get(demo)
        why = spec.available()
        if why:
            print(f"skipping {demo}: {why}", file=sys.stderr)
            continue
        for strategy in a.strategies.split(","):
            for lr in GRIDS[strategy][spec.modality]:
                jobs.append({"demo": demo, "modality": spec.modality, "strategy": strategy, "lr": lr, "epochs": a.epochs})
    runs = run_jobs(_run, jobs, key=("demo", "strategy", "lr", "epochs"), workers=a.workers, cache=a.cache,
                    describe=lambda r: f"{r['demo']} {r['strategy']} lr {r['lr']:g}: dev accuracy "
                                       f"{r['dev_accuracy']:.3f} ({r['train']} train / {r['dev']} dev, {r['seconds']:.0f} s)")
    chosen = choose_lrs(runs)
    evidence = {"derived": time.strftime("%Y-%m-%d"), "rule": __doc__.split("\n\n")[1].replace("\n", " "),
                "grids": GRIDS, "runs": runs, "chosen": chosen}
    EVIDENCE.write_text(json.dumps(evidence, indent=2) + "\n")
    print(json.dumps(chosen, indent=2))
    if a.write:
        current = json.loads(CHOSEN.read_text()) if CHOSEN.exists() else {}
        current.update({"derived": evidence["derived"], "evidence": "docs/default_lrs.json", "lrs": chosen})
        CHOSEN.write_text(json.dumps(current, indent=2) + "\n")


if __name__ == "__main__":
    main()
