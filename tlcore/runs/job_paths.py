"""A job is named by its dotted path (``'package.module:function'``, stored with each run): which function the
worker calls, and which settings class its stored config is read back as."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from tlcore.config import FinetuneConfig
from tlcore.runs.models import MOVED_JOBS


def resolve_job(path: str) -> Callable[..., Any]:
    """Import ``'package.module:function'`` (the job path stored with each run; a job that moved is found at its
    new path, :data:`~tlcore.runs.models.MOVED_JOBS`)."""
    path = MOVED_JOBS.get(path, path)
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise ValueError(f"job must look like 'package.module:function', got {path!r}")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    if not callable(obj):
        raise TypeError(f"job {path!r} is not callable")
    return obj


def config_class(path: str) -> Any:
    """The settings class a job takes: its ``config_class`` attribute, else :class:`FinetuneConfig`.

    A job declares its own settings (``cluster_job.config_class = ClusterConfig``); the class needs ``from_dict``
    (checks names, raises ``ConfigError``) and ``to_dict`` (plain JSON, with ``"out"``). A job path that cannot be
    imported here falls back to fine-tuning settings; the worker reports the import error when it runs the job.
    """
    try:
        return getattr(resolve_job(path), "config_class", FinetuneConfig)
    except (ImportError, AttributeError, TypeError, ValueError):
        return FinetuneConfig


def job_config(path: str, config: dict) -> Any:
    """The stored ``config`` dict as the settings object the job at ``path`` takes."""
    return config_class(path).from_dict(config)
