"""The ``digits`` demo: printed digits rendered in many fonts (source) -> small scanned handwritten digits (target)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Optional

import numpy as np

from tlcore.data.demos._common import DEMOS, DIGIT_NAMES, DemoSpec, _PerClass, _rng, _split_target_domain, _write_images

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


DEMOS.register("digits", DemoSpec(
    "digits", "image", "classify",
    "printed digits rendered in many fonts (source) -> small scanned handwritten digits (target)",
    "source: rendered with Pillow from matplotlib's bundled DejaVu (Bitstream Vera license), STIX (SIL OFL) and "
    "Computer Modern (BaKoMa) fonts; target: scikit-learn load_digits (UCI Optical Recognition of Handwritten "
    "Digits, CC BY 4.0; scikit-learn BSD-3-Clause)",
    _make_digits, _digits_available))
