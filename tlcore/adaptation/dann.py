"""DANN: domain-adversarial training through a gradient reversal layer.

Ganin, Ustinova, Ajakan, Germain, Larochelle, Laviolette, Marchand & Lempitsky, "Domain-Adversarial
Training of Neural Networks", JMLR 2016. A domain discriminator D learns to tell source from target
features f; the gradient reversal layer (identity forward, ``−λ·grad`` backward) makes the feature
extractor learn features that *fool* D, i.e. whose distribution is the same in both domains::

    min_{F, C} max_D   L_cls(C(F(x_s)), y_s) − λ · L_dom(D(F(x)), domain)

λ ramps from 0 to 1 over training, ``λ_p = 2 / (1 + exp(−γ p)) − 1`` with p ∈ [0, 1] the training
progress and γ = 10, so the noisy early discriminator does not disturb the features.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def grl_coefficient(progress: float, *, gamma: float = 10.0) -> float:
    """λ_p = 2 / (1 + exp(−γ p)) − 1 for training progress p ∈ [0, 1] (Ganin et al. 2016, eq. 14)."""
    p = min(max(float(progress), 0.0), 1.0)
    return 2.0 / (1.0 + math.exp(-gamma * p)) - 1.0


class _GradientReversal(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, coeff: float) -> Tensor:  # type: ignore[override]
        ctx.coeff = coeff
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:  # type: ignore[override]
        return -ctx.coeff * grad, None


def reverse_gradient(x: Tensor, coeff: float = 1.0) -> Tensor:
    """Identity in the forward pass; multiplies the gradient by ``−coeff`` in the backward pass."""
    return _GradientReversal.apply(x, coeff)


class GradientReversalLayer(nn.Module):
    """:func:`reverse_gradient` as a module; set ``coeff`` (e.g. from :func:`grl_coefficient`) as training goes."""

    def __init__(self, coeff: float = 1.0):
        super().__init__()
        self.coeff = coeff

    def forward(self, x: Tensor) -> Tensor:
        return reverse_gradient(x, self.coeff)

    def extra_repr(self) -> str:
        return f"coeff={self.coeff:.3f}"


class DomainDiscriminator(nn.Sequential):
    """MLP (d → hidden → hidden → 1) giving the logit that a feature vector comes from the source domain.

    Dropout after each hidden layer (as in Ganin et al.'s discriminator) keeps it from saturating, which
    would make its reversed gradient vanish.
    """

    def __init__(self, in_features: int, hidden: int = 256, dropout: float = 0.5):
        super().__init__(
            nn.Linear(in_features, hidden), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(hidden, 1),
        )


def domain_adversarial_loss(discriminator: nn.Module, fs: Tensor, ft: Tensor, coeff: float) -> tuple[Tensor, float]:
    """Binary cross-entropy of ``discriminator`` on reversed source (label 1) and target (label 0) features.

    Args:
        discriminator: maps (n, d) features to (n, 1) logits.
        fs: (n_s, d) source features; ft: (n_t, d) target features.
        coeff: gradient-reversal coefficient λ.

    Returns:
        (loss, domain accuracy of the discriminator). Minimising the loss trains the discriminator to
        separate the domains and, through the reversed gradient, the feature extractor to confuse it.
        The two domains are weighted equally whatever their batch sizes.
    """
    logits_s = discriminator(reverse_gradient(fs, coeff)).squeeze(1)
    logits_t = discriminator(reverse_gradient(ft, coeff)).squeeze(1)
    loss = 0.5 * (F.binary_cross_entropy_with_logits(logits_s, torch.ones_like(logits_s))
                  + F.binary_cross_entropy_with_logits(logits_t, torch.zeros_like(logits_t)))
    with torch.no_grad():
        acc = 0.5 * ((logits_s > 0).float().mean() + (logits_t <= 0).float().mean())
    return loss, float(acc)
