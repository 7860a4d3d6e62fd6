"""Where the default learning rates of partial, full and LoRA fine-tuning come from (NER's and speech recognition's
own: :mod:`tlcore.tasks.default_lrs`, derived by the same rule).

They were chosen on development data that no reported number uses — each demo's labeled training split, 30% held out,
never its eval split — by ``benchmarks/derive_defaults.py`` over the grids below (fixed in advance from the usual
ranges: transformers fine-tune at 1e-5 to 2e-4, the EfficientNet CNN at 1e-4 to 1e-3, LoRA adapters at about ten
times those). The chosen rates are in ``default_lrs.json`` beside this module, the evidence (every run) in
``docs/default_lrs.json``; :func:`choose_lrs` is the rule both were written with, so a test can check that they agree.
"""

from __future__ import annotations

import functools
import json
from collections import defaultdict
from pathlib import Path
from typing import Iterable, Mapping, Optional

_TRANSFORMER = (2e-5, 5e-5, 1e-4, 2e-4)
_CNN = (1e-4, 2e-4, 5e-4, 1e-3)

#: strategy -> modality -> the learning rates tried (text: MiniLM, audio: the Whisper encoder, image: EfficientNet-Lite)
GRIDS: dict[str, dict[str, tuple[float, ...]]] = {
    "partial": {"text": _TRANSFORMER, "audio": _TRANSFORMER, "image": _CNN},
    "full": {"text": _TRANSFORMER, "audio": _TRANSFORMER, "image": _CNN},
    "lora": {"text": (5e-4, 1e-3, 2e-3), "audio": (5e-4, 1e-3, 2e-3), "image": (1e-3, 2e-3, 5e-3)},
}

CHOSEN_FILE = Path(__file__).with_name("default_lrs.json")
PROVENANCE = ("the strategy's default for the modality, chosen on development data (the demos' training splits, never "
              "an eval split; docs/default_lrs.json)")


def choose_lrs(runs: Iterable[Mapping], *, family: str = "modality", score: str = "dev_accuracy"
               ) -> dict[str, dict[str, float]]:
    """The rule: per strategy and modality, the learning rate with the highest mean development accuracy over the
    modality's data sets (runs: ``strategy``, ``modality``, ``lr``, ``dev_accuracy``); a tie goes to the smaller rate.
    NER's and speech recognition's rates follow the same rule per strategy and ``task`` on ``dev_score``."""
    scores: dict[tuple[str, str], dict[float, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in runs:
        scores[(r["strategy"], r[family])][float(r["lr"])].append(float(r[score]))
    chosen: dict[str, dict[str, float]] = defaultdict(dict)
    for (strategy, modality), by_lr in sorted(scores.items()):
        mean = {lr: sum(v) / len(v) for lr, v in by_lr.items()}
        best = max(mean.values())
        chosen[strategy][modality] = min(lr for lr, m in mean.items() if m >= best - 1e-12)
    return dict(chosen)


def derived_lr(strategy: str, modality: str) -> Optional[float]:
    """The derived default of ``strategy`` for ``modality``, or None where none was derived."""
    return _chosen().get(strategy, {}).get(modality)


@functools.cache
def _chosen() -> dict:
    return json.loads(CHOSEN_FILE.read_text())["lrs"] if CHOSEN_FILE.exists() else {}
