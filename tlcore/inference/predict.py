"""Predictions from a finished run folder, for one input or a folder / table of inputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

from tlcore.errors import DataError
from tlcore.models.transfer_model import TransferModel


def _inputs(model: TransferModel, value: str) -> tuple[list[Any], list[str]]:
    path = Path(value)
    if model.modality == "text" and not path.exists():
        return [value], ["input"]
    if not path.exists():
        raise DataError(f"input {value!r} does not exist")
    if path.is_file() and not (model.modality == "text" and path.suffix.lower() in (".csv", ".tsv", ".jsonl")):
        if model.modality == "text":
            return [path.read_text(encoding="utf-8")], [path.name]
        return [str(path)], [path.name]
    from tlcore.data.loaders import load_dataset

    ds = load_dataset(path, model.modality)
    return ds.items, ds.names or [str(i) for i in range(len(ds))]


def predict_run(run: str | Path, value: str, *, top_k: int = 3) -> Iterator[dict]:
    """Yield ``{"input", "prediction", "top": [[class, probability], ...]}`` per input (classification), the
    tagged tokens and entity spans (NER runs) or the transcript (ASR runs)."""
    folder = Path(run)
    task = _task_of(folder)
    if task in ("ner", "asr"):
        import importlib

        yield from importlib.import_module(f"tlcore.tasks.{task}").predict_input(folder, value)
        return
    model_dir = folder / "model" if (folder / "model").exists() else folder
    model = TransferModel.from_pretrained(model_dir)
    items, names = _inputs(model, value)
    probs = model.predict_proba(items)
    for name, p in zip(names, probs):
        order = p.argsort()[::-1][:top_k]
        yield {"input": name, "prediction": model.classes[order[0]],
               "top": [[model.classes[i], round(float(p[i]), 4)] for i in order]}


def _task_of(folder: Path) -> str:
    import json

    report = folder / "report.json"
    if report.exists():
        return json.loads(report.read_text()).get("task", "classify")
    config = folder / "model" / "config.json"
    if config.exists():
        arch = json.loads(config.read_text()).get("architecture", "")
        if arch == "TokenTagger":
            return "ner"
    from tlcore.tasks.asr import is_asr_run

    return "asr" if is_asr_run(folder) else "classify"
