"""Partial fine-tuning (top-k blocks + head) and full fine-tuning (everything), both with discriminative
(layer-wise) learning rates: lower blocks, which hold the general features, move less than the top ones.
"""

from __future__ import annotations

from typing import Optional

from torch import nn

from tlcore.strategies.base import STRATEGIES, Strategy, freeze, unfreeze

# Default learning rates (of the top block, with the recipe's layer decay below it, tlcore/recipe.py; AdamW, LP-FT): derived
# on development data, see tlcore/strategies/defaults.py; ``default_lr`` is the fallback for a modality none was derived for.


def _after_blocks(backbone) -> list[nn.Module]:
    """Modules that sit above the last block (final norm / head conv): trained with the top blocks."""
    net = backbone.net
    out = []
    for name in ("_conv_head", "_bn1", "layer_norm", "final_layer_norm", "pooler", "layernorm"):
        mod = getattr(net, name, None)
        if isinstance(mod, nn.Module):
            out.append(mod)
    return out


def layerwise_param_groups(model, *, lr: float, head_lr: float, layer_decay: float = 1.0) -> list[dict]:
    """Discriminative fine-tuning (Howard & Ruder, "Universal Language Model Fine-tuning", ACL 2018) in the form
    of layer-wise lr decay (Clark et al., ELECTRA, 2020; Bao et al., BEiT, ICLR 2022): with blocks ``0..n-1``
    (bottom → top) of ``model.backbone.blocks()``,

        lr(block i) = lr · layer_decay^(n-1-i),   lr(below block 0: stem, embeddings) = lr · layer_decay^n,

    the modules above the last block (final norm, head conv; see ``_after_blocks``) train at ``lr`` and
    ``model.head`` at ``head_lr``. Only parameters with ``requires_grad`` are included (partial: the frozen
    lower blocks have none), one group per depth, top first. ``layer_decay=1`` is one lr for the whole backbone.
    """
    head_ids = {id(p) for p in model.head.parameters()}
    blocks = model.backbone.blocks()
    n = len(blocks)
    depth: dict[int, int] = {}                       # parameter id -> blocks below the top (0 = top / above)
    for i, block in enumerate(blocks):
        for p in block.parameters():
            depth[id(p)] = n - 1 - i
    for module in _after_blocks(model.backbone):
        for p in module.parameters():
            depth.setdefault(id(p), 0)
    groups: dict[int, list] = {}
    head = [p for p in model.head.parameters() if p.requires_grad]
    for p in model.backbone.parameters():
        if p.requires_grad and id(p) not in head_ids:
            groups.setdefault(depth.get(id(p), n), []).append(p)
    out = [{"params": head, "lr": head_lr}] if head else []
    return out + [{"params": groups[d], "lr": lr * layer_decay ** d} for d in sorted(groups)]


def prepare_partial(model, *, partial_blocks: int = 2, **_) -> list[nn.Module]:
    freeze(model.backbone)
    blocks = model.backbone.blocks()
    top = blocks[-min(partial_blocks, len(blocks)):] + _after_blocks(model.backbone)
    for module in top:
        unfreeze(module)
    unfreeze(model.head)
    return top + [model.head]


def partial_problem(backbone) -> Optional[str]:
    """Why ``partial`` cannot run on ``backbone``: it needs two blocks or more (the top ones train, the lower stay)."""
    n = len(backbone.blocks())
    if n >= 2:
        return None
    has = ("no list of blocks" if n == 0 else
           "a single block (one layer, or layers that share one set of weights, as in ALBERT)")
    return f"partial trains the top blocks and keeps the blocks below them frozen; this backbone has {has}, so " \
           "nothing would stay frozen: use full or lora"


def prepare_full(model, **_) -> list[nn.Module]:
    unfreeze(model)
    return [model]


STRATEGIES.register("partial", Strategy(
    "partial", "Partial fine-tuning: the top k backbone blocks and the head train, the rest stays frozen.",
    prepare=prepare_partial, param_groups=layerwise_param_groups, default_lr=2e-4, backbone_problem=partial_problem))
STRATEGIES.register("full", Strategy(
    "full", "Full fine-tuning: every backbone weight and the head train.", prepare=prepare_full,
    param_groups=layerwise_param_groups, default_lr=5e-5))
