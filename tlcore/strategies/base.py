"""The strategy contract. A strategy decides which parameters train (``prepare``) and how the result is
finalized (``finalize``, e.g. merging LoRA weights); all of them produce a :class:`TransferModel`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

from torch import nn

from tlcore.registry import Registry


@dataclass
class Strategy:
    name: str
    description: str
    # Freeze/unfreeze and wrap the model; return the modules that run in train mode (dropout, BatchNorm).
    prepare: Optional[Callable[..., list[nn.Module]]] = None
    finalize: Optional[Callable[[nn.Module], None]] = None
    default_lr: float = 1e-4
    uses_loop: bool = True       # False: trained on cached features only (linear probe)
    needs_unlabeled: bool = False  # transductive: labeled source + unlabeled target (see tlcore/settings/transductive.py)


STRATEGIES: Registry[Strategy] = Registry("strategy")


def get_strategy(name: str) -> Strategy:
    return STRATEGIES.get(name)


def freeze(module: nn.Module) -> None:
    for p in module.parameters():
        p.requires_grad_(False)


def unfreeze(module: nn.Module) -> None:
    for p in module.parameters():
        p.requires_grad_(True)
