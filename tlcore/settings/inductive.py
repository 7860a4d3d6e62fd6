"""Inductive transfer (a labeled target), the entry of every fine-tuning run: starts the training processes when
more than one is asked for, then runs the one pipeline (:func:`tlcore.settings.pipeline.run_stages`) over its task's stages
(the ``Job`` of ``tlcore/tasks/<task>/pipeline.py``), or to
the transductive pipeline when the strategy adapts to unlabeled target data (:mod:`tlcore.settings.transductive`).
"""

from __future__ import annotations

from typing import Optional

from tlcore.config import FinetuneConfig
from tlcore.device import runtime_for, use_runtime, world_size
from tlcore.progress import CancelFn, ProgressFn
from tlcore.reporting.writer import run_folder_options
from tlcore.settings.pipeline import run_stages
from tlcore.settings.transductive import run_adaptation
from tlcore.strategies import get_strategy
from tlcore.tasks import get_task
from tlcore.training.launch import launch_finetune


def run_finetune(cfg: FinetuneConfig, *, progress: Optional[ProgressFn] = None, should_cancel: Optional[CancelFn] = None,
                 resume: bool = False, overwrite: bool = False, keep_failed: bool = True) -> dict:
    """Run one transfer experiment; write the run folder ``cfg.out``; return the report (also report.json).

    ``resume`` continues an unfinished run from its checkpoints, ``overwrite`` replaces a finished one once this run
    completes; without either an ``out`` that holds a run is refused (:class:`~tlcore.reporting.writer.RunWriter`).
    ``keep_failed=False`` drops a failed run's checkpoints too (the app's jobs: a failed run there starts over)."""
    if cfg.num_processes > 1 and world_size() == 1:      # not under a launcher yet: start the processes
        return launch_finetune(cfg, num_processes=cfg.num_processes, resume=resume, overwrite=overwrite,
                               progress=progress, should_cancel=should_cancel)
    with run_folder_options(resume=resume, overwrite=overwrite, keep_failed=keep_failed), use_runtime(runtime_for(cfg)):
        if get_task(cfg.task).transductive and get_strategy(cfg.strategy).needs_unlabeled:
            return run_adaptation(cfg, progress=progress, should_cancel=should_cancel)
        return run_stages(get_task(cfg.task).part("pipeline").Job, cfg, setting="inductive", progress=progress,
                          should_cancel=should_cancel, resume=resume)
