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
