"""Run a benchmark's independent jobs in worker processes, keeping each finished one in a JSON-lines cache so an
interrupted benchmark goes on where it stopped (the measured tables take an hour on a 2-core machine)."""

from __future__ import annotations

import json
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Callable, Optional, Sequence


def run_jobs(run: Callable[[dict], dict], jobs: Sequence[dict], *, key: Sequence[str], workers: int,
             cache: Optional[str], describe: Callable[[dict], str]) -> list[dict]:
    """``run(job)`` for every job not already in ``cache`` (matched on the ``key`` fields), ``workers`` at a time;
    returns the results of every job (cached ones first), and appends each new one to ``cache`` as it finishes."""
    path = Path(cache) if cache else None
    cached = [json.loads(line) for line in path.read_text().splitlines()] if path and path.exists() else []

    def same(a: dict, b: dict) -> bool:
        return all(a[k] == b[k] for k in key)

    done = [r for r in cached if any(same(r, j) for j in jobs)]
    todo = [j for j in jobs if not any(same(r, j) for r in done)]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for row in pool.map(run, todo):
            done.append(row)
            if path:
                with path.open("a") as fh:
                    fh.write(json.dumps(row) + "\n")
            print(describe(row), file=sys.stderr, flush=True)
    return done


def demo_run(job: dict, **settings) -> tuple[dict, float]:
    """One fine-tuning run on a built-in demo (``job``'s ``demo``, ``modality``, ``strategy``; ``settings`` are the
    other FinetuneConfig fields), in a worker process with one torch thread and a throw-away run folder: its report
    and its wall time in seconds."""
    import tempfile
    import time

    import torch

    torch.set_num_threads(1)
    from tlcore.config import FinetuneConfig
    from tlcore.data.demos import demo_dir
    from tlcore.settings.inductive import run_finetune

    d = demo_dir(job["demo"])
    with tempfile.TemporaryDirectory() as out:
        t0 = time.time()
        report = run_finetune(FinetuneConfig(modality=job["modality"], source=str(d / "source"),
                                             target=str(d / "target"), eval=str(d / "eval"), strategy=job["strategy"],
                                             out=out, **settings))
        return report, time.time() - t0
