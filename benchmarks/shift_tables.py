"""The README's domain-shift tables, measured on every classification demo:

1. diagnose: source vs target (must show a shift) and two halves of the target pool (must not);
2. rank --validate: transferability scores vs linear-probe accuracy of every candidate, Kendall tau;
3. domain adaptation: source + unlabeled target -> eval, every method vs source-only;
4. unsupervised: k-means on pretrained features vs raw inputs (NMI/ARI against the hidden labels);
5. data-efficiency curve: accuracy vs labeled examples per class, pretrained (linear probe) vs scratch.

Usage: .venv/bin/python benchmarks/shift_tables.py [--demos ...] [--parts diagnose,rank,adapt,cluster,curve] --json OUT
Prints markdown to stdout.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
MODALITY = {"digits": "image", "fashion-shift": "image", "sentiment": "text", "spoken-digits": "audio"}
DA = ["coral", "self_training", "dann", "mcc", "deep_coral", "adabn"]


def halves(d: Path, modality: str, tmp: Path) -> tuple[str, str]:
    """Two halves of the demo's eval set (same distribution) as separate data sets."""
    from tlcore.data.loaders import load_dataset

    ds = load_dataset(d / "eval", modality)
    a, b = tmp / "half_a", tmp / "half_b"
    if modality == "text":
        import csv

        for folder, part in ((a, ds.items[::2]), (b, ds.items[1::2])):
            folder.mkdir(parents=True)
            with open(folder / "data.csv", "w", newline="", encoding="utf-8") as f:
                w = csv.writer(f)
                w.writerow(["text"])
                w.writerows([[t] for t in part])
    else:
        for i, item in enumerate(ds.items):
            dest = (a if i % 2 == 0 else b)
            dest.mkdir(parents=True, exist_ok=True)
            shutil.copy(item, dest / f"{i}{Path(item).suffix}")
    return str(a), str(b)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--demos", default="digits,fashion-shift,sentiment,spoken-digits")
    ap.add_argument("--parts", default="diagnose,rank,adapt,cluster,curve")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json")
    a = ap.parse_args()
    import torch

    torch.set_num_threads(a.threads)
    from tlcore.config import FinetuneConfig
    from tlcore.data.demos import DEMOS, demo_dir
    from tlcore.diagnostics.diagnose import run_diagnose
    from tlcore.experiments.curve import data_efficiency_curve
    from tlcore.experiments.rank_validation import validated_rank
    from tlcore.settings.inductive import run_finetune
    from tlcore.settings.unsupervised import run_clustering

    parts = a.parts.split(",")
    out: dict = {}
    for demo in a.demos.split(","):
        if DEMOS.get(demo).available():
            print(f"skipping {demo}: {DEMOS.get(demo).available()}", file=sys.stderr)
            continue
        m, d = MODALITY[demo], demo_dir(demo)
        res: dict = {}
        t0 = time.time()
        with tempfile.TemporaryDirectory() as tmp:
            if "diagnose" in parts:
                shift = run_diagnose(m, str(d / "source"), str(d / "target"))
                ha, hb = halves(d, m, Path(tmp))
                same = run_diagnose(m, ha, hb)
                res["diagnose"] = {k: {"severity": r["verdict"]["severity"], "summary": r["verdict"]["summary"],
                                       "mmd2": r["mismatch"]["mmd"]["mmd2"], "mmd_p": r["mismatch"]["mmd"]["p_value"],
                                       "pad": r["mismatch"]["pad"]["pad"], "auc": r["mismatch"]["pad"]["auc"],
                                       "drifting": r["verdict"]["drifting_properties"]}
                                   for k, r in (("source_vs_target", shift), ("two_halves", same))}
            if "rank" in parts:
                r = validated_rank(m, str(d / "target"), eval_path=str(d / "eval"))
                res["rank"] = {"ranking": [{"backbone": row["backbone"], **{s: v["point"] for s, v in row["scores"].items()}}
                                           for row in r["ranking"]], "validation": r["validation"], "advice": r["advice"]}
            if "adapt" in parts:
                res["adapt"] = {}
                for s in DA:
                    if s == "adabn" and m != "image":
                        continue
                    rep = run_finetune(FinetuneConfig(modality=m, source=str(d / "source"), unlabeled=str(d / "unlabeled"),
                                                      eval=str(d / "eval"), strategy=s, out=str(Path(tmp) / s)))
                    res["adapt"][s] = {"source_only": rep["before"]["accuracy"], "adapted": rep["after"]["accuracy"],
                                       "ci95": rep["after"]["accuracy_ci95"], "diff": rep["comparisons"].get("before") or rep["comparisons"]["source-only"]}
            if "cluster" in parts:
                c = run_clustering(m, str(d / "eval"))
                res["cluster"] = {side: {k: c[side][k] for k in ("k", "silhouette", "nmi", "ari")} for side in ("pretrained", "raw")}
            if "curve" in parts:
                cfg = FinetuneConfig(modality=m, target=str(d / "target"), eval=str(d / "eval"), strategy="linear_probe",
                                     epochs=5, out="")
                res["curve"] = data_efficiency_curve(cfg, shots=(1, 2, 5, 10, 0), seeds=(0, 1, 2))
        res["seconds"] = time.time() - t0
        res["measured"] = time.strftime("%Y-%m-%d")
        out[demo] = res
        print(f"{demo} done in {res['seconds']:.0f} s", file=sys.stderr, flush=True)
        if a.json:
            Path(a.json).write_text(json.dumps(out, indent=2, default=float))
    print(render(out))


def render(out: dict) -> str:
    lines = []
    if any("diagnose" in r for r in out.values()):
        lines += ["### Diagnose", "", "| demo | pair | verdict | MMD² (p) | PAD (AUC) | drifting properties |", "|---|---|---|---|---|---|"]
        for demo, r in out.items():
            for pair, v in r.get("diagnose", {}).items():
                lines.append(f"| {demo} | {pair.replace('_', ' ')} | {v['severity']} | {v['mmd2']:.4f} ({v['mmd_p']:.3f}) | "
                             f"{v['pad']:.2f} ({v['auc']:.2f}) | {', '.join(v['drifting']) or '—'} |")
    if any("rank" in r for r in out.values()):
        lines += ["", "### Transferability ranking validated by fine-tuning (Kendall τ vs linear-probe accuracy)", "",
                  "| demo | candidates: linear-probe accuracy | τ LogME | τ H-score | τ k-NN | τ LEEP | τ NCE |", "|---|---|---|---|---|---|---|"]
        for demo, r in out.items():
            if "rank" not in r:
                continue
            v = r["rank"]["validation"]
            accs = ", ".join(f"{k} {x:.3f}" for k, x in sorted(v["accuracy"].items(), key=lambda kv: -kv[1]))
            t = v["kendall_tau"]
            cell = lambda k, t=t: "—" if t.get(k) is None else f"{t[k]:+.2f}"  # noqa: E731
            lines.append(f"| {demo} | {accs} | {cell('logme')} | {cell('h_score')} | {cell('knn_accuracy')} | {cell('leep')} | {cell('nce')} |")
    if any("adapt" in r for r in out.values()):
        lines += ["", "### Domain adaptation (labeled source + unlabeled target → target eval)", "",
                  "| demo | source-only | " + " | ".join(DA) + " |", "|---|---|" + "---|" * len(DA)]
        for demo, r in out.items():
            if "adapt" not in r:
                continue
            so = next(iter(r["adapt"].values()))["source_only"]
            cells = []
            for s in DA:
                x = r["adapt"].get(s)
                if x is None:
                    cells.append("n/a")
                    continue
                lo, hi = x["diff"]["ci95"]
                mark = " ✓" if lo > 0 else (" ✗" if hi < 0 else "")
                cells.append(f"{x['adapted']:.3f} ({100 * x['diff']['difference']:+.1f}){mark}")
            lines.append(f"| {demo} | {so:.3f} | " + " | ".join(cells) + " |")
        lines.append("")
        lines.append("✓ / ✗: better / worse than source-only beyond the paired 95% CI; no mark: within the CI.")
    if any("cluster" in r for r in out.values()):
        lines += ["", "### Unsupervised: k-means on the target eval set (k by silhouette; labels only for scoring)", "",
                  "| demo | pretrained k | pretrained NMI / ARI | raw k | raw NMI / ARI |", "|---|---|---|---|---|"]
        for demo, r in out.items():
            if "cluster" in r:
                p, w = r["cluster"]["pretrained"], r["cluster"]["raw"]
                lines.append(f"| {demo} | {p['k']} | {p['nmi']:.3f} / {p['ari']:.3f} | {w['k']} | {w['nmi']:.3f} / {w['ari']:.3f} |")
    if any("curve" in r for r in out.values()):
        lines += ["", "### Data-efficiency curve (linear probe vs scratch, mean ± std over 3 seeds)", "",
                  "| demo | per class | pretrained | scratch |", "|---|---|---|---|"]
        for demo, r in out.items():
            for p in r.get("curve", {}).get("points", []):
                s = p.get("scratch")
                lines.append(f"| {demo} | {p['shots']}{' (all)' if p['all'] else ''} | {p['pretrained']['mean']:.3f} ± "
                             f"{p['pretrained']['std']:.3f} | " + (f"{s['mean']:.3f} ± {s['std']:.3f}" if s else "—") + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
