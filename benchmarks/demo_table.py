"""The README's demo × strategy table, measured with today's code and written by this script (never by hand).

For every demo (default backbone, its source, target and eval splits) and strategy: one `finetune` run with
``--seeds 3`` (seeds 0, 1, 2 on the same split); the default strategies are the linear probe, full fine-tuning and
LoRA (partial fine-tuning, between the two, is left out of the default list for time). The linear-probe run also trains the baselines — the random-init
twin, the classical model without pretrained weights and k-NN, with the same training items, validation rule and
seeds; the scratch twin and the classical model do not depend on the strategy, so the other strategies' runs reuse
them (same items, same eval split, same seeds). Each row compares the strategy with the strongest baseline without
pretrained weights (by its mean over the seeds) by the hierarchical bootstrap of the runs' verdicts
(:func:`tlcore.evaluation.metrics.seeded_paired_difference`: seeds, then eval items or eval groups).

Writes ``docs/demo_table.json``; ``benchmarks/readme_tables.py`` renders it into the README, and
``tests/test_readme_tables.py`` checks that the README's numbers are the JSON's.

Usage: .venv/bin/python benchmarks/demo_table.py [--demos sentiment,digits] [--strategies linear_probe,lora]
                                                 [--seeds 3] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from parallel_runs import demo_run, run_jobs  # noqa: E402  (after the sys.path lines above)

from tlcore.config import NO_PRETRAINING  # noqa: E402
from tlcore.evaluation.metrics import seeded_paired_difference  # noqa: E402
from tlcore.evaluation.policy import baseline_label  # noqa: E402

DEMOS = ("sentiment", "emoji", "digits", "spoken-digits")
STRATEGIES = ("linear_probe", "full", "lora")
BASELINES = ["scratch", "classical", "knn"]
OUT = ROOT / "docs" / "demo_table.json"


def _run(job: dict) -> dict:
    """One run (in a worker process with one torch thread): the report's numbers this table needs."""
    r, seconds = demo_run(job, epochs=job["epochs"], seeds=job["seeds"], baselines=job["baselines"])
    s = r["seeds"]
    return {**job, "backbone": r["backbone"], "train": r["data"]["train"], "eval": r["data"]["eval"],
            "groups": r["data"]["groups"]["eval"], "before": r["before"]["accuracy"], "scores": s["scores"],
            "predictions": s["predictions"], "truth": r["eval_predictions"]["true"],
            "eval_groups": r["eval_predictions"].get("groups"), "seconds": round(seconds, 1),
            "labels": {name: baseline_label(r, name) for name in r["baselines"]},
            "training": {name: {k: v for k, v in (r["baselines"][name].get("training") or {}).items()
                                if k in ("train_size", "val_size", "epochs_run", "lr", "tuned", "model", "early_stopping")}
                         for name in r["baselines"]}}


def _row(run: dict, base: dict) -> dict:
    """A table row: ``run``'s strategy against the baselines of ``base`` (the same demo's probe run)."""
    mean = {name: float(np.mean(v)) for name, v in base["scores"].items()}
    strongest = max((n for n in NO_PRETRAINING if n in mean), key=lambda n: mean[n])
    afters, refs = run["predictions"]["after"], base["predictions"][strongest]
    comparison = seeded_paired_difference(run["truth"], afters, refs, groups=run["eval_groups"])
    after = run["scores"]["after"]
    return {"demo": run["demo"], "strategy": run["strategy"], "backbone": run["backbone"], "train": run["train"],
            "eval": run["eval"], "eval_groups": run["groups"], "before": run["before"],
            "after": {"mean": float(np.mean(after)), "std": float(np.std(after, ddof=1)), "per_seed": after},
            "baselines": {n: {"mean": mean[n], "std": float(np.std(base["scores"][n], ddof=1)),
                              "label": base["labels"][n], "training": base["training"][n]} for n in BASELINES},
            "strongest_no_pretraining": strongest,
            "vs_strongest": {"difference": comparison["difference"], "ci95": comparison["ci95"],
                             "ci_method": comparison["ci_method"]},
            "seconds": run["seconds"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--demos", default=",".join(DEMOS))
    ap.add_argument("--strategies", default=",".join(STRATEGIES))
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2, help="runs in parallel (one torch thread each)")
    ap.add_argument("--json", default=str(OUT))
    ap.add_argument("--cache", help="JSON-lines file of finished runs (kept; its runs are not run again)")
    ap.add_argument("--from-cache", action="store_true",
                    help="run nothing: write the table from the cached runs and list the rows not measured")
    a = ap.parse_args()
    from tlcore.data.demos import DEMOS as REGISTERED

    strategies = a.strategies.split(",")
    jobs = []
    for demo in a.demos.split(","):
        spec = REGISTERED.get(demo)
        if spec.available():
            print(f"skipping {demo}: {spec.available()}", file=sys.stderr)
            continue
        jobs += [{"demo": demo, "modality": spec.modality, "strategy": s, "epochs": a.epochs, "seeds": a.seeds,
                  "baselines": BASELINES if s == "linear_probe" else []} for s in strategies]
    not_measured = []
    cached = [json.loads(line) for line in Path(a.cache).read_text().splitlines()] if a.cache else []
    if a.from_cache:
        keys = {(r["demo"], r["strategy"], r["epochs"], r["seeds"]) for r in cached}
        not_measured = [f"{j['demo']} {j['strategy']}" for j in jobs
                        if (j["demo"], j["strategy"], j["epochs"], j["seeds"]) not in keys]
        jobs = [j for j in jobs if f"{j['demo']} {j['strategy']}" not in not_measured]
    runs = run_jobs(_run, jobs, key=("demo", "strategy", "epochs", "seeds"), workers=a.workers, cache=a.cache,
                    describe=lambda r: f"{r['demo']} {r['strategy']}: after {np.mean(r['scores']['after']):.3f} over "
                                       f"{r['seeds']} seeds ({r['seconds']:.0f} s)")
    # every row is compared with the baselines of its demo's linear-probe run (this invocation's or the cache's)
    probe = {r["demo"]: r for r in [*cached, *runs] if r["strategy"] == "linear_probe" and r["seeds"] == a.seeds}
    order = [(j["demo"], j["strategy"]) for j in jobs]
    missing = sorted({r["demo"] for r in runs} - set(probe))
    if missing:
        sys.exit(f"no linear-probe run of {', '.join(missing)} to compare with: add linear_probe to --strategies")
    rows = [_row(r, probe[r["demo"]]) for r in sorted(runs, key=lambda r: order.index((r["demo"], r["strategy"])))]
    table = {"measured": time.strftime("%Y-%m-%d"), "seeds": a.seeds, "epochs": a.epochs,
             "machine": f"{platform.machine()} CPU, {os.cpu_count()} cores, one torch thread per run, shared with other "
                        "jobs: times are pessimistic", "rows": rows, "not_measured": not_measured}
    Path(a.json).write_text(json.dumps(table, indent=2) + "\n")
    print(f"wrote {a.json}; render it into the README with benchmarks/readme_tables.py", file=sys.stderr)


if __name__ == "__main__":
    main()
