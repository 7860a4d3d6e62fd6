"""P7 (CPU): feature extraction images/s through the product path (DataLoader) vs the single-thread path it replaced
vs a bare ``model(x)`` loop on pre-decoded tensors, measured in one run (docs/benchmarks.md, P7).

    .venv/bin/python benchmarks/bench_dataloader.py [--images 512] [--backbone efficientnet-lite0-128] [--size 256] [--rounds 3]

Torch runs on one intra-op thread in all three, so the comparison is of the paths, not of thread counts. The images
are random-noise JPEGs of ``--size`` pixels (decoded and resized to the backbone's input on every path but the bare
loop, whose tensors are decoded before its clock starts).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def _images(folder: Path, n: int, size: int) -> Path:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(n):
        label = folder / ("a" if i % 2 else "b")
        label.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(label / f"{i}.jpg", quality=90)
    return folder


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=512)
    ap.add_argument("--backbone", default="efficientnet-lite0-128")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the best rate of each path counts")
    args = ap.parse_args(argv)

    import numpy as np
    import torch

    from tlcore.data.loaders import load_dataset
    from tlcore.device import Runtime, default_num_workers, use_runtime
    from tlcore.models.features import extract_features
    from tlcore.models.registry import build_backbone

    torch.set_num_threads(1)
    os.environ["TRANSFERLAB_HOME"] = tempfile.mkdtemp(prefix="tl-p7-")
    ds = load_dataset(_images(Path(tempfile.mkdtemp(prefix="tl-p7-img-")), args.images, args.size), "image")
    backbone = build_backbone(args.backbone, "image", pretrained=True).eval()
    bs, n = args.batch_size, len(ds)
    chunks = [ds.items[i:i + bs] for i in range(0, n, bs)]
    backbone(**backbone.preprocess(chunks[0]))        # warm-up (allocator, first-call kernels)

    @torch.no_grad()
    def single_thread() -> np.ndarray:   # the path before the DataLoader (git show 4fa9b97:tlcore/models/features.py)
        return np.concatenate([backbone(**backbone.preprocess(c)).float().numpy() for c in chunks])

    decoded = [backbone.preprocess(c) for c in chunks]

    @torch.no_grad()
    def bare() -> np.ndarray:
        return np.concatenate([backbone(**b).float().numpy() for b in decoded])

    def product(workers: int):
        def run() -> np.ndarray:
            with use_runtime(Runtime(torch.device("cpu"), "fp32", workers)):
                return extract_features(backbone, ds, batch_size=bs, use_cache=False)
        return run

    default_workers = default_num_workers()
    paths = {"bare model(x) loop, pre-decoded": bare, "single-thread path (before)": single_thread,
             f"product path, default workers ({default_workers})": product(default_workers)}
    for w in (0, 1, 2):
        if w != default_workers:
            paths[f"product path, {w} worker(s)"] = product(w)
    rates, ref = {name: 0.0 for name in paths}, None
    for _ in range(args.rounds):             # interleaved rounds, best of each: one pass is ~5 s, noisy on 2 cores
        for name, fn in paths.items():
            t0 = time.perf_counter()
            out = fn()
            rates[name] = max(rates[name], n / (time.perf_counter() - t0))
            if ref is None:
                ref = out
            elif not np.allclose(out, ref, atol=1e-5):
                raise SystemExit(f"{name}: features differ from the bare loop's")
    bare_rate = rates["bare model(x) loop, pre-decoded"]
    print(f"P7: {n} images {args.size}px -> {args.backbone}, batch {bs}, torch threads 1, cores {os.cpu_count()}")
    print(f"{'path':45s} {'images/s':>9s} {'vs bare':>8s}")
    for name, rate in rates.items():
        print(f"{name:45s} {rate:9.1f} {rate / bare_rate:7.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
