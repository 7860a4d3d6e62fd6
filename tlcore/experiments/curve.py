"""Data-efficiency curve: eval accuracy against labeled target examples per class, pretrained vs scratch.

Each point is a full ``run_finetune`` with ``max_per_class`` = shots (a seeded choice of training examples);
every point of every seed is scored on the same eval split. The spread over seeds shows how much the
particular choice of the few labeled examples matters.
"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from typing import Optional, Sequence

import numpy as np

from tlcore.config import FinetuneConfig
from tlcore.progress import Progress, ProgressFn, no_progress

DEFAULT_SHOTS = (1, 2, 5, 10, 25, 0)   # 0 = all


def _summary(values: list[float]) -> dict:
    arr = np.asarray(values, dtype=float)
    return {"mean": float(arr.mean()), "std": float(arr.std(ddof=1)) if len(arr) > 1 else 0.0,
            "min": float(arr.min()), "max": float(arr.max()), "values": [float(v) for v in arr]}


def data_efficiency_curve(base: FinetuneConfig, *, shots: Sequence[int] = DEFAULT_SHOTS, seeds: Sequence[int] = (0, 1, 2),
                          scratch: bool = True, progress: ProgressFn = no_progress) -> dict:
    """Run ``base`` (its data, backbone, strategy, epochs) at each shot count and seed; return the curve."""
    from tlcore.data.loaders import load_dataset
    from tlcore.data.split import eval_split

    target = load_dataset(base.target, base.modality, on_error=base.on_bad_file)   # type: ignore[arg-type]
    train = target if base.eval else eval_split(target, base.eval_fraction)[0]
    full_min = min(train.class_counts().values())
    points = []
    total = len(shots) * len(seeds)
    done = 0
    max_seen: Optional[int] = None
    for shot in shots:
        per_seed: dict[str, list[float]] = {"pretrained": [], "scratch": []}
        n_train = None
        for seed in seeds:
            progress(Progress("curve", done, total, f"{shot or 'all'} per class, seed {seed}"))
            with tempfile.TemporaryDirectory() as out:
                from tlcore.settings.inductive import run_finetune

                cfg = replace(base, out=out, seed=seed, max_per_class=shot or None,
                              baselines=["scratch"] if scratch else [])
                report = run_finetune(cfg)
            per_seed["pretrained"].append(report["after"]["accuracy"])
            if scratch:
                per_seed["scratch"].append(report["baselines"]["scratch"]["accuracy"])
            n_train = report["data"]["train"]
            done += 1
        if max_seen is not None and n_train == max_seen and shot:
            continue   # more shots than the data has: same point as the previous one
        max_seen = n_train
        points.append({"shots": min(shot, full_min) if shot else full_min, "all": shot == 0 or shot >= full_min, "train": n_train,
                       "pretrained": _summary(per_seed["pretrained"]),
                       **({"scratch": _summary(per_seed["scratch"])} if scratch else {})})
    progress(Progress("done", total, total, "curve finished"))
    return {"modality": base.modality, "backbone": report["backbone"], "strategy": base.strategy,
            "epochs": base.epochs, "seeds": list(seeds), "eval": report["data"]["eval"],
            "classes": report["data"]["classes"], "points": points}
