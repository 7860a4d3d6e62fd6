"""What to label next, measured (issue 19 part 5): accuracy after adding N selected labels vs N random labels.

On two demos (``digits``: images, ``sentiment``: texts), for each seed: the labeled start is a seeded random draw of
``--start`` items from the demo's labeled target split; the pool is the demo's ``unlabeled`` split, whose true labels
(the oracle, never seen by a strategy) come from the source data the demo was drawn from (scikit-learn's digits,
the VADER snippets); each strategy of :mod:`tlcore.experiments.label_next` chooses N pool items, they get their
oracle labels, and a linear probe (:func:`~tlcore.strategies.linear_probe.fit_linear_head`: logistic regression,
its L2 strength cross-validated on the training items only) on the pretrained features of start + chosen items is
scored on the demo's eval split — nothing is tuned on the eval split. Random selection with the same seed is the
baseline; the difference is paired by seed (same start), with a Student-t 95% interval over the seeds.

Writes docs/label_next_table.json and the table between ``<!-- table:label-next ... -->`` markers in
docs/benchmarks.md (never by hand; ``--render`` rewrites the table from the JSON without measuring).

Usage: HF_HUB_OFFLINE=1 PYTHONPATH=. .venv/bin/python benchmarks/label_next_table.py [--seeds 10] [--render]
"""

from __future__ import annotations

import argparse
import datetime
import html
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
from scipy.stats import t

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import doc_blocks  # noqa: E402  (after the sys.path lines above)

from tlcore.data.demos import demo_dir  # noqa: E402
from tlcore.data.loaders import load_dataset  # noqa: E402
from tlcore.experiments.label_next import LABEL_NEXT_STRATEGIES, select  # noqa: E402
from tlcore.experiments.selection import margin_uncertainty  # noqa: E402
from tlcore.models.features import extract_features  # noqa: E402
from tlcore.models.registry import build_backbone  # noqa: E402
from tlcore.tasks.classification.label_next import fit_probe  # noqa: E402

JSON = ROOT / "docs" / "label_next_table.json"
DEMOS = {"digits": "image", "sentiment": "text"}
BUDGETS = (10, 20, 50)
START = {"digits": 20, "sentiment": 10}
STRATEGIES = [s for s in LABEL_NEXT_STRATEGIES if s != "random"]


def oracle_digits(items: list[str]) -> list[str]:
    """The true digit of each unlabeled demo image: its pixels matched to scikit-learn's digits, resized as the demo
    resizes them (tlcore/data/demos/digits.py)."""
    from PIL import Image
    from sklearn.datasets import load_digits

    data = load_digits()
    table: dict[bytes, str] = {}
    for x, y in zip(data.data, data.target):
        img = Image.fromarray((x.reshape(8, 8) * 255 / 16).round().astype(np.uint8), "L").resize((32, 32), Image.BILINEAR)
        key = np.asarray(img).tobytes()
        if table.setdefault(key, str(y)) != str(y):
            table[key] = "?"
    out = [table.get(np.asarray(Image.open(p).convert("L")).tobytes(), "?") for p in items]
    if "?" in out:
        raise SystemExit(f"{out.count('?')} unlabeled digits have no unambiguous true label")
    return out


def oracle_sentiment(items: list[str]) -> list[str]:
    """The true sentiment of each unlabeled snippet, from the VADER file the demo was drawn from."""
    from tlcore.data.demos.sentiment import _read_snippets, _vader_dir

    snippets = _read_snippets(_vader_dir() / "amazonReviewSnippets_GroundTruth.txt")
    table = {" ".join(html.unescape(text).split()): label for label, texts in snippets.items() for text in texts}
    out = [table.get(" ".join(str(x).split()), "?") for x in items]
    if "?" in out:
        raise SystemExit(f"{out.count('?')} unlabeled snippets have no true label")
    return out


ORACLES = {"digits": oracle_digits, "sentiment": oracle_sentiment}


def _interval(diffs: list[float]) -> list[float]:
    d = np.asarray(diffs)
    half = float(t.ppf(0.975, len(d) - 1)) * d.std(ddof=1) / np.sqrt(len(d))
    return [float(d.mean() - half), float(d.mean() + half)]


def measure_demo(name: str, seeds: int) -> dict:
    modality = DEMOS[name]
    folder = demo_dir(name)
    target = load_dataset(folder / "target", modality)
    eval_ds = load_dataset(folder / "eval", modality)
    pool = load_dataset(folder / "unlabeled", modality)
    pool_y = ORACLES[name](pool.items)
    bb = build_backbone(None, modality)
    feats = {k: extract_features(bb, d) for k, d in (("target", target), ("eval", eval_ds), ("pool", pool))}
    classes = sorted(set(target.labels) | set(eval_ds.labels))
    index = {c: i for i, c in enumerate(classes)}
    ty = np.array([index[c] for c in target.labels])
    ey = np.array([index[c] for c in eval_ds.labels])
    py = np.array([index[c] for c in pool_y])

    def accuracy(train_f: np.ndarray, train_y: np.ndarray, seed: int) -> float:
        return float((fit_probe(train_f, train_y, len(classes), seed)(feats["eval"]).argmax(1) == ey).mean())

    acc: dict = {s: {n: [] for n in BUDGETS} for s in ["random", *STRATEGIES]}
    start_acc, seconds = [], {s: 0.0 for s in STRATEGIES}
    for seed in range(seeds):
        start = np.sort(np.random.default_rng(1000 + seed).choice(len(target), START[name], replace=False))
        sf, sy = feats["target"][start], ty[start]
        start_acc.append(accuracy(sf, sy, seed))
        probs = fit_probe(sf, sy, len(classes), seed)(feats["pool"]) if len(set(sy.tolist())) >= 2 else None
        for n in BUDGETS:
            for strategy in ["random", *STRATEGIES]:
                t0 = time.perf_counter()
                chosen, _ = select(strategy, feats["pool"], sf, n, seed=seed,
                                   uncertainty=None if probs is None else margin_uncertainty(probs))
                if strategy != "random":
                    seconds[strategy] += time.perf_counter() - t0
                acc[strategy][n].append(accuracy(np.vstack([sf, feats["pool"][chosen]]),
                                                 np.concatenate([sy, py[chosen]]), seed))
    rows = []
    for n in BUDGETS:
        base = acc["random"][n]
        row = {"n": n, "random": {"mean": float(np.mean(base)), "std": float(np.std(base, ddof=1)), "values": base}}
        for s in STRATEGIES:
            diffs = [a - b for a, b in zip(acc[s][n], base)]
            lo, hi = _interval(diffs)
            row[s] = {"mean": float(np.mean(acc[s][n])), "std": float(np.std(acc[s][n], ddof=1)), "values": acc[s][n],
                      "vs_random": float(np.mean(diffs)), "ci95": [lo, hi], "wins": int(sum(d > 0 for d in diffs)),
                      "verdict": "beats random" if lo > 0 else "worse than random" if hi < 0 else "no clear difference"}
        rows.append(row)
    return {"demo": name, "modality": modality, "backbone": bb.backbone_name, "start": START[name],
            "pool": len(pool), "eval": len(eval_ds), "classes": len(classes),
            "start_accuracy": {"mean": float(np.mean(start_acc)), "std": float(np.std(start_acc, ddof=1))},
            "selection_seconds": {s: round(v / (seeds * len(BUDGETS)), 3) for s, v in seconds.items()}, "rows": rows}


def render(table: dict) -> str:
    seeds = table["seeds"]
    lines = [f"Measured {table['measured']} ({table['machine']}), seeds 0–{seeds - 1}. Start: a seeded random draw of "
             "labeled target items; pool: the demo's unlabeled split, labeled by the oracle (the data the demo was "
             "drawn from) only for the items a strategy chose; linear probe on the pretrained features; accuracy on the "
             "eval split, mean ± std over seeds; Δ = strategy − random with the same start, paired by seed, with its "
             "95% t-interval and the seeds it won. Written by `benchmarks/label_next_table.py` from "
             "`docs/label_next_table.json`.", ""]
    for d in table["demos"]:
        lines += [f"**{d['demo']}** ({d['modality']}, {d['backbone']}): start {d['start']} labeled items "
                  f"(accuracy {d['start_accuracy']['mean']:.3f} ± {d['start_accuracy']['std']:.3f}), pool "
                  f"{d['pool']}, eval {d['eval']}, {d['classes']} classes.", "",
                  "| N more labels | random | " + " | ".join(STRATEGIES) + " |",
                  "|---|---|" + "---|" * len(STRATEGIES)]
        for r in d["rows"]:
            cells = [f"{r[s]['mean']:.3f} ± {r[s]['std']:.3f} (Δ {100 * r[s]['vs_random']:+.1f} pts "
                     f"[{100 * r[s]['ci95'][0]:+.1f}, {100 * r[s]['ci95'][1]:+.1f}], {r[s]['wins']}/{seeds}: "
                     f"{r[s]['verdict']})" for s in STRATEGIES]
            lines.append(f"| {r['n']} | {r['random']['mean']:.3f} ± {r['random']['std']:.3f} | " + " | ".join(cells) + " |")
        lines.append("")
    lines.append(verdict_text(table))
    return "\n".join(lines)


def verdict_text(table: dict) -> str:
    """The plain sentence: did selection beat random, where, and where not."""
    out = []
    for s in STRATEGIES:
        cells = [(d["demo"], r["n"], r[s]["verdict"]) for d in table["demos"] for r in d["rows"]]
        beat = [f"{demo} N={n}" for demo, n, v in cells if v == "beats random"]
        worse = [f"{demo} N={n}" for demo, n, v in cells if v == "worse than random"]
        text = f"**{s}** beat random in {len(beat)} of {len(cells)} cells" + (f" ({', '.join(beat)})" if beat else "")
        text += f"; worse than random in {', '.join(worse)}" if worse else ""
        text += "; elsewhere no clear difference over these seeds." if len(beat) + len(worse) < len(cells) else "."
        out.append(text)
    for d in table["demos"]:
        if not any(r[s]["verdict"] == "beats random" for r in d["rows"] for s in STRATEGIES):
            out.append(f"**On {d['demo']}, selection did not beat random**: no strategy's interval is above zero at "
                       "any N over these seeds.")
    return "  \n".join(out)


def write_doc(table: dict) -> None:
    doc_blocks.write_block("label-next", render(table), script="benchmarks/label_next_table.py",
                           source="docs/label_next_table.json",
                           section="Label next — N selected labels vs N random labels (issue 19)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--demos", default=",".join(DEMOS))
    ap.add_argument("--render", action="store_true", help="rewrite the docs table from the JSON; measure nothing")
    a = ap.parse_args()
    if a.render:
        write_doc(json.loads(JSON.read_text()))
        return 0
    t0 = time.time()
    demos = [measure_demo(name, a.seeds) for name in a.demos.split(",")]
    table = {"measured": datetime.date.today().isoformat(), "machine": f"{platform.machine()}, {os.cpu_count()} cores, CPU", "seeds": a.seeds,
             "budgets": list(BUDGETS), "strategies": STRATEGIES, "demos": demos, "seconds": round(time.time() - t0, 1)}
    JSON.write_text(json.dumps(table, indent=2) + "\n")
    write_doc(table)
    print(render(table))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
