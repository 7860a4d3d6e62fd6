"""What the demos share: the spec and registry, the manifest, the split writers and the seeded helpers.

Each demo module registers its :class:`DemoSpec` into :data:`DEMOS` when it is imported; the package's
``__init__`` imports them in a fixed order, which is the order of ``list_demos()``.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from tlcore.data.loaders import GROUPS_FILE
from tlcore.errors import DataError
from tlcore.registry import Registry

FORMAT_VERSION = 4  # bump when a generator changes its output: cached demos of older versions are remade
SIZES = ("small", "default")
SPLITS = ("source", "target", "eval", "unlabeled")
MANIFEST = "demo.json"
SPOKEN_RATE = 16_000  # the sample rate of every audio demo
DIGIT_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


@dataclass(frozen=True)
class DemoSpec:
    """A registered demo: what it is, where its data comes from, and how to make it."""

    name: str
    modality: str  # image | text | audio
    task: str  # classify
    description: str  # one line: the shift it shows
    license: str  # data license and origin, for the README
    make: Callable[[Path, int, str], None]  # (out_dir, seed, size) writes the four split folders
    available: Callable[[], Optional[str]]  # None when usable here, else why not and how to fix it
    # How one written split is counted for the manifest, when its format is the demo's own (a task's table):
    # folder -> {"total": n, "per_class": {label: n} or None}, or None for a split in the usual layout. None: every
    # split is in the usual layout (image/audio label folders or a text table).
    count: Optional[Callable[[Path], Optional[dict]]] = None


@dataclass(frozen=True)
class _PerClass:
    """Items per class in each split (unlabeled: drawn per class, then shuffled together)."""

    source: int
    target: int
    eval: int
    unlabeled: int


DEMOS: Registry[DemoSpec] = Registry("demo")


# ---------------------------------------------------------------- manifest

def _read_manifest(out: Path) -> Optional[dict]:
    try:
        return json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _is_finished(out: Path, name: str, seed: int, size: str) -> bool:
    manifest = _read_manifest(out)
    wanted = {"name": name, "seed": seed, "size": size, "version": FORMAT_VERSION}
    return bool(manifest) and all(manifest.get(k) == v for k, v in wanted.items())


def _move_into_place(partial: Path, out: Path) -> None:
    """Rename the finished folder onto ``out`` (absent or empty) in one step."""
    try:
        os.rename(partial, out)  # POSIX replaces an empty directory atomically
    except OSError:
        if out.is_dir() and not any(out.iterdir()):
            out.rmdir()  # Windows cannot rename onto an existing directory
            os.rename(partial, out)
        else:
            raise DataError(f"{out} was filled by something else while the demo was being made") from None


def count_table_rows(folder: Path, table: str = "metadata.csv") -> Optional[dict]:
    """``{"total": rows, "per_class": None}`` of a split written as one table (speech recognition's metadata.csv);
    None when the split has no such table (an unlabeled folder of clips: counted as files)."""
    if not (folder / table).is_file():
        return None
    with open(folder / table, newline="", encoding="utf-8") as f:
        return {"total": len(list(csv.DictReader(f))), "per_class": None}


def _count_split(folder: Path, spec: DemoSpec) -> dict:
    """``{"total": n, "per_class": {label: n}}``; ``per_class`` is None for the unlabeled split."""
    counted = spec.count(folder) if spec.count is not None else None   # a demo in its task's own format
    if counted is not None:
        return counted
    modality = spec.modality
    if modality == "text":
        with open(folder / "data.csv", newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        if rows and "label" in rows[0]:
            labels = [r["label"] for r in rows]
            return {"total": len(rows), "per_class": {c: labels.count(c) for c in sorted(set(labels))}}
        return {"total": len(rows), "per_class": None}
    files = [p for p in folder.rglob("*") if p.is_file()]
    if all(p.parent == folder for p in files):
        return {"total": len(files), "per_class": None}
    per_class = {d.name: sum(1 for p in d.iterdir() if p.is_file()) for d in sorted(folder.iterdir()) if d.is_dir()}
    return {"total": sum(per_class.values()), "per_class": per_class}


# ---------------------------------------------------------------- writers

def _write_images(folder: Path, images: Sequence[np.ndarray], labels: Optional[Sequence[str]]) -> None:
    """``folder/<label>/<label>_0000.png`` or, unlabeled, ``folder/img_00000.png`` (8-bit grayscale)."""
    from PIL import Image

    _write_files(folder, labels, ".png", len(images), lambda i, p: Image.fromarray(images[i], "L").save(p))


def _write_rgb_images(folder: Path, images: Sequence[np.ndarray], labels: Optional[Sequence[str]],
                      tags: Optional[Sequence[str]] = None, groups: Optional[Sequence[str]] = None) -> None:
    """Like :func:`_write_images` for (H, W, 3) uint8 arrays: 8-bit RGB PNGs; ``tags`` end the labeled names
    (``folder/<label>/<label>_0000_<tag>.png``), e.g. to record which source item each file was made from."""
    from PIL import Image

    _write_files(folder, labels, ".png", len(images), lambda i, p: Image.fromarray(images[i], "RGB").save(p), tags=tags,
                 groups=groups)


def _write_audio(folder: Path, clips: Sequence[np.ndarray], labels: Optional[Sequence[str]], rate: int,
                 groups: Optional[Sequence[str]] = None) -> None:
    """``folder/<label>/<label>_0000.wav`` or ``folder/clip_00000.wav``, 16-bit PCM mono."""
    import soundfile

    _write_files(folder, labels, ".wav", len(clips),
                 lambda i, p: soundfile.write(p, clips[i], rate, subtype="PCM_16", format="WAV"), groups=groups)


def _write_files(folder: Path, labels: Optional[Sequence[str]], ext: str, n: int,
                 save: Callable[[int, Path], None], tags: Optional[Sequence[str]] = None,
                 groups: Optional[Sequence[str]] = None) -> None:
    """Write ``n`` files with ``save``; with ``groups`` also the folder's ``groups.csv`` (``file,group``: the glyph or
    voice each file shows, so splits hold out and intervals resample whole groups; tlcore.data.loaders)."""
    folder.mkdir(parents=True)
    seen: dict[str, int] = {}
    rows = []
    for i in range(n):
        if labels is None:
            path = folder / f"{'img' if ext == '.png' else 'clip'}_{i:05d}{ext}"
        else:
            label = labels[i]
            (folder / label).mkdir(exist_ok=True)
            tag = f"_{tags[i]}" if tags is not None else ""
            path = folder / label / f"{label}_{seen.get(label, 0):04d}{tag}{ext}"
            seen[label] = seen.get(label, 0) + 1
        save(i, path)
        rows.append([path.relative_to(folder).as_posix(), groups[i]] if groups is not None else None)
    if groups is not None:
        with open(folder / GROUPS_FILE, "w", newline="", encoding="utf-8") as f:
            csv.writer(f, lineterminator="\n").writerows([["file", "group"], *rows])


def _write_texts(folder: Path, texts: Sequence[str], labels: Optional[Sequence[str]]) -> None:
    """``folder/data.csv`` with ``text,label`` (or only ``text``), UTF-8, quoted by the csv module."""
    folder.mkdir(parents=True)
    with open(folder / "data.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
        writer.writerow(["text", "label"] if labels is not None else ["text"])
        for i, text in enumerate(texts):
            writer.writerow([text, labels[i]] if labels is not None else [text])


# ---------------------------------------------------------------- seeded helpers

Pairs = list[tuple[int, str]]


def _split_target_domain(pools: dict[str, list[int]], counts: _PerClass, rng: np.random.Generator
                         ) -> tuple[Pairs, Pairs, Pairs]:
    """Draw disjoint (index, label) lists for target / eval / unlabeled from per-class pools of unique items.

    The unlabeled list is shuffled across classes (its labels are only for the caller to drop)."""
    target, held_out, unlabeled = [], [], []
    for label, pool in pools.items():
        need = counts.target + counts.eval + counts.unlabeled
        if len(pool) < need:
            raise DataError(f"class {label!r} has {len(pool)} items, the demo needs {need}")
        order = [pool[i] for i in rng.permutation(len(pool))[:need]]
        target += [(i, label) for i in order[:counts.target]]
        held_out += [(i, label) for i in order[counts.target:counts.target + counts.eval]]
        unlabeled += [(i, label) for i in order[counts.target + counts.eval:]]
    return target, held_out, [unlabeled[i] for i in rng.permutation(len(unlabeled))]


def _rng(seed: int, demo: str) -> np.random.Generator:
    """A generator that depends on the seed and the demo (so demos with one seed are not correlated)."""
    return np.random.default_rng([seed, sum(map(ord, demo))])


def _finish_clips(clips: list[np.ndarray], rate: int) -> list[np.ndarray]:
    """Resample to 16 kHz and trim leading/trailing silence (keeping 20 ms either side)."""
    from math import gcd

    from scipy.signal import resample_poly  # deterministic numpy/C code (torch's may vary with threads)

    g = gcd(SPOKEN_RATE, rate)
    done = []
    for clip in clips:
        clip = resample_poly(clip.astype(np.float64), SPOKEN_RATE // g, rate // g)
        loud = np.flatnonzero(np.abs(clip) > 0.02 * max(np.abs(clip).max(), 1e-6))
        margin = SPOKEN_RATE // 50
        if len(loud):
            clip = clip[max(loud[0] - margin, 0):loud[-1] + margin]
        done.append(np.clip(clip, -1.0, 32767 / 32768).astype(np.float32))
    return done


def _espeak_available() -> Optional[str]:
    """The availability check of the demos synthesized with eSpeak NG."""
    from tlcore.data.demos.espeak import available

    return available()
