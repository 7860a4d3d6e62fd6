"""The ``fashion-shift`` demo: clean Fashion-MNIST product photos (source) -> blurred, low-contrast, noisy
photos (target). Reads the idx files of the Debian package dataset-fashion-mnist (or $TRANSFERLAB_FASHION_MNIST)."""

from __future__ import annotations

import gzip
import os
from pathlib import Path
from typing import Optional

import numpy as np

from tlcore.data.demos._common import DEMOS, DemoSpec, _PerClass, _rng, _split_target_domain, _write_images
from tlcore.errors import DataError

FASHION_DIRS = ("/usr/share/datasets/fashion-mnist",)  # Debian package dataset-fashion-mnist
FASHION_CLASSES = ("tshirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag",
                   "ankle_boot")
_FASHION_SIZES = {"small": _PerClass(6, 3, 4, 3), "default": _PerClass(60, 15, 40, 40)}


def _fashion_dir() -> Optional[Path]:
    """The folder with the Fashion-MNIST idx files ($TRANSFERLAB_FASHION_MNIST first), or None."""
    candidates = [os.environ.get("TRANSFERLAB_FASHION_MNIST", ""), *FASHION_DIRS]
    for folder in filter(None, candidates):
        if all(_idx_path(Path(folder), f"{part}-{kind}") for part in ("train", "t10k") for kind in
               ("images-idx3-ubyte", "labels-idx1-ubyte")):
            return Path(folder)
    return None


def _idx_path(folder: Path, stem: str) -> Optional[Path]:
    for path in (folder / f"{stem}.gz", folder / stem):
        if path.is_file():
            return path
    return None


def _read_idx(path: Path) -> np.ndarray:
    """An IDX file (the MNIST format: magic, big-endian dims, uint8 data), optionally gzipped."""
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    if raw[:2] != b"\0\0" or raw[2] != 0x08:
        raise DataError(f"{path} is not an unsigned-byte IDX file")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _degrade(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The target-domain corruption: blur, low contrast on a grey background, sensor noise."""
    from PIL import Image, ImageFilter

    blurred = np.asarray(Image.fromarray(image, "L").filter(ImageFilter.GaussianBlur(rng.uniform(0.8, 1.4))),
                         dtype=np.float32)
    contrast = rng.uniform(0.35, 0.55)
    degraded = blurred * contrast + rng.uniform(50, 90) + rng.normal(0, 14, image.shape)
    return np.clip(degraded, 0, 255).round().astype(np.uint8)


def _make_fashion(out: Path, seed: int, size: str) -> None:
    folder = _fashion_dir()
    if folder is None:
        raise DataError(_fashion_available() or "Fashion-MNIST not found")
    counts, rng = _FASHION_SIZES[size], _rng(seed, "fashion-shift")

    def load(part: str) -> tuple[np.ndarray, np.ndarray]:
        return (_read_idx(_idx_path(folder, f"{part}-images-idx3-ubyte")),
                _read_idx(_idx_path(folder, f"{part}-labels-idx1-ubyte")))

    train_x, train_y = load("train")
    images, labels = [], []
    for k, name in enumerate(FASHION_CLASSES):
        for i in rng.choice(np.flatnonzero(train_y == k), counts.source, replace=False):
            images.append(train_x[i])
            labels.append(name)
    _write_images(out / "source", images, labels)

    test_x, test_y = load("t10k")
    unique: dict[bytes, int] = {}
    for i in range(len(test_x)):
        unique.setdefault(test_x[i].tobytes(), i)
    pools = {name: [i for i in unique.values() if test_y[i] == k] for k, name in enumerate(FASHION_CLASSES)}
    target, held_out, unlabeled = _split_target_domain(pools, counts, rng)
    _write_images(out / "target", [_degrade(test_x[i], rng) for i, _ in target], [c for _, c in target])
    _write_images(out / "eval", [_degrade(test_x[i], rng) for i, _ in held_out], [c for _, c in held_out])
    _write_images(out / "unlabeled", [_degrade(test_x[i], rng) for i, _ in unlabeled], None)


def _fashion_available() -> Optional[str]:
    if _fashion_dir() is None:
        return ("Fashion-MNIST is not installed: run `apt-get install dataset-fashion-mnist` (Debian/Ubuntu), "
                "or set TRANSFERLAB_FASHION_MNIST to a folder with the four *-idx*-ubyte(.gz) files")
    return None


DEMOS.register("fashion-shift", DemoSpec(
    "fashion-shift", "image", "classify",
    "clean Fashion-MNIST product photos (source) -> blurred, low-contrast, noisy photos (target)",
    "Fashion-MNIST, Zalando Research (MIT license), from the Debian package dataset-fashion-mnist; "
    "corruption applied by TransferLab",
    _make_fashion, _fashion_available))
