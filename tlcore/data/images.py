"""Decoding untrusted image files: a pixel cap against decompression bombs, and every mode Pillow can open
(CMYK, 16-bit, palette with transparency, animated) turned into plain 8-bit RGB.

Limits (chosen, documented in README/docs): ``MAX_IMAGE_PIXELS`` = 40 million pixels (e.g. 8000 x 5000; about
120 MB decoded as RGB), overridable with ``TRANSFERLAB_MAX_IMAGE_PIXELS``. Pillow's own guard is set to the same
value and its ``DecompressionBombWarning`` is treated as an error, so a bomb is refused from its header,
before any pixel is decoded. Animated images (GIF/WebP/APNG) use their first frame.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import Any, Optional

import numpy as np
from PIL import Image, ImageFile

from tlcore.errors import DataError

DEFAULT_MAX_IMAGE_PIXELS = 40_000_000
ImageFile.LOAD_TRUNCATED_IMAGES = False   # a truncated file is an error, never a half-grey picture
Image.MAX_IMAGE_PIXELS = DEFAULT_MAX_IMAGE_PIXELS   # Pillow's own guard, for code that opens images directly
warnings.filterwarnings("error", category=Image.DecompressionBombWarning)   # past the cap is an error, not a warning


def max_image_pixels() -> int:
    """The pixel cap (``TRANSFERLAB_MAX_IMAGE_PIXELS``, default 40,000,000)."""
    try:
        return int(os.environ.get("TRANSFERLAB_MAX_IMAGE_PIXELS", DEFAULT_MAX_IMAGE_PIXELS))
    except ValueError:
        return DEFAULT_MAX_IMAGE_PIXELS


def _name(item: Any) -> str:
    return Path(item).name if isinstance(item, (str, Path)) else getattr(item, "name", None) or "uploaded image"


def _open(item: Any) -> Image.Image:
    """Image.open with the pixel cap applied from the header (nothing decoded yet)."""
    limit = max_image_pixels()
    Image.MAX_IMAGE_PIXELS = limit
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            im = Image.open(item)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise DataError(f"{_name(item)}: image has more than {limit:,} pixels (a decompression bomb?); resize it "
                            "or raise TRANSFERLAB_MAX_IMAGE_PIXELS") from None
    if im.width * im.height > limit:
        im.close()
        raise DataError(f"{_name(item)}: image is {im.width}x{im.height} = {im.width * im.height:,} pixels, over the "
                        f"limit of {limit:,}; resize it or raise TRANSFERLAB_MAX_IMAGE_PIXELS")
    return im


def image_problem(file: Path) -> Optional[str]:
    """Why ``file`` cannot be used as an image, or None. Decodes it (JPEG at 1/8 scale, cheap) so truncated files
    are caught here rather than in the middle of a run."""
    try:
        with _open(file) as im:
            im.draft("RGB", (max(1, im.width // 8), max(1, im.height // 8)))
            im.load()
    except DataError as exc:
        return str(exc).split(": ", 1)[1]
    except Exception as exc:  # noqa: BLE001 - Pillow raises many types for bad files; the message names it
        return _unreadable(exc)
    return None


def _unreadable(exc: Exception) -> str:
    detail = str(exc).splitlines()[0] if str(exc) else "no detail"
    detail = re.sub(r"'[^']*[/\\][^']*'", "", detail).replace("  ", " ").strip()[:120]   # no server paths
    return f"unreadable or corrupt image ({type(exc).__name__}: {detail}); re-save it as PNG or JPEG"


def to_rgb(im: Image.Image) -> Image.Image:
    """8-bit RGB of any Pillow image: 16-bit and float greys scaled (not clipped), palette+alpha without warnings,
    CMYK / LAB / YCbCr converted; alpha is dropped (as ``convert("RGB")`` does)."""
    if im.mode == "RGB":
        return im.copy()
    if im.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        arr = np.asarray(im, dtype=np.float64)
        top = 65535.0 if im.mode != "F" and arr.max(initial=0) > 255 else max(float(arr.max(initial=0)), 255.0)
        arr = np.clip(arr / top * 255.0, 0, 255).astype(np.uint8)
        return Image.fromarray(arr, "L").convert("RGB")
    if im.mode == "P" and "transparency" in im.info:
        return im.convert("RGBA").convert("RGB")
    return im.convert("RGB")


def load_rgb(item: Any) -> Image.Image:
    """An image path, file object or PIL image as 8-bit RGB (first frame of an animation).
    Raises DataError naming the file when it is unreadable, truncated or over the pixel cap."""
    if isinstance(item, Image.Image):
        return to_rgb(item)
    try:
        with _open(item) as im:
            im.seek(0)
            return to_rgb(im)
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001 - see image_problem
        raise DataError(f"{_name(item)}: {_unreadable(exc)}") from None
