"""Predicting with an ONNX export through onnxruntime: the graph, a classifier and an NER tagger with the same
methods as their PyTorch models, and loading an export folder or a run's export."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from tlcore.artifacts import content_hash
from tlcore.errors import ConfigError
from tlcore.inference.onnx.families import preprocessor
from tlcore.inference.onnx.layout import (
    BATCH_SIZE,
    ONNX_FILE,
    ExportError,
    default_export_dir,
    export_command,
    read_export,
    read_json,
)
from tlcore.tasks import task_of
from tlcore.tasks.ner.model import TokenTagger, word_logits_of

_ORT_TYPES = {"tensor(float)": np.float32, "tensor(int64)": np.int64, "tensor(int32)": np.int32,
              "tensor(double)": np.float64, "tensor(float16)": np.float16, "tensor(bool)": np.bool_}


class OnnxGraph:
    """An export folder: its onnxruntime session, labels and preprocessing (``preprocessing.json['tlcore']``)."""

    def __init__(self, folder: str | Path):
        import onnxruntime as ort  # lazy: only ONNX predictions and exports need it

        self.folder = Path(folder)
        if not (self.folder / ONNX_FILE).is_file():
            raise ConfigError(f"{self.folder} holds no {ONNX_FILE}; create the export with `python -m tlcore export "
                              "--run RUN_DIR --format onnx`")
        self.doc = read_json(self.folder / "preprocessing.json")
        self.labels = list(read_json(self.folder / "labels.json", want=list))
        spec = self.doc.get("tlcore") or {}
        self.task, self.modality, self.kind = spec.get("task"), spec.get("modality"), spec.get("kind")
        self.attrs = spec.get("attrs") or {}
        options = ort.SessionOptions()
        options.log_severity_level = 3   # library code: onnxruntime's warnings are not the user's business
        self.session = ort.InferenceSession(str(self.folder / ONNX_FILE), options, providers=["CPUExecutionProvider"])
        self.inputs = {i.name: _ORT_TYPES.get(i.type, np.float32) for i in self.session.get_inputs()}

    def logits(self, batch: dict[str, Any]) -> np.ndarray:
        """Logits for a batch of input tensors (torch or numpy), fed by the graph's input names."""
        missing = [n for n in self.inputs if n not in batch]
        if missing:
            raise ExportError(f"the ONNX model needs input(s) {missing} that the preprocessing did not produce "
                              f"(it produced {sorted(batch)})")
        feed = {n: np.asarray(batch[n].numpy() if isinstance(batch[n], torch.Tensor) else batch[n], dtype=t)
                for n, t in self.inputs.items()}
        return self.session.run(["logits"], feed)[0]


class OnnxClassifier(OnnxGraph):
    """A classification export: ``predict_proba(items)`` like :meth:`TransferModel.predict_proba` (the same temperature),
    through onnxruntime."""

    def __init__(self, folder: str | Path):
        super().__init__(folder)
        self.preprocess = preprocessor(self.kind, self.folder, self.attrs)
        # temperature scaling of the run's model (calibration.json); an export made before it has none: T = 1
        self.temperature = float((self.doc.get("tlcore") or {}).get("temperature") or 1.0)

    @property
    def classes(self) -> list[str]:
        return self.labels

    def predict_logits(self, items: Sequence[Any], *, batch_size: int = BATCH_SIZE) -> np.ndarray:
        out = [self.logits(self.preprocess(items[i:i + batch_size])) for i in range(0, len(items), batch_size)]
        return np.concatenate(out) if out else np.zeros((0, len(self.labels)), np.float32)

    def predict_proba(self, items: Sequence[Any], *, batch_size: int = BATCH_SIZE) -> np.ndarray:
        logits = self.predict_logits(list(items), batch_size=batch_size)
        return torch.softmax(torch.from_numpy(logits) / self.temperature, dim=-1).numpy()


class OnnxTagger(OnnxGraph):
    """An NER export with what :func:`tlcore.tasks.ner.pipeline.predict_tokens` needs of a tagger: ``tokenizer``,
    ``max_length``, ``tags`` and ``predict_tags(encoded)``. Batches are built and read by :class:`TokenTagger`'s own
    ``collate`` / ``read_words``, so both backends tag words the same way."""

    def __init__(self, folder: str | Path):
        from transformers import AutoTokenizer  # lazy: seconds to import, and only a tagger needs it here

        super().__init__(folder)
        self.tokenizer = AutoTokenizer.from_pretrained(self.folder)
        self.max_length = int(self.attrs["max_length"])
        # the temperature of the run's tag probabilities (calibration.json); an export made before it has none: T = 1
        self.temperature = float((self.doc.get("tlcore") or {}).get("temperature") or 1.0)

    @property
    def tags(self) -> list[str]:
        return self.labels

    def word_logits(self, enc, *, batch_size: int = BATCH_SIZE) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`TokenTagger.word_logits` through onnxruntime (the same words, read the same way)."""
        return word_logits_of(self.logits, self.collate, enc, len(self.tags), batch_size=batch_size)

    def collate(self, enc, idx):
        return TokenTagger.collate(self, enc, idx)   # type: ignore[arg-type]  # uses only .tokenizer

    def predict_ids(self, enc, *, batch_size: int = BATCH_SIZE) -> list[list[int]]:
        out: list[list[int]] = []
        for start in range(0, len(enc), batch_size):
            idx = list(range(start, min(start + batch_size, len(enc))))
            batch, _ = self.collate(enc, idx)
            out += TokenTagger.read_words(enc, idx, torch.from_numpy(self.logits(batch)))
        return out

    def predict_tags(self, enc, *, batch_size: int = BATCH_SIZE) -> list[list[str]]:
        return [[self.tags[k] for k in seq] for seq in self.predict_ids(enc, batch_size=batch_size)]


def load_onnx_model(folder: str | Path) -> OnnxClassifier | OnnxTagger:
    """An export folder (``RUN/export/onnx`` or an unzipped download) ready to predict through onnxruntime."""
    folder = Path(folder)
    doc = read_json(folder / "preprocessing.json") if (folder / "preprocessing.json").exists() else {}
    cls = OnnxTagger if task_of(doc.get("tlcore") or {}).token_level else OnnxClassifier
    return cls(folder)


def load_run_export(run_dir: str | Path) -> OnnxClassifier | OnnxTagger:
    """The ONNX export of a run folder, checked to be of the model the run holds now."""
    run_dir = Path(run_dir)
    folder = default_export_dir(run_dir)
    if not (folder / ONNX_FILE).is_file():
        raise ConfigError(f"{run_dir} has no ONNX export ({folder} holds no {ONNX_FILE}); create it with "
                          f"`{export_command(run_dir)}`")
    record = read_export(folder) or {}
    weights = run_dir / "model" / "model.safetensors"
    if record.get("model_sha256") and weights.exists() and content_hash(weights) != record["model_sha256"]:
        raise ConfigError(f"the ONNX export in {folder} was made from other weights than {weights} holds now; delete "
                          f"{folder} and run `{export_command(run_dir)}` again")
    return load_onnx_model(folder)
