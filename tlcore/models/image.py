"""Image backbones: the bundled EfficientNet-Lite0 (ImageNet) and any Hugging Face vision encoder."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from PIL import Image
from torch import nn

from tlcore.models.base import Backbone


def load_rgb(item: Any) -> Image.Image:
    """An image path, bytes-like file object or PIL image as an RGB PIL image (grayscale is replicated)."""
    if isinstance(item, Image.Image):
        return item.convert("RGB")
    with Image.open(item) as im:
        return im.convert("RGB")


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
        from tlcore.models.efficientnet_lite import normalize_lite

        arrays = [np.asarray(load_rgb(i).resize((self.image_size, self.image_size), Image.BILINEAR), dtype=np.float32) for i in items]
        x = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2) / 255.0
        return {"pixel_values": normalize_lite(x)}

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return self.net.forward_features(pixel_values)

    def blocks(self) -> list[nn.Module]:
        return list(self.net.blocks)

    def save_backbone(self, folder: Path) -> dict:
        return {"kind": "efficientnet_lite", "variant": self.variant, "image_size": self.image_size}

    @classmethod
    def from_folder(cls, folder: Path, spec: dict) -> "EfficientNetLiteBackbone":
        from tlcore.models.efficientnet_lite import efficientnet_lite0, efficientnet_lite_tiny

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
        return {"pixel_values": self.processor(images=[load_rgb(i) for i in items], return_tensors="pt")["pixel_values"]}

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        out = self.net(pixel_values=pixel_values)
        pooled = getattr(out, "pooler_output", None)
        if pooled is not None:
            return pooled.flatten(1)
        hidden = out.last_hidden_state
        return hidden.mean(1) if hidden.dim() == 3 else hidden.mean((2, 3))

    def blocks(self) -> list[nn.Module]:
        from tlcore.models.text import _find_layers

        return list(_find_layers(self.net))

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
