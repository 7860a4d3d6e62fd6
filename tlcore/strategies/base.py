"""The strategy contract. A strategy decides which parameters train (``prepare``) and how the result is
finalized (``finalize``, e.g. merging LoRA weights); all of them produce a :class:`TransferModel`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

from torch import nn

from tlcore.errors import ConfigError
from tlcore.registry import Registry
from tlcore.strategies.defaults import derived_lr


@dataclass
class Strategy:
    name: str
    description: str
    # Freeze/unfreeze and wrap the model; return the modules that run in train mode (dropout, BatchNorm).
    prepare: Optional[Callable[..., list[nn.Module]]] = None
    finalize: Optional[Callable[[nn.Module], None]] = None
    # Optimizer parameter groups for the prepared model: (model, *, lr, head_lr, layer_decay) -> [{"params", "lr"}].
    # None: the trainer's default (the head at head_lr, every other trainable parameter at lr).
    param_groups: Optional[Callable[..., list[dict]]] = None
    default_lr: float = 1e-4
    uses_loop: bool = True       # False: trained on cached features only (linear probe)
    needs_unlabeled: bool = False  # transductive: labeled source + unlabeled target (see tlcore/settings/transductive.py)
    # Domain adaptation by an alignment loss (tlcore/adaptation: "dann", "coral", "mcc"): trains an MLP adapter on
    # frozen features, or the whole backbone with --adapt-backbone. None: no alignment loss to train with.
    alignment: Optional[str] = None
    # Domain adaptation: features of the labeled source + unlabeled target -> adapted head and eval scores
    # (tlcore.strategies.adaptation.AdaptInput -> Adapted). None: not an adaptation method.
    adapt: Optional[Callable] = None
    # Why this strategy cannot run on a backbone (a one-line reason), or None: asked by :func:`check_backbone` as soon as
    # the run's backbone is loaded, before any features or training. None: every backbone will do.
    backbone_problem: Optional[Callable[[Any], Optional[str]]] = None

    def lr_for(self, modality: str) -> float:
        """The default learning rate of this strategy for ``modality``: the one derived on development data
        (:mod:`tlcore.strategies.defaults`), else ``default_lr``."""
        return derived_lr(self.name, modality) or self.default_lr


STRATEGIES: Registry[Strategy] = Registry("strategy")


def get_strategy(name: str) -> Strategy:
    return STRATEGIES.get(name)


def check_backbone(name: str, backbone: Any) -> None:
    """Refuse strategy ``name`` on ``backbone`` with the strategy's reason (:attr:`Strategy.backbone_problem`), before
    any work is done with it."""
    problem = get_strategy(name).backbone_problem
    why = problem(backbone) if problem else None
    if why:
        shown = getattr(backbone, "backbone_name", "") or type(backbone).__name__
        raise ConfigError(f"strategy {name!r} cannot run on backbone {shown!r}: {why}")


def freeze(module: nn.Module) -> None:
    for p in module.parameters():
        p.requires_grad_(False)


def unfreeze(module: nn.Module) -> None:
    for p in module.parameters():
        p.requires_grad_(True)
