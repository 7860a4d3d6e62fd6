"""The ``digit-strips`` demo (multi-label): which digits are in this strip? Strips of one to three digits from
0-5 in three cells; source strips are printed in many fonts, target strips are made of scanned handwritten digits
(scikit-learn's ``load_digits``) — the shift of the ``digits`` demo, with a set of labels per image.

Each split is a folder with ``labels.csv`` (``path,labels``; ``labels`` as ``2|5``) and the images in ``images/``;
the unlabeled split's table has no ``labels`` column. Eval strips are built from handwritten digits no target strip
uses, so no eval digit image was seen in training.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from tlcore.data.demos._common import DEMOS, DemoSpec, _rng
from tlcore.data.demos.digits import _digit_fonts, _digits_available, _render_digit

DIGITS = tuple(range(6))           # the labels: digits 0-5
CELLS = 3                          # a strip holds up to three digits, one per 32 x 32 cell
SIZES = {"small": {"source": 40, "target": 30, "eval": 30, "unlabeled": 10},
         "default": {"source": 240, "target": 60, "eval": 120, "unlabeled": 100}}


def _label_sets(n: int, rng: np.random.Generator) -> list[tuple[int, ...]]:
    """n sets of 1-3 distinct digits, each digit equally likely."""
    return [tuple(sorted(rng.choice(DIGITS, size=int(rng.integers(1, CELLS + 1)), replace=False).tolist()))
            for _ in range(n)]


def _strip(cells: Sequence[Optional[np.ndarray]]) -> np.ndarray:
    """A 32 x 96 image: the cells side by side (None: an empty, black cell)."""
    return np.concatenate([c if c is not None else np.zeros((32, 32), np.uint8) for c in cells], axis=1)


def _place(digits: tuple[int, ...], glyph, rng: np.random.Generator) -> np.ndarray:
    """The digits in random cells of a strip, in random order; ``glyph(d)`` draws one 32 x 32 digit."""
    slots = rng.permutation(CELLS)[:len(digits)]
    cells: list[Optional[np.ndarray]] = [None] * CELLS
    for d, slot in zip(rng.permutation(list(digits)), slots):
        cells[int(slot)] = glyph(int(d))
    return _strip(cells)


def _write(folder: Path, images: list[np.ndarray], label_sets: Optional[list[tuple[int, ...]]]) -> None:
    from PIL import Image

    (folder / "images").mkdir(parents=True)
    rows = []
    for i, image in enumerate(images):
        name = f"images/strip_{i:04d}.png"
        Image.fromarray(image, "L").save(folder / name)
        rows.append([name] + (["|".join(map(str, label_sets[i]))] if label_sets is not None else []))
    with open(folder / "labels.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "labels"] if label_sets is not None else ["path"])
        writer.writerows(rows)


def _handwritten_pools(rng: np.random.Generator) -> dict[str, dict[int, list[np.ndarray]]]:
    """load_digits' distinct 8 x 8 digits 0-5 at 32 x 32, each digit's images dealt to the target, eval and
    unlabeled splits (a third each): a handwritten image is used in one split only."""
    from PIL import Image
    from sklearn.datasets import load_digits

    data = load_digits()
    unique: dict[bytes, int] = {}
    for i, x in enumerate(data.data):
        unique.setdefault(x.tobytes(), i)
    pools: dict[str, dict[int, list[np.ndarray]]] = {"target": {}, "eval": {}, "unlabeled": {}}
    for d in DIGITS:
        idx = [i for i in unique.values() if data.target[i] == d]
        idx = [idx[j] for j in rng.permutation(len(idx))]
        images = [np.asarray(Image.fromarray((data.data[i].reshape(8, 8) * 255 / 16).round().astype(np.uint8), "L")
                             .resize((32, 32), Image.BILINEAR)) for i in idx]
        third = len(images) // 3
        pools["target"][d], pools["eval"][d], pools["unlabeled"][d] = (images[:third], images[third:2 * third],
                                                                       images[2 * third:])
    return pools


def make_digit_strips(out: Path, seed: int, size: str) -> None:
    counts, rng = SIZES[size], _rng(seed, "digit-strips")
    fonts = _digit_fonts()
    sets = _label_sets(counts["source"], rng)
    _write(out / "source", [_place(s, lambda d: _render_digit(d, fonts[int(rng.integers(len(fonts)))], rng), rng)
                            for s in sets], sets)
    pools = _handwritten_pools(rng)
    for split in ("target", "eval", "unlabeled"):
        sets = _label_sets(counts[split], rng)
        images = [_place(s, lambda d, pool=pools[split]: pool[d][int(rng.integers(len(pool[d])))], rng) for s in sets]
        _write(out / split, images, None if split == "unlabeled" else sets)


def count_split(folder: Path) -> dict:
    """``{"total": strips, "per_class": {digit: strips with it}}`` (``per_class`` None when unlabeled)."""
    from tlcore.tasks.multilabel.data import load_multilabel

    data = load_multilabel(folder)
    return {"total": len(data), "per_class": data.label_counts() if data.label_sets is not None else None}


DEMOS.register("digit-strips", DemoSpec(
    "digit-strips", "image", "multilabel",
    "multi-label: which of the digits 0-5 are in a strip of up to three; printed in many fonts (source) -> "
    "scanned handwritten digits (target)",
    "source: rendered with Pillow from matplotlib's bundled DejaVu (Bitstream Vera license), STIX (SIL OFL) and "
    "Computer Modern (BaKoMa) fonts; target: scikit-learn load_digits (UCI Optical Recognition of Handwritten "
    "Digits, CC BY 4.0; scikit-learn BSD-3-Clause)",
    make_digit_strips, _digits_available, count=count_split))
