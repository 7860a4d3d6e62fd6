"""Per-image properties (size, colour, brightness, contrast, sharpness) for property-drift checks."""

from __future__ import annotations

from collections.abc import Iterable
from os import PathLike
from typing import Union

import numpy as np
from PIL import Image

ImageLike = Union[str, "PathLike[str]", Image.Image]

#: Mean |R−G| and |G−B| (on 0–255) below which an RGB image counts as grayscale-looking.
GRAY_TOLERANCE = 2.0
#: ITU-R BT.601 luma weights (the same as Pillow's "L" conversion).
LUMA = np.array([0.299, 0.587, 0.114])

IMAGE_PROPERTIES = (
    "width", "height", "aspect_ratio", "channels", "brightness", "contrast", "sharpness",
    "mean_r", "mean_g", "mean_b", "saturation",
)


def _load(item: ImageLike) -> Image.Image:
    if isinstance(item, Image.Image):
        return item
    with Image.open(item) as img:
        img.load()
        return img.copy()


def _pixel_stats(img: Image.Image, max_side: int | None) -> dict[str, float]:
    """Colour and texture statistics of one image (pixel values on 0–255)."""
    if max_side is not None and max(img.size) > max_side:
        scale = max_side / max(img.size)
        img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))), Image.BILINEAR)
    if img.mode.startswith("I") or img.mode == "F":
        # 16/32-bit grayscale: Pillow's convert("RGB") would clip at 255, so rescale to 0–255 ourselves.
        px = np.asarray(img, dtype=np.float64)
        top = 1.0 if img.mode == "F" and px.max(initial=0.0) <= 1.0 else 255.0 if px.max(initial=0.0) <= 255 else 65535.0
        px = np.clip(px * (255.0 / top), 0.0, 255.0)
    else:
        if img.mode not in ("RGB", "L"):
            # Palette and alpha images go through RGBA so transparency is resolved before dropping alpha.
            img = img.convert("RGBA" if ("A" in img.getbands() or img.mode == "P") else "RGB").convert("RGB")
        px = np.asarray(img, dtype=np.float64)
    if px.ndim == 2:
        px = np.repeat(px[:, :, None], 3, axis=2)
    rgb = px[:, :, :3]
    luma = rgb @ LUMA
    gray = float(np.mean(np.abs(rgb[:, :, 0] - rgb[:, :, 1]))) <= GRAY_TOLERANCE and float(
        np.mean(np.abs(rgb[:, :, 1] - rgb[:, :, 2]))
    ) <= GRAY_TOLERANCE
    if luma.shape[0] >= 3 and luma.shape[1] >= 3:
        lap = (
            luma[:-2, 1:-1] + luma[2:, 1:-1] + luma[1:-1, :-2] + luma[1:-1, 2:] - 4.0 * luma[1:-1, 1:-1]
        )
        sharpness = float(lap.var())
    else:
        sharpness = 0.0
    cmax, cmin = rgb.max(axis=2), rgb.min(axis=2)
    saturation = np.where(cmax > 0, (cmax - cmin) / np.where(cmax > 0, cmax, 1.0), 0.0)
    return {
        "channels": 1.0 if gray else 3.0,
        "brightness": float(luma.mean() / 255.0),
        "contrast": float(luma.std() / 255.0),
        "sharpness": sharpness,
        "mean_r": float(rgb[:, :, 0].mean() / 255.0),
        "mean_g": float(rgb[:, :, 1].mean() / 255.0),
        "mean_b": float(rgb[:, :, 2].mean() / 255.0),
        "saturation": float(saturation.mean()),
    }


def image_properties(images: Iterable[ImageLike], *, max_side: int | None = 512) -> dict[str, np.ndarray]:
    """Measure simple properties of each image; one float array of length n per property.

    Input: n image paths or PIL images (any mode; alpha is dropped, palette images are converted).
    Properties (colour values scaled to [0, 1]):
      * ``width``, ``height`` (pixels, of the original), ``aspect_ratio`` = width / height;
      * ``channels``: 1 if the image looks grayscale (mean |R−G| and |G−B| ≤ 2 on 0–255), else 3;
      * ``brightness`` = mean luma Y = 0.299R + 0.587G + 0.114B (ITU-R BT.601); ``contrast`` = std of Y;
      * ``sharpness`` = variance of the 4-neighbour Laplacian of Y on the 0–255 scale (Pech-Pacheco et al.
        2000, "Diatom autofocusing in brightfield microscopy"); low values mean blur;
      * ``mean_r``, ``mean_g``, ``mean_b``; ``saturation`` = mean HSV saturation (max−min)/max.
    Pixel statistics are computed after downscaling so that the longest side is ≤ ``max_side``
    (bilinear; None keeps full size): fast, and sharpness becomes comparable across resolutions.
    Unreadable files raise the Pillow error; filter them upstream.
    """
    out: dict[str, list[float]] = {k: [] for k in IMAGE_PROPERTIES}
    for item in images:
        img = _load(item)
        width, height = img.size
        out["width"].append(float(width))
        out["height"].append(float(height))
        out["aspect_ratio"].append(float(width) / float(height) if height else float("nan"))
        for key, value in _pixel_stats(img, max_side).items():
            out[key].append(value)
    return {k: np.asarray(v, dtype=np.float64) for k, v in out.items()}
