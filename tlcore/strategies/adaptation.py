"""Transductive strategies (domain adaptation): a labeled source and an *unlabeled* target.

Each method is one registry entry carrying its ``adapt`` function: from the pretrained features of the labeled
source and the unlabeled target (and the source-only probe it starts from) to an adapted head and its scores on the
eval items. The algorithms live in :mod:`tlcore.adaptation`; the run is the transductive pipeline
(:mod:`tlcore.settings.transductive`). Hyper-parameters are chosen without target labels (source validation,
DomainBed's training-domain validation). Adding a method = its algorithm module + one ``_register`` line here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import numpy as np
import torch

from tlcore.adaptation import adabn, batchnorm_layers, coral_align, select_trade_off, self_train
from tlcore.errors import ConfigError
from tlcore.models.features import extract_features
from tlcore.strategies.base import STRATEGIES, Strategy
from tlcore.strategies.linear_probe import fit_linear_head


@dataclass
class AdaptInput:
    """What a method adapts from: features of the labeled source (``source``, ``source_y``), of the unlabeled
    target and of the eval items, the source-only probe ``(weight, bias)``; methods that change the backbone itself
    (AdaBN) also get the backbone and the raw unlabeled and eval sets."""

    source: np.ndarray
    source_y: np.ndarray
    unlabeled: np.ndarray
    eval: np.ndarray
    n_classes: int
    probe: tuple[torch.Tensor, torch.Tensor]
    seed: int = 0
    backbone: Any = None
    unlabeled_set: Any = None
    eval_set: Any = None


@dataclass
class Adapted:
    """An adapted head (its ``state_dict``; ``head_hidden`` > 0 for an MLP adapter) and its eval scores."""

    head_state: dict
    eval_scores: np.ndarray
    info: dict = field(default_factory=dict)
    head_hidden: int = 0


def _linear(w: torch.Tensor, b: torch.Tensor, eval_f: np.ndarray, info: Optional[dict] = None) -> Adapted:
    w, b = torch.as_tensor(w, dtype=torch.float32), torch.as_tensor(b, dtype=torch.float32)
    return Adapted({"weight": w, "bias": b}, (torch.from_numpy(eval_f) @ w.T + b).numpy(), info or {})


def _coral(x: AdaptInput) -> Adapted:
    w, b, _ = fit_linear_head(coral_align(x.source, x.unlabeled), x.source_y, x.n_classes, seed=x.seed)
    return _linear(w, b, x.eval)


def _self_training(x: AdaptInput) -> Adapted:
    w, b, info = self_train(x.source, x.source_y, x.unlabeled, x.n_classes, seed=x.seed)
    return _linear(w, b, x.eval, {"self_training": info})


def _no_batchnorm(backbone: Any) -> Optional[str]:
    """AdaBN's refusal, asked before any features are computed (:func:`tlcore.strategies.check_backbone`)."""
    if batchnorm_layers(backbone):
        return None
    return "AdaBN re-estimates batch-norm statistics and this backbone has no batch-norm layer; use a batch-norm " \
           "backbone such as efficientnet-lite0, or another adaptation method (coral, deep_coral, dann, mcc, self_training)"


def _adabn(x: AdaptInput, batch_size: int = 32) -> Adapted:
    why = _no_batchnorm(x.backbone)      # the job has refused it already; a direct caller gets the same words
    if why:
        raise ConfigError(why)
    items = x.unlabeled_set.items
    n_layers = adabn(x.backbone, (x.backbone.preprocess(items[i:i + batch_size]) for i in range(0, len(items), batch_size)))
    x.backbone.pretrained = False   # modified weights: never share the features cache
    return _linear(*x.probe, extract_features(x.backbone, x.eval_set, use_cache=False), {"adabn_layers": n_layers})


def _aligned(method: str) -> Callable[[AdaptInput], Adapted]:
    def adapt(x: AdaptInput) -> Adapted:
        result, grid = select_trade_off(x.source, x.source_y, x.unlabeled, x.n_classes, method=method, seed=x.seed)
        with torch.no_grad():
            scores = result.head(torch.from_numpy(x.eval)).numpy()
        info = {"adapter": {"source_val_accuracy": result.source_val_accuracy, "hyper": result.hyper,
                            "trade_off_scores": {str(k): v for k, v in grid.items()}, "history": result.history}}
        return Adapted(result.head.state_dict(), scores, info, head_hidden=result.head[0].out_features)
    return adapt


def _register(name: str, description: str, adapt: Callable[[AdaptInput], Adapted], alignment: Optional[str] = None,
              backbone_problem: Optional[Callable[[Any], Optional[str]]] = None):
    STRATEGIES.register(name, Strategy(name, description, uses_loop=False, default_lr=0.0, needs_unlabeled=True,
                                       alignment=alignment, adapt=adapt, backbone_problem=backbone_problem))


_register("adabn", "AdaBN (Li et al. 2016): re-estimate batch-norm statistics on the unlabeled target; source head.",
          _adabn, backbone_problem=_no_batchnorm)
_register("coral", "CORAL (Sun et al. 2016): re-colour source features with the target covariance, then a linear head.",
          _coral)
_register("deep_coral", "Deep CORAL (Sun & Saenko 2016): MLP adapter trained with the covariance-alignment loss.",
          _aligned("coral"), alignment="coral")
_register("dann", "DANN (Ganin et al. 2016): MLP adapter trained adversarially against a domain classifier "
          "(gradient reversal).", _aligned("dann"), alignment="dann")
_register("self_training", "Self-training: confidence-thresholded, class-balanced pseudo-labels on the target, "
          "iterated.", _self_training)
_register("mcc", "MCC (Jin et al. 2020): MLP adapter trained to minimise class confusion on target predictions.",
          _aligned("mcc"), alignment="mcc")
