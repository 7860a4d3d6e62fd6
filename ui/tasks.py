"""What each task offers in the forms: its title, modality, backbones and strategies, read from its
:class:`~tlcore.tasks.TaskSpec` (``tlcore/tasks/<task>/``) and the engine's registries. Nothing here names a task."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from tlcore.tasks import TaskSpec, get_task, task_names, task_of

#: The backbone choice that lets the user type a Hugging Face model id or a local ``save_pretrained`` folder.
OTHER_BACKBONE = "other"


@dataclass(frozen=True)
class StrategyOption:
    name: str
    description: str
    transductive: bool = False   # labeled source + unlabeled target + labeled eval, no labeled target


def spec_of(task: Optional[str]) -> TaskSpec:
    """The spec of ``task``; None, and names no task has (an old manifest, a removed task), read as the default."""
    return task_of({"task": task})


def task_choices() -> list[str]:
    """The tasks a form offers, in registry order (the default first)."""
    return list(task_names())


def task_title(task: str) -> str:
    """The form label of a task ("Named entities (NER)")."""
    return get_task(task).title


def strategy_options(task: str) -> list[StrategyOption]:
    """The strategies a task's runs accept, in the order the form offers them (the default first): the task's own
    list when it has one, else every inductive strategy of the shared registry, then (for a task that can adapt
    to unlabeled target data) the transductive ones."""
    from tlcore.strategies import STRATEGIES

    spec = get_task(task)
    helps = spec.strategy_help or {}

    def option(name: str) -> StrategyOption:
        strategy = STRATEGIES.get(name) if name in STRATEGIES else None
        return StrategyOption(name, helps.get(name) or (strategy.description if strategy else ""),
                              transductive=bool(strategy and strategy.needs_unlabeled))

    if spec.strategies is not None:
        return [option(n) for n in spec.strategies]
    inductive = [n for n in STRATEGIES.names() if not STRATEGIES.get(n).needs_unlabeled]
    inductive.sort(key=lambda n: n != spec.default_strategy)
    transductive = [n for n in STRATEGIES.names() if STRATEGIES.get(n).needs_unlabeled] if spec.transductive else []
    return [option(n) for n in inductive + transductive]


def backbone_options(task: str, modality: str) -> list[tuple[str, str]]:
    """(name, description) of the backbones a task can use: its own (a speech recognizer), else the registry's for
    the modality with the modality's default first."""
    spec = get_task(task)
    if spec.backbones is not None:
        return list(spec.backbones)
    from tlcore.models.registry import DEFAULT_BACKBONE, list_backbones

    specs = list_backbones(modality, include_tiny=True)
    default = DEFAULT_BACKBONE.get(modality)
    specs.sort(key=lambda s: s.name != default)
    return [(s.name, s.description) for s in specs]


def backbone_hint(task: str) -> str:
    """What a typed backbone (a hub id or a local folder) must be for ``task`` (its spec's ``backbone_hint``)."""
    return get_task(task).backbone_hint or ("a Hugging Face model id or a local save_pretrained folder of a model of "
                                            "the data's modality (e.g. any AutoModel checkpoint)")
