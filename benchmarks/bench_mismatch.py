"""Benchmark: MMD (+ permutation test) and proxy A-distance on random 384-d features.

Run: .venv/bin/python benchmarks/bench_mismatch.py [--sizes 1000 10000 50000] [--dim 384] [--repeats 3]

For each size n, set A ~ N(0, I) and set B ~ N(0.05, I) (n × dim each); prints the best-of-`repeats`
wall time of `mmd_rbf` (defaults: 200 permutations, max_n=2000 per side) and `proxy_a_distance`
(defaults: 5 folds, max_n=5000 per side), the growth ratio between consecutive sizes, and whether MMD at
10k stays within the 2 s goal.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tlcore.diagnostics import mmd_rbf, proxy_a_distance  # noqa: E402

MMD_GOAL_S = 2.0


def best_time(fn, repeats: int) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 50000])
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--shift", type=float, default=0.05)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    print(f"cpus={os.cpu_count()} dim={args.dim} shift={args.shift} repeats={args.repeats} (best of)")
    print(f"{'n per set':>10} {'mmd s':>8} {'x':>6} {'pad s':>8} {'x':>6}  mmd2      p       pad    auc   subsampled")
    rng = np.random.default_rng(0)
    mmd_times: dict[int, float] = {}
    prev = None
    for n in args.sizes:
        a = rng.standard_normal((n, args.dim))
        b = rng.standard_normal((n, args.dim)) + args.shift
        t_mmd, mmd = best_time(lambda a=a, b=b: mmd_rbf(a, b, seed=0), args.repeats)
        t_pad, pad = best_time(lambda a=a, b=b: proxy_a_distance(a, b, seed=0), args.repeats)
        mmd_times[n] = t_mmd
        g_mmd = f"{t_mmd / prev[0]:.2f}" if prev else "-"
        g_pad = f"{t_pad / prev[1]:.2f}" if prev else "-"
        print(f"{n:>10} {t_mmd:>8.3f} {g_mmd:>6} {t_pad:>8.3f} {g_pad:>6}  {mmd.mmd2:.5f}  {mmd.p_value:.3f}  "
              f"{pad.pad:.3f}  {pad.auc:.3f}  {mmd.subsampled}")
        prev = (t_mmd, t_pad)
    if 10000 in mmd_times:
        t = mmd_times[10000]
        print(f"MMD at 10k x {args.dim}: {t:.3f} s -> {'OK' if t <= MMD_GOAL_S else 'SLOWER THAN'} (goal <= {MMD_GOAL_S} s)")


if __name__ == "__main__":
    main()
