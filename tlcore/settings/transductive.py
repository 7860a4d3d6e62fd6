"""Transductive transfer (domain adaptation): labeled source + unlabeled target -> adapted model.

The one pipeline (:func:`tlcore.settings.pipeline.run_stages`) over the task's ``adaptation`` stages (for
classification: :mod:`tlcore.tasks.classification.adaptation`); the method is the strategy's registered ``adapt``
(:mod:`tlcore.strategies.adaptation`). Target labels score before/after and nothing else.
"""

from __future__ import annotations

from typing import Optional

from tlcore.config import FinetuneConfig
from tlcore.errors import ConfigError
from tlcore.progress import CancelFn, ProgressFn
from tlcore.settings.pipeline import run_stages
from tlcore.strategies import get_strategy
from tlcore.tasks import get_task


def run_adaptation(cfg: FinetuneConfig, *, progress: Optional[ProgressFn] = None,
                   should_cancel: Optional[CancelFn] = None) -> dict:
    """One domain-adaptation run; writes ``cfg.out``; returns the report."""
    task = get_task(cfg.task)
    if not get_strategy(cfg.strategy).needs_unlabeled:
        raise ConfigError(f"strategy {cfg.strategy!r} is not a domain-adaptation strategy")
    if not task.transductive:
        raise ConfigError(f"domain adaptation is not available for {task.description}")
    if not cfg.source or not cfg.unlabeled:
        raise ConfigError(f"{cfg.strategy} adapts a labeled source to unlabeled target data: pass --source and --unlabeled")
    if not cfg.eval and not cfg.target:
        raise ConfigError("pass --eval (labeled target data) so source-only and adapted accuracy can be measured")
    return run_stages(task.part("adaptation").Job, cfg, setting="transductive", progress=progress,
                      should_cancel=should_cancel)
