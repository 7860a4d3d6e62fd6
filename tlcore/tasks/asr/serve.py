"""A finished speech recognition run, served (the ``serve`` part of the task, see :mod:`tlcore.tasks.spec`): the
model after transfer is the adapted recognizer in ``model/`` (Whisper or a CTC model), the model before transfer the
pretrained one as it is (nothing is saved for it); predictions are transcripts (:mod:`tlcore.tasks.asr.pipeline`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from tlcore.tasks.asr import pipeline
from tlcore.tasks.asr.kinds import recognizer_for

#: The "before" model is the pretrained recognizer, rebuilt from the run's backbone: the run saves no ``before/``.
BEFORE_FOLDER = False


def is_run(run_dir: Path, model_config: dict) -> bool:
    """Was ``run_dir`` written by a speech recognition run (its ``model/`` holds the ASR marker)?"""
    return pipeline.is_asr_run(run_dir)


def load_after(run, folder: Path):
    """``(model, processor)`` of the run's adapted model."""
    model, processor = pipeline.load_model(run.path)
    return model.to(run.device), processor


def load_before(run, folder: Path):
    """``(model, processor)`` of the pretrained recognizer the run started from (``folder`` is not used)."""
    recognizer, _ = recognizer_for(run.backbone_spec())
    return recognizer.model.to(run.device), recognizer.processor


def predict(run, inputs: Sequence[Any], *, model: str, top_k: int, names: Sequence[str], backend: str) -> list[dict]:
    """``{"input", "path", "transcript", "seconds", "truncated"}`` per audio file (``top_k`` and ``names`` do not
    apply to transcripts)."""
    return pipeline.predict(run.path, inputs, model=run.pick_model(model, backend))


def predict_input(run, value: str, *, model: str, top_k: int, backend: str) -> list[dict]:
    """An audio file, a folder of them, or a metadata.csv / ASR folder (then each row has its ``reference``)."""
    return pipeline.predict_input(run.path, value, model=run.pick_model(model, backend))
