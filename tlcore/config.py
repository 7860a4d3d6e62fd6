"""Run settings as typed dataclasses. The CLI flags and the app's forms are both built from these fields."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Optional

MODALITIES = ("image", "text", "audio")
TASKS = ("classify", "ner", "asr")


def _f(default: Any, help: str, **kw: Any) -> Any:
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata={"help": help, **kw})
    return field(default=default, metadata={"help": help, **kw})


@dataclass
class FinetuneConfig:
    """Everything one fine-tuning run needs. ``out`` is the run folder."""

    modality: str = _f("text", "Data modality: image, text or audio.", choices=MODALITIES)
    out: str = _f("", "Run folder to write (model, report.json, README.md, checkpoints).")
    target: Optional[str] = _f(None, "Labeled target data (folder, .zip or table). Part is held out for eval unless --eval is given.")
    source: Optional[str] = _f(None, "Labeled source-domain data (optional); the source-trained model is 'before'.")
    unlabeled: Optional[str] = _f(None, "Unlabeled target-domain data (for domain adaptation).")
    eval: Optional[str] = _f(None, "Labeled held-out target data for before/after evaluation.")
    task: str = _f("classify", "Task: classify (sequence/image/audio classification), ner (text token classification) "
                   "or asr (speech recognition, Whisper).", choices=TASKS)
    backbone: Optional[str] = _f(None, "Backbone name from `python -m tlcore backbones` or a Hugging Face model id; default per modality.")
    strategy: str = _f("linear_probe", "Transfer strategy: linear_probe, partial, full, lora.")
    epochs: int = _f(10, "Training epochs (upper bound; early stopping may end sooner).", min=1, max=500)
    batch_size: int = _f(16, "Mini-batch size for fine-tuning.", min=1, max=1024)
    lr: Optional[float] = _f(None, "Learning rate; default depends on the strategy.")
    seed: int = _f(0, "Random seed: same seed, same data, same result.")
    eval_fraction: float = _f(0.3, "Share of the labeled target held out for evaluation when --eval is not given.", min=0.05, max=0.9)
    partial_blocks: int = _f(2, "partial: number of top backbone blocks to unfreeze.", min=1, max=48)
    lora_r: int = _f(8, "lora: rank of the low-rank update.", min=1, max=256)
    patience: int = _f(3, "Early stopping: epochs without validation improvement before stopping.", min=1, max=100)
    val_fraction: float = _f(0.15, "Share of the training data used for early stopping (never the eval split).", min=0.0, max=0.5)
    max_per_class: Optional[int] = _f(None, "Use at most this many labeled target training examples per class.")
    baselines: list = _f(["scratch", "knn"], "Baselines to compute: scratch (random-init twin, same budget), knn.")
    on_bad_file: str = _f("skip", "What to do with unreadable files: skip (listed in the report) or refuse.", choices=("skip", "refuse"))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "FinetuneConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            from tlcore.errors import ConfigError

            raise ConfigError(f"unknown setting(s) {sorted(unknown)}; known: {sorted(names)}")
        return cls(**data)


def field_help(cls: type) -> dict[str, dict]:
    """Field name -> {'help', 'default', 'type', choices/min/max...}: what the CLI and app forms are built from."""
    out = {}
    for f in dataclasses.fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        out[f.name] = {"default": default, "type": f.type, **f.metadata}
    return out
