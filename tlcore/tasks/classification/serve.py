"""A finished classification run, served (the ``serve`` part of the task, see :mod:`tlcore.tasks.spec`): the model
after transfer is the saved :class:`TransferModel`; the model before transfer is the pretrained backbone with the
``before/`` head (:class:`BeforeHead`) the report scored. Predictions are the top-k classes with their scores."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from tlcore.data.images import image_problem
from tlcore.data.loaders import load_dataset
from tlcore.device import to_device
from tlcore.errors import DataError
from tlcore.models.before import BeforeHead
from tlcore.models.registry import build_backbone
from tlcore.models.transfer_model import TransferModel

#: The "before" model is saved in the run's ``before/`` folder (its head; the backbone is the pretrained one).
BEFORE_FOLDER = True
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif", ".tif", ".tiff")
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")
TABLE_SUFFIXES = (".csv", ".tsv", ".jsonl")
TEXT_FILE_SUFFIXES = (".csv", ".tsv", ".jsonl", ".txt", ".json", ".conll")
BATCH_SIZE = 32


def is_run(run_dir: Path, model_config: dict) -> bool:
    """Does the run's ``model/config.json`` describe a classifier?"""
    return model_config.get("architecture") == "TransferModel"


def load_after(run, folder: Path) -> TransferModel:
    return TransferModel.from_pretrained(folder).to(run.device)


def load_before(run, folder: Path) -> tuple[torch.nn.Module, BeforeHead]:
    backbone = build_backbone(run.backbone_spec(), run.modality, pretrained=True)
    return backbone, BeforeHead.load(folder)


def classes(run) -> list[str]:
    """The class of each score, in order: the report's, else the saved model's."""
    return list(run.report.get("data", {}).get("classes") or run.after_model.classes)


def predict(run, inputs: Sequence[Any], *, model: str, top_k: int, names: Sequence[str], backend: str) -> list[dict]:
    """``{"input", "prediction", "top": [[class, score], ...], "score"}`` per input; ``score`` says whether the
    scores are probabilities or cosine similarities (a "before" head scored by cosine)."""
    if backend == "onnx":
        scores, kind = run.onnx_model.predict_proba(inputs), "probability"
    else:
        scores, kind = _class_scores(run, list(inputs), model)
    labels = classes(run)
    out = []
    for name, p in zip(names, scores):
        order = p.argsort()[::-1][:top_k]
        out.append({"input": name, "prediction": labels[order[0]], "score": kind,
                    "top": [[labels[i], round(float(p[i]), 4)] for i in order]})
    return out


def predict_input(run, value: str, *, model: str, top_k: int, backend: str) -> list[dict]:
    items, names = read_input(run.modality, value)
    return run.predict(items, model=model, top_k=top_k, names=names, backend=backend)


@torch.no_grad()
def _class_scores(run, items: list, model: str) -> tuple[np.ndarray, str]:
    if model == "after":
        return run.after_model.predict_proba(items), "probability"
    backbone, head = run.before_model
    return head.scores(before_features(run, backbone, head, items)), "probability" if head.score == "softmax" else "cosine"


@torch.no_grad()
def before_features(run, backbone: torch.nn.Module, head: BeforeHead, items: list) -> np.ndarray:
    """(n, d) pretrained features of ``items`` for a "before" head (the backbone as it was, on ``run.device``)."""
    backbone.to(run.device).eval()
    feats = [backbone(**to_device(backbone.preprocess(items[i:i + BATCH_SIZE]), run.device)).float().cpu().numpy()
             for i in range(0, len(items), BATCH_SIZE)]
    return np.concatenate(feats) if feats else np.zeros((0, head.weight.shape[1]), np.float32)


def read_input(modality: str, value: str) -> tuple[list[Any], list[str]]:
    """The items and names of a CLI ``--input`` for a ``modality`` classifier: a text, a file, a folder or a table
    (a path that does not exist was already refused unless it reads as a text)."""
    path = Path(value).expanduser()
    if modality == "text" and not path.exists():
        return [value], ["input"]
    if not path.exists():
        raise DataError(f"no such file or folder: {value!r}; this {modality} run predicts {modality} files or folders")
    suffix = path.suffix.lower()
    if path.is_file() and modality == "text" and suffix in IMAGE_SUFFIXES + AUDIO_SUFFIXES:
        kind = "an image" if suffix in IMAGE_SUFFIXES else "an audio file"
        raise DataError(f"{path.name} is {kind}, but this run classifies text: give a text, a .txt file or a "
                        ".csv/.tsv/.jsonl table")
    audio_table = modality == "audio" and suffix == ".csv"       # an audio table (path,label) is fine
    if path.is_file() and modality != "text" and suffix in TEXT_FILE_SUFFIXES and not audio_table:
        raise DataError(f"{path.name} is a text file, but this is an {modality} run: give "
                        f"{'an image' if modality == 'image' else 'an audio file'} or a folder of them")
    if path.is_file() and not (modality == "text" and suffix in TABLE_SUFFIXES) and suffix != ".zip" and not audio_table:
        return _one_file(path, modality)
    # every input gets a prediction: an unreadable file is an error naming it, never a row silently left out
    ds = load_dataset(path, modality, on_error="refuse")
    return ds.items, ds.names or [str(i) for i in range(len(ds))]


def _one_file(path: Path, modality: str) -> tuple[list[Any], list[str]]:
    if modality == "text":
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise DataError(f"{path.name} is not a UTF-8 text file; this run classifies text") from None
        if not text.strip():
            raise DataError(f"{path.name} is empty: there is no text to classify")
        return [text], [path.name]
    if modality == "image":
        problem = image_problem(path)
        if problem:
            raise DataError(f"{path.name}: {problem}")
    return [str(path)], [path.name]
