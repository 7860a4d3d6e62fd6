"""MCC: Minimum Class Confusion for versatile domain adaptation.

Jin, Wang, Long & Wang, "Minimum Class Confusion for Versatile Domain Adaptation", ECCV 2020.
On a batch of unlabeled target logits Z (n, c), with temperature T:

    Ŷ   = softmax(Z / T)                                         (n, c)   temperature-rescaled probabilities
    H_i = −Σ_j Ŷ_ij log Ŷ_ij                                      (n,)     prediction entropy
    W   = diag(n · (1 + e^{−H_i}) / Σ_k (1 + e^{−H_k}))           (n, n)   confident items weigh more
    C   = Ŷᵀ W Ŷ                                                  (c, c)   class correlation (confusion)
    C̃_jj' = C_jj' / Σ_j'' C_jj''                                  (c, c)   category normalisation (rows sum to 1)
    L_MCC = (Σ_j Σ_{j'≠j} C̃_jj') / c                               scalar   mean off-diagonal mass

Minimising L_MCC pushes each target item towards one class and keeps classes from being confused with
each other, without needing target labels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def mcc_loss(target_logits: Tensor, temperature: float = 2.5) -> Tensor:
    """Minimum Class Confusion loss of (n, c) target logits; a scalar in [0, (c − 1) / c].

    0 when every item is predicted with certainty (one-hot rows); (c − 1) / c for uniform predictions.
    """
    if target_logits.ndim != 2:
        raise ValueError(f"mcc_loss needs (n_items, n_classes) logits; got shape {tuple(target_logits.shape)}")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0; got {temperature}")
    n, c = target_logits.shape
    probs = F.softmax(target_logits / temperature, dim=1)
    entropy = -(probs * torch.log(probs.clamp_min(1e-12))).sum(1).detach()
    weight = 1.0 + torch.exp(-entropy)
    weight = n * weight / weight.sum()
    confusion = (probs * weight[:, None]).T @ probs
    confusion = confusion / confusion.sum(1, keepdim=True).clamp_min(1e-12)
    return (confusion.sum() - torch.trace(confusion)) / c
