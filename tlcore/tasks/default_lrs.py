"""The derived default learning rates of the tasks that train with their own pipeline (NER, speech recognition).

``benchmarks/derive_defaults.py --tasks`` runs each task's ``TaskSpec.lr_grid`` on development data (its demo's
target split, 30% held out, never its eval split) and writes the rule's choice (:func:`tlcore.strategies.defaults.
choose_lrs`) to ``default_lrs.json`` beside this module; the evidence (every run) is ``docs/task_default_lrs.json``.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

CHOSEN_FILE = Path(__file__).with_name("default_lrs.json")


def derived_lrs(task: str) -> dict[str, float]:
    """strategy -> the derived default learning rate of ``task``'s own pipeline ({} where none was derived)."""
    return dict(_chosen().get(task, {}))


@functools.cache
def _chosen() -> dict:
    return json.loads(CHOSEN_FILE.read_text())["lrs"] if CHOSEN_FILE.exists() else {}
