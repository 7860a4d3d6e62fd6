"""The fine-tuning recipe of the loop strategies (partial, full, LoRA) besides their learning rates, and where each
setting comes from.

Five settings, each chosen on development data that no reported number uses — the demos' labeled *training* splits,
30% held out for scoring, never an eval split — by ``benchmarks/derive_defaults.py --recipe``: one setting varied at
a time around the recipe the code shipped with (:data:`PRIOR`, the first value of each tuple in :data:`FACTORS`),
10 epochs, seed 0, each strategy at its derived learning rate. The rule (:func:`choose_recipe`): per setting, the
value with the highest mean development accuracy over every (demo, strategy) cell the setting applies to
(:data:`APPLIES`); a tie keeps the prior value. The chosen values are in ``recipe.json`` beside this module, the
evidence (every run) in ``docs/recipe.json``; a test checks that the three agree.

* ``schedule`` — the learning-rate schedule: linear warm-up over 10% of the steps, then half a cosine down to zero
  (``warmup_cosine``), a linear decay (``warmup_linear``) or a constant rate;
* ``head_init`` — ``probe``: LP-FT (Kumar et al. 2022), the new head starts as the linear probe on the training
  items' pretrained features; ``random``: plain fine-tuning from a randomly initialised head;
* ``layer_decay`` — partial and full: each backbone block trains at this factor of the lr of the block above it;
* ``augment`` — image fine-tuning: training-batch augmentation (``tlcore.models.image``);
* ``min_val_items`` — the fewest validation items a loop model stops early on (below, it trains the whole schedule
  on every training item): the validation rule every loop model shares, the scratch twin included.
"""

from __future__ import annotations

import contextlib
import functools
import json
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

#: setting -> the values tried; the first is the prior (what the code shipped with before the derivation)
FACTORS: dict[str, tuple[Any, ...]] = {
    "schedule": ("warmup_cosine", "warmup_linear", "constant"),
    "head_init": ("probe", "random"),
    "layer_decay": (0.8, 0.65, 1.0),
    "augment": ("standard", "light", "none"),
    "min_val_items": (50, 10),
}
PRIOR: dict[str, Any] = {name: values[0] for name, values in FACTORS.items()}
#: setting -> (strategies, modalities) it changes anything for
APPLIES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "schedule": (("partial", "full", "lora"), ("image", "text", "audio")),
    "head_init": (("partial", "full", "lora"), ("image", "text", "audio")),
    "layer_decay": (("partial", "full"), ("image", "text", "audio")),
    "augment": (("partial", "full", "lora"), ("image",)),
    "min_val_items": (("partial", "full", "lora"), ("image", "text", "audio")),
}
CHOSEN_FILE = Path(__file__).with_name("recipe.json")

_override: dict[str, Any] = {}


def applies(name: str, strategy: str, modality: str) -> bool:
    strategies, modalities = APPLIES[name]
    return strategy in strategies and modality in modalities


def value_scores(runs: Iterable[Mapping]) -> dict[str, dict[Any, list[tuple[float, float, tuple]]]]:
    """Per setting and value, one ``(dev_accuracy, the prior's dev_accuracy, cell)`` per (demo, strategy) cell the
    setting applies to that has a base run. ``runs``: ``demo``, ``strategy``, ``modality``, ``factor`` (a setting's
    name, or ``"base"`` for the run with every setting at its prior), ``value`` and ``dev_accuracy``; the prior value's
    score in a cell is its base run's."""
    runs = list(runs)
    base = {(r["demo"], r["strategy"]): float(r["dev_accuracy"]) for r in runs if r["factor"] == "base"}
    out: dict[str, dict[Any, list[tuple[float, float, tuple]]]] = {}
    for name, values in FACTORS.items():
        scores: dict[Any, list[tuple[float, float, tuple]]] = {PRIOR[name]: []}
        for r in runs:
            cell = (r["demo"], r["strategy"])
            if cell in base and applies(name, r["strategy"], r["modality"]):
                if r["factor"] == "base":
                    scores[PRIOR[name]].append((base[cell], base[cell], cell))
                elif r["factor"] == name and r["value"] in values:
                    scores.setdefault(r["value"], []).append((float(r["dev_accuracy"]), base[cell], cell))
        out[name] = scores
    return out


def choose_recipe(runs: Iterable[Mapping]) -> dict[str, Any]:
    """The rule: per setting, the mean development accuracy of each value over its cells (:func:`value_scores`);
    the best mean wins, a tie keeps the prior."""
    chosen: dict[str, Any] = {}
    for name, scores in value_scores(runs).items():
        mean = {v: sum(a for a, _, _ in s) / len(s) for v, s in scores.items() if s}
        if not mean:
            chosen[name] = PRIOR[name]
            continue
        best = max(mean.values())
        chosen[name] = PRIOR[name] if mean.get(PRIOR[name], -1.0) >= best - 1e-12 else max(mean, key=mean.__getitem__)
    return chosen


def setting(name: str) -> Any:
    """The recipe's value of ``name``: the derived one (``recipe.json``), else the prior."""
    if name in _override:
        return _override[name]
    return _chosen().get(name, PRIOR[name])


@contextlib.contextmanager
def override(**values: Any) -> Iterator[None]:
    """Run with some settings changed (the development runs of the derivation, one setting at a time)."""
    unknown = set(values) - set(FACTORS)
    if unknown:
        raise ValueError(f"unknown recipe settings {sorted(unknown)}; known: {', '.join(FACTORS)}")
    saved = dict(_override)
    _override.update(values)
    try:
        yield
    finally:
        _override.clear()
        _override.update(saved)


@functools.cache
def _chosen() -> dict:
    return json.loads(CHOSEN_FILE.read_text())["recipe"] if CHOSEN_FILE.exists() else {}
