"""ONNX export of a finished run's model *after* transfer, checked against PyTorch, and predictions through onnxruntime.

    result = export_onnx("runs/sentiment")              # writes runs/sentiment/export/onnx/
    result.parity["parity"]["max_abs_diff"]             # ONNX vs PyTorch logits on the run's eval items
    load_onnx_model(result.folder).predict_proba(["a new review"])
    load_run("runs/sentiment").predict(["a new review"], backend="onnx")

The export folder holds

* ``model.onnx`` — input: the backbone's preprocessed tensors (dynamic batch axis; text: dynamic sequence axis),
  output: ``logits`` ((batch, classes); NER: (batch, sequence, tags)); exported with ``torch.onnx.export``
  (the dynamo exporter; the TorchScript one only if dynamo cannot trace the backbone, and ``parity.json`` says so);
* ``labels.json`` — the class (NER: tag) of each logit, in order;
* ``preprocessing.json`` — what a caller must do to raw inputs (resize / normalisation / channel order, tokenizer and
  max length, sample rate and features), with the tokenizer / processor files it names saved next to it;
* ``parity.json`` — how the export was made and how its logits compare with the PyTorch model's on the run's eval
  items (at most :data:`PARITY_CAP` of them): max absolute difference and argmax agreement;
* ``README.md`` — the run's model card with an "Export" section.

Product rules: the export never changes what the run already holds (``report.json`` and the run's README.md stay
as they are — the model card renders the export from ``parity.json`` when it is given one); an existing export is
never overwritten (delete it, or export elsewhere with ``out``); parity beyond the tolerance is an error, and a
failed export leaves nothing behind (everything is written to a temporary folder that is renamed at the end).

Supported: classification runs on every backbone kind TransferLab saves (EfficientNet-Lite, Hugging Face image and
text encoders, the Whisper encoder, Hugging Face speech encoders) and NER (token classification) runs. Refused:
the runs of a task whose spec says why (``TaskSpec.onnx_refusal``: speech recognition).

This module is the entry point; the parts are in :mod:`tlcore.inference.onnx` (folder layout, per-backbone-kind
preprocessing, graph tracing, onnxruntime, parity).
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Optional

import torch

from tlcore.artifacts import content_hash
from tlcore.errors import ConfigError, DataError
from tlcore.inference.export_folder import export_destination, staged_folder
from tlcore.inference.onnx.families import KINDS, describe, save_preprocessing
from tlcore.inference.onnx.graph import dynamic_axes, export_graph, graph_signature, trace_example
from tlcore.inference.onnx.layout import (
    EXPORT_DIR,
    ONNX_FILE,
    ExportError,
    default_export_dir,
    export_command,
    read_export,
    write_json,
)
from tlcore.inference.onnx.parity import (
    PARITY_CAP,
    REL_TOLERANCE,
    check_parity,
    compare_logits,
    parity_items,
    parity_line,
    parity_summary,
)
from tlcore.inference.onnx.runtime import OnnxClassifier, OnnxGraph, OnnxTagger, load_onnx_model, load_run_export
from tlcore.inference.predict import LoadedRun
from tlcore.progress import Progress, ProgressFn, no_progress
from tlcore.reporting.model_card import model_card_markdown
from tlcore.tasks.ner.data import encode

__all__ = ["EXPORT_DIR", "KINDS", "ONNX_FILE", "PARITY_CAP", "REL_TOLERANCE", "ExportError", "ExportResult",
           "OnnxClassifier", "OnnxGraph", "OnnxTagger", "compare_logits", "default_export_dir", "export_command",
           "export_onnx", "export_zip", "load_onnx_model", "load_run_export", "parity_summary", "read_export",
           "refusal"]


@dataclass
class ExportResult:
    """A written export: its folder, ``parity.json`` (provenance + parity), ``preprocessing.json`` and the labels."""

    folder: Path
    parity: dict
    preprocessing: dict
    labels: list

    def to_dict(self) -> dict:
        return {**asdict(self), "folder": str(self.folder)}


def _model_config(run_dir: Path) -> dict:
    try:
        config = json.loads((run_dir / "model" / "config.json").read_text())
    except (OSError, ValueError):
        raise DataError(f"{run_dir} holds no finished run (no readable model/config.json); wait for the run to "
                        "finish or pick another run") from None
    return config if isinstance(config, dict) else {}


def refusal(run) -> Optional[str]:
    """Why this run cannot be exported to ONNX (None: it can). ``run``: a run folder or a :class:`LoadedRun`.
    Cheap: reads the report and the model's config.json, loads no model."""
    run = run if isinstance(run, LoadedRun) else LoadedRun(run)
    if run.spec.onnx_refusal:
        return run.spec.onnx_refusal
    config = _model_config(run.path)
    architecture = config.get("architecture")
    if architecture not in ("TransferModel", "TokenTagger"):
        return f"the saved model is a {architecture!r}, not a classifier or tagger TransferLab knows how to export"
    kind = (config.get("backbone_spec") or {}).get("kind")
    if kind not in KINDS:
        return f"backbone {config.get('backbone')!r} (kind {kind!r}) has no ONNX export; exportable kinds: {', '.join(KINDS)}"
    return None


def export_onnx(run: str | Path, *, out: Optional[str | Path] = None, rel_tolerance: float = REL_TOLERANCE,
                max_items: int = PARITY_CAP, progress: ProgressFn = no_progress) -> ExportResult:
    """Export the run's model after transfer to ONNX in ``out`` (default ``RUN/export/onnx``), check parity with
    the PyTorch model on the run's eval items, and return what was written (module docstring). Raises
    ``ConfigError`` for an unsupported run or an existing export, ``ExportError`` when parity fails."""
    import onnx  # lazy: only an export needs the exporter's libraries
    import onnxruntime

    loaded = LoadedRun(run)
    why = refusal(loaded)
    if why:
        raise ConfigError(f"{loaded.path}: cannot export to ONNX — {why}")
    dest = export_destination(loaded.path, out, default_export_dir(loaded.path))
    config = _model_config(loaded.path)
    name = config.get("backbone") or loaded.report.get("backbone") or ""
    kind, task, spec, modality = config["backbone_spec"]["kind"], loaded.task, loaded.spec, loaded.modality
    what = f"the {modality} backbone {name!r} ({kind})"

    progress(Progress("export", 0, 3, "loading the model"))
    model = loaded.after_model.eval()
    backbone = model.backbone
    labels = list(model.tags if spec.token_level else model.classes)
    items, parity_info = parity_items(loaded, max_items)

    with staged_folder(dest) as tmp:
        progress(Progress("export", 1, 3, f"exporting {what} with torch.onnx"))
        if spec.token_level:
            example, _ = model.collate(encode(model.tokenizer, items[:2], model.max_length), list(range(min(2, len(items)))))
            axes = {k: {0: "batch", 1: "sequence"} for k in example}
            output_axes = {0: "batch", 1: "sequence"}
        else:
            example = backbone.preprocess(items[:2])
            axes = dynamic_axes(backbone, modality)
            output_axes = {0: "batch"}
        exporter = export_graph(model, trace_example(dict(example)), axes, output_axes, tmp / ONNX_FILE, what)
        attrs = save_preprocessing(backbone, tmp)   # the backbone's preprocessing config: every fact comes from it
        temperature = float(getattr(model, "temperature", 1.0))     # the graph's logits are raw: T travels beside them
        graph_inputs = graph_signature(tmp / ONNX_FILE)
        doc = {"format": "onnx", "model": ONNX_FILE, "task": task, "modality": modality, "backbone": name,
               "inputs": graph_inputs["inputs"], **describe(kind, attrs, spec),
               "outputs": graph_inputs["outputs"],
               "labels": f"labels.json: the {'tag' if spec.token_level else 'class'} of each logit, in order; "
                         + (f"softmax(logits / {temperature:g}) over the last axis (temperature scaling, fitted on held-out "
                            "training items) gives the probabilities TransferLab shows" if spec.output == "softmax"
                            else f"sigmoid(logits / {temperature:g}) gives each label's probability (temperature scaling, "
                                 "fitted on the validation items; the thresholds in model/thresholds.json are on "
                                 "these probabilities)"),
               "tlcore": {"task": task, "modality": modality, "kind": kind, "attrs": attrs, "temperature": temperature}}
        doc["python"] = doc["python"] + [
            "import onnxruntime as ort",
            f"session = ort.InferenceSession(EXPORT_DIR + '/{ONNX_FILE}')",
            "logits = session.run(['logits'], {i.name: INPUTS[i.name] for i in session.get_inputs()})[0]"]
        write_json(tmp / "preprocessing.json", doc)
        write_json(tmp / "labels.json", labels)

        progress(Progress("export", 2, 3, f"checking parity on {len(items)} eval {spec.unit}"))
        graph = (OnnxTagger if spec.token_level else OnnxClassifier)(tmp)
        parity = {**parity_info, **check_parity(model, graph, spec, items, rel_tolerance)}
        record = {"format": "onnx", "file": ONNX_FILE, "folder": _shown(dest, loaded.path), "exporter": exporter,
                  "opset": graph_inputs["opset"],
                  "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
                  "torch": torch.__version__, "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__,
                  "task": task, "modality": modality, "backbone": name,
                  "model_sha256": content_hash(loaded.path / "model" / "model.safetensors"),
                  "inputs": graph_inputs["inputs"], "outputs": graph_inputs["outputs"], "parity": parity}
        if not parity["passed"]:
            raise ExportError(f"the ONNX export of {what} does not reproduce the PyTorch model: " + parity_line(parity)
                              + "; nothing was written")
        write_json(tmp / "parity.json", record)
        (tmp / "README.md").write_text(model_card_markdown(loaded.report, export=record))
        progress(Progress("export", 3, 3, "done"))
    return ExportResult(dest, record, doc, labels)


def export_zip(folder: str | Path) -> bytes:
    """The export folder as zip bytes (entries under ``onnx/``), for a download."""
    folder = Path(folder)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(folder.rglob("*")):
            if f.is_file():
                zf.write(f, f"onnx/{f.relative_to(folder)}")
    return buf.getvalue()


def _shown(dest: Path, run_dir: Path) -> str:
    try:
        return str(dest.resolve().relative_to(run_dir.resolve()))
    except ValueError:
        return str(dest)
