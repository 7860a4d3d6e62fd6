"""Which strategy? One sweep that answers it: every strategy of the ladder (linear probe, partial, full, LoRA) and
every baseline, under one protocol and budget on one split, in one table, with a recommendation.

Every strategy is one ordinary fine-tuning run (:func:`~tlcore.settings.inductive.run_finetune`) of the same config
— same data, the same stored eval split, the same epochs, batch size, seed and validation rule — differing only in
the strategy; the baselines (the scratch twin, the classical model, k-NN) are trained once, in the first run, with
that same protocol. The runs are kept in the sweep's folder (``strategies/<name>/``: Try it and predict open them).

The table: per strategy its headline metric with its 95% interval, the paired difference against the best strategy
on the same eval items (with its interval), the training time and the model's size on disk; per baseline its metric
and the paired difference of the best strategy against it. The recommendation is the **cheapest strategy within
noise of the best** (its paired interval against the best reaches 0; cheapest = shortest training time, then
smallest model) — or, when not even the best strategy beats the strongest baseline without pretrained weights beyond
noise, it says so: "no pretrained strategy beats <baseline> on this data".
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from tlcore.config import (
    BASELINES,
    LIMITS,
    MODALITIES,
    NO_PRETRAINING,
    FinetuneConfig,
    config_field,
    settings_from_dict,
    settings_problem,
)
from tlcore.errors import ConfigError
from tlcore.evaluation.metrics import paired_difference
from tlcore.evaluation.policy import baseline_label
from tlcore.models.registry import build_backbone
from tlcore.progress import CancelFn, Progress, ProgressFn, never_cancel, no_progress
from tlcore.reporting.envelope import comparison_key
from tlcore.reporting.writer import RunWriter, run_folder_options
from tlcore.settings.inductive import run_finetune
from tlcore.strategies import check_backbone, get_strategy
from tlcore.tasks import Metric, get_task

SWEEP_STRATEGIES = ("linear_probe", "lora", "partial", "full")


@dataclass
class SweepConfig:
    """One strategy sweep as a background run (the app's "Which strategy?", ``python -m tlcore sweep``): every
    strategy of ``strategies`` on the same data, split, epochs and seed; the baselines once. ``out`` is its folder."""

    modality: str = config_field("text", "Data modality: image, text or audio.", choices=MODALITIES)
    target: str = config_field("", "Labeled target data (folder, .zip or table); part is held out for eval unless --eval "
                               "is given.")
    eval: Optional[str] = config_field(None, "Labeled held-out target data every strategy is scored on.")
    source: Optional[str] = config_field(None, "Labeled source-domain data (optional): the source-trained model is "
                                         "'before' in every run.")
    out: str = config_field("", "Folder to write (report.json and strategies/<name>/, one run folder per strategy).")
    backbone: Optional[str] = config_field(None, "Backbone; default per modality.")
    strategies: list = config_field(list(SWEEP_STRATEGIES), "Strategies to compare (cheapest first is the usual order).",
                                    choices_list=SWEEP_STRATEGIES)
    epochs: int = config_field(10, "Training epochs of every strategy and trained baseline (the same budget).",
                               **LIMITS["epochs"])
    batch_size: int = config_field(16, "Mini-batch size of every strategy and trained baseline.", **LIMITS["batch_size"])
    seed: int = config_field(0, "Random seed of every run.", **LIMITS["seed"])
    eval_fraction: float = config_field(0.3, "Share of the labeled target held out for evaluation when no eval set is "
                                        "given (stored: every strategy is scored on the same items).",
                                        **LIMITS["eval_fraction"])
    baselines: list = config_field(list(BASELINES), "Baselines (trained once, with the same protocol).",
                                   choices_list=BASELINES)
    on_bad_file: str = config_field("skip", "What to do with unreadable files: skip (listed) or refuse.",
                                    choices=("skip", "refuse"))

    def finetune_config(self) -> FinetuneConfig:
        """The settings every strategy's run shares (``strategy`` and ``out`` set per run)."""
        return FinetuneConfig(modality=self.modality, target=self.target or None, eval=self.eval, source=self.source,
                              backbone=self.backbone, epochs=self.epochs, batch_size=self.batch_size, seed=self.seed,
                              eval_fraction=self.eval_fraction, baselines=list(self.baselines),
                              on_bad_file=self.on_bad_file)

    def validate(self, *, need_out: bool = True) -> SweepConfig:
        """Refuse settings no sweep can use, with what to change (the same words in the CLI, API and app)."""
        problem = settings_problem(self)
        if problem:
            raise ConfigError(problem)
        if need_out and not self.out:
            raise ConfigError("no folder given: pass --out SWEEP_DIR")
        check_sweep(self.finetune_config(), list(self.strategies))
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> SweepConfig:
        return settings_from_dict(cls, data, "a strategy sweep")


def sweep_job(config: SweepConfig, *, progress: Optional[ProgressFn] = None, should_cancel: Optional[CancelFn] = None,
              resume: bool = False) -> dict:
    """A sweep as the app's background worker runs it: writes ``config.out`` and returns the report. A new attempt
    (resumed, or after a failure) starts over; a finished sweep's folder is never replaced."""
    config.validate()
    fresh = not (Path(config.out) / "report.json").exists()
    with run_folder_options(overwrite=fresh, keep_failed=False):
        return run_sweep(config.finetune_config(), config.out, strategies=list(config.strategies),
                         progress=progress or no_progress, should_cancel=should_cancel or never_cancel,
                         config={"kind": "sweep", **config.to_dict()})


sweep_job.config_class = SweepConfig   # type: ignore[attr-defined]


def check_sweep(base: FinetuneConfig, strategies: Sequence[str]) -> None:
    """Refuse a sweep that cannot answer the question, with what to change."""
    task = get_task(base.task)
    if not task.seeds:       # the sweep's paired table needs per-item predictions: classification's
        raise ConfigError(f"the strategy sweep compares classification runs item by item; it is not available for "
                          f"{task.description} — run each strategy with `finetune` and compare them on the Compare page")
    if not strategies or len(set(strategies)) != len(strategies):
        raise ConfigError("strategies: name each strategy once, e.g. linear_probe,lora,partial,full")
    for name in strategies:
        if get_strategy(name).needs_unlabeled:
            raise ConfigError(f"strategy {name!r} adapts to unlabeled data; the sweep compares strategies trained on "
                              "the labeled target: pick from linear_probe, partial, full, lora")
    if not base.target:
        raise ConfigError("the sweep trains on labeled target data: pass --target")
    for name in strategies:
        replace(base, strategy=name).validate(need_out=False)


def run_sweep(base: FinetuneConfig, out: str | Path, *, strategies: Sequence[str] = SWEEP_STRATEGIES,
              progress: ProgressFn = no_progress, should_cancel: CancelFn = never_cancel,
              config: Optional[dict] = None) -> dict:
    """Run every strategy of ``strategies`` on ``base`` (its baselines once, in the first run), write the sweep's
    folder ``out`` (``report.json`` + ``strategies/<name>/``) and return the report (module docstring)."""
    strategies = list(strategies)
    check_sweep(base, strategies)
    if any(get_strategy(name).backbone_problem for name in strategies):   # refused before the first run, not midway
        backbone = build_backbone(base.backbone, base.modality)
        for name in strategies:
            check_backbone(name, backbone)
    config = config or {"kind": "sweep", **base.to_dict(), "out": str(out), "strategies": strategies}
    writer = RunWriter(str(out), config)
    folder = writer.start()
    t0, reports = time.time(), {}
    for i, name in enumerate(strategies):
        progress(Progress("sweep", i, len(strategies), f"strategy {i + 1} of {len(strategies)}: {name}"))

        def inner(e: Progress, name: str = name) -> None:     # one run's "done" is not the sweep's
            progress(replace(e, stage="sweep" if e.stage == "done" else e.stage, message=f"{name}: {e.message}"))

        cfg = replace(base, strategy=name, out=str(folder / "strategies" / name),
                      baselines=list(base.baselines) if i == 0 else [])
        reports[name] = run_finetune(cfg, progress=inner, should_cancel=should_cancel)
    progress(Progress("sweep", len(strategies), len(strategies), "comparing"))
    report = writer.finish_analysis({**sweep_table(reports, folder), "timings_s": {"sweep": time.time() - t0}},
                                    kind="sweep", setting="inductive")
    progress(Progress("done", 1, 1, report["recommendation"]["text"]))
    return report


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else 0


def sweep_table(reports: dict[str, dict], folder: Path) -> dict:
    """The sweep's rows, baselines and recommendation from the strategies' reports (module docstring); the first
    report holds the baselines. All reports must share the eval items (one split)."""
    first = next(iter(reports.values()))
    metric = get_task(first.get("task")).metrics[0]
    if len({comparison_key(r) for r in reports.values()}) > 1:
        raise ConfigError("the strategies were scored on different eval items; the sweep needs one split")
    preds = {name: r["eval_predictions"] for name, r in reports.items()}
    first_preds = preds[next(iter(preds))]          # the baselines' predictions are in the first run
    truth, groups = np.asarray(first_preds["true"]), first_preds.get("groups")
    score = {name: r["after"][metric.key] for name, r in reports.items()}
    sign = 1 if metric.higher_is_better else -1
    train_s = {name: float(r.get("timings_s", {}).get("train", 0.0)) for name, r in reports.items()}
    best = max(score, key=lambda n: (sign * score[n], -train_s[n]))

    def versus(pred: list, other: list) -> dict:
        return paired_difference(truth, pred, other, seed=first.get("seed", 0), groups=groups)

    rows = []
    for name, r in reports.items():
        d = versus(preds[name]["after"], preds[best]["after"])
        rows.append({"strategy": name, metric.key: score[name], "ci95": r["after"].get(f"{metric.key}_ci95"),
                     "vs_best": d, "within_noise_of_best": name == best or d["ci95"][1] >= 0,
                     "train_seconds": round(train_s[name], 2),
                     "model_bytes": _folder_bytes(folder / "strategies" / name / "model"),
                     "epochs_run": r.get("training", {}).get("epochs_run")})
    baselines = {b: {"label": baseline_label(first, b), metric.key: m[metric.key], "ci95": m.get(f"{metric.key}_ci95"),
                     "no_pretraining": b in NO_PRETRAINING,
                     "best_vs": versus(preds[best]["after"], first_preds[b]),
                     "train_seconds": round(float(first.get("timings_s", {}).get(b, 0.0)), 2)}
                 for b, m in (first.get("baselines") or {}).items() if b in first_preds}
    return {"metric": metric.key, "best": best, "strategies": rows, "baselines": baselines,
            "eval": len(truth), "ci_method": rows[0]["vs_best"].get("ci_method"),
            "recommendation": recommend(rows, baselines, best, metric)}


def recommend(rows: list[dict], baselines: dict[str, dict], best: str, metric: Metric) -> dict:
    """The cheapest strategy within noise of the best, unless no strategy beats the strongest baseline without
    pretrained weights beyond noise (module docstring)."""
    key, fmt = metric.key, metric.fmt
    by_name = {r["strategy"]: r for r in rows}
    plain = {name: b for name, b in baselines.items() if b["no_pretraining"]}
    if plain:
        name = min(plain, key=lambda n: plain[n]["best_vs"]["difference"])    # the one the best gains least on
        strongest = plain[name]
        lo, hi = strongest["best_vs"]["ci95"]
        if lo <= 0:
            worse = hi < 0
            return {"strategy": None, "against": name, "text": (
                f"no pretrained strategy beats {strongest['label']} on this data: the best, {best} "
                f"({fmt(by_name[best][key])}), is {'worse than' if worse else 'not clearly better than'} it "
                f"({fmt(strongest[key])}; paired difference {100 * strongest['best_vs']['difference']:+.1f} points, "
                f"95% CI {100 * lo:+.1f} to {100 * hi:+.1f})")}
    close = [r for r in rows if r["within_noise_of_best"]]
    pick = min(close, key=lambda r: (r["train_seconds"], r["model_bytes"]))
    if pick["strategy"] == best:
        why = f"the best ({fmt(pick[key])}) and the cheapest of the strategies within noise of it"
    else:
        why = (f"within noise of the best, {best} ({fmt(by_name[best][key])}; paired difference "
               f"{100 * pick['vs_best']['difference']:+.1f} points, 95% CI {100 * pick['vs_best']['ci95'][0]:+.1f} to "
               f"{100 * pick['vs_best']['ci95'][1]:+.1f}), and cheaper ({pick['train_seconds']:.0f} s of training vs "
               f"{by_name[best]['train_seconds']:.0f} s)")
    return {"strategy": pick["strategy"], "against": best, "text": f"use {pick['strategy']}: {why}"}
