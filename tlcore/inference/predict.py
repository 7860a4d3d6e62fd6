"""Predictions from a finished run folder with exactly the models its report scored: ``after`` (``model/``) and
``before`` (the pretrained backbone with the ``before/`` head for classification, the ``before/`` tagger for NER,
the pretrained Whisper for speech recognition).

    run = load_run("runs/sentiment-lora")
    run.predict(["the battery died after two days"])                  # the model after transfer
    run.predict(["the battery died after two days"], model="before")  # the model before transfer
    run.predict(["the battery died after two days"], backend="onnx")  # the "after" model's ONNX export (onnxruntime)
"""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch

from tlcore.errors import ConfigError, DataError

MODELS = ("after", "before")
#: How the "after" model runs: PyTorch, or its ONNX export (``python -m tlcore export``) through onnxruntime.
BACKENDS = ("torch", "onnx")


def _read_json(path: Path, what: str) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read the run's {what} ({type(exc).__name__}); the run folder is damaged or "
                        "incomplete — re-run it or pick another run") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: the run's {what} is not a JSON object; re-run it or pick another run")
    return data


class LoadedRun:
    """A finished run folder: its report, and its before/after models loaded on first use."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_dir():
            raise DataError(f"{path}: no such run folder")
        self.report = _read_json(self.path / "report.json", "report") if (self.path / "report.json").exists() else {}
        self.task = self.report.get("task") or self._task_from_model()
        self.modality = self.report.get("modality") or ("text" if self.task == "ner" else
                                                         "audio" if self.task == "asr" else self._model_config().get("modality"))

    def _model_config(self) -> dict:
        path = self.path / "model" / "config.json"
        if not path.exists():
            raise DataError(f"{self.path} holds no finished run (no model/config.json); wait for the run to finish")
        return _read_json(path, "model config")

    def _task_from_model(self) -> str:
        from tlcore.tasks.asr import is_asr_run

        if is_asr_run(self.path):
            return "asr"
        return "ner" if self._model_config().get("architecture") == "TokenTagger" else "classify"

    # ------------------------------------------------------------ models

    @cached_property
    def after_model(self):
        folder = self.path / "model"
        if self.task == "ner":
            from tlcore.tasks.ner_model import TokenTagger

            return TokenTagger.from_pretrained(folder)
        if self.task == "asr":
            from tlcore.tasks.asr import load_model

            return load_model(self.path)
        from tlcore.models.transfer_model import TransferModel

        return TransferModel.from_pretrained(folder)

    @cached_property
    def before_model(self):
        folder = self.path / "before"
        if self.task == "asr":      # "before" is the pretrained Whisper as it is
            from tlcore.tasks.asr_model import load_whisper, resolve_whisper

            return load_whisper(resolve_whisper(self._backbone_spec())[0])
        if not folder.is_dir():
            raise DataError(f"{self.path} has no saved 'before' model (runs made before TransferLab saved it); "
                            "re-run it to compare before and after on new inputs")
        if self.task == "ner":
            from tlcore.tasks.ner_model import TokenTagger

            return TokenTagger.from_pretrained(folder)
        from tlcore.models.before import BeforeHead
        from tlcore.models.registry import build_backbone

        backbone = build_backbone(self._backbone_spec(), self.modality, pretrained=True)
        return backbone, BeforeHead.load(folder)

    @cached_property
    def onnx_model(self):
        """The ONNX export of the "after" model (``RUN/export/onnx``), run through onnxruntime."""
        if self.task == "asr":
            from tlcore.inference.onnx_export import ASR_REFUSAL

            raise ConfigError(f"{self.path}: no ONNX backend — {ASR_REFUSAL}")
        from tlcore.inference.onnx_export import load_run_export

        return load_run_export(self.path)

    def _backbone_spec(self) -> str | None:
        """What the run was asked to use (a registered name, a folder, an HF id): the report's ``backbone`` is only
        its display name for folders."""
        return (self.report.get("config") or {}).get("backbone") or self.report.get("backbone")

    @property
    def classes(self) -> list[str]:
        return list(self.report.get("data", {}).get("classes") or self.after_model.classes)

    # ------------------------------------------------------------ predictions

    def predict(self, inputs: Sequence[Any], *, model: str = "after", top_k: int = 3, names: Sequence[str] = (),
                backend: str = "torch") -> list[dict]:
        """One dict per input: classification ``{"input", "prediction", "top": [[class, score], ...], "score"}``
        (``score`` says "probability" or "cosine"), NER ``{"text", "tokens", "tags", "spans"}``, ASR
        ``{"input", "path", "transcript", ...}``. Inputs: texts, or image / audio file paths. ``backend="onnx"``
        runs the "after" model's ONNX export instead of PyTorch (same output)."""
        if model not in MODELS:
            raise ConfigError(f"model must be 'after' or 'before'; got {model!r}")
        _check_backend(backend, model)
        if not isinstance(top_k, int) or top_k < 1:
            raise ConfigError(f"top-k must be a whole number ≥ 1; got {top_k!r}")
        inputs = list(inputs)
        names = list(names) or [str(x) if self.modality == "text" else Path(str(x)).name for x in inputs]
        if self.task == "ner":
            from tlcore.tasks.ner import predict as ner_predict

            texts = [str(x) for x in inputs]
            if backend == "onnx":
                return ner_predict(self.path, texts, model=self.onnx_model)
            return ner_predict(self.path, texts, model=self.after_model if model == "after" else self.before_model)
        if self.task == "asr":
            from tlcore.tasks.asr import predict as asr_predict

            chosen = self.onnx_model if backend == "onnx" else self.after_model if model == "after" else self.before_model
            return asr_predict(self.path, inputs, model=chosen)
        if backend == "onnx":
            scores, kind = self.onnx_model.predict_proba(inputs), "probability"
        else:
            scores, kind = self._class_scores(inputs, model)
        classes = self.classes
        out = []
        for name, p in zip(names, scores):
            order = p.argsort()[::-1][:top_k]
            out.append({"input": name, "prediction": classes[order[0]], "score": kind,
                        "top": [[classes[i], round(float(p[i]), 4)] for i in order]})
        return out

    @torch.no_grad()
    def _class_scores(self, items: list, model: str) -> tuple[np.ndarray, str]:
        if model == "after":
            return self.after_model.predict_proba(items), "probability"
        backbone, head = self.before_model
        backbone.eval()
        feats = [backbone(**backbone.preprocess(items[i:i + 32])).float().numpy() for i in range(0, len(items), 32)]
        x = np.concatenate(feats) if feats else np.zeros((0, head.weight.shape[1]), np.float32)
        return head.scores(x), "probability" if head.score == "softmax" else "cosine"


def _check_backend(backend: str, model: str) -> None:
    if backend not in BACKENDS:
        raise ConfigError(f"backend must be 'torch' or 'onnx'; got {backend!r}")
    if backend == "onnx" and model != "after":
        raise ConfigError("only the model after transfer is exported to ONNX; predict with the 'before' model through PyTorch (without --onnx)")


def load_run(path: str | Path) -> LoadedRun:
    """A finished run folder, ready to predict with its before and after models."""
    return LoadedRun(path)


# ---------------------------------------------------------------- the CLI's --input

def _inputs(modality: str, value: str) -> tuple[list[Any], list[str]]:
    path = Path(value)
    if modality == "text" and not path.exists():
        if len(value) < 260 and Path(value).suffix.lower() in (".csv", ".tsv", ".jsonl", ".txt", ".png", ".jpg", ".wav"):
            raise DataError(f"input {value!r} looks like a file name but no such file exists; check the path "
                            "(to classify this text itself, pass text that is not a file name)")
        return [value], ["input"]
    if not path.exists():
        raise DataError(f"input {value!r} does not exist")
    if path.is_file() and not (modality == "text" and path.suffix.lower() in (".csv", ".tsv", ".jsonl")):
        if modality == "text":
            try:
                return [path.read_text(encoding="utf-8")], [path.name]
            except UnicodeDecodeError:
                raise DataError(f"{path.name} is not a UTF-8 text file; this run classifies text") from None
        return [str(path)], [path.name]
    from tlcore.data.loaders import load_dataset

    ds = load_dataset(path, modality)
    return ds.items, ds.names or [str(i) for i in range(len(ds))]


def predict_run(run: str | Path, value: str, *, top_k: int = 3, model: str = "after", backend: str = "torch") -> Iterator[dict]:
    """Predictions for the CLI ``--input`` (a text, a file, a folder or a table), one dict per input;
    ``backend="onnx"``: through the run's ONNX export."""
    _check_backend(backend, model)
    loaded = load_run(run)
    if loaded.task in ("ner", "asr"):
        import importlib

        task = importlib.import_module(f"tlcore.tasks.{loaded.task}")
        chosen = loaded.onnx_model if backend == "onnx" else loaded.after_model if model == "after" else loaded.before_model
        yield from task.predict_input(run, value, model=chosen)
        return
    if backend == "onnx":
        loaded.onnx_model   # noqa: B018 - a missing export is reported before the inputs are read
    items, names = _inputs(loaded.modality, value)
    yield from loaded.predict(items, model=model, top_k=top_k, names=names, backend=backend)
