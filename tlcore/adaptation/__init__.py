"""Transductive domain adaptation on cached features: labeled source + unlabeled target.

One method per module, named after its paper: :mod:`coral` (CORAL, Deep CORAL), :mod:`dann` (gradient
reversal), :mod:`mcc` (Minimum Class Confusion), :mod:`self_training` (pseudo-labels), :mod:`adabn`
(batch-norm statistics). :mod:`trainer` combines the losses into an adapted MLP head on raw features.
"""

from tlcore.adaptation.adabn import adabn, batchnorm_layers
from tlcore.adaptation.coral import coral_align, deep_coral_loss, mean_difference_loss
from tlcore.adaptation.dann import (
    DomainDiscriminator,
    GradientReversalLayer,
    domain_adversarial_loss,
    grl_coefficient,
    reverse_gradient,
)
from tlcore.adaptation.mcc import mcc_loss
from tlcore.adaptation.self_training import select_pseudo_labels, self_train
from tlcore.adaptation.trainer import METHODS, TRADE_OFF_GRID, AdapterResult, select_trade_off, train_adapter

__all__ = [
    "METHODS", "TRADE_OFF_GRID", "AdapterResult", "DomainDiscriminator", "GradientReversalLayer", "adabn",
    "batchnorm_layers", "coral_align", "deep_coral_loss", "domain_adversarial_loss", "grl_coefficient",
    "mcc_loss", "mean_difference_loss", "reverse_gradient", "select_pseudo_labels", "select_trade_off",
    "self_train", "train_adapter",
]
