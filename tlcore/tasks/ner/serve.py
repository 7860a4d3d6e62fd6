"""A finished NER run, served (the ``serve`` part of the task, see :mod:`tlcore.tasks.spec`): the models after
(``model/``) and before (``before/``) transfer are both saved :class:`TokenTagger` folders; predictions are the
tags and entity spans of whitespace-tokenized sentences (:mod:`tlcore.tasks.ner.pipeline`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from tlcore.tasks.ner import pipeline
from tlcore.tasks.ner.model import ARCHITECTURE, TokenTagger

#: The "before" model is saved in the run's ``before/`` folder (the tagger the report scored).
BEFORE_FOLDER = True


def is_run(run_dir: Path, model_config: dict) -> bool:
    """Does the run's ``model/config.json`` describe a token tagger?"""
    return model_config.get("architecture") == ARCHITECTURE


def load_after(run, folder: Path) -> TokenTagger:
    return TokenTagger.from_pretrained(folder).to(run.device)


def load_before(run, folder: Path) -> TokenTagger:
    return TokenTagger.from_pretrained(folder).to(run.device)


def predict(run, inputs: Sequence[Any], *, model: str, top_k: int, names: Sequence[str], backend: str) -> list[dict]:
    """``{"text", "tokens", "tags", "spans"}`` per text (``top_k`` and ``names`` do not apply to tags)."""
    return pipeline.predict(run.path, [str(x) for x in inputs], model=run.pick_model(model, backend))


def predict_input(run, value: str, *, model: str, top_k: int, backend: str) -> list[dict]:
    """A text, a .jsonl / .conll file or folder, or a plain .txt (:func:`tlcore.tasks.ner.pipeline.predict_input`)."""
    return pipeline.predict_input(run.path, value, model=run.pick_model(model, backend))
