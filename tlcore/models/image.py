"""Image backbones: the bundled EfficientNet-Lite0 (ImageNet) and any Hugging Face vision encoder, and the
training-time augmentation of their inputs.

Both backbones split ``preprocess`` into ``pixels(items)`` (RGB in [0, 1] at the model's input size) and
``normalize(pixels)``, so fine-tuning can augment the pixels of a training batch in between
(:func:`image_augmentation`) while evaluation, validation and feature extraction keep calling ``preprocess``.

Preprocessing configs (``preprocessing()``, saved as ``preprocessing.json``; every key but ``kind`` is read back)::

    {"kind": "efficientnet_lite", "modality": "image", "image_size": 224, "color": "RGB", "keep_aspect_ratio": false,
     "crop": null, "interpolation": "bilinear", "mean": [0.498039, ...], "std": [0.501961, ...]}
    {"kind": "hf_image", "modality": "image", "processor": "ViTImageProcessor", "color": "RGB",
     "do_resize": true, "size": {"height": 224, "width": 224}, "resample": 2, "do_rescale": true,
     "rescale_factor": 0.00392, "do_normalize": true, "image_mean": [0.5, ...], "image_std": [0.5, ...], ...}

``mean`` / ``std`` are of RGB in [0, 1] (timm's convention): ``(x - mean) / std``. A Hugging Face encoder's keys are
its image processor's own, applied to the processor saved next to the config.

``transformers`` and ``torchvision`` are imported where they are used: they take seconds to import, and importing
the engine stays fast.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch
from PIL import Image
from torch import nn

from tlcore.config import AUGMENT_LEVELS
from tlcore.data.images import load_rgb
from tlcore.errors import ConfigError
from tlcore.models.base import PREPROCESSING_FILE, Backbone, Preprocess, check_preprocessing
from tlcore.models.efficientnet_lite import IMAGENET_LITE_NORMALIZE, efficientnet_lite0, efficientnet_lite_tiny
from tlcore.models.hf import HFBackbone, json_ready

# Label-safe for digits, glyphs and objects alike: small rotations and shifts, a mild zoom-in, brightness /
# contrast / saturation jitter. No flip here: a mirrored '2', 'b' or arrow is another class (opt in separately).
_AUGMENT = {
    "light": {"degrees": 5.0, "translate": 0.04, "scale": (0.9, 1.0), "jitter": 0.1},
    "standard": {"degrees": 10.0, "translate": 0.08, "scale": (0.8, 1.0), "jitter": 0.25},
}


def image_augmentation(level: str, size: tuple[int, int], *, flip: bool = False) -> Optional[Callable]:
    """The training-time augmentation ``level`` (``AUGMENT_LEVELS``) for one ``(3, H, W)`` image in [0, 1] of
    ``size`` (H, W); ``None`` for "none" (and no flip).

    Pipeline (torchvision.transforms.v2): pad by a quarter of the size replicating the border, random rotation
    + translation, crop the centre back to ``size`` (so what moves in is the image's own background, never
    black corners), random resized crop (zoom in by up to ``1/sqrt(scale)``, aspect 0.9-1.1), colour jitter,
    and a horizontal flip only with ``flip``. Randomness comes from torch's global CPU generator: the caller
    seeds it (see ``BatchSource.get``), which makes a batch's augmentation a function of the seed and step.
    """
    from torchvision.transforms import v2

    if level not in AUGMENT_LEVELS:
        raise ValueError(f"unknown augmentation {level!r}; choose from {', '.join(AUGMENT_LEVELS)}")
    steps: list = []
    if level != "none":
        p, (h, w) = _AUGMENT[level], size
        pad_h, pad_w = max(1, round(h / 4)), max(1, round(w / 4))
        # RandomAffine translates by a fraction of the padded image; scale it to a fraction of the original.
        shift = (p["translate"] * w / (w + 2 * pad_w), p["translate"] * h / (h + 2 * pad_h))
        jitter = p["jitter"]
        steps += [v2.Pad([pad_w, pad_h], padding_mode="edge"),
                  v2.RandomAffine(degrees=p["degrees"], translate=shift, interpolation=v2.InterpolationMode.BILINEAR),
                  v2.CenterCrop([h, w]),
                  v2.RandomResizedCrop([h, w], scale=p["scale"], ratio=(0.9, 1 / 0.9), antialias=True),
                  v2.ColorJitter(brightness=jitter, contrast=jitter, saturation=jitter)]
    if flip:
        steps.append(v2.RandomHorizontalFlip())
    return v2.Compose(steps) if steps else None


_INTERPOLATION = {"nearest": Image.NEAREST, "bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC,
                  "lanczos": Image.LANCZOS}
_LITE = IMAGENET_LITE_NORMALIZE
#: EfficientNet-Lite's ``(x * 255 - 127) / 128`` as timm writes normalisation: mean / std of RGB in [0, 1].
LITE_MEAN = (_LITE["mean"] / _LITE["scale"],) * 3
LITE_STD = (_LITE["std"] / _LITE["scale"],) * 3


def lite_pixels(items: Sequence[Any], image_size: int, interpolation: str = "bilinear") -> torch.Tensor:
    """``(B, 3, image_size, image_size)`` RGB in [0, 1]: each image squashed to a square (no crop)."""
    size, resample = (image_size, image_size), _INTERPOLATION[interpolation]
    arrays = [np.asarray(load_rgb(i).resize(size, resample), dtype=np.float32) for i in items]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2) / 255.0


def normalize_pixels(pixels: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """``(x - mean) / std`` per channel of RGB in [0, 1], computed on the 0-255 scale as ``(x * 255 - 255 mean) /
    (255 std)``: EfficientNet-Lite's mean 127/255 and std 128/255 then give exactly its ``(x * 255 - 127) / 128``."""
    m = torch.tensor([255 * v for v in mean], dtype=pixels.dtype).view(1, -1, 1, 1)
    s = torch.tensor([255 * v for v in std], dtype=pixels.dtype).view(1, -1, 1, 1)
    return (pixels * 255 - m) / s


def _three(value: Any, name: str) -> tuple[float, ...]:
    """A per-channel (R, G, B) value of a config as 3 floats; ConfigError otherwise."""
    ok = isinstance(value, (list, tuple)) and len(value) == 3 and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    if not ok:
        raise ConfigError(f"{PREPROCESSING_FILE}: {name} must be 3 numbers (R, G, B), not {value!r}")
    return tuple(float(v) for v in value)


@dataclass(frozen=True)
class LiteInput:
    """EfficientNet-Lite's preprocessing as data: square resize to ``image_size`` (no crop), then ``(x - mean) /
    std`` of RGB in [0, 1]. Calling it preprocesses a batch (an ONNX export runs the same object, read from its
    config)."""

    image_size: int = 224
    interpolation: str = "bilinear"
    mean: tuple[float, ...] = LITE_MEAN
    std: tuple[float, ...] = LITE_STD

    def pixels(self, items: Sequence[Any]) -> torch.Tensor:
        return lite_pixels(items, self.image_size, self.interpolation)

    def normalize(self, pixels: torch.Tensor) -> torch.Tensor:
        return normalize_pixels(pixels, self.mean, self.std)

    def __call__(self, items: Sequence[Any]) -> dict[str, torch.Tensor]:
        return {"pixel_values": self.normalize(self.pixels(items))}

    def config(self) -> dict:
        return {"kind": EfficientNetLiteBackbone.kind, "modality": "image", "image_size": self.image_size, "color": "RGB",
                "keep_aspect_ratio": False, "crop": None, "interpolation": self.interpolation,
                "mean": list(self.mean), "std": list(self.std)}

    def read(self, config: dict) -> "LiteInput":
        """This input with the values ``config`` sets (keys it lacks keep theirs); ConfigError for one it cannot use."""
        check_preprocessing(config, EfficientNetLiteBackbone.kind,
                            {"modality": "image", "color": "RGB", "keep_aspect_ratio": False, "crop": None})
        new = replace(self, image_size=config.get("image_size", self.image_size),
                      interpolation=config.get("interpolation", self.interpolation),
                      mean=_three(config.get("mean", self.mean), "mean"), std=_three(config.get("std", self.std), "std"))
        if not isinstance(new.image_size, int) or isinstance(new.image_size, bool) or new.image_size < 8:
            raise ConfigError(f"{PREPROCESSING_FILE}: image_size must be a whole number of pixels >= 8, not "
                              f"{new.image_size!r}")
        if new.interpolation not in _INTERPOLATION:
            raise ConfigError(f"{PREPROCESSING_FILE}: interpolation must be one of {', '.join(_INTERPOLATION)}, not "
                              f"{new.interpolation!r}")
        if min(new.std) <= 0:
            raise ConfigError(f"{PREPROCESSING_FILE}: std must be positive, not {list(new.std)}")
        return new


def processor_preprocess(processor, items: Sequence[Any]) -> dict[str, torch.Tensor]:
    """A Hugging Face vision encoder's preprocessing: its image processor on RGB images (an ONNX export runs the same
    function with the processor it saved)."""
    return {"pixel_values": processor(images=[load_rgb(i) for i in items], return_tensors="pt")["pixel_values"]}


class EfficientNetLiteBackbone(Backbone):
    """EfficientNet-Lite: ``(x*255-127)/128`` normalization on RGB in [0, 1], square resize to ``image_size``."""

    kind = "efficientnet_lite"
    modality = "image"
    lora_target_modules = ["_project_conv", "_expand_conv"]

    def __init__(self, net: nn.Module, image_size: int = 224, variant: str = "lite0"):
        super().__init__()
        self.net = net
        self.input = LiteInput(image_size)
        self.variant = variant
        self.feature_dim = int(net.feature_dim)

    @property
    def image_size(self) -> int:
        return self.input.image_size

    def preprocess(self, items: Sequence[Any]) -> dict[str, torch.Tensor]:
        return self.input(items)

    def pixels(self, items: Sequence[Any]) -> torch.Tensor:
        """``(B, 3, image_size, image_size)`` RGB in [0, 1], before normalization."""
        return self.input.pixels(items)

    def normalize(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.input.normalize(pixels)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return self.net.forward_features(pixel_values)

    def blocks(self) -> list[nn.Module]:
        return list(self.net.blocks)

    def preprocessing(self) -> dict:
        return self.input.config()

    def use_preprocessing(self, config: dict) -> None:
        self.input = self.input.read(config)

    @classmethod
    def preprocessor(cls, folder: Path, config: dict) -> Preprocess:
        return LiteInput().read(config)

    def save_backbone(self, folder: Path) -> dict:
        return {"kind": self.kind, "variant": self.variant, "image_size": self.image_size}

    @classmethod
    def from_folder(cls, folder: Path, spec: dict) -> "EfficientNetLiteBackbone":
        net = efficientnet_lite_tiny() if spec["variant"] == "tiny" else efficientnet_lite0(pretrained=False)
        return cls(net, spec["image_size"], spec["variant"])


#: The image processor settings a Hugging Face encoder's preprocessing config carries (and sets back).
_PROCESSOR_KEYS = ("do_resize", "size", "resample", "do_center_crop", "crop_size", "do_rescale", "rescale_factor",
                   "do_normalize", "image_mean", "image_std", "do_convert_rgb")


def _processor_settings(processor) -> dict:
    config = processor.to_dict()
    return {k: json_ready(config[k]) for k in _PROCESSOR_KEYS if k in config}


def _read_processor(processor, config: dict):
    """``processor`` with the settings ``config`` changes (a new one: fast processors keep sizes in their own type)."""
    check_preprocessing(config, HFImageBackbone.kind, {"modality": "image", "color": "RGB"})
    current = _processor_settings(processor)
    changes = {k: config[k] for k in _PROCESSOR_KEYS if k in config and config[k] != current.get(k)}
    return type(processor).from_dict({**processor.to_dict(), **changes}) if changes else processor


class HFImageBackbone(HFBackbone):
    """Any ``AutoModel`` vision encoder with its ``AutoImageProcessor``; pooled output or mean of the last hidden state."""

    kind = "hf_image"
    modality = "image"

    def preprocess(self, items: Sequence[Any]) -> dict[str, torch.Tensor]:
        return processor_preprocess(self.processor, items)

    def pixels(self, items: Sequence[Any]) -> torch.Tensor:
        """The processor's resized / cropped / rescaled images without its normalization (RGB in [0, 1])."""
        return self.processor(images=[load_rgb(i) for i in items], do_normalize=False, return_tensors="pt")["pixel_values"]

    def normalize(self, pixels: torch.Tensor) -> torch.Tensor:
        if not getattr(self.processor, "do_normalize", False):
            return pixels
        mean = torch.as_tensor(self.processor.image_mean, dtype=pixels.dtype).view(1, -1, 1, 1)
        std = torch.as_tensor(self.processor.image_std, dtype=pixels.dtype).view(1, -1, 1, 1)
        return (pixels - mean) / std

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        out = self.net(pixel_values=pixel_values)
        pooled = getattr(out, "pooler_output", None)
        if pooled is not None:
            return pooled.flatten(1)
        hidden = out.last_hidden_state
        return hidden.mean(1) if hidden.dim() == 3 else hidden.mean((2, 3))

    def preprocessing(self) -> dict:
        return {"kind": self.kind, "modality": "image", "processor": type(self.processor).__name__, "color": "RGB",
                **_processor_settings(self.processor)}

    def use_preprocessing(self, config: dict) -> None:
        self.processor = _read_processor(self.processor, config)

    @classmethod
    def preprocessor(cls, folder: Path, config: dict) -> Preprocess:
        processor = _read_processor(cls.load_processor(folder), config)
        return lambda items: processor_preprocess(processor, list(items))

    @classmethod
    def load_processor(cls, source: str | Path) -> Any:
        from transformers import AutoImageProcessor

        return AutoImageProcessor.from_pretrained(source)


def hf_image_backbone(source: str, *, pretrained: bool = True) -> HFImageBackbone:
    return HFImageBackbone.from_source(source, pretrained=pretrained)  # type: ignore[return-value]
