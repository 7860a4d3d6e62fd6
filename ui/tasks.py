"""What each task offers in the Fine-tune form: modality, backbones and strategies (read from the engine)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StrategyOption:
    name: str
    description: str
    transductive: bool = False   # labeled source + unlabeled target + labeled eval, no labeled target


TASKS = {"classify": "Classification", "ner": "Named entities (NER)", "asr": "Speech recognition (ASR)"}
TASK_MODALITY = {"ner": "text", "asr": "audio"}  # classify: the data set's modality


def strategy_options(task: str) -> list[StrategyOption]:
    """The strategies a task's runs accept, in the order the form offers them (the default first)."""
    from tlcore.strategies import STRATEGIES

    if task == "ner":
        from tlcore.tasks.ner.pipeline import NER_STRATEGIES

        return [StrategyOption(n, STRATEGIES.get(n).description) for n in NER_STRATEGIES]
    if task == "asr":
        try:
            from tlcore.tasks.asr.model import ASR_STRATEGIES, STRATEGY_HELP
        except ImportError:  # the ASR task is optional
            return []
        return [StrategyOption(n, STRATEGY_HELP.get(n, "")) for n in ASR_STRATEGIES]
    inductive = [n for n in STRATEGIES.names() if not STRATEGIES.get(n).needs_unlabeled]
    inductive.sort(key=lambda n: n != "linear_probe")
    transductive = [n for n in STRATEGIES.names() if STRATEGIES.get(n).needs_unlabeled]
    return ([StrategyOption(n, STRATEGIES.get(n).description) for n in inductive]
            + [StrategyOption(n, STRATEGIES.get(n).description, transductive=True) for n in transductive])


def backbone_options(task: str, modality: str) -> list[tuple[str, str]]:
    """(name, description) of the backbones a task can use; the modality's default first."""
    from tlcore.models.registry import DEFAULT_BACKBONE, list_backbones

    if task == "asr":
        try:
            from tlcore.tasks.asr.model import DEFAULT_BACKBONE as WHISPER
        except ImportError:
            WHISPER = "whisper-tiny-en"
        return [(WHISPER, "Whisper tiny.en (bundled, offline), fine-tuned as a speech recognizer")]
    specs = list_backbones(modality, include_tiny=True)
    default = DEFAULT_BACKBONE.get(modality)
    specs.sort(key=lambda s: s.name != default)
    return [(s.name, s.description) for s in specs]
