"""The README's demo x strategy table: before, after, scratch, k-NN and wall time, measured by running the CLI
pipeline on every demo with the default backbone. Prints markdown; --json keeps the raw numbers.

Usage: .venv/bin/python benchmarks/demo_table.py [--demos sentiment,digits] [--strategies linear_probe,partial,full,lora]
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

MODALITY = {"digits": "image", "fashion-shift": "image", "sentiment": "text", "spoken-digits": "audio"}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--demos", default="sentiment,digits,fashion-shift,spoken-digits")
    ap.add_argument("--strategies", default="linear_probe,partial,full,lora")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--json")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a shared 2-core machine)")
    a = ap.parse_args()
    import torch

    torch.set_num_threads(a.threads)

    from tlcore.config import FinetuneConfig
    from tlcore.data.demos import DEMOS, demo_dir
    from tlcore.settings.inductive import run_finetune

    rows = []
    for demo in a.demos.split(","):
        why = DEMOS.get(demo).available()
        if why:
            print(f"skipping {demo}: {why}", file=sys.stderr)
            continue
        d = demo_dir(demo)
        for strategy in a.strategies.split(","):
            with tempfile.TemporaryDirectory() as out:
                t0 = time.time()
                r = run_finetune(FinetuneConfig(modality=MODALITY[demo], source=str(d / "source"), target=str(d / "target"),
                                                eval=str(d / "eval"), strategy=strategy, epochs=a.epochs, out=out))
                wall = time.time() - t0
            rows.append({"demo": demo, "strategy": strategy, "backbone": r["backbone"], "train": r["data"]["train"],
                         "eval": r["data"]["eval"], "before": r["before"]["accuracy"], "after": r["after"]["accuracy"],
                         "after_ci95": r["after"]["accuracy_ci95"], "scratch": r["baselines"]["scratch"]["accuracy"],
                         "knn": r["baselines"]["knn"]["accuracy"], "seconds": wall, "timings_s": r["timings_s"],
                         "warnings": r["warnings"]})
            print(f"{demo} {strategy}: before {rows[-1]['before']:.3f} after {rows[-1]['after']:.3f} "
                  f"scratch {rows[-1]['scratch']:.3f} knn {rows[-1]['knn']:.3f} ({wall:.0f} s)", file=sys.stderr, flush=True)
    print(f"torch threads: {a.threads}")
    print("| demo | backbone | strategy | train / eval | before | after (95% CI) | scratch | k-NN | time |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        lo, hi = r["after_ci95"]
        print(f"| {r['demo']} | {r['backbone']} | {r['strategy']} | {r['train']} / {r['eval']} | {r['before']:.3f} | "
              f"{r['after']:.3f} ({lo:.2f}–{hi:.2f}) | {r['scratch']:.3f} | {r['knn']:.3f} | {r['seconds']:.0f} s |")
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
