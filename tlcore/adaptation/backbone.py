"""Domain adaptation of the whole network (``--adapt-backbone``): DANN, Deep CORAL or MCC trained end to end
through the backbone with the one trainer, not only an MLP head on frozen features.

Each step takes a labeled source batch and an unlabeled target batch, runs both through the backbone, and
minimises ``CE(head(f_s), y_s) + trade_off · L_align(f_s, f_t)`` (see :func:`tlcore.adaptation.trainer.alignment_objective`;
DANN's discriminator sits on the backbone's pooled features behind gradient reversal). The head starts from the
source linear probe; pretrained BatchNorm statistics stay fixed; the trade-off is the one training-domain
validation chose on frozen features (a grid search end to end would cost several full trainings). The last epoch
is kept (source accuracy cannot tell which alignment helps the target), and the source-validation accuracy of
every epoch is in the history.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch
from torch import nn

from tlcore.adaptation.dann import DomainDiscriminator
from tlcore.adaptation.trainer import ALIGNMENT_LOSSES, AlignmentTask, _split_source
from tlcore.device import module_device, to_device
from tlcore.models.batches import BatchSource
from tlcore.progress import CancelFn, ProgressFn, never_cancel, no_progress
from tlcore.training.trainer import TrainConfig, Trainer, TrainResult


class _BackboneAlignTask(AlignmentTask):
    def __init__(self, model: nn.Module, disc: Optional[nn.Module], method: str, trade_off: float,
                 source: Sequence[Any], ys: np.ndarray, target: Sequence[Any], val: Sequence[Any], val_y: np.ndarray,
                 batch_size: int, seed: int):
        self.model, self.disc, self.method, self.trade_off = model, disc, method, trade_off
        self.src, self.tgt, self.val = (BatchSource(model.backbone, x) for x in (source, target, val))
        self.ys, self.val_y = torch.as_tensor(ys, dtype=torch.long), torch.as_tensor(val_y, dtype=torch.long)
        self.bs_t = min(batch_size, len(self.tgt))
        self.rng = np.random.default_rng([seed, 7])
        self.t_order, self.t_pos = self.rng.permutation(len(self.tgt)), 0
        self.batch_size = batch_size
        self._reset_terms()

    def __len__(self) -> int:
        return len(self.ys)

    def _target_idx(self) -> list[int]:
        if self.t_pos + self.bs_t > len(self.tgt):
            self.t_order, self.t_pos = self.rng.permutation(len(self.tgt)), 0
        self.t_pos += self.bs_t
        return self.t_order[self.t_pos - self.bs_t:self.t_pos].tolist()

    def loss(self, idx: Sequence[int], state) -> tuple[torch.Tensor, float]:
        dev = module_device(self.model)
        fs = self.model.backbone(**to_device(self.src.get(idx), dev)).float()
        ft = self.model.backbone(**to_device(self.tgt.get(self._target_idx()), dev)).float()
        return self._objective(state, fs, ft, self.ys[idx].to(dev), self.model.head), float(len(idx))

    @torch.no_grad()
    def validate(self) -> dict:
        self.model.eval()
        correct, bs = 0, 2 * self.batch_size
        for start in range(0, len(self.val_y), bs):
            idx = range(start, min(start + bs, len(self.val_y)))
            logits = self.model(**to_device(self.val.get(idx), module_device(self.model))).cpu()
            correct += int((logits.argmax(1) == self.val_y[list(idx)]).sum())
        return self._epoch_row(correct / len(self.val_y) if len(self.val_y) else None)


def adapt_backbone(model: nn.Module, source_items: Sequence[Any], source_y: np.ndarray, target_items: Sequence[Any], *,
                   method: str, trade_off: float, epochs: int, batch_size: int, lr: float, seed: int = 0,
                   source_val_fraction: float = 0.2, checkpoint_dir: Optional[Path] = None, resume: bool = False,
                   progress: ProgressFn = no_progress, should_cancel: CancelFn = never_cancel) -> TrainResult:
    """Adapt ``model`` (a :class:`TransferModel` whose head holds the source probe) end to end, in place."""
    if method not in ALIGNMENT_LOSSES:
        raise ValueError(f"end-to-end adaptation supports {', '.join(ALIGNMENT_LOSSES)}; got {method!r}")
    train_idx, val_idx = _split_source(np.asarray(source_y), source_val_fraction, seed)
    disc = None
    if method == "dann":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            dim = model.backbone.feature_dim
            disc = DomainDiscriminator(dim, hidden=max(32, dim // 4), dropout=0.5)
    for p in model.parameters():
        p.requires_grad_(True)
    task = _BackboneAlignTask(model, disc, method, trade_off, [source_items[i] for i in train_idx], source_y[train_idx],
                              target_items, [source_items[i] for i in val_idx], source_y[val_idx], batch_size, seed)
    config = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, head_lr=max(lr, 1e-3), patience=None, seed=seed,
                         keep_best=False, freeze_bn=True)
    result = Trainer(model, task, config, train_modules=[model], extra_modules=[disc] if disc is not None else [],
                     checkpoint_dir=checkpoint_dir, stage="adapt", progress=progress, should_cancel=should_cancel
                     ).fit(resume=resume)
    for p in model.parameters():
        p.requires_grad_(False)
    return result
