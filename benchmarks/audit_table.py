"""How well does the label audit find wrong labels? Flip 10% of a demo's training labels at random (each to another
class drawn uniformly), run the audit's label check (cleanlab on out-of-fold linear-probe probabilities of the
pretrained features, :mod:`tlcore.diagnostics.audit`) and measure precision and recall of the flagged items against
the flipped ones, over several flip draws. The clean labels are audited too: what it flags there are the set's own
ambiguous or wrong labels, and count as false positives in the measured precision (the demos' labels are assumed right).

Writes docs/audit_table.json and the ``audit`` block of docs/benchmarks.md (between ``<!-- table:audit ... -->`` and
``<!-- /table:audit -->``), rendered from the JSON: never by hand.

Usage: PYTHONPATH=. .venv/bin/python benchmarks/audit_table.py [--demos digits,sentiment] [--seeds 5] [--rate 0.1]
       PYTHONPATH=. .venv/bin/python benchmarks/audit_table.py --render   # rewrite the block from the JSON only
       PYTHONPATH=. .venv/bin/python benchmarks/audit_table.py --check    # exit 1 if the block differs from the JSON
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import doc_blocks  # noqa: E402  (after the sys.path line above)

JSON_PATH = ROOT / "docs" / "audit_table.json"


def flip_labels(y: np.ndarray, n_classes: int, rate: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(noisy labels, flipped indices): ``round(rate * n)`` items drawn without replacement, each given another class
    drawn uniformly."""
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(len(y), size=int(round(rate * len(y))), replace=False))
    noisy = y.copy()
    noisy[idx] = (y[idx] + rng.integers(1, n_classes, size=len(idx))) % n_classes
    return noisy, idx


def measure(demo: str, role: str, *, seeds: int, rate: float) -> dict:
    from tlcore.data.demos import DEMOS, demo_dir
    from tlcore.data.loaders import load_dataset
    from tlcore.diagnostics.audit import find_data_issues
    from tlcore.models.features import extract_features
    from tlcore.models.registry import DEFAULT_BACKBONE, build_backbone
    from tlcore.tasks.classification.audit import _probe_probs

    modality = DEMOS.get(demo).modality
    ds = load_dataset(demo_dir(demo) / role, modality)
    bb = build_backbone(None, modality)
    f = extract_features(bb, ds)
    classes = ds.classes
    y = np.array([classes.index(c) for c in ds.labels])

    def flagged(labels: np.ndarray, seed: int) -> tuple[set[int], dict]:
        probs, _ = _probe_probs(f, labels, len(classes), seed)
        scan = find_data_issues(labels, probs, f, classes=classes)
        return {t.index for t in scan.issues if t.kind == "label"}, {t.index: t.suggested for t in scan.issues
                                                                     if t.kind == "label"}

    start = time.perf_counter()
    clean_flags, _ = flagged(y, 0)
    runs = []
    for seed in range(seeds):
        noisy, flipped = flip_labels(y, len(classes), rate, seed)
        found, suggested = flagged(noisy, seed)
        hits = found & set(flipped.tolist())
        runs.append({"seed": seed, "flipped": len(flipped), "flagged": len(found), "hits": len(hits),
                     "precision": len(hits) / len(found) if found else None, "recall": len(hits) / len(flipped),
                     "suggested_right": (sum(suggested[i] == y[i] for i in hits) / len(hits)) if hits else None})
    prec = [r["precision"] for r in runs if r["precision"] is not None]
    rec = [r["recall"] for r in runs]
    right = [r["suggested_right"] for r in runs if r["suggested_right"] is not None]
    return {"demo": demo, "set": role, "modality": modality, "backbone": DEFAULT_BACKBONE[modality], "items": len(y),
            "classes": len(classes), "flipped": runs[0]["flipped"], "clean_flagged": len(clean_flags),
            "precision": {"mean": float(np.mean(prec)), "std": float(np.std(prec))} if prec else None,
            "recall": {"mean": float(np.mean(rec)), "std": float(np.std(rec))},
            "suggested_right": float(np.mean(right)) if right else None,
            "seconds_per_draw": (time.perf_counter() - start) / (seeds + 1), "runs": runs}


def render(table: dict) -> str:
    lines = [f"Measured {table['measured']} ({table['machine']}): {int(100 * table['rate'])}% of each set's labels "
             f"flipped at random to another class, {table['seeds']} draws (seeds 0-{table['seeds'] - 1}); mean ± "
             "standard deviation over the draws. Flagged = the audit's \"likely mislabeled\" items (cleanlab "
             "`find_label_issues`, prune_by_noise_rate, on out-of-fold probabilities of a linear probe on the "
             "default backbone's features). Precision counts every flagged item that was not flipped as a false "
             "positive, including items the clean labels already get flagged for (column \"flagged, clean\": "
             "the audit run on the unflipped set). Suggested right = share of the found flips whose suggested label "
             "is the original one.", "",
             "| demo | set | backbone | items / classes | flipped | flagged, clean | precision | recall | "
             "suggested right | s per draw |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in table["rows"]:
        p = r["precision"]
        prec = f"{p['mean']:.2f} ± {p['std']:.2f}" if p else "–"
        right = f"{r['suggested_right']:.2f}" if r["suggested_right"] is not None else "–"
        lines.append(f"| {r['demo']} | {r['set']} | {r['backbone']} | {r['items']} / {r['classes']} | {r['flipped']} | "
                     f"{r['clean_flagged']} | {prec} | {r['recall']['mean']:.2f} ± {r['recall']['std']:.2f} | "
                     f"{right} | {r['seconds_per_draw']:.1f} |")
    return "\n".join(lines)


def write_block(table: dict) -> None:
    doc_blocks.write_block("audit", render(table), script="benchmarks/audit_table.py", source="docs/audit_table.json",
                           section="Label audit: precision and recall of the label-issue detection")


def block_matches() -> bool:
    return doc_blocks.block_matches("audit", render(json.loads(JSON_PATH.read_text())))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--demos", default="digits,sentiment")
    ap.add_argument("--sets", default="target,source", help="which labeled sets of each demo")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--rate", type=float, default=0.1)
    ap.add_argument("--machine", default=f"{platform.machine()}, {len(__import__('os').sched_getaffinity(0))} cores")
    ap.add_argument("--render", action="store_true", help="only rewrite the block from docs/audit_table.json")
    ap.add_argument("--check", action="store_true", help="exit 1 when the block differs from the JSON")
    a = ap.parse_args()
    if a.check:
        ok = block_matches()
        print("audit table matches" if ok else "docs/benchmarks.md audit block differs from docs/audit_table.json")
        return 0 if ok else 1
    if not a.render:
        import torch

        torch.set_num_threads(1)
        rows = [measure(d, s, seeds=a.seeds, rate=a.rate) for d in a.demos.split(",") for s in a.sets.split(",")]
        table = {"measured": datetime.date.today().isoformat(), "machine": a.machine, "rate": a.rate,
                 "seeds": a.seeds, "rows": rows}
        JSON_PATH.write_text(json.dumps(table, indent=2) + "\n")
    write_block(json.loads(JSON_PATH.read_text()))
    print(render(json.loads(JSON_PATH.read_text())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
