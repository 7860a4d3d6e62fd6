"""Re-derive the default learning rates of partial, full and LoRA fine-tuning on development data that no reported
number uses, and write where each default came from.

Development data: each demo's labeled ``target`` split only. Every run holds out a stratified 30% of it (whole
groups where the demo declares them) and is scored there; the demos' ``eval`` splits, which the README's tables
report, are never read. Grid: a few learning rates per strategy and modality family, fixed in advance from the usual
ranges (transformers fine-tune at 1e-5 to 2e-4, the EfficientNet CNN at 1e-4 to 1e-3, LoRA adapters at about ten
times those); 10 epochs, seed 0, no baselines. Rule: per strategy and modality, the learning rate with the highest
mean development accuracy over that modality's demos; a tie goes to the smaller rate.

Writes ``docs/default_lrs.json`` (every run: demo, strategy, lr, development accuracy, sizes) and, with ``--write``,
the chosen rates to ``tlcore/strategies/default_lrs.json``, which the strategies read (``Strategy.lr_for``);
``tests/test_default_lrs.py`` checks that the two agree with the rule above.

Usage: .venv/bin/python benchmarks/derive_defaults.py [--demos digits,sentiment] [--workers 2] [--write]
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

from tlcore.strategies.defaults import GRIDS, choose_lrs  # noqa: E402

#: Development data: the training splits of these demos (emoji, a third image demo, was left out for time).
DEMOS = ("digits", "fashion-shift", "sentiment", "spoken-digits")
STRATEGIES = ("partial", "full", "lora")
EVIDENCE = ROOT / "docs" / "default_lrs.json"
CHOSEN = ROOT / "tlcore" / "strategies" / "default_lrs.json"


def _run(job: dict) -> dict:
    """One development run (in a worker process with one torch thread)."""
    import torch

    torch.set_num_threads(1)
    from tlcore.config import FinetuneConfig
    from tlcore.data.demos import demo_dir
    from tlcore.settings.inductive import run_finetune

    target = demo_dir(job["demo"]) / "target"
    with tempfile.TemporaryDirectory() as out:
        t0 = time.time()
        r = run_finetune(FinetuneConfig(modality=job["modality"], target=str(target), eval=None, eval_fraction=0.3,
                                        strategy=job["strategy"], lr=job["lr"], epochs=job["epochs"], seed=0,
                                        baselines=[], out=out))
    return {**job, "data": f"{job['demo']} demo, target split (eval_path: {r['data']['eval_path']})",
            "dev_accuracy": r["after"]["accuracy"], "train": r["data"]["train"], "dev": r["data"]["eval"],
            "backbone": r["backbone"], "seconds": round(time.time() - t0, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--demos", default=",".join(DEMOS))
    ap.add_argument("--strategies", default=",".join(STRATEGIES))
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--workers", type=int, default=2, help="runs in parallel (one torch thread each)")
    ap.add_argument("--write", action="store_true", help=f"write the chosen rates to {CHOSEN.relative_to(ROOT)}")
    ap.add_argument("--cache", help="JSON-lines file of finished runs: appended as runs finish, and the runs it holds "
                                    "are not run again (an interrupted derivation goes on where it stopped)")
    a = ap.parse_args()
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
        CHOSEN.write_text(json.dumps({"derived": evidence["derived"], "evidence": "docs/default_lrs.json",
                                      "lrs": chosen}, indent=2) + "\n")


if __name__ == "__main__":
    main()
