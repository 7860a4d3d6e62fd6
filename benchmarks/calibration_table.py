"""Does temperature scaling make the demos' probabilities trustworthy? The expected calibration error (ECE) of
fine-tuning runs with the shipped defaults, before and after temperature scaling, measured (issue 19, part 5).

For every classification demo (default backbone, its source, target and eval splits), strategy (the linear probe
and full fine-tuning) and training seed (0, 1, 2: one run each, on the same split): one ``finetune`` run with the
shipped defaults (no tuning; baselines off, they do not enter the calibration block) and the report's ``calibration``
block (:mod:`tlcore.tasks.classification.calibrate`): the ECE
of "before" and "after" on the eval split, the temperature fitted on held-out *training* items (the probe's
cross-validation folds, a loop strategy's validation split; never eval) and the ECE after scaling, each with its
bootstrap interval. A run with nothing held out to fit on has no temperature, and the table says why. The table gives
the mean ± standard deviation over the seeds and in how many seeds scaling lowered the ECE; every run's numbers, with
their intervals, are in the JSON and in the block's per-run table.

Writes docs/calibration_table.json and the ``calibration`` block of docs/benchmarks.md (between
``<!-- table:calibration ... -->`` and ``<!-- /table:calibration -->``), rendered from the JSON: never by hand.

Usage: PYTHONPATH=. .venv/bin/python benchmarks/calibration_table.py [--demos digits,emoji,sentiment,spoken-digits]
           [--strategies linear_probe,full] [--seeds 3] [--workers 2] [--cache /tmp/calibration_runs.jsonl]
       PYTHONPATH=. .venv/bin/python benchmarks/calibration_table.py --render   # rewrite the block from the JSON only
       PYTHONPATH=. .venv/bin/python benchmarks/calibration_table.py --check    # exit 1 if the block differs
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Optional

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import doc_blocks  # noqa: E402  (after the sys.path lines above)
from parallel_runs import demo_run, run_jobs  # noqa: E402

JSON_PATH = ROOT / "docs" / "calibration_table.json"
DEMOS = ("digits", "emoji", "sentiment", "spoken-digits")
STRATEGIES = ("linear_probe", "full")


def _side(block: dict) -> dict:
    """One model's calibration numbers (the reliability bins stay in the run's report)."""
    if "skipped" in block:
        return {"skipped": block["skipped"]}
    return {"ece": block["ece"], "ece_ci95": block["ece_ci95"], "nll": block["nll"]}


def _run(job: dict) -> dict:
    """One run (in a worker process with one torch thread): its accuracy and calibration block."""
    r, seconds = demo_run(job, seed=job["seed"], baselines=[])
    cal = r["calibration"]
    return {**job, "backbone": r["backbone"], "epochs": (r.get("config") or {}).get("epochs"), "train": r["data"]["train"],
            "val": r["data"].get("val", 0), "eval": r["data"]["eval"], "accuracy_before": r["before"]["accuracy"],
            "accuracy_after": r["after"]["accuracy"], "ci_method": cal.get("ci_method"),
            "before": _side(cal["before"]), "after": _side(cal["after"]),
            "temperature": cal.get("temperature"), "fitted_on": cal.get("fitted_on"),
            "after_calibrated": _side(cal["after_calibrated"]) if "after_calibrated" in cal else None,
            "not_fitted": cal.get("skipped"), "seconds": round(seconds, 1)}


def verdict(run: dict) -> str:
    """'lowered', 'not lowered' or 'not fitted' for one run."""
    if run["after_calibrated"] is None:
        return "not fitted"
    return "lowered" if run["after_calibrated"]["ece"] < run["after"]["ece"] else "not lowered"


def _ece(side: Optional[dict]) -> str:
    if side is None:
        return "–"
    if "skipped" in side:
        return "n/a"
    lo, hi = side["ece_ci95"]
    return f"{side['ece']:.3f} [{lo:.3f}, {hi:.3f}]"


def _label(row: dict) -> str:
    return f"{row['demo']} {row['strategy']}"


def _mean(values: list[float]) -> str:
    """``mean ± std`` (sample std over the seeds; the mean alone for one seed)."""
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{np.mean(values):.3f} ± {np.std(values, ddof=1):.3f}"


def summarize(runs: list[dict]) -> list[dict]:
    """One row per demo and strategy (in the runs' order): the runs' numbers over the seeds."""
    rows: list[dict] = []
    for run in runs:
        row = next((r for r in rows if (r["demo"], r["strategy"]) == (run["demo"], run["strategy"])), None)
        if row is None:
            row = {k: run[k] for k in ("demo", "modality", "strategy", "backbone", "train", "val", "eval")}
            row["runs"] = []
            rows.append(row)
        row["runs"].append(run)
    for row in rows:
        rs = sorted(row["runs"], key=lambda r: r["seed"])
        fitted = [r for r in rs if r["after_calibrated"] is not None]
        row.update(seeds=[r["seed"] for r in rs], val=sorted({r["val"] for r in rs}),
                   accuracy_after=[r["accuracy_after"] for r in rs],
                   ece_before=[r["before"]["ece"] for r in rs if "ece" in r["before"]],
                   ece_after=[r["after"]["ece"] for r in rs], ece_after_t=[r["after_calibrated"]["ece"] for r in fitted],
                   nll_after=[r["after"]["nll"] for r in fitted], nll_after_t=[r["after_calibrated"]["nll"] for r in fitted],
                   temperature=[r["temperature"] for r in fitted], fitted_on=[r["fitted_on"] for r in fitted],
                   lowered=sum(verdict(r) == "lowered" for r in rs), fitted=len(fitted),
                   not_fitted=sorted({r["not_fitted"] for r in rs if r["not_fitted"]}))
    return rows


def render(table: dict) -> str:
    """The markdown of docs/benchmarks.md's calibration block (importable: other scripts render the same text)."""
    rows = summarize(table["runs"])
    seeds = sorted({r["seed"] for r in table["runs"]})
    lines = [f"Measured {table['measured']} ({table['machine']}): `finetune` runs with the shipped defaults (no "
             f"`--tune`, baselines off), default backbone, each demo's source, target and eval splits, training seeds "
             f"{', '.join(map(str, seeds))} (one run each); mean ± standard deviation over the seeds. ECE = expected "
             "calibration error of the top-class confidence on the eval split, 10 equal-mass bins. \"Before\" is the "
             "model before transfer (the source-trained model). T is the temperature fitted on held-out training items "
             "— the linear probe's out-of-fold cross-validation logits, a loop strategy's validation split — never on "
             "eval; scaling changes no prediction, so accuracy stays the same. Lower ECE and NLL are better. Each run's "
             "ECE with its 95% bootstrap interval (eval items, or whole groups where the eval set has them) is in the "
             "per-run table below.", "",
             "| demo | strategy | backbone | train / val / eval | accuracy after | ECE before | ECE after | T | "
             "fitted on | ECE after T | NLL after → after T | T lowered the ECE |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        val = "/".join(map(str, r["val"]))
        if r["fitted"]:
            where = r["fitted_on"][0]
            fitted = f"{where['split']} ({where['items']} items)"
            temp = (f"{r['temperature'][0]:.2f}" if len(r["temperature"]) == 1 else
                    f"{min(r['temperature']):.2f}–{max(r['temperature']):.2f}")
            nll = f"{np.mean(r['nll_after']):.3f} → {np.mean(r['nll_after_t']):.3f}"
            answer = f"{r['lowered']} of {r['fitted']} seeds"
            answer = answer if r["lowered"] == r["fitted"] else f"**{answer}**"
        else:
            fitted, temp, nll, answer = "not fitted (see below)", "–", "–", "not fitted"
        lines.append(f"| {r['demo']} | {r['strategy']} | {r['backbone']} | {r['train']} / {val} / {r['eval']} | "
                     f"{_mean(r['accuracy_after'])} | {_mean(r['ece_before'])} | {_mean(r['ece_after'])} | {temp} | "
                     f"{fitted} | {_mean(r['ece_after_t'])} | {nll} | {answer} |")
    lines += ["", summary(rows), "", "<details><summary>Every run, with 95% bootstrap intervals</summary>", "",
              "| demo | strategy | seed | ECE before | ECE after | T | ECE after T | NLL after → after T | lowered |",
              "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        for run in sorted(r["runs"], key=lambda x: x["seed"]):
            cal = run["after_calibrated"]
            temp = f"{run['temperature']:.2f}" if run["temperature"] is not None else "–"
            nll = f"{run['after']['nll']:.3f} → {cal['nll']:.3f}" if cal else f"{run['after']['nll']:.3f}"
            lines.append(f"| {run['demo']} | {run['strategy']} | {run['seed']} | {_ece(run['before'])} | "
                         f"{_ece(run['after'])} | {temp} | {_ece(cal)} | {nll} | {verdict(run)} |")
    lines += ["", "</details>"]
    return "\n".join(lines)


def summary(rows: list[dict]) -> str:
    """Plain sentences: where scaling lowered the ECE, where it did not, and where no temperature was fitted."""
    fitted = [r for r in rows if r["fitted"]]
    runs = sum(r["fitted"] for r in fitted)
    lowered = sum(r["lowered"] for r in fitted)
    nll = sum(sum(b < a for a, b in zip(r["nll_after"], r["nll_after_t"])) for r in fitted)
    out = [f"Temperature scaling lowered the eval ECE in {lowered} of the {runs} runs with a fitted temperature, and "
           f"the eval NLL (what T is fitted to lower, on other items) in {nll} of them."]
    for r in fitted:
        if r["lowered"] == r["fitted"]:
            continue
        said = ("did not lower the ECE in any seed" if r["lowered"] == 0 else
                f"lowered the ECE in only {r['lowered']} of {r['fitted']} seeds")
        out.append(f"**On {_label(r)}, temperature scaling {said}**: mean ECE {_mean(r['ece_after'])} before "
                   f"scaling, {_mean(r['ece_after_t'])} after.")
    close = [r for r in fitted for run in r["runs"] if run["after_calibrated"]
             and run["after_calibrated"]["ece_ci95"][1] >= run["after"]["ece_ci95"][0]
             and run["after"]["ece_ci95"][1] >= run["after_calibrated"]["ece_ci95"][0]]
    if close:
        names = sorted({_label(r) for r in close}, key=[_label(r) for r in rows].index)
        out.append(f"In {len(close)} of the {runs} fitted runs ({', '.join(names)}) the ECE's intervals before and "
                   "after scaling overlap: on eval splits this small the change, either way, is within the ECE's "
                   "sampling noise (the intervals are per model, not of the paired difference).")
    text = "  \n".join(out)
    unfitted = [(r, why) for r in rows for why in r["not_fitted"]]
    if unfitted:
        text += ("\n\nNo temperature was fitted, for the reason each run's report gives, on:\n\n"
                 + "\n".join(f"- {_label(r)}: {why}" for r, why in unfitted))
    return text


def write_block(table: dict) -> None:
    doc_blocks.write_block("calibration", render(table), script="benchmarks/calibration_table.py", source="docs/calibration_table.json",
                           section="Calibration: ECE before and after temperature scaling (issue 19)")


def block_matches() -> bool:
    return doc_blocks.block_matches("calibration", render(json.loads(JSON_PATH.read_text())))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--demos", default=",".join(DEMOS))
    ap.add_argument("--strategies", default=",".join(STRATEGIES))
    ap.add_argument("--seeds", type=int, default=3, help="training seeds 0 .. N-1, one run each")
    ap.add_argument("--workers", type=int, default=2, help="runs in parallel (one torch thread each)")
    ap.add_argument("--cache", help="JSON-lines file of finished runs (kept; its runs are not run again)")
    ap.add_argument("--render", action="store_true", help="only rewrite the block from docs/calibration_table.json")
    ap.add_argument("--check", action="store_true", help="exit 1 when the block differs from the JSON")
    a = ap.parse_args()
    if a.check:
        ok = block_matches()
        print("calibration table matches" if ok else
              "docs/benchmarks.md calibration block differs from docs/calibration_table.json")
        return 0 if ok else 1
    if not a.render:
        from tlcore.data.demos import DEMOS as REGISTERED

        jobs = []
        for demo in a.demos.split(","):
            spec = REGISTERED.get(demo)
            if spec.available():
                print(f"skipping {demo}: {spec.available()}", file=sys.stderr)
                continue
            jobs += [{"demo": demo, "modality": spec.modality, "strategy": s, "seed": seed}
                     for s in a.strategies.split(",") for seed in range(a.seeds)]
        t0 = time.time()
        runs = run_jobs(_run, jobs, key=("demo", "strategy", "seed"), workers=a.workers, cache=a.cache,
                        describe=lambda r: f"{_label(r)}: ECE after {r['after']['ece']:.3f}, T {r['temperature']}, "
                                           f"after T {(r['after_calibrated'] or {}).get('ece')} ({r['seconds']:.0f} s)")
        order = [(j["demo"], j["strategy"], j["seed"]) for j in jobs]
        runs = sorted(runs, key=lambda r: order.index((r["demo"], r["strategy"], r["seed"])))
        table = {"measured": datetime.date.today().isoformat(),
                 "machine": f"{platform.machine()} CPU, {os.cpu_count()} cores, one torch thread per run",
                 "seconds": round(time.time() - t0, 1), "runs": runs}
        JSON_PATH.write_text(json.dumps(table, indent=2) + "\n")
    write_block(json.loads(JSON_PATH.read_text()))
    print(render(json.loads(JSON_PATH.read_text())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
