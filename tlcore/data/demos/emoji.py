"""The ``emoji`` demo: everyday things drawn as colour clip-art (source) -> the same kinds of things as black
line-art sketches (target), the "clip-art -> sketch" shift of DomainNet.

About 240 Unicode emoji in ten categories close to Unicode's emoji subgroups (see the comments in
:data:`CATEGORIES`), drawn with two fonts that Debian ships: *Noto Color Emoji* (source domain) and *Symbola*'s
black outline drawings (target domain). A glyph is used only if both fonts map its code point and both draw
something; the rest are dropped (and listed in ``glyphs.json``) when the demo is made.

Held-out glyphs: the glyphs of each category are split once (seeded) into *train* and *eval* glyphs, so the
eval split measures generalisation to unseen drawings, not only to unseen renderings. Source, target and
unlabeled use the train glyphs only: then no labeled training data (source or target) has seen an eval glyph,
and "before" (the source-trained model) and "after" differ in the domain they learnt from, not in the glyphs
they saw. Every item is a seeded rendering (scale, small rotation, mirror, position, light background) written
as a 128x128 RGB PNG; labeled files end in the glyph's code point (``vehicle_0003_1F697.png``) and
``glyphs.json`` beside ``demo.json`` lists the train/eval glyphs per category and, in file order, the code
point of each unlabeled image (an answer key kept outside the split folders).

Each eval glyph is drawn several times, and whether a model recognises a glyph is nearly all-or-nothing, so
the effective eval size is the number of eval glyphs (~80), not of eval images: expect the accuracy to move by
several points between seeds (other glyph splits).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import numpy as np

from tlcore.data.demos._common import DEMOS, DemoSpec, _PerClass, _rng, _write_rgb_images
from tlcore.errors import DataError

if TYPE_CHECKING:
    from PIL.Image import Image

NOTO_FONT = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")  # Debian fonts-noto-color-emoji
SYMBOLA_FONT = Path("/usr/share/fonts/truetype/ancient-scripts/Symbola_hint.ttf")  # Debian fonts-symbola
IMAGE_SIZE = 128  # EfficientNet-Lite0-128's input: no resampling at train time
EVAL_GLYPH_SHARE = 1 / 3  # of each category's glyphs, held out for the eval split
_NOTO_PIXELS = 109  # the only size of Noto Color Emoji's bitmap strike that FreeType/Pillow renders
_SYMBOLA_PIXELS = 112  # close to the Noto bitmaps' size, so both are scaled alike (Symbola's thin lines kept)
_MIN_INK = 400  # pixels with alpha > 50% for a glyph to count as drawn (a real glyph has thousands)
_ROTATION = 10.0  # degrees, either way
_SCALE = (0.7, 0.95)  # the glyph's longest side, as a share of the image side
_EMOJI_SIZES = {"small": _PerClass(4, 3, 4, 3), "default": _PerClass(40, 12, 18, 20)}

CATEGORIES: dict[str, tuple[int, ...]] = {
    # whole animals and faces
    "mammal": (0x1F400, 0x1F401, 0x1F402, 0x1F403, 0x1F404, 0x1F405, 0x1F406, 0x1F407, 0x1F408, 0x1F40E, 0x1F40F,
               0x1F410, 0x1F411, 0x1F412, 0x1F415, 0x1F416, 0x1F417, 0x1F418, 0x1F428, 0x1F429, 0x1F42A, 0x1F42B,
               0x1F42D, 0x1F42E, 0x1F42F, 0x1F430, 0x1F431, 0x1F434, 0x1F435, 0x1F436, 0x1F437, 0x1F439, 0x1F43A,
               0x1F43B, 0x1F43C, 0x1F43F, 0x1F981, 0x1F987, 0x1F98A, 0x1F98C, 0x1F98D, 0x1F98F, 0x1F992, 0x1F993,
               0x1F994),
    "bird": (0x1F413, 0x1F414, 0x1F424, 0x1F425, 0x1F426, 0x1F427, 0x1F54A, 0x1F983, 0x1F985, 0x1F986, 0x1F989),
    # crab, shrimp and squid too (Unicode: food-marine), and turtle
    "sea_animal": (0x1F40B, 0x1F419, 0x1F41F, 0x1F420, 0x1F421, 0x1F422, 0x1F42C, 0x1F433, 0x1F980, 0x1F988,
                   0x1F990, 0x1F991),
    # Unicode's animal-bug (snail included)
    "bug": (0x1F40C, 0x1F41B, 0x1F41C, 0x1F41D, 0x1F41E, 0x1F577, 0x1F982, 0x1F98B, 0x1F997),
    # flowers, trees, leaves
    "plant": (0x2618, 0x1F331, 0x1F332, 0x1F333, 0x1F334, 0x1F335, 0x1F337, 0x1F338, 0x1F339, 0x1F33A, 0x1F33B,
              0x1F33C, 0x1F33E, 0x1F33F, 0x1F340, 0x1F341, 0x1F342, 0x1F343, 0x1F490, 0x1F940),
    "fruit": (0x1F345, 0x1F347, 0x1F348, 0x1F349, 0x1F34A, 0x1F34B, 0x1F34C, 0x1F34D, 0x1F34E, 0x1F34F, 0x1F350,
              0x1F351, 0x1F352, 0x1F353, 0x1F95D, 0x1F965),
    # Unicode's food-vegetable (nuts and mushroom included)
    "vegetable": (0x1F330, 0x1F336, 0x1F33D, 0x1F344, 0x1F346, 0x1F951, 0x1F952, 0x1F954, 0x1F955, 0x1F95C,
                  0x1F966),
    # savoury dishes (Unicode's food-prepared and food-asian); sweets are left out
    "prepared_food": (0x1F32D, 0x1F32E, 0x1F32F, 0x1F354, 0x1F355, 0x1F356, 0x1F357, 0x1F358, 0x1F359, 0x1F35A,
                      0x1F35B, 0x1F35C, 0x1F35D, 0x1F35E, 0x1F35F, 0x1F360, 0x1F361, 0x1F362, 0x1F363, 0x1F364,
                      0x1F365, 0x1F371, 0x1F372, 0x1F373, 0x1F37F, 0x1F950, 0x1F953, 0x1F956, 0x1F957, 0x1F958,
                      0x1F959, 0x1F95E, 0x1F95F, 0x1F963, 0x1F968, 0x1F969, 0x1F96A, 0x1F9C0),
    # by land, water and air
    "vehicle": (0x2708, 0x26F4, 0x26F5, 0x1F3CD, 0x1F3CE, 0x1F680, 0x1F681, 0x1F682, 0x1F683, 0x1F684, 0x1F685,
                0x1F686, 0x1F687, 0x1F688, 0x1F68A, 0x1F68B, 0x1F68C, 0x1F68D, 0x1F68E, 0x1F690, 0x1F691, 0x1F692,
                0x1F693, 0x1F694, 0x1F695, 0x1F696, 0x1F697, 0x1F698, 0x1F699, 0x1F69A, 0x1F69B, 0x1F69C, 0x1F69D,
                0x1F69E, 0x1F69F, 0x1F6A0, 0x1F6A1, 0x1F6A2, 0x1F6A4, 0x1F6B2, 0x1F6E5, 0x1F6E9, 0x1F6EB, 0x1F6EC,
                0x1F6F3, 0x1F6F4, 0x1F6F5, 0x1F6F6, 0x1F6F7),
    # garments, shoes, hats and bags (no jewellery or glasses)
    "clothing": (0x26D1, 0x1F392, 0x1F393, 0x1F3A9, 0x1F3BD, 0x1F452, 0x1F454, 0x1F455, 0x1F456, 0x1F457, 0x1F458,
                 0x1F459, 0x1F45A, 0x1F45B, 0x1F45C, 0x1F45D, 0x1F45E, 0x1F45F, 0x1F460, 0x1F461, 0x1F462, 0x1F94B,
                 0x1F9E2, 0x1F9E3, 0x1F9E4, 0x1F9E5, 0x1F9E6),
}


def _fonts() -> dict[str, tuple[Path, str]]:
    # read at call time, so a test can point a module constant at a missing file
    return {"noto": (NOTO_FONT, "fonts-noto-color-emoji"), "symbola": (SYMBOLA_FONT, "fonts-symbola")}


def code_name(cp: int) -> str:
    """How files and glyphs.json name a glyph: its code point in hex, e.g. ``1F697``."""
    return f"{cp:04X}"


# ---------------------------------------------------------------- glyphs

def _render(cp: int, font_path: Path, style: str) -> Optional[Image]:
    """One glyph, cropped to its ink, as an RGBA image (transparent around it)."""
    from PIL import Image, ImageDraw, ImageFont

    pixels = _NOTO_PIXELS if style == "noto" else _SYMBOLA_PIXELS
    canvas = Image.new("RGBA", (2 * pixels, 2 * pixels), (0, 0, 0, 0))
    font = ImageFont.truetype(str(font_path), pixels)
    if style == "noto":
        ImageDraw.Draw(canvas).text((pixels, pixels), chr(cp), font=font, anchor="mm", embedded_color=True)
    else:
        ImageDraw.Draw(canvas).text((pixels, pixels), chr(cp), font=font, anchor="mm", fill=(0, 0, 0, 255))
    box = canvas.getchannel("A").point(lambda a: 255 if a > 127 else 0).getbbox()
    return canvas.crop(box) if box else None


def _drawn(glyph: Optional[Image]) -> bool:
    if glyph is None or min(glyph.size) < 12:
        return False
    return int((np.asarray(glyph.getchannel("A")) > 127).sum()) >= _MIN_INK


def _glyphs(noto_path: Path, symbola_path: Path) -> tuple[dict[int, Image], dict[int, Image], tuple[int, ...]]:
    """({cp: noto RGBA}, {cp: symbola RGBA}, dropped code points) for every listed glyph both fonts draw.

    Not cached: it takes well under a second, and the ~500 glyph images need not outlive the demo's making."""
    from fontTools.ttLib import TTFont

    cmaps = [TTFont(str(p), lazy=True).getBestCmap() or {} for p in (noto_path, symbola_path)]
    noto, symbola, dropped = {}, {}, []
    for cp in sorted({cp for cps in CATEGORIES.values() for cp in cps}):
        pair = (_render(cp, noto_path, "noto"), _render(cp, symbola_path, "symbola")) \
            if all(cp in cmap for cmap in cmaps) else (None, None)
        if all(_drawn(g) for g in pair):
            noto[cp], symbola[cp] = pair
        else:
            dropped.append(cp)
    return noto, symbola, tuple(dropped)


def usable_glyphs() -> dict[str, list[int]]:
    """The listed glyphs per category that both installed fonts map and draw (DataError without the fonts)."""
    why_not = _emoji_available()
    if why_not:
        raise DataError(why_not)
    noto, _, _ = _glyphs(NOTO_FONT, SYMBOLA_FONT)
    return {cat: [cp for cp in cps if cp in noto] for cat, cps in CATEGORIES.items()}


def split_glyphs(glyphs: dict[str, list[int]], rng: np.random.Generator) -> dict[str, dict[str, list[int]]]:
    """Per category, a seeded split into ``train`` and held-out ``eval`` glyphs (at least two of each)."""
    out = {}
    for cat, cps in glyphs.items():
        if len(cps) < 4:
            raise DataError(f"category {cat!r} has only {len(cps)} glyphs that both fonts draw; the demo needs 4")
        order = [cps[i] for i in rng.permutation(len(cps))]
        n_eval = min(max(2, round(len(cps) * EVAL_GLYPH_SHARE)), len(cps) - 2)
        out[cat] = {"train": sorted(order[n_eval:]), "eval": sorted(order[:n_eval])}
    return out


# ---------------------------------------------------------------- augmentation

def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A light, nearly colourless background: a pastel tint, a light grey, grey noise or a soft gradient."""
    kind = rng.integers(4)
    if kind == 0:
        return np.broadcast_to(rng.uniform(215, 255, 3), (size, size, 3)).copy()
    if kind == 1:
        return np.full((size, size, 3), rng.uniform(200, 250))
    if kind == 2:
        return rng.uniform(215, 245) + rng.normal(0, rng.uniform(4, 12), (size, size, 1)).repeat(3, axis=2)
    a, b = rng.uniform(215, 255, 3), rng.uniform(215, 255, 3)
    ramp = np.linspace(0, 1, size)[:, None, None]
    ramp = ramp if rng.random() < 0.5 else ramp.transpose(1, 0, 2)
    return a + (b - a) * ramp


def _augment(glyph: Image, rng: np.random.Generator, size: int = IMAGE_SIZE) -> np.ndarray:
    """A label-safe random view of one glyph: scale, rotation, mirror, position and background; (size, size, 3)."""
    from PIL import Image, ImageOps

    if rng.random() < 0.5:
        glyph = ImageOps.mirror(glyph)  # a mirrored car, fish or shoe is still one
    glyph = glyph.rotate(float(rng.uniform(-_ROTATION, _ROTATION)), Image.BICUBIC, expand=True)
    glyph = glyph.crop(glyph.getchannel("A").getbbox() or (0, 0, *glyph.size))
    longest = rng.uniform(*_SCALE) * size
    scale = longest / max(glyph.size)
    glyph = glyph.resize((max(1, round(glyph.width * scale)), max(1, round(glyph.height * scale))), Image.LANCZOS)
    x = int(rng.integers(0, size - glyph.width + 1))
    y = int(rng.integers(0, size - glyph.height + 1))
    layer = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    layer.paste(glyph, (x, y))
    rgba = np.asarray(layer, dtype=np.float64)
    alpha = rgba[..., 3:] / 255.0
    image = _background(rng, size) * (1 - alpha) + rgba[..., :3] * alpha
    return np.clip(image, 0, 255).round().astype(np.uint8)


def _views(glyphs: dict[int, Image], cps: list[int], n: int, rng: np.random.Generator
           ) -> tuple[list[np.ndarray], list[int]]:
    """``n`` renderings that cycle through a shuffled ``cps``: each glyph is used equally often (±1)."""
    order = [cps[i] for i in rng.permutation(len(cps))]
    picked = [order[i % len(order)] for i in range(n)]
    return [_augment(glyphs[cp], rng) for cp in picked], picked


# ---------------------------------------------------------------- the demo

def _make_emoji(out: Path, seed: int, size: str) -> None:
    why_not = _emoji_available()
    if why_not:
        raise DataError(why_not)
    counts, rng = _EMOJI_SIZES[size], _rng(seed, "emoji")
    noto, symbola, dropped = _glyphs(NOTO_FONT, SYMBOLA_FONT)
    if not noto:
        raise DataError("no emoji could be drawn with both fonts: this Pillow's FreeType may lack colour-bitmap "
                        "(CBDT) support; run `pip install --upgrade pillow`")
    glyphs = {cat: [cp for cp in cps if cp in noto] for cat, cps in CATEGORIES.items()}
    split = split_glyphs(glyphs, rng)  # drawn first: the same glyph split for every size

    def labeled(font: dict[int, Image], part: str, n: int) -> tuple[list[np.ndarray], list[str], list[str]]:
        images, labels, tags = [], [], []
        for cat in CATEGORIES:
            views, cps = _views(font, split[cat][part], n, rng)
            images += views
            labels += [cat] * n
            tags += [code_name(cp) for cp in cps]
        return images, labels, tags

    for part, font, glyph_part, n in (("source", noto, "train", counts.source), ("target", symbola, "train", counts.target),
                                      ("eval", symbola, "eval", counts.eval)):
        images, labels, tags = labeled(font, glyph_part, n)
        _write_rgb_images(out / part, images, labels, tags, groups=tags)   # the group of a drawing: its glyph
    images, _, tags = labeled(symbola, "train", counts.unlabeled)
    shuffle = rng.permutation(len(images))
    _write_rgb_images(out / "unlabeled", [images[i] for i in shuffle], None)
    key = {"source_font": "Noto Color Emoji", "target_font": "Symbola", "image_size": IMAGE_SIZE,
           "categories": {cat: {part: [code_name(cp) for cp in cps] for part, cps in parts.items()}
                          for cat, parts in split.items()},
           "unlabeled": [tags[i] for i in shuffle],
           "dropped": [code_name(cp) for cp in dropped]}
    (out / "glyphs.json").write_text(json.dumps(key, indent=1) + "\n", encoding="utf-8")


def _emoji_available() -> Optional[str]:
    missing = [package for path, package in _fonts().values() if not path.is_file()]
    if missing:
        fonts = " and ".join(f"{path} ({package})" for path, package in _fonts().values() if not path.is_file())
        return (f"the emoji fonts are not installed: {fonts} not found; run `sudo apt-get install "
                f"{' '.join(missing)}` (Debian/Ubuntu) or scripts/system-deps.sh")
    return None


DEMOS.register("emoji", DemoSpec(
    "emoji", "image", "classify",
    "everyday things as colour emoji clip-art (source) -> black line-art sketches of unseen glyphs (target)",
    "drawn with Pillow from the Debian fonts Noto Color Emoji (Google, SIL Open Font License 1.1; "
    "fonts-noto-color-emoji) and Symbola (George Douros: \"free for any use; may be opened, edited, modified, "
    "regenerated, packaged and redistributed\"; fonts-symbola); augmentation by TransferLab",
    _make_emoji, _emoji_available))
