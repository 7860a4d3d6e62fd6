"""Predictions from a finished run folder with exactly the models its report scored: ``after`` (``model/``) and
``before`` (the pretrained backbone with the ``before/`` head for classification, the ``before/`` tagger for NER,
the pretrained Whisper for speech recognition).

This module is task-neutral: :class:`LoadedRun` finds the run's task (:mod:`tlcore.tasks`) and hands loading and
predicting to the task's ``serve`` module (``tlcore/tasks/<task>/serve.py``, see :mod:`tlcore.tasks.spec`).

    run = load_run("runs/sentiment-lora")
    run.predict(["the battery died after two days"])                  # the model after transfer
    run.predict(["the battery died after two days"], model="before")  # the model before transfer
    run.predict(["the battery died after two days"], backend="onnx")  # the "after" model's ONNX export (onnxruntime)
"""

from __future__ import annotations

import json
from functools import cached_property, partial
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Iterator, Optional, Sequence

from safetensors import safe_open

from tlcore.device import resolve_device
from tlcore.errors import ConfigError, DataError
from tlcore.inference.onnx.runtime import load_run_export
from tlcore.tasks import DEFAULT_TASK, TaskSpec, all_tasks, get_task, task_of

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
            try:
                with safe_open(str(f), framework="pt") as handle:
                    handle.keys()
            except Exception as exc:  # noqa: BLE001 - safetensors raises its own error type for a cut header
                raise _corrupted(run, f, f"the weights cannot be read ({type(exc).__name__}: truncated?)") from None
    if (folder / "config.json").is_file() and not any(f.suffix in (".safetensors", ".bin", ".pt", ".onnx")
                                                      for f in files):
        raise _corrupted(run, folder / "model.safetensors", "the weights are missing")


class LoadedRun:
    """A finished run folder: its report, its task (``spec``, and ``task``: its name), and its before/after models
    loaded on first use. What is task-specific is done by the task's ``serve`` module (``self.serve``)."""

    def __init__(self, path: str | Path, *, device: str = "auto"):
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
        self.spec: TaskSpec = task_of(self.report) if self.report.get("task") else self._task_from_model()
        self.task = self.spec.name
        self.serve: ModuleType = self.spec.part("serve")
        self.modality = (self.report.get("modality") or self.spec.fixed_modality
                         or self._model_config().get("modality"))

    def _model_config(self) -> dict:
        path = self.path / "model" / "config.json"
        if not path.exists():
            raise DataError(f"{self.path} holds no finished run (no model/config.json); wait for the run to finish")
        return _read_json(path, "model config", self.path)

    def _task_from_model(self) -> TaskSpec:
        """A run without a report (or one from before reports named the task): the first task whose ``serve`` says
        the saved model is its own, asking the fallback task (classification) last; it when none does."""
        config = self._model_config() if (self.path / "model" / "config.json").exists() else {}
        asked = sorted(all_tasks(), key=lambda spec: not spec.detected)     # the fallback task last
        found = (spec for spec in asked if spec.part("serve").is_run(self.path, config))
        return next(found, get_task(DEFAULT_TASK))

    def backbone_spec(self) -> str | None:
        """What the run was asked to use (a registered name, a folder, an HF id): the report's ``backbone`` is only
        its display name for folders."""
        return (self.report.get("config") or {}).get("backbone") or self.report.get("backbone")

    # ------------------------------------------------------------ models

    @cached_property
    def after_model(self):
        return self._load_checked(self.path / "model", partial(self.serve.load_after, self), "the model")

    @cached_property
    def before_model(self):
        folder = self.path / "before"
        if not self.serve.BEFORE_FOLDER:     # rebuilt from the pretrained backbone, nothing saved to check
            return self.serve.load_before(self, folder)
        if not folder.is_dir():
            raise DataError(f"{self.path} has no saved 'before' model (runs made before TransferLab saved it); "
                            "re-run it to compare before and after on new inputs")
        return self._load_checked(folder, partial(self.serve.load_before, self), "the 'before' model")

    def _load_checked(self, folder: Path, load: Callable[[Path], Any], what: str):
        """``load(folder)`` after checking its files; a damaged folder is one clear error naming what is wrong."""
        check_model_folder(self.path, folder)
        try:
            return load(folder)
        except _LOAD_ERRORS as exc:
            if isinstance(exc, DataError):
                raise
            raise _corrupted(self.path, folder, f"{what} cannot be loaded ({type(exc).__name__}: "
                                                f"{str(exc).splitlines()[0][:160] if str(exc) else ''})") from None

    @cached_property
    def onnx_model(self):
        """The ONNX export of the "after" model (``RUN/export/onnx``), run through onnxruntime."""
        if self.spec.onnx_refusal:
            raise ConfigError(f"{self.path}: no ONNX backend — {self.spec.onnx_refusal}")
        return load_run_export(self.path)

    def pick_model(self, model: str = "after", backend: str = "torch"):
        """The model that ``model`` and ``backend`` name: the ONNX export, or the after / before PyTorch model."""
        if backend == "onnx":
            return self.onnx_model
        return self.after_model if model == "after" else self.before_model

    @property
    def classes(self) -> list[str]:
        """The class of each score, in order (classification runs)."""
        classes = getattr(self.serve, "classes", None)
        if classes is None:
            raise ConfigError(f"{self.path} is a {self.spec.description} run: it predicts no classes")
        return classes(self)

    # ------------------------------------------------------------ predictions

    def predict(self, inputs: Sequence[Any], *, model: str = "after", top_k: int = 3, names: Sequence[str] = (),
                backend: str = "torch") -> list[dict]:
        """One dict per input: classification ``{"input", "prediction", "top": [[class, score], ...], "score"}``
        (``score`` says "probability" or "cosine"), NER ``{"text", "tokens", "tags", "confidences", "spans"}`` (each
        word's tag probability, calibrated by the run's temperature), ASR
        ``{"input", "path", "transcript", ...}``. Inputs: texts, or image / audio file paths. ``backend="onnx"``
        runs the "after" model's ONNX export instead of PyTorch (same output)."""
        if model not in MODELS:
            raise ConfigError(f"model must be 'after' or 'before'; got {model!r}")
        _check_backend(backend, model)
        if not isinstance(top_k, int) or top_k < 1:
            raise ConfigError(f"top-k must be a whole number ≥ 1; got {top_k!r}")
        inputs = list(inputs)
        names = list(names) or [str(x) if self.modality == "text" else Path(str(x)).name for x in inputs]
        return self.serve.predict(self, inputs, model=model, top_k=top_k, names=names, backend=backend)

    def predict_input(self, value: str, *, model: str = "after", top_k: int = 3, backend: str = "torch") -> list[dict]:
        """Predictions for a CLI ``--input`` (a text, a file, a folder or a table), read the way the task reads
        its data; one dict per input, as :meth:`predict`. A path that names nothing is refused
        (:func:`check_input_exists`)."""
        check_input_exists(value, self.modality or "text")
        return self.serve.predict_input(self, value, model=model, top_k=top_k, backend=backend)


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
    """Refuse an empty --input (``Path("")`` is the current folder, which would be read in its place) and one that
    looks like a path (:func:`looks_like_path`) but names nothing."""
    if not value.strip():
        raise DataError(f"--input is empty: give {'a text, ' if modality == 'text' else ''}a file or a folder to predict")
    if not Path(value).expanduser().exists() and looks_like_path(value):
        hint = " (to classify this text itself, put it in a .txt file and pass that)" if modality == "text" else ""
        raise DataError(f"no such file or folder: {value!r}; check the path{hint}")


def predict_run(run: str | Path, value: str, *, top_k: int = 3, model: str = "after", backend: str = "torch",
                device: str = "auto") -> Iterator[dict]:
    """Predictions for the CLI ``--input`` (a text, a file, a folder or a table), one dict per input;
    ``backend="onnx"``: through the run's ONNX export; ``device``: where the models run."""
    _check_backend(backend, model)
    if not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1:
        raise ConfigError(f"top-k must be a whole number ≥ 1; got {top_k!r}")
    loaded = load_run(run, device=device)
    if backend == "onnx":
        loaded.onnx_model   # noqa: B018 - a missing (or impossible) export is reported before the inputs are read
    yield from loaded.predict_input(value, model=model, top_k=top_k, backend=backend)
