"""The README's named-entity recognition and speech recognition tables, measured with today's code.

NER: the ``ner-shift`` demo (labeled source, target and eval), every NER strategy, 10 epochs, with the scratch twin.
ASR: the ``accent-asr`` demo (source accent, target accents, unseen target-accent speakers for eval), every ASR
strategy, 5 epochs. One seed (these tasks train once per run; ``--seeds`` is classification's). Writes
``docs/task_tables.json``; ``benchmarks/readme_tables.py`` renders it into the README.

Usage: .venv/bin/python benchmarks/task_tables.py [--tasks ner,asr] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

OUT = ROOT / "docs" / "task_tables.json"
#: task -> (demo, modality, strategies, epochs, baselines)
PLAN = {"ner": ("ner-shift", "text", ("linear_probe", "partial", "full", "lora"), 10, ["scratch"]),
        "asr": ("accent-asr", "audio", ("decoder", "lora", "full"), 5, [])}


def _metrics(block: dict, keys: tuple[str, ...]) -> dict:
    return {k: block[k] for k in keys if k in block}


def _f1_by_type(block: dict) -> dict:
    """NER's F1 per entity type (the table shows no more of the per-type block)."""
    return {kind: {"f1": m["f1"]} for kind, m in (block.get("per_type") or {}).items()}


def _run(job: dict) -> dict:
    """One run (in a worker process with one torch thread): the numbers the tables show."""
    import torch

    torch.set_num_threads(1)
    from tlcore.config import FinetuneConfig
    from tlcore.data.demos import demo_dir
    from tlcore.settings.inductive import run_finetune

    d = demo_dir(job["demo"])
    keys = ("entity_f1", "entity_f1_ci95", "wer", "wer_ci95", "cer", "cer_ci95")
    with tempfile.TemporaryDirectory() as out:
        t0 = time.time()
        r = run_finetune(FinetuneConfig(modality=job["modality"], task=job["task"], source=str(d / "source"),
                                        target=str(d / "target"), eval=str(d / "eval"), strategy=job["strategy"],
                                        epochs=job["epochs"], baselines=job["baselines"], out=out))
        seconds = time.time() - t0
    source = r.get("source_eval") or {}
    return {**job, "backbone": r["backbone"], "train": r["data"]["train"], "eval": r["data"]["eval"],
            "before": {**_metrics(r["before"], keys), "per_type": _f1_by_type(r["before"])},
            "after": {**_metrics(r["after"], keys), "per_type": _f1_by_type(r["after"])},
            "baselines": {n: _metrics(b, keys) for n, b in r["baselines"].items()},
            "vs_before": r["comparisons"].get("before"),
            "source": {side: _metrics(source[side], keys) for side in ("before", "after") if side in source},
            "seconds": round(seconds, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", default="ner,asr")
    ap.add_argument("--workers", type=int, default=2, help="runs in parallel (one torch thread each)")
    a = ap.parse_args()
    jobs = []
    for task in a.tasks.split(","):
        demo, modality, strategies, epochs, baselines = PLAN[task]
        jobs += [{"task": task, "demo": demo, "modality": modality, "strategy": s, "epochs": epochs,
                  "baselines": baselines} for s in strategies]
    rows = []
    with ProcessPoolExecutor(max_workers=a.workers) as pool:
        for row in pool.map(_run, jobs):
            rows.append(row)
            print(f"{row['task']} {row['strategy']}: {row['after']} ({row['seconds']:.0f} s)", file=sys.stderr, flush=True)
    OUT.write_text(json.dumps({"measured": time.strftime("%Y-%m-%d"), "rows": rows}, indent=2) + "\n")
    print(f"wrote {OUT}; render it into the README with benchmarks/readme_tables.py", file=sys.stderr)


if __name__ == "__main__":
    main()
