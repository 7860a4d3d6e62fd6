"""Data-efficiency curve: eval accuracy against labeled target examples per class, pretrained vs scratch.

Each point is a full ``run_finetune`` with ``max_per_class`` = shots (a seeded choice of training examples);
every point of every seed is scored on the same eval split. The spread over seeds shows how much the
particular choice of the few labeled examples matters.

Each summary carries a 95% interval (``ci95``): with two or more seeds the Student-t interval of the mean over
seeds, ``mean ± t(0.975, n−1) · s / √n`` (``ci95_kind`` "seeds": which examples were drawn, and training noise);
with one seed the bootstrap interval of that run's eval accuracy (``ci95_kind`` "eval": eval-set sampling only).

Each finished (shots, seed) run is kept in the run folder's ``checkpoints/curve/`` until the curve completes, so a
curve that was cancelled, yielded the queue or lost its worker resumes with the runs it had not finished.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from scipy.stats import t

from tlcore.config import FinetuneConfig
from tlcore.data.loaders import load_dataset
from tlcore.data.split import eval_split
from tlcore.errors import Cancelled
from tlcore.progress import CancelFn, Progress, ProgressFn, never_cancel, no_progress
from tlcore.reporting.files import write_json
from tlcore.reporting.writer import RunWriter
from tlcore.settings.inductive import run_finetune

DEFAULT_SHOTS = (1, 2, 5, 10, 25, 0)   # 0 = all


def _summary(values: list[float], eval_cis: Optional[list] = None) -> dict:
    arr = np.asarray(values, dtype=float)
    out = {"mean": float(arr.mean()), "std": float(arr.std(ddof=1)) if len(arr) > 1 else 0.0,
           "min": float(arr.min()), "max": float(arr.max()), "values": [float(v) for v in arr]}
    if len(arr) > 1:
        half = float(t.ppf(0.975, len(arr) - 1)) * out["std"] / np.sqrt(len(arr))
        out["ci95"], out["ci95_kind"] = [max(0.0, out["mean"] - half), min(1.0, out["mean"] + half)], "seeds"
    elif eval_cis and eval_cis[0]:
        out["ci95"], out["ci95_kind"] = [float(eval_cis[0][0]), float(eval_cis[0][1])], "eval"
    return out


def _cancelled(where: str) -> Exception:
    return Cancelled(f"cancelled {where}")


def _inner_result(report: dict, scratch: bool) -> dict:
    """What the curve keeps of one (shots, seed) run."""
    keep = {"pretrained": report["after"]["accuracy"], "pretrained_ci95": report["after"].get("accuracy_ci95"),
            "train": report["data"]["train"], "eval": report["data"]["eval"], "classes": report["data"]["classes"],
            "backbone": report["backbone"], "train_per_class": report["data"].get("train_per_class") or {}}
    if scratch:
        keep.update(scratch=report["baselines"]["scratch"]["accuracy"],
                    scratch_ci95=report["baselines"]["scratch"].get("accuracy_ci95"))
    return keep


def _kept(done_dir: Optional[Path], shot: int, seed: int, scratch: bool) -> tuple[Optional[Path], Optional[dict]]:
    """(file of this run's result, the result if an earlier attempt finished it)."""
    if done_dir is None:
        return None, None
    path = done_dir / f"shots-{shot}-seed-{seed}.json"
    try:
        kept = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return path, None
    return path, (kept if kept.get("scratch_kept") == scratch else None)


def data_efficiency_curve(base: FinetuneConfig, *, shots: Sequence[int] = DEFAULT_SHOTS, seeds: Sequence[int] = (0, 1, 2),
                          scratch: bool = True, progress: ProgressFn = no_progress,
                          should_cancel: CancelFn = never_cancel, done_dir: Optional[Path] = None) -> dict:
    """Run ``base`` (its data, backbone, strategy, epochs) at each shot count and seed; return the curve.

    Progress is one ``"curve"`` stage (step = points finished) whose message names the point and the inner run's
    stage; ``should_cancel`` is checked between points and inside every run (raises ``Cancelled``). With
    ``done_dir``, each finished run's result is kept there and one kept by an earlier attempt is not run again
    (the report's ``resumed_runs`` counts them)."""
    target = load_dataset(base.target, base.modality, on_error=base.on_bad_file)   # type: ignore[arg-type]
    train = target if base.eval else eval_split(target, base.eval_fraction)[0]
    full_max = max(train.class_counts().values())
    points = []
    total = len(shots) * len(seeds)
    done = computed = resumed = 0
    max_seen: Optional[int] = None
    started = time.time()
    for shot in shots:
        per_seed: dict[str, list[float]] = {"pretrained": [], "scratch": []}
        cis: dict[str, list] = {"pretrained": [], "scratch": []}
        n_train = None
        for seed in seeds:
            if should_cancel():
                raise _cancelled("between curve points")
            label = f"{shot or 'all'} per class, seed {seed}"
            keep_at, result = _kept(done_dir, shot, seed, scratch)
            if result is not None:
                resumed += 1
            else:
                # the ETA from the runs this attempt computed (kept ones took no time)
                eta = (time.time() - started) / computed * (total - done) if computed else None
                progress(Progress("curve", done, total, label, eta_s=eta))

                def inner(ev: Progress, label: str = label, eta: Optional[float] = eta, step: int = done) -> None:
                    # the inner run's stages in the message; its epoch metrics stay out of the run's history
                    detail = f"{ev.stage} {ev.step}/{ev.total}" if ev.total > 1 else ev.stage
                    progress(Progress("curve", step, total, f"{label}: {detail}", eta_s=eta))

                with tempfile.TemporaryDirectory() as out:
                    cfg = replace(base, out=out, seed=seed, max_per_class=shot or None,
                                  baselines=["scratch"] if scratch else [])
                    report = run_finetune(cfg, progress=inner, should_cancel=should_cancel, keep_failed=False)
                result = _inner_result(report, scratch)
                computed += 1
                if keep_at is not None:
                    keep_at.parent.mkdir(parents=True, exist_ok=True)
                    write_json(keep_at, {**result, "scratch_kept": scratch})
            per_seed["pretrained"].append(result["pretrained"])
            cis["pretrained"].append(result["pretrained_ci95"])
            if scratch:
                per_seed["scratch"].append(result["scratch"])
                cis["scratch"].append(result["scratch_ci95"])
            n_train = result["train"]
            done += 1
        if max_seen is not None and n_train == max_seen and shot:
            continue   # more shots than the data has: same point as the previous one
        max_seen = n_train
        # x = the cap asked for (at most the largest class); "all" only when no class lost an item to the cap. With
        # classes of 12 and 40 items, the 25-per-class point is "25", and its classes hold 12 and 25.
        per_class = result.get("train_per_class") or {}
        points.append({"shots": min(shot, full_max) if shot else full_max, "all": shot == 0 or shot >= full_max,
                       "train": n_train, "per_class_range": [min(per_class.values()), max(per_class.values())]
                       if per_class else None,
                       "pretrained": _summary(per_seed["pretrained"], cis["pretrained"]),
                       **({"scratch": _summary(per_seed["scratch"], cis["scratch"])} if scratch else {})})
    progress(Progress("done", total, total, "curve finished"))
    return {"modality": base.modality, "backbone": result["backbone"], "strategy": base.strategy,
            "epochs": base.epochs, "seeds": list(seeds), "eval": result["eval"],
            "classes": result["classes"], "points": points, **({"resumed_runs": resumed} if resumed else {})}


def labels_for_accuracy(points: Sequence[dict], target: float, *, side: str = "pretrained") -> dict:
    """How many labeled examples per class the measured curve needs to reach ``target`` accuracy (0..1).

    Reads the curve as measured, no extrapolation: ``reached`` is False when no point's mean reaches ``target``
    (then ``best`` is the highest measured point). Otherwise ``shots`` is the first measured point whose mean
    reaches it, ``between`` the measured point before it (None if it is the first), ``interpolated`` a linear
    read-off between the two, and ``ci_low`` the lower end of that point's 95% interval (when there is one), so
    a caller can say when the band dips below the target."""
    rows = sorted((p for p in points if side in p), key=lambda p: (p["shots"], bool(p.get("all"))))
    if not rows:
        return {"reached": False, "side": side, "target": target, "best": None}
    best = max(rows, key=lambda p: (p[side]["mean"], -p["shots"]))
    out: dict = {"side": side, "target": target,
                 "best": {"shots": best["shots"], "all": best.get("all", False), "mean": best[side]["mean"]}}
    for i, p in enumerate(rows):
        mean = p[side]["mean"]
        if mean >= target:
            prev = rows[i - 1] if i else None
            interpolated = float(p["shots"])
            if prev is not None and mean > prev[side]["mean"]:
                frac = (target - prev[side]["mean"]) / (mean - prev[side]["mean"])
                interpolated = prev["shots"] + frac * (p["shots"] - prev["shots"])
            ci = p[side].get("ci95")
            out.update(reached=True, shots=p["shots"], all=p.get("all", False), mean=mean,
                       between=None if prev is None else prev["shots"], interpolated=interpolated,
                       ci_low=ci[0] if ci else None)
            return out
    out["reached"] = False
    return out


def write_curve_run(base: FinetuneConfig, config: dict, *, shots: Sequence[int], seeds: Sequence[int], scratch: bool,
                    progress: ProgressFn = no_progress, should_cancel: CancelFn = never_cancel) -> dict:
    """Measure the curve and write the run folder ``config['out']`` (config.json first, report.json last, in a
    hidden staging folder renamed into place when complete; a folder that already holds a report.json is refused).
    The finished (shots, seed) runs are kept in its ``checkpoints/curve/``: a resumed writer (``run_folder_options(
    resume=True)``) skips them."""
    writer = RunWriter(config["out"], config)
    writer.start()
    t0 = time.time()
    curve = data_efficiency_curve(base, shots=shots, seeds=seeds, scratch=scratch, progress=progress,
                                  should_cancel=should_cancel, done_dir=writer.checkpoints("curve"))
    # the staging folder becomes config["out"] only now
    return writer.finish_analysis({**curve, "scratch": scratch, "timings_s": {"curve": time.time() - t0}},
                                  kind="curve", setting="inductive")
