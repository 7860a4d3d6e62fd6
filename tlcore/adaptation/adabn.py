"""AdaBN: adapt a batch-norm network to the target by recomputing its normalisation statistics.

Li, Wang, Shi, Liu & Hou, "Revisiting Batch Normalization For Practical Domain Adaptation", ICLR-W 2017
(arXiv 1603.04779, 2016). Every BatchNorm layer normalises with running (μ, σ²) estimated on the source;
AdaBN replaces them by the statistics of the layer's input on the target domain::

    μ_t = E_target[x],  σ_t² = Var_target[x]      (per channel, per BN layer)

No weights change and no labels are needed. Only backbones with batch norm (e.g. efficientnet-lite0)
can be adapted this way; transformers use LayerNorm, which has no running statistics.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


def batchnorm_layers(model: nn.Module) -> list[_BatchNorm]:
    """The BatchNorm layers of ``model`` that keep running statistics."""
    return [m for m in model.modules() if isinstance(m, _BatchNorm) and m.track_running_stats]


def adabn(model: nn.Module, target_batches: Iterable[Mapping[str, Any]], *, momentum: float | None = None) -> int:
    """Recompute the running statistics of every BatchNorm layer of ``model`` on target batches (AdaBN).

    The statistics are reset, only the BatchNorm layers run in train mode (dropout and the rest stay in
    eval mode), and the batches are forwarded under ``torch.no_grad()`` as ``model(**batch)`` (a tensor
    batch is passed as ``model(batch)``). With ``momentum=None`` the running statistics are the cumulative
    average over all batches, i.e. the target statistics; a float uses an exponential moving average.
    Afterwards every module gets its previous train / eval mode back and the BN momenta are restored.

    Args:
        model: a network with BatchNorm layers, e.g. a TransferModel with an efficientnet-lite0 backbone;
            modified in place.
        target_batches: model inputs from the target domain (each a dict of tensors on the model's device).
        momentum: None (cumulative average, the paper's setting) or a momentum in (0, 1].

    Returns:
        Number of BatchNorm layers updated.

    Raises:
        ValueError: the model has no BatchNorm layer, or ``target_batches`` was empty (the statistics are
            then left as they were).
    """
    layers = batchnorm_layers(model)
    if not layers:
        raise ValueError(f"AdaBN needs a batch-norm backbone such as efficientnet-lite0; {type(model).__name__} "
                         "has no BatchNorm layer with running statistics")
    modes = {m: m.training for m in model.modules()}
    saved = [(bn.momentum, {k: v.clone() for k, v in bn.state_dict().items()}) for bn in layers]
    model.eval()
    for bn in layers:
        bn.reset_running_stats()
        bn.momentum = momentum
        bn.train()
    n_batches = 0
    try:
        with torch.no_grad():
            for batch in target_batches:
                if isinstance(batch, torch.Tensor):
                    model(batch)
                else:
                    model(**batch)
                n_batches += 1
    finally:
        for bn, (old_momentum, state) in zip(layers, saved):
            bn.momentum = old_momentum
            if n_batches == 0:
                bn.load_state_dict(state)
        for m, was_training in modes.items():
            m.train(was_training)
    if n_batches == 0:
        raise ValueError("AdaBN got no target batches; pass at least one batch of target inputs")
    return len(layers)
