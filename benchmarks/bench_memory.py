"""P6: peak memory at 10× the data — 50,000 vs 5,000 images, 200,000 vs 20,000 text rows (goal ≤ 1.3×).

    .venv/bin/python benchmarks/bench_memory.py [--small 5000] [--large 50000] [--modalities image,text]
        [--backbone-image tiny-image] [--backbone-text tiny-text] [--work /tmp/tl-p6]

For each size it writes a synthetic labeled set (images: 64×64 PNGs in ``<label>/`` folders, 10 classes; text:
a CSV of ``--text-factor`` × as many rows, 10 classes), then runs three CLI commands, each
in a fresh process with its own data folder (cold caches), and reads the process's peak RSS (``ru_maxrss`` from
``wait4``): ``diagnose`` (source = the small set, target = the set under test), ``finetune --strategy
linear_probe`` and ``finetune --strategy full --epochs 1``. Prints seconds, peak RSS and the large/small ratio per
command; the goal is a ratio ≤ 1.3 (memory that does not grow with the data). The default backbones are the tiny
test ones so the data path, not the network, dominates the time; ``--backbone-image efficientnet-lite0-128`` runs
the real one.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CLASSES = [f"c{i}" for i in range(10)]
WORDS = ["alpha", "beta", "gamma", "delta", "omega", "sigma", "kappa", "lambda", "theta", "zeta"]


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
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        for i in range(n):
            c = i % len(CLASSES)
            words = [WORDS[c]] * 2 + [rnd.choice(WORDS) for _ in range(10)]
            rnd.shuffle(words)
            w.writerow([" ".join(words), CLASSES[c]])
    return path


def measure(argv: list, home: Path) -> tuple[float, int, int]:
    """Run ``python -m tlcore argv`` in a fresh process; (seconds, peak RSS bytes, exit code)."""
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    env = dict(os.environ, TRANSFERLAB_HOME=str(home), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "tlcore", *map(str, argv), "--quiet"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=open(home / "stderr.log", "w"))
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        print(f"  exit {proc.returncode}: {(home / 'stderr.log').read_text()[-800:]}", flush=True)
    return time.perf_counter() - t0, usage.ru_maxrss * 1024, proc.returncode


def commands(modality: str, source: Path, target: Path, backbone: str, out: Path) -> dict:
    common = ["--modality", modality, "--backbone", backbone]
    return {
        "diagnose": ["diagnose", *common, "--source", source, "--target", target, "--json", out / "dx.json"],
        "linear probe": ["finetune", *common, "--target", target, "--strategy", "linear_probe", "--baselines", "",
                         "--out", out / "lp"],
        "full, 1 epoch": ["finetune", *common, "--target", target, "--strategy", "full", "--epochs", "1",
                          "--baselines", "", "--out", out / "full"],
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", type=int, default=5000)
    ap.add_argument("--large", type=int, default=50000)
    ap.add_argument("--text-factor", type=int, default=4, help="text rows per image (200,000 rows at 50,000)")
    ap.add_argument("--modalities", default="image,text")
    ap.add_argument("--backbone-image", default="tiny-image")
    ap.add_argument("--backbone-text", default="tiny-text")
    ap.add_argument("--work", default="/tmp/tl-p6")
    args = ap.parse_args(argv)
    work = Path(args.work)
    print(f"cpus={os.cpu_count()} sizes {args.small} vs {args.large}")
    ok = True
    for modality in [m.strip() for m in args.modalities.split(",") if m.strip()]:
        backbone = args.backbone_image if modality == "image" else args.backbone_text
        sets = {}
        for n in (args.small, args.large):
            t0 = time.perf_counter()
            if modality == "image":
                sets[n] = make_images(work / "data" / f"images-{n}", n, seed=n)
            else:
                rows = n * args.text_factor
                sets[n] = make_text(work / "data" / f"text-{rows}.csv", rows, seed=n)
            print(f"{modality}: data of size {n if modality == 'image' else n * args.text_factor} ready "
                  f"({time.perf_counter() - t0:.0f} s)", flush=True)
        results = {}
        for n in (args.small, args.large):
            out = work / "out" / f"{modality}-{n}"
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir(parents=True)
            for name, cmd in commands(modality, sets[args.small], sets[n], backbone, out).items():
                secs, rss, rc = measure(cmd, work / "home" / f"{modality}-{n}-{name.replace(' ', '_')}")
                results[(n, name)] = (secs, rss, rc)
                size = n if modality == "image" else n * args.text_factor
                print(f"  {modality} {size:7d} {name:14s} {secs:7.1f} s  peak RSS {rss / 2**20:7.0f} MiB"
                      f"{'' if rc == 0 else f'  (exit {rc})'}", flush=True)
        for name in ("diagnose", "linear probe", "full, 1 epoch"):
            small, large = results[(args.small, name)], results[(args.large, name)]
            ratio = large[1] / small[1]
            ok &= ratio <= 1.3 and small[2] == 0 and large[2] == 0
            print(f"P6 {modality} {name:14s}: peak RSS {large[1] / 2**20:.0f} / {small[1] / 2**20:.0f} MiB = "
                  f"{ratio:.2f}x (goal <= 1.3x); time {large[0] / small[0]:.1f}x", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
