"""Which task a data set is for: each task that can be recognised from its files says so
(``formats.detect``); a set no task recognises is for the default task (classification)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from tlcore.data.loaders import resolve_data_path
from tlcore.errors import DataError
from tlcore.tasks.spec import DEFAULT_TASK, all_tasks, get_task


def detect_task(path: str | Path, modality: str) -> str:
    """The name of the task whose data ``path`` holds (e.g. ``"ner"`` for token-tagged text, ``"asr"`` for audio
    with a transcription table), else the default task. Raises DataError for a missing path."""
    resolved = resolve_data_path(path)
    for spec in all_tasks():
        if spec.detected and modality in spec.modalities and spec.part("formats").detect(resolved, modality):
            return spec.name
    return DEFAULT_TASK


def resolve_task(task: Optional[str], modality: str, *paths: tuple[str, str]) -> str:
    """The task to run: ``task`` when given (checked against the modality), else the one detected from every
    ``(role, path)`` in ``paths``; sets of different kinds raise one DataError naming both."""
    if task is not None:
        get_task(task).check_modality(modality)   # an unknown task lists the known ones
        return task
    found = [(role, path, get_task(detect_task(path, modality))) for role, path in paths]
    if len({spec.name for _, _, spec in found}) > 1:
        (r1, p1, k1), (r2, p2, k2) = found[0], next(f for f in found if f[2].name != found[0][2].name)
        raise DataError(
            f"the {r1} set ({Path(p1).name}) is {k1.description} data but the {r2} set ({Path(p2).name}) is "
            f"{k2.description} data; both must be the same kind: give two sets of {k1.data_hint}, "
            f"or two sets of {k2.data_hint}")
    return found[0][2].name if found else DEFAULT_TASK
