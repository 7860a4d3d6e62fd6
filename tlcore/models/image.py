"""Image backbones: the bundled EfficientNet-Lite0 (ImageNet) and any Hugging Face vision encoder, and the
training-time augmentation of their inputs.

Both backbones split ``preprocess`` into ``pixels(items)`` (RGB in [0, 1] at the model's input size) and
``normalize(pixels)``, so fine-tuning can augment the pixels of a training batch in between
(:func:`image_augmentation`) while evaluation, validation and feature extraction keep calling ``preprocess``.

``transformers`` and ``torchvision`` are imported where they are used: they take seconds to import, and importing
the engine stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch
from PIL import Image
from torch import nn

from tlcore.config import AUGMENT_LEVELS
from tlcore.data.images import load_rgb
from tlcore.models.base import Backbone
from tlcore.models.efficientnet_lite import efficientnet_lite0, efficientnet_lite_tiny, normalize_lite
from tlcore.models.text import find_layers

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


def lite_pixels(items: Sequence[Any], image_size: int) -> torch.Tensor:
    """``(B, 3, image_size, image_size)`` RGB in [0, 1]: each image squashed to a square (bilinear, no crop)."""
    arrays = [np.asarray(load_rgb(i).resize((image_size, image_size), Image.BILINEAR), dtype=np.float32) for i in items]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2) / 255.0


def lite_preprocess(items: Sequence[Any], image_size: int) -> dict[str, torch.Tensor]:
    """EfficientNet-Lite's preprocessing (an ONNX export runs the same function with the input size it saved)."""
    return {"pixel_values": normalize_lite(lite_pixels(items, image_size))}


def processor_preprocess(processor, items: Sequence[Any]) -> dict[str, torch.Tensor]:
    """A Hugging Face vision encoder's preprocessing: its image processor on RGB images (an ONNX export runs the same
    function with the processor it saved)."""
    return {"pixel_values": processor(images=[load_rgb(i) for i in items], return_tensors="pt")["pixel_values"]}


class EfficientNetLiteBackbone(Backbone):
    """EfficientNet-Lite: ``(x*255-127)/128`` normalization on RGB in [0, 1], square resize to ``image_size``."""

    modality = "image"
    lora_target_modules = ["_project_conv", "_expand_conv"]

    def __init__(self, net: nn.Module, image_size: int = 224, variant: str = "lite0"):
        super().__init__()
        self.net = net
        self.image_size = image_size
        self.variant = variant
        self.feature_dim = int(net.feature_dim)

    def preprocess(self, items: Sequence[Any]) -> dict[str, torch.Tensor]:
        return lite_preprocess(items, self.image_size)

    def pixels(self, items: Sequence[Any]) -> torch.Tensor:
        """``(B, 3, image_size, image_size)`` RGB in [0, 1], before normalization."""
        return lite_pixels(items, self.image_size)

    def normalize(self, pixels: torch.Tensor) -> torch.Tensor:
        return normalize_lite(pixels)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return self.net.forward_features(pixel_values)

    def blocks(self) -> list[nn.Module]:
        return list(self.net.blocks)

    def save_backbone(self, folder: Path) -> dict:
        return {"kind": "efficientnet_lite", "variant": self.variant, "image_size": self.image_size}

    @classmethod
    def from_folder(cls, folder: Path, spec: dict) -> "EfficientNetLiteBackbone":
        net = efficientnet_lite_tiny() if spec["variant"] == "tiny" else efficientnet_lite0(pretrained=False)
        return cls(net, spec["image_size"], spec["variant"])


class HFImageBackbone(Backbone):
    """Any ``AutoModel`` vision encoder with its ``AutoImageProcessor``; pooled output or mean of the last hidden state."""

    modality = "image"

    def __init__(self, model: nn.Module, processor):
        super().__init__()
        self.net = model
        self.processor = processor
        cfg = model.config
        self.feature_dim = int(getattr(cfg, "hidden_size", None) or cfg.hidden_sizes[-1])
        names = {n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, nn.Linear)}
        self.lora_target_modules = [n for n in ("query", "value", "q_proj", "v_proj") if n in names] or sorted(names)

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

    def blocks(self) -> list[nn.Module]:
        return list(find_layers(self.net))

    def save_backbone(self, folder: Path) -> dict:
        self.net.config.save_pretrained(folder)
        self.processor.save_pretrained(folder)
        return {"kind": "hf_image"}

    @classmethod
    def from_folder(cls, folder: Path, spec: dict) -> "HFImageBackbone":
        from transformers import AutoConfig, AutoImageProcessor, AutoModel

        return cls(AutoModel.from_config(AutoConfig.from_pretrained(folder)), AutoImageProcessor.from_pretrained(folder))


def hf_image_backbone(source: str, *, pretrained: bool = True) -> HFImageBackbone:
    from transformers import AutoConfig, AutoImageProcessor, AutoModel

    processor = AutoImageProcessor.from_pretrained(source)
    model = AutoModel.from_pretrained(source) if pretrained else AutoModel.from_config(AutoConfig.from_pretrained(source))
    return HFImageBackbone(model, processor)
