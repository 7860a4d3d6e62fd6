"""Partial fine-tuning (top-k blocks + head) and full fine-tuning (everything)."""

from __future__ import annotations

from torch import nn

from tlcore.strategies.base import STRATEGIES, Strategy, freeze, unfreeze


def _after_blocks(backbone) -> list[nn.Module]:
    """Modules that sit above the last block (final norm / head conv): trained with the top blocks."""
    net = backbone.net
    out = []
    for name in ("_conv_head", "_bn1", "layer_norm", "final_layer_norm", "pooler", "layernorm"):
        mod = getattr(net, name, None)
        if isinstance(mod, nn.Module):
            out.append(mod)
    return out


def prepare_partial(model, *, partial_blocks: int = 2, **_) -> list[nn.Module]:
    freeze(model.backbone)
    blocks = model.backbone.blocks()
    top = blocks[-min(partial_blocks, len(blocks)):] + _after_blocks(model.backbone)
    for module in top:
        unfreeze(module)
    unfreeze(model.head)
    return top + [model.head]


def prepare_full(model, **_) -> list[nn.Module]:
    unfreeze(model)
    return [model]


STRATEGIES.register("partial", Strategy(
    "partial", "Partial fine-tuning: the top k backbone blocks and the head train, the rest stays frozen.",
    prepare=prepare_partial, default_lr=2e-4))
STRATEGIES.register("full", Strategy(
    "full", "Full fine-tuning: every backbone weight and the head train.", prepare=prepare_full, default_lr=5e-5))
