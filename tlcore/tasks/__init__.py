"""Tasks: one folder each (``classification/``, ``ner/``, ``asr/``) exporting a :class:`~tlcore.tasks.spec.TaskSpec`,
registered here with one line. See :mod:`tlcore.tasks.spec` for what a spec says and which modules a task has."""

from tlcore.tasks import asr, classification, multilabel, ner
from tlcore.tasks.spec import (
    DEFAULT_TASK,
    TASKS,
    Metric,
    TaskSpec,
    all_tasks,
    get_task,
    register_task,
    task_names,
    task_of,
)

register_task(classification.SPEC)
register_task(ner.SPEC)
register_task(asr.SPEC)
register_task(multilabel.SPEC)

__all__ = ["DEFAULT_TASK", "TASKS", "Metric", "TaskSpec", "all_tasks", "get_task", "register_task", "task_names",
           "task_of"]
