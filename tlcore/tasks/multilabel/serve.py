"""A finished multi-label run, served (the ``serve`` part of the task, see :mod:`tlcore.tasks.spec`): the model
after transfer is the saved :class:`TransferModel` with one sigmoid per label and ``thresholds.json`` beside it; the
model before transfer is the pretrained backbone with the ``before/`` head and its thresholds. A prediction is the
set of labels whose score passes its threshold, with every label's score: after transfer the calibrated probability
``sigmoid(logits / T)`` (the temperature saved with the model, :mod:`tlcore.tasks.multilabel.calibrate`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from tlcore.models.before import BeforeHead
from tlcore.models.registry import build_backbone
from tlcore.models.transfer_model import TransferModel
from tlcore.tasks.classification.serve import before_features, read_input
from tlcore.tasks.multilabel.model import THRESHOLDS_FILE, model_logits, read_thresholds, sigmoid

BEFORE_FOLDER = True


def is_run(run_dir: Path, model_config: dict) -> bool:
    """A :class:`TransferModel` folder with per-label thresholds beside it."""
    return model_config.get("architecture") == "TransferModel" and (Path(run_dir) / "model" / THRESHOLDS_FILE).is_file()


def load_after(run, folder: Path) -> TransferModel:
    return TransferModel.from_pretrained(folder).to(run.device)


def _thresholds(folder: Path) -> np.ndarray:
    return np.asarray(read_thresholds(folder)["thresholds"], dtype=np.float64)


def load_before(run, folder: Path) -> tuple[torch.nn.Module, BeforeHead, np.ndarray]:
    backbone = build_backbone(run.backbone_spec(), run.modality, pretrained=True)
    return backbone, BeforeHead.load(folder), _thresholds(folder)


def classes(run) -> list[str]:
    return list(run.report.get("data", {}).get("classes") or run.after_model.classes)


@torch.no_grad()
def _scores(run, items: list, model: str, backend: str) -> tuple[np.ndarray, np.ndarray, str]:
    """(scores (n, L), thresholds (L,), what the scores are)."""
    if backend == "onnx":      # the export carries the run's temperature (calibration.json), as the model does
        onnx = run.onnx_model
        return sigmoid(onnx.predict_logits(items), onnx.temperature), _thresholds(run.path / "model"), "probability"
    if model == "after":       # sigmoid(logits / T): the calibrated probabilities its thresholds were chosen on
        after = run.after_model
        return sigmoid(model_logits(after, items), after.temperature), _thresholds(run.path / "model"), "probability"
    backbone, head, thresholds = run.before_model
    raw = head.scores(before_features(run, backbone, head, items))
    return (sigmoid(raw), thresholds, "probability") if head.score == "sigmoid" else (raw, thresholds, "cosine")


def predict(run, inputs: Sequence[Any], *, model: str, top_k: int, names: Sequence[str], backend: str) -> list[dict]:
    """``{"input", "prediction", "labels", "top", "score"}`` per input: ``labels`` the predicted set (``prediction``
    the same, joined by ", "; "(none)" when empty), ``top`` the ``top_k`` highest-scoring labels with scores."""
    scores, thresholds, kind = _scores(run, list(inputs), model, backend)
    labels = classes(run)
    out = []
    for name, p in zip(names, scores):
        chosen = [labels[j] for j in np.argsort(-p) if p[j] > thresholds[j]]
        order = np.argsort(-p)[:top_k]
        out.append({"input": name, "prediction": ", ".join(chosen) or "(none)", "labels": chosen, "score": kind,
                    "top": [[labels[j], round(float(p[j]), 4)] for j in order],
                    "thresholds": {labels[j]: round(float(thresholds[j]), 4) for j in order}})
    return out


def predict_input(run, value: str, *, model: str, top_k: int, backend: str) -> list[dict]:
    items, names = read_input(run.modality, value)
    return run.predict(items, model=model, top_k=top_k, names=names, backend=backend)
