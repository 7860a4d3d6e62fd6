"""P6: peak memory at 10× the data — 50,000 vs 5,000 images, 200,000 vs 20,000 text rows (goal ≤ 1.3×), in every
configuration: baselines on/off, an explicit or the automatic eval split, images and text.

    .venv/bin/python benchmarks/bench_memory.py [--small 5000] [--large 50000] [--modalities image,text]
        [--combos all|diagnose,lp,full,...] [--text-factor 4] [--backbone-image tiny-image]
        [--backbone-text tiny-text] [--work /tmp/tl-p6] [--json docs/bench_memory.json]

For each size it writes a synthetic labeled set (images: 64×64 PNGs in ``<label>/`` folders, 10 classes; text:
a CSV of ``--text-factor`` × as many rows, 10 classes) and, for the combinations with an explicit eval set, a
second set of 0.3 × as many items (another seed: the share the automatic split holds out), then runs each
combination (:data:`COMBOS`) as a CLI command in a fresh process with its own data folder (cold caches), and reads
the process's peak RSS (``ru_maxrss`` from ``wait4``). The combinations:

* ``diagnose`` — source = the small set, target = the set under test;
* ``lp``, ``full`` — ``finetune --strategy linear_probe`` / ``--strategy full --epochs 1``, the automatic eval split,
  no baselines (the rows of the first P6 table);
* ``lp+knn``, ``lp+classical``, ``lp+scratch`` — the linear probe with one baseline each (the scratch twin trains
  ``--epochs 1``, as the fine-tuned model's schedule);
* ``lp/eval``, ``lp/eval+knn+classical`` — the linear probe with an explicit ``--eval`` set, without and with the
  k-NN and classical baselines;
* ``full+all`` — full fine-tuning, 1 epoch, with every baseline (scratch, knn, classical), the automatic split.

Every finetune combination also runs the overlap check, the contradiction check, the bootstrap intervals and the
report. Prints seconds, peak RSS and the large/small ratio per combination and a markdown table, and writes the
results to ``--json`` (combinations measured earlier and not re-run are kept, so one combination can be re-measured
alone); the goal is a ratio ≤ 1.3 (memory that does not grow with the data). The default backbones are the tiny
test ones so the data path, not the network, dominates the time; ``--backbone-image efficientnet-lite0-128`` runs
the real one.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import doc_blocks  # noqa: E402  (after the sys.path line above)

JSON_PATH = ROOT / "docs" / "bench_memory.json"
BLOCK = "memory"
CLASSES = [f"c{i}" for i in range(10)]
WORDS = ["alpha", "beta", "gamma", "delta", "omega", "sigma", "kappa", "lambda", "theta", "zeta"]
#: The explicit eval set's size, as a share of the target: what the automatic split holds out (--eval-fraction).
EVAL_SHARE = 0.3
#: name -> (what it is, in words for the table; command builder's keys: strategy, baselines, explicit eval).
COMBOS = {
    "diagnose": ("diagnose (source = the small set)", None),
    "lp": ("linear probe, automatic split, no baselines", ("linear_probe", "", False)),
    "full": ("full fine-tuning 1 epoch, automatic split, no baselines", ("full", "", False)),
    "lp+knn": ("linear probe, automatic split, k-NN", ("linear_probe", "knn", False)),
    "lp+classical": ("linear probe, automatic split, classical", ("linear_probe", "classical", False)),
    "lp+scratch": ("linear probe, automatic split, scratch twin (1 epoch)", ("linear_probe", "scratch", False)),
    "lp/eval": ("linear probe, explicit --eval, no baselines", ("linear_probe", "", True)),
    "lp/eval+knn+classical": ("linear probe, explicit --eval, k-NN + classical",
                              ("linear_probe", "knn,classical", True)),
    "full+all": ("full fine-tuning 1 epoch, automatic split, scratch + k-NN + classical",
                 ("full", "scratch,knn,classical", False)),
}


def make_images(folder: Path, n: int, seed: int = 0) -> Path:
    from PIL import Image

    if (folder / ".complete").exists():
        return folder
    rng = np.random.default_rng(seed)
    for i in range(n):
        c = i % len(CLASSES)
        img = rng.integers(0, 60, (64, 64, 3), dtype=np.uint8)
        img[:, :, c % 3] += np.uint8(60 + 15 * c)                     # a class-dependent colour cast
        d = folder / CLASSES[c]
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(d / f"{i:06d}.png", compress_level=1)
    (folder / ".complete").touch()
    return folder


def make_text(path: Path, n: int, seed: int = 0) -> Path:
    if path.exists():
        return path
    rnd = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        for i in range(n):
            c = i % len(CLASSES)
            words = [WORDS[c]] * 2 + [rnd.choice(WORDS) for _ in range(10)]
            rnd.shuffle(words)
            w.writerow([" ".join(words), CLASSES[c]])
    os.replace(tmp, path)
    return path


def measure(argv: list, home: Path) -> tuple[float, int, int]:
    """Run ``python -m tlcore argv`` in a fresh process; (seconds, peak RSS bytes, exit code)."""
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    env = dict(os.environ, TRANSFERLAB_HOME=str(home), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    t0 = time.perf_counter()
    with open(home / "stderr.log", "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "tlcore", *map(str, argv), "--quiet"], cwd=ROOT, env=env,
                                stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        print(f"  exit {proc.returncode}: {(home / 'stderr.log').read_text()[-800:]}", flush=True)
    return time.perf_counter() - t0, usage.ru_maxrss * 1024, proc.returncode


def command(combo: str, modality: str, source: Path, target: Path, eval_set: Path, backbone: str, out: Path) -> list:
    common = ["--modality", modality, "--backbone", backbone]
    spec = COMBOS[combo][1]
    if spec is None:
        return ["diagnose", *common, "--source", source, "--target", target, "--json", out / "dx.json"]
    strategy, baselines, explicit = spec
    epochs = ["--epochs", "1"] if strategy == "full" or "scratch" in baselines else []
    return ["finetune", *common, "--target", target, *(["--eval", eval_set] if explicit else []),
            "--strategy", strategy, *epochs, "--baselines", baselines, "--out", out / "run"]


def data_sets(modality: str, n: int, args, work: Path) -> tuple[Path, Path, int]:
    """(target, explicit eval set, target size in items) of size ``n`` (× the text factor for text)."""
    n_eval = int(round(EVAL_SHARE * n))
    if modality == "image":
        return (make_images(work / "data" / f"images-{n}", n, seed=n),
                make_images(work / "data" / f"images-eval-{n_eval}", n_eval, seed=10**7 + n_eval), n)
    rows = n * args.text_factor
    return (make_text(work / "data" / f"text-{rows}.csv", rows, seed=n),
            make_text(work / "data" / f"text-eval-{n_eval * args.text_factor}.csv", n_eval * args.text_factor,
                      seed=10**7 + n_eval), rows)


def load_rows(path: Path | None) -> dict:
    """{(modality, combo): row} of a results file written earlier (empty when there is none)."""
    if path is None or not path.exists():
        return {}
    return {(r["modality"], r["combo"]): r for r in json.loads(path.read_text()).get("rows", [])}


def save_row(path: Path, row: dict) -> dict:
    """Add (or replace) one combination's row in the results file, re-read just before writing so that two runs of
    this script (say, one per modality) add to one file; written atomically. Returns every row."""
    rows = {**load_rows(path), (row["modality"], row["combo"]): row}
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps({
        "benchmark": "P6: peak RSS at 10x the data (benchmarks/bench_memory.py); goal: large / small <= 1.3",
        "machine": {"cpus": os.cpu_count(), "memory_gib": round(memory / 2**30, 1), "platform": platform.platform(),
                    "python": platform.python_version()},
        "rows": sorted(rows.values(), key=_order)}, indent=2) + "\n")
    os.replace(tmp, path)
    return rows


def _order(row: dict) -> tuple:
    """Rows in table order: images first, then text; the combinations in :data:`COMBOS` order."""
    combos = list(COMBOS)
    return (row["modality"] != "image", combos.index(row["combo"]) if row["combo"] in combos else len(combos))


def table(rows: list[dict]) -> str:
    lines = ["| data | combination | small: time, peak RSS | large: time, peak RSS | RSS ratio |",
             "|---|---|---|---|---|"]
    for r in rows:
        s, big = r["small"], r["large"]
        unit = "images" if r["modality"] == "image" else "text rows"
        flag = "" if s["exit"] == 0 and big["exit"] == 0 else f" (exit {s['exit']}/{big['exit']})"
        lines.append(f"| {unit} {s['size']:,} → {big['size']:,} | `{r['combo']}`: {r['what']} | "
                     f"{s['seconds']:.1f} s, {s['peak_rss_mib']:.0f} MiB | {big['seconds']:.1f} s, "
                     f"{big['peak_rss_mib']:.0f} MiB | **{r['ratio']:.2f}×**{flag} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", type=int, default=5000)
    ap.add_argument("--large", type=int, default=50000)
    ap.add_argument("--text-factor", type=int, default=4, help="text rows per image (200,000 rows at 50,000)")
    ap.add_argument("--modalities", default="image,text")
    ap.add_argument("--combos", default="all", help=f"comma-separated, of {', '.join(COMBOS)}; or all")
    ap.add_argument("--backbone-image", default="tiny-image")
    ap.add_argument("--backbone-text", default="tiny-text")
    ap.add_argument("--work", default="/tmp/tl-p6")
    ap.add_argument("--json", default=str(JSON_PATH),
                    help="results file (rows of combinations not re-run are kept); '' = none")
    ap.add_argument("--render", action="store_true",
                    help="only rewrite docs/benchmarks.md's P6 table from the results file (no measuring)")
    args = ap.parse_args(argv)
    if args.render:
        render(load_rows(Path(args.json)))
        return 0
    combos = list(COMBOS) if args.combos == "all" else [c.strip() for c in args.combos.split(",") if c.strip()]
    unknown = [c for c in combos if c not in COMBOS]
    if unknown:
        ap.error(f"unknown combination(s) {unknown}; known: {', '.join(COMBOS)}")
    work = Path(args.work)
    print(f"cpus={os.cpu_count()} sizes {args.small} vs {args.large}; combinations {', '.join(combos)}", flush=True)
    json_path = Path(args.json) if args.json else None
    rows = load_rows(json_path)
    ok = True
    for modality in [m.strip() for m in args.modalities.split(",") if m.strip()]:
        backbone = args.backbone_image if modality == "image" else args.backbone_text
        sets = {}
        for n in (args.small, args.large):
            t0 = time.perf_counter()
            sets[n] = data_sets(modality, n, args, work)
            print(f"{modality}: data of size {sets[n][2]} (+ eval set) ready ({time.perf_counter() - t0:.0f} s)",
                  flush=True)
        for combo in combos:
            measured = {}
            for n in (args.small, args.large):
                target, eval_set, size = sets[n]
                slug = f"{modality}-{n}-{combo.replace('/', '_').replace(',', '_')}"
                out = work / "out" / slug
                shutil.rmtree(out, ignore_errors=True)
                out.mkdir(parents=True)
                cmd = command(combo, modality, sets[args.small][0], target, eval_set, backbone, out)
                secs, rss, rc = measure(cmd, work / "home" / slug)
                measured[n] = {"size": size, "seconds": round(secs, 1), "peak_rss_mib": round(rss / 2**20, 1),
                               "exit": rc}
                print(f"  {modality} {size:7d} {combo:22s} {secs:7.1f} s  peak RSS {rss / 2**20:7.0f} MiB"
                      f"{'' if rc == 0 else f'  (exit {rc})'}", flush=True)
            small, large = measured[args.small], measured[args.large]
            ratio = large["peak_rss_mib"] / small["peak_rss_mib"]
            ok &= ratio <= 1.3 and small["exit"] == 0 and large["exit"] == 0
            print(f"P6 {modality} {combo:22s}: peak RSS {large['peak_rss_mib']:.0f} / {small['peak_rss_mib']:.0f} MiB"
                  f" = {ratio:.2f}x (goal <= 1.3x); time {large['seconds'] / max(small['seconds'], 1e-9):.1f}x",
                  flush=True)
            row = {"modality": modality, "combo": combo, "what": COMBOS[combo][0], "backbone": backbone,
                   "command_large": ["python", "-m", "tlcore", *map(str, cmd)], "small": small, "large": large,
                   "ratio": round(ratio, 3), "measured": datetime.date.today().isoformat()}
            rows = save_row(json_path, row) if json_path else {**rows, (modality, combo): row}
    print(table(sorted(rows.values(), key=_order)))
    if json_path == JSON_PATH:
        render(rows)
    return 0 if ok else 1


def render(rows: dict) -> None:
    """Docs/benchmarks.md's P6 block from the results (every combination measured, in table order)."""
    doc_blocks.write_block(BLOCK, table(sorted(rows.values(), key=_order)), script="benchmarks/bench_memory.py",
                source="docs/bench_memory.json", section="P6 — peak memory at 10× the data (goal ≤ 1.3×)")


def block_matches() -> bool:
    return doc_blocks.block_matches(BLOCK, table(sorted(load_rows(JSON_PATH).values(), key=_order)))


if __name__ == "__main__":
    sys.exit(main())
