"""What a task does inside a run: the stages a setting's pipeline (:mod:`tlcore.settings.pipeline`) calls in order.

A task's ``pipeline`` part (and ``adaptation`` part, for transductive tasks) defines a :class:`TaskJob` subclass
named ``Job``. The setting's pipeline owns the order (data → before → after → baselines → evaluation → report),
the timings, the comparisons and the transfer warnings; the job owns what is specific to its task: how data is
loaded and split, what "before" is, how the strategy trains, how each baseline is made, the metrics, the paired
difference, and the task's own report keys (``data``, ``flipped``, ``eval_predictions`` and any extras).
"""

from __future__ import annotations

import dataclasses
import time
from abc import ABC, abstractmethod
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

from tlcore.config import FinetuneConfig
from tlcore.progress import CancelFn, ProgressFn
from tlcore.strategies import get_strategy
from tlcore.tasks import get_task


@dataclass
class Outcome:
    """One compared model: its predictions on the eval split and how it was made.

    ``info`` is how it was trained (sizes, epochs, hyperparameters and how they were chosen): the report's
    ``training`` for "after", ``baselines.<name>.training`` for a baseline. ``kind`` says what "before" is;
    ``comparable=False`` when "before" is the very model "after" is (nothing to compare). ``extra`` keys go into
    the model's metrics block (e.g. k-NN's ``k``)."""

    pred: Any
    info: dict = field(default_factory=dict)
    kind: str = ""
    comparable: bool = True
    extra: dict = field(default_factory=dict)


@dataclass
class RunContext:
    """What every stage of one run shares: the config, the run folder writer, progress and cancel callbacks, and
    the warnings, notes and timings the report collects."""

    cfg: FinetuneConfig
    writer: Any                          # tlcore.reporting.writer.RunWriter (the reporting layer sits above tasks)
    progress: ProgressFn
    should_cancel: CancelFn
    resume: bool = False
    warnings: list = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    suffix: str = ""                     # of checkpoint folders: "-seed1" while a further training seed runs
    _open: list[float] = field(default_factory=list)

    @contextmanager
    def timed(self, name: str) -> Iterator[None]:
        """Add the seconds of the block to ``timings[name]``, less the time of blocks timed inside it (so the
        timings add up to the run's time)."""
        self._open.append(0.0)
        t0 = time.time()
        try:
            yield
        finally:
            spent = time.time() - t0
            nested = self._open.pop()
            self.timings[name] = self.timings.get(name, 0.0) + spent - nested
            if self._open:
                self._open[-1] += spent

    def checkpoints(self, stage: str) -> Path:
        return self.writer.checkpoints(stage + self.suffix)

    def for_seed(self, seed: int) -> "RunContext":
        """The context of a further training seed (``--seeds``): the config with that seed, its own checkpoint
        folders, notes and warnings (not reported: the first seed's are), timings added to this run's."""
        return RunContext(dataclasses.replace(self.cfg, seed=seed), self.writer, self.progress, self.should_cancel,
                          self.resume, timings=self.timings, suffix=f"-seed{seed}")


class TaskJob(ABC):
    """The task-specific stages of one run (module docstring). Subclasses implement every method but
    ``save_before`` (set it when "before" is a model of its own that Try it must load); ``skipped`` names the
    baselines the task does not have, with the reason."""

    skipped: dict[str, str] = {}
    #: The baselines whose training depends on the seed, repeated by ``--seeds`` (the others are scored once);
    #: None: this task has no ``reseeded``/``compare_seeds`` and refuses ``--seeds``.
    seeded_baselines: Optional[tuple[str, ...]] = None
    backbone_name: str = ""
    save_before: Optional[Callable[[Path], None]] = None

    def __init__(self, ctx: RunContext):
        self.ctx, self.cfg = ctx, ctx.cfg

    def default_lr(self) -> float:
        """The run's learning rate when ``--lr`` is not given: the task's own default for the strategy when it declares
        one (``TaskSpec.lrs``; its own strategies always do), else the shared strategy's for the modality."""
        spec, name = get_task(self.cfg.task), self.cfg.strategy
        return spec.lrs[name] if name in spec.lrs else get_strategy(name).lr_for(self.cfg.modality)

    @abstractmethod
    def load(self) -> str:
        """Load and split the data (and anything computed once from it); return a one-line summary."""
        ...

    @abstractmethod
    def before(self) -> Outcome:
        """The model before transfer (the source model, or a training-free reference) and its eval predictions."""
        ...

    @abstractmethod
    def after(self) -> Outcome:
        """Train with the run's strategy; the transferred model's eval predictions and how it was trained."""
        ...

    @abstractmethod
    def baseline(self, name: str) -> Outcome:
        """Baseline ``name`` (one of the task's ``baselines`` not in ``skipped``), trained like "after"."""
        ...

    @abstractmethod
    def score(self, pred: Any) -> dict:
        """The task's metrics of eval predictions ``pred`` (with bootstrap intervals)."""
        ...

    @abstractmethod
    def compare(self, after: Any, other: Any) -> dict:
        """``{"difference", "ci95"}`` of the headline metric, after − other, paired on the same eval items."""
        ...

    @abstractmethod
    def report(self, outcomes: dict[str, Outcome]) -> dict:
        """The task's own report keys: ``data``, ``flipped``, ``eval_predictions`` and any extras."""
        ...

    @abstractmethod
    def save_model(self, folder: Path) -> None:
        """Write the transferred model into ``folder`` (the run folder's ``model/``)."""
        ...

    def reseeded(self, ctx: RunContext) -> "TaskJob":
        """A job for a further training seed (``ctx.cfg.seed``) that shares this job's loaded data and features but
        trains its own models from the pretrained weights (tasks with ``seeded_baselines``)."""
        raise NotImplementedError(f"{type(self).__module__} does not train several seeds")

    def compare_seeds(self, afters: list[Any], others: list[Any]) -> dict:
        """:meth:`compare` over several training seeds (``afters[s]`` vs ``others[s]``), its interval covering seed
        and eval-sample noise (tasks with ``seeded_baselines``)."""
        raise NotImplementedError(f"{type(self).__module__} does not train several seeds")
