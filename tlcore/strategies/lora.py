"""LoRA (Hu et al. 2021) through peft: low-rank updates ``W + (alpha/r) B A`` on the backbone's attention
(or pointwise-conv) layers; the head trains fully. The update is merged into the weights when training ends,
so the saved model is a plain backbone + head."""

from __future__ import annotations

from typing import Optional

from torch import nn

from tlcore.strategies.base import STRATEGIES, Strategy, freeze, unfreeze


def prepare_lora(model, *, lora_r: int = 8, seed: int = 0, **_) -> list[nn.Module]:
    import torch
    from peft import LoraConfig, get_peft_model

    freeze(model.backbone)
    torch.manual_seed(seed)
    config = LoraConfig(r=lora_r, lora_alpha=2 * lora_r, lora_dropout=0.0,
                        target_modules=list(model.backbone.lora_target_modules))
    model.backbone.net = get_peft_model(model.backbone.net, config)
    unfreeze(model.head)
    return [model.head]


def lora_problem(backbone) -> Optional[str]:
    """Why LoRA cannot run on ``backbone``: it has no layer to put the adapters on."""
    if backbone.lora_target_modules:
        return None
    return "LoRA puts low-rank adapters on the backbone's linear or convolution layers, and it has none: use partial or full"


def finalize_lora(model) -> None:
    net = model.backbone.net
    if hasattr(net, "merge_and_unload"):
        model.backbone.net = net.merge_and_unload()


# Default learning rates: derived on development data (tlcore/strategies/defaults.py); ``default_lr`` is the fallback.

STRATEGIES.register("lora", Strategy(
    "lora", "LoRA: low-rank adapters on the backbone's attention layers + the head; merged when done.",
    prepare=prepare_lora, finalize=finalize_lora, default_lr=1e-3, backbone_problem=lora_problem))
