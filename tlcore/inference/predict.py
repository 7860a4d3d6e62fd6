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
from typing import Any, Iterator, Optional, Sequence

import numpy as np
import torch

from tlcore.errors import ConfigError, DataError

MODELS = ("after", "before")
#: How the "after" model runs: PyTorch, or its ONNX export (``python -m tlcore export``) through onnxruntime.
BACKENDS = ("torch", "onnx")


#: Errors a damaged model folder raises while loading (bad JSON, missing or cut weights, wrong tensor shapes).
_LOAD_ERRORS = (OSError, ValueError, KeyError, RuntimeError, EOFError, TypeError)


def _corrupted(run: Path, file: Path | str, why: str) -> DataError:
    rel = Path(file).relative_to(run) if Path(file).is_absolute() and Path(file).is_relative_to(run) else Path(file)
    return DataError(f"run folder {run} is incomplete or corrupted: {rel}: {why}; re-run it or pick another run")


def _read_json(path: Path, what: str, run: Optional[Path] = None) -> dict:
    run = run or path.parent
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise _corrupted(run, path, f"the {what} is missing") from None
    except (OSError, ValueError) as exc:
        raise _corrupted(run, path, f"the {what} cannot be read ({type(exc).__name__}: truncated or not JSON)") from None
    if not isinstance(data, dict):
        raise _corrupted(run, path, f"the {what} is not a JSON object")
    return data


def check_model_folder(run: Path, folder: Path) -> None:
    """Refuse a damaged saved model before loading it: every JSON file must parse and every safetensors file must
    have a readable header, and a model needs its weights. Errors name the file (:func:`_corrupted`)."""
    if not folder.is_dir():
        raise _corrupted(run, folder, "the folder is missing")
    files = [f for f in sorted(folder.rglob("*")) if f.is_file() and not f.name.startswith(".")]
    if not files:
        raise _corrupted(run, folder, "the folder is empty")
    for f in files:
        if f.suffix == ".json":
            try:
                json.loads(f.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise _corrupted(run, f, f"cannot be read ({type(exc).__name__}: truncated or not JSON)") from None
        elif f.suffix == ".safetensors":
            from safetensors import safe_open

            try:
                with safe_open(str(f), framework="pt") as handle:
                    handle.keys()
            except Exception as exc:  # noqa: BLE001 - safetensors raises its own error type for a cut header
                raise _corrupted(run, f, f"the weights cannot be read ({type(exc).__name__}: truncated?)") from None
    if (folder / "config.json").is_file() and not any(f.suffix in (".safetensors", ".bin", ".pt", ".onnx")
                                                      for f in files):
        raise _corrupted(run, folder / "model.safetensors", "the weights are missing")


class LoadedRun:
    """A finished run folder: its report, and its before/after models loaded on first use."""

    def __init__(self, path: str | Path, *, device: str = "auto"):
        from tlcore.device import resolve_device

        self.path = Path(path)
        self.device = resolve_device(device)   # the models run here (CUDA when torch sees a GPU)
        if not self.path.is_dir():
            raise DataError(f"{path}: no such run folder")
        if not any(self.path.iterdir()):
            raise DataError(f"run folder {path} is empty: it holds no finished run; pick another run folder")
        self.report = (_read_json(self.path / "report.json", "report", self.path)
                       if (self.path / "report.json").exists() else {})
        if (self.path / "config.json").exists():     # the run's settings: damaged means the folder was damaged
            _read_json(self.path / "config.json", "settings file", self.path)
        self.task = self.report.get("task") or self._task_from_model()
        self.modality = self.report.get("modality") or ("text" if self.task == "ner" else
                                                         "audio" if self.task == "asr" else self._model_config().get("modality"))

    def _model_config(self) -> dict:
        path = self.path / "model" / "config.json"
        if not path.exists():
            raise DataError(f"{self.path} holds no finished run (no model/config.json); wait for the run to finish")
        return _read_json(path, "model config", self.path)

    def _task_from_model(self) -> str:
        from tlcore.tasks.asr.pipeline import is_asr_run

        if is_asr_run(self.path):
            return "asr"
        return "ner" if self._model_config().get("architecture") == "TokenTagger" else "classify"

    # ------------------------------------------------------------ models

    @cached_property
    def after_model(self):
        return self._load_checked(self.path / "model", self._load_after, "the model")

    def _load_checked(self, folder: Path, load, what: str):
        """``load(folder)`` after checking its files; a damaged folder is one clear error naming what is wrong."""
        check_model_folder(self.path, folder)
        try:
            return load(folder)
        except _LOAD_ERRORS as exc:
            if isinstance(exc, DataError):
                raise
            raise _corrupted(self.path, folder, f"{what} cannot be loaded ({type(exc).__name__}: "
                                                f"{str(exc).splitlines()[0][:160] if str(exc) else ''})") from None

    def _load_after(self, folder: Path):
        if self.task == "ner":
            from tlcore.tasks.ner.model import TokenTagger

            return TokenTagger.from_pretrained(folder).to(self.device)
        if self.task == "asr":
            from tlcore.tasks.asr.pipeline import load_model

            whisper, processor = load_model(self.path)
            return whisper.to(self.device), processor
        from tlcore.models.transfer_model import TransferModel

        return TransferModel.from_pretrained(folder).to(self.device)

    @cached_property
    def before_model(self):
        folder = self.path / "before"
        if self.task == "asr":      # "before" is the pretrained Whisper as it is
            from tlcore.tasks.asr.model import load_whisper, resolve_whisper

            whisper, processor = load_whisper(resolve_whisper(self._backbone_spec())[0])
            return whisper.to(self.device), processor
        if not folder.is_dir():
            raise DataError(f"{self.path} has no saved 'before' model (runs made before TransferLab saved it); "
                            "re-run it to compare before and after on new inputs")
        return self._load_checked(folder, self._load_before, "the 'before' model")

    def _load_before(self, folder: Path):
        if self.task == "ner":
            from tlcore.tasks.ner.model import TokenTagger

            return TokenTagger.from_pretrained(folder).to(self.device)
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
            from tlcore.tasks.ner.pipeline import predict as ner_predict

            texts = [str(x) for x in inputs]
            if backend == "onnx":
                return ner_predict(self.path, texts, model=self.onnx_model)
            return ner_predict(self.path, texts, model=self.after_model if model == "after" else self.before_model)
        if self.task == "asr":
            from tlcore.tasks.asr.pipeline import predict as asr_predict

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
        from tlcore.device import to_device

        backbone.to(self.device).eval()
        feats = [backbone(**to_device(backbone.preprocess(items[i:i + 32]), self.device)).float().cpu().numpy()
                 for i in range(0, len(items), 32)]
        x = np.concatenate(feats) if feats else np.zeros((0, head.weight.shape[1]), np.float32)
        return head.scores(x), "probability" if head.score == "softmax" else "cosine"


def _check_backend(backend: str, model: str) -> None:
    if backend not in BACKENDS:
        raise ConfigError(f"backend must be 'torch' or 'onnx'; got {backend!r}")
    if backend == "onnx" and model != "after":
        raise ConfigError("only the model after transfer is exported to ONNX; predict with the 'before' model through PyTorch (without --onnx)")


def load_run(path: str | Path, *, device: str = "auto") -> LoadedRun:
    """A finished run folder, ready to predict with its before and after models (on ``device``: auto, cpu, cuda,
    mps)."""
    return LoadedRun(path, device=device)


# ---------------------------------------------------------------- the CLI's --input

#: File name endings an --input that names a file usually has: one that does not exist is a typo, not a text.
FILE_SUFFIXES = (".csv", ".tsv", ".jsonl", ".json", ".txt", ".conll", ".zip", ".png", ".jpg", ".jpeg", ".bmp",
                 ".webp", ".gif", ".tif", ".tiff", ".wav", ".flac", ".ogg", ".mp3")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif", ".tif", ".tiff")
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")


def looks_like_path(value: str) -> bool:
    """Does an --input that is not an existing file look like a file or folder name (so a typo is reported rather
    than classified as text)? Yes when it ends in a known file extension, starts like a path (``/``, ``./``,
    ``../``, ``~/``, ``C:\\``), or is one word with a path separator and letters (``data/eval``); "10/10" and
    sentences are text."""
    value = value.strip()
    if not value or "\n" in value or len(value) > 4096:
        return False
    if Path(value).suffix.lower() in FILE_SUFFIXES and len(value) < 1024:
        return True
    if value.startswith(("/", "./", "../", "~/", ".\\", "..\\")) or (len(value) > 2 and value[1:3] in (":\\", ":/")):
        return " " not in value.strip("/") or len(value.split()) <= 3
    return not any(c.isspace() for c in value) and ("/" in value or "\\" in value) and any(c.isalpha() for c in value)


def check_input_exists(value: str, modality: str = "text") -> None:
    """Refuse an --input that looks like a path (:func:`looks_like_path`) but names nothing."""
    if not Path(value).expanduser().exists() and looks_like_path(value):
        hint = " (to classify this text itself, put it in a .txt file and pass that)" if modality == "text" else ""
        raise DataError(f"no such file or folder: {value!r}; check the path{hint}")


def _inputs(modality: str, value: str) -> tuple[list[Any], list[str]]:
    path = Path(value).expanduser()
    check_input_exists(value, modality)
    if modality == "text" and not path.exists():
        return [value], ["input"]
    if not path.exists():
        raise DataError(f"no such file or folder: {value!r}; this {modality} run predicts {modality} files or folders")
    suffix = path.suffix.lower()
    if path.is_file() and modality == "text" and suffix in IMAGE_SUFFIXES + AUDIO_SUFFIXES:
        kind = "an image" if suffix in IMAGE_SUFFIXES else "an audio file"
        raise DataError(f"{path.name} is {kind}, but this run classifies text: give a text, a .txt file or a "
                        ".csv/.tsv/.jsonl table")
    if path.is_file() and modality != "text" and suffix in (".csv", ".tsv", ".jsonl", ".txt", ".json", ".conll"):
        if not (modality == "audio" and suffix == ".csv"):       # an audio table (path,label) is fine
            raise DataError(f"{path.name} is a text file, but this is an {modality} run: give "
                            f"{'an image' if modality == 'image' else 'an audio file'} or a folder of them")
    if path.is_file() and not (modality == "text" and suffix in (".csv", ".tsv", ".jsonl")) and suffix != ".zip" \
            and not (modality == "audio" and suffix == ".csv"):
        if modality == "text":
            try:
                return [path.read_text(encoding="utf-8")], [path.name]
            except UnicodeDecodeError:
                raise DataError(f"{path.name} is not a UTF-8 text file; this run classifies text") from None
        if modality == "image":
            from tlcore.data.images import image_problem

            problem = image_problem(path)
            if problem:
                raise DataError(f"{path.name}: {problem}")
        return [str(path)], [path.name]
    from tlcore.data.loaders import load_dataset

    ds = load_dataset(path, modality)
    return ds.items, ds.names or [str(i) for i in range(len(ds))]


def predict_run(run: str | Path, value: str, *, top_k: int = 3, model: str = "after", backend: str = "torch",
                device: str = "auto") -> Iterator[dict]:
    """Predictions for the CLI ``--input`` (a text, a file, a folder or a table), one dict per input;
    ``backend="onnx"``: through the run's ONNX export; ``device``: where the classification models run."""
    _check_backend(backend, model)
    if not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1:
        raise ConfigError(f"top-k must be a whole number ≥ 1; got {top_k!r}")
    loaded = load_run(run, device=device)
    if backend == "onnx":
        loaded.onnx_model   # noqa: B018 - a missing (or impossible) export is reported before the inputs are read
    check_input_exists(value, loaded.modality or "text")
    if loaded.task in ("ner", "asr"):
        import importlib

        task = importlib.import_module(f"tlcore.tasks.{loaded.task}.pipeline")
        chosen = loaded.onnx_model if backend == "onnx" else loaded.after_model if model == "after" else loaded.before_model
        yield from task.predict_input(run, value, model=chosen)
        return
    items, names = _inputs(loaded.modality, value)
    yield from loaded.predict(items, model=model, top_k=top_k, names=names, backend=backend)
