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
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import shutil
import tempfile
import warnings
import zipfile
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch
from torch import nn

from tlcore.errors import ConfigError, DataError, TransferLabError
from tlcore.inference.predict import LoadedRun
from tlcore.progress import Progress, ProgressFn, no_progress
from tlcore.reporting.model_card import model_card_markdown
from tlcore.tasks import TaskSpec, task_of
from tlcore.tasks.ner.data import encode
from tlcore.tasks.ner.model import TokenTagger

log = logging.getLogger(__name__)

EXPORT_DIR = Path("export") / "onnx"
ONNX_FILE = "model.onnx"
#: At most this many eval items are compared (the first ones, in the report's order).
PARITY_CAP = 256
#: Parity passes when max |ONNX − PyTorch| ≤ REL_TOLERANCE × max(1, largest |PyTorch logit|).
REL_TOLERANCE = 1e-3
BATCH_SIZE = 32
#: Backbone kinds (``backbone_spec["kind"]`` of a saved model) whose models export.
KINDS = ("efficientnet_lite", "hf_image", "hf_text", "whisper_encoder", "hf_audio")
_AXIS_NAMES = {"text": {1: "sequence"}, "image": {2: "height", 3: "width"}, "audio": {1: "time", 2: "time"}}


class ExportError(TransferLabError):
    """The export cannot be made, or it was made but does not reproduce the PyTorch model (parity failed)."""


@dataclass
class ExportResult:
    """A written export: its folder, ``parity.json`` (provenance + parity), ``preprocessing.json`` and the labels."""

    folder: Path
    parity: dict
    preprocessing: dict
    labels: list

    def to_dict(self) -> dict:
        return {**asdict(self), "folder": str(self.folder)}


# ---------------------------------------------------------------- where, and whether

def default_export_dir(run: str | Path) -> Path:
    """Where ``export_onnx(run)`` writes: ``RUN/export/onnx``."""
    return Path(run) / EXPORT_DIR


def export_command(run: str | Path) -> str:
    return f"python -m tlcore export --run {run} --format onnx"


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


def _destination(run_dir: Path, out: Optional[str | Path]) -> Path:
    """The export folder, checked: new or empty, and not inside the run's own folders (model/, before/...)."""
    dest = Path(out) if out else default_export_dir(run_dir)
    run_abs, dest_abs = run_dir.resolve(), dest.resolve()
    if dest_abs == run_abs or (run_abs in dest_abs.parents and dest_abs.relative_to(run_abs).parts[0] != "export"):
        raise ConfigError(f"--out {dest} is inside the run's own files; export to {default_export_dir(run_dir)} "
                          "(the default) or to a folder outside the run")
    if dest.exists() and not dest.is_dir():
        raise ConfigError(f"--out {dest} is a file; give a folder for the export")
    if dest.is_dir() and any(dest.iterdir()):
        what = "an ONNX export" if (dest / "parity.json").exists() else "files"
        raise ConfigError(f"{dest} already holds {what}; TransferLab never overwrites saved files — delete that folder "
                          f"to export again, or export elsewhere with --out NEW_FOLDER")
    return dest


# ---------------------------------------------------------------- preprocessing that travels with the export

def _save_processor(backbone, kind: str, folder: Path) -> dict:
    """Save the tokenizer / processor files next to the .onnx; return what rebuilding the preprocessing needs."""
    if kind == "efficientnet_lite":
        return {"image_size": int(backbone.image_size)}
    if kind == "hf_text":
        backbone.tokenizer.save_pretrained(folder)
        return {"max_length": int(backbone.max_length)}
    if kind == "hf_image":
        backbone.processor.save_pretrained(folder)
        return {}
    backbone.feature_extractor.save_pretrained(folder)
    if kind == "whisper_encoder":   # a whole-second chunk saved as an int loads with int sample counts
        path = folder / "preprocessor_config.json"
        config = json.loads(path.read_text())
        if isinstance(config.get("chunk_length"), float) and config["chunk_length"].is_integer():
            config["chunk_length"] = int(config["chunk_length"])
            path.write_text(json.dumps(config, indent=2))
    return {"sample_rate": int(backbone.sample_rate)}


def _shell(cls: type, **state) -> nn.Module:
    """An instance of backbone class ``cls`` that holds only its preprocessing state (tokenizer / processor / input
    size) and no network: its own ``preprocess`` (and the helpers that calls) then runs exactly as in training."""
    shell = cls.__new__(cls)
    nn.Module.__init__(shell)
    for key, value in state.items():
        setattr(shell, key, value)
    return shell


def _preprocessor(folder: Path, kind: str, attrs: dict) -> Callable[[Sequence[Any]], dict[str, torch.Tensor]]:
    """Raw items → input tensors, from the export folder alone: the backbone class's own ``preprocess`` bound to
    the exported tokenizer / processor (:func:`_shell`), so the ONNX model gets exactly the inputs the PyTorch model
    got. The parity check compares the two pipelines end to end."""
    from tlcore.models import audio, image, text

    if kind == "efficientnet_lite":
        shell = _shell(image.EfficientNetLiteBackbone, image_size=attrs["image_size"])
    elif kind == "hf_text":
        from transformers import AutoTokenizer

        shell = _shell(text.HFTextBackbone, tokenizer=AutoTokenizer.from_pretrained(folder), max_length=attrs["max_length"])
    elif kind == "hf_image":
        from transformers import AutoImageProcessor

        shell = _shell(image.HFImageBackbone, processor=AutoImageProcessor.from_pretrained(folder))
    elif kind == "whisper_encoder":
        from transformers import WhisperFeatureExtractor

        fe = WhisperFeatureExtractor.from_pretrained(folder)
        shell = _shell(audio.WhisperEncoderBackbone, feature_extractor=audio.fit_chunk(fe, fe.chunk_length),
                       sample_rate=attrs["sample_rate"])
    elif kind == "hf_audio":
        from transformers import AutoFeatureExtractor

        shell = _shell(audio.HFAudioBackbone, feature_extractor=AutoFeatureExtractor.from_pretrained(folder),
                       sample_rate=attrs["sample_rate"])
    else:
        raise ConfigError(f"export in {folder} has an unknown preprocessing kind {kind!r}; was it made by a newer TransferLab?")
    return lambda items: shell.preprocess(list(items))


def _r(x: float) -> float:
    return round(float(x), 6)


def _preprocessing_doc(kind: str, task: TaskSpec, backbone, attrs: dict, inputs: list[dict]) -> dict:
    """``preprocessing.json``: what a caller must do to raw inputs, in words and numbers."""
    doc: dict = {"inputs": inputs}
    if kind == "efficientnet_lite":
        from tlcore.models.efficientnet_lite import IMAGENET_LITE_NORMALIZE as n

        size = attrs["image_size"]
        doc["image"] = {
            "color": "RGB (grayscale replicated to 3 channels, alpha dropped)",
            "resize": {"width": size, "height": size, "interpolation": "bilinear (PIL.Image.BILINEAR)",
                       "keep_aspect_ratio": False, "crop": None},
            "scale": "uint8 pixel values / 255 -> [0, 1]",
            "normalize": f"(x * {n['scale']:g} - {n['mean']:g}) / {n['std']:g}, the same for every channel",
            "mean": [_r(n["mean"] / n["scale"])] * 3, "std": [_r(n["std"] / n["scale"])] * 3,
            "mean_std_units": "of x in [0, 1]: (x - mean) / std",
            "layout": f"float32 NCHW (batch, 3, {size}, {size}), channels in RGB order",
        }
        doc["steps"] = [f"open the image as RGB; resize to {size}x{size} (bilinear, no crop, aspect ratio not kept)",
                        "divide by 255", "normalize: (x * 255 - 127) / 128 on every channel",
                        "transpose HWC -> CHW and stack into float32 (batch, 3, H, W)"]
        doc["python"] = ["from PIL import Image; import numpy as np",
                         f"x = np.asarray(Image.open(p).convert('RGB').resize(({size}, {size}), Image.BILINEAR), np.float32) / 255",
                         "pixel_values = ((x * 255 - 127) / 128).transpose(2, 0, 1)[None]"]
    elif kind == "hf_image":
        keys = ("do_resize", "size", "resample", "do_center_crop", "crop_size", "do_rescale", "rescale_factor",
                "do_normalize", "image_mean", "image_std", "do_convert_rgb")
        config = backbone.processor.to_dict()
        doc["image"] = {"processor": f"{type(backbone.processor).__name__}: preprocessor_config.json in this folder",
                        **{k: config[k] for k in keys if k in config}, "layout": "float32 NCHW, RGB"}
        doc["steps"] = ["open the image as RGB", "run the image processor saved here (resize / crop / rescale / "
                        "normalize as listed under 'image')"]
        doc["python"] = ["from transformers import AutoImageProcessor",
                         "pixel_values = AutoImageProcessor.from_pretrained(EXPORT_DIR)(images=[img], return_tensors='np')['pixel_values']"]
    elif kind == "hf_text":
        tok = backbone.tokenizer
        doc["text"] = {"tokenizer": f"{type(tok).__name__}: the tokenizer files in this folder",
                       "max_length": attrs["max_length"], "truncation": True,
                       "padding": "to the longest text of the batch (right); attention_mask 1 on real tokens",
                       "special_tokens": "added by the tokenizer ([CLS] ... [SEP] style)"}
        doc["steps"] = ["tokenize with the tokenizer saved here: padding=True, truncation=True, "
                        f"max_length={attrs['max_length']}", "feed every tensor the model lists under 'inputs' as int64"]
        call = "padding=True, truncation=True"
        if task.token_level:
            doc["text"]["words"] = ("split the sentence on whitespace and tokenize the words with is_split_into_words=True; "
                                    "a word's tag is the argmax of the logits at its first sub-token (labels.json)")
            call += ", is_split_into_words=True"
        doc["python"] = ["from transformers import AutoTokenizer",
                         f"enc = AutoTokenizer.from_pretrained(EXPORT_DIR)(texts, {call}, max_length={attrs['max_length']}, "
                         "return_tensors='np')"]
    else:
        fe = backbone.feature_extractor
        sr = attrs["sample_rate"]
        doc["audio"] = {"sample_rate": sr, "channels": "mono (average the channels)", "dtype": "float32 waveform in [-1, 1]",
                        "feature_extractor": f"{type(fe).__name__}: preprocessor_config.json in this folder"}
        if kind == "whisper_encoder":
            seconds = float(backbone.chunk_seconds)
            doc["audio"].update({"clip_seconds": seconds, "pad_or_cut": f"zero-pad or cut each clip to {int(seconds * sr)} samples",
                                 "features": f"Whisper log-mel spectrogram: {fe.feature_size} mel bins, n_fft {fe.n_fft}, "
                                             f"hop {fe.hop_length} -> ({fe.feature_size}, {int(seconds * sr) // fe.hop_length})"})
            doc["steps"] = [f"load as mono float32 and resample to {sr} Hz", f"pad or cut to {seconds:g} s",
                            "Whisper log-mel features with the feature extractor saved here"]
        else:
            doc["audio"]["padding"] = "to the longest clip of the batch"
            doc["steps"] = [f"load as mono float32 and resample to {sr} Hz",
                            "run the feature extractor saved here with padding=True"]
        doc["python"] = ["from transformers import AutoFeatureExtractor",
                         f"feats = AutoFeatureExtractor.from_pretrained(EXPORT_DIR)(waves, sampling_rate={sr}, padding=True, "
                         "return_tensors='np')"]
    return doc


# ---------------------------------------------------------------- onnxruntime side

_ORT_TYPES = {"tensor(float)": np.float32, "tensor(int64)": np.int64, "tensor(int32)": np.int32,
              "tensor(double)": np.float64, "tensor(float16)": np.float16, "tensor(bool)": np.bool_}


class _OnnxGraph:
    """An export folder: its onnxruntime session, labels and preprocessing (``preprocessing.json['tlcore']``)."""

    def __init__(self, folder: str | Path):
        import onnxruntime as ort

        self.folder = Path(folder)
        if not (self.folder / ONNX_FILE).is_file():
            raise ConfigError(f"{self.folder} holds no {ONNX_FILE}; create the export with `python -m tlcore export "
                              "--run RUN_DIR --format onnx`")
        self.doc = _read_json(self.folder / "preprocessing.json")
        self.labels = list(_read_json(self.folder / "labels.json", want=list))
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


class OnnxClassifier(_OnnxGraph):
    """A classification export: ``predict_proba(items)`` like :meth:`TransferModel.predict_proba`, through onnxruntime."""

    def __init__(self, folder: str | Path):
        super().__init__(folder)
        self.preprocess = _preprocessor(self.folder, self.kind, self.attrs)

    @property
    def classes(self) -> list[str]:
        return self.labels

    def predict_logits(self, items: Sequence[Any], *, batch_size: int = BATCH_SIZE) -> np.ndarray:
        out = [self.logits(self.preprocess(items[i:i + batch_size])) for i in range(0, len(items), batch_size)]
        return np.concatenate(out) if out else np.zeros((0, len(self.labels)), np.float32)

    def predict_proba(self, items: Sequence[Any], *, batch_size: int = BATCH_SIZE) -> np.ndarray:
        logits = self.predict_logits(list(items), batch_size=batch_size)
        return torch.softmax(torch.from_numpy(logits), dim=-1).numpy()


class OnnxTagger(_OnnxGraph):
    """An NER export with what :func:`tlcore.tasks.ner.pipeline.predict_tokens` needs of a tagger: ``tokenizer``,
    ``max_length``, ``tags`` and ``predict_tags(encoded)``. Batches are built and read by :class:`TokenTagger`'s own
    ``collate`` / ``read_words``, so both backends tag words the same way."""

    def __init__(self, folder: str | Path):
        from transformers import AutoTokenizer

        super().__init__(folder)
        self.tokenizer = AutoTokenizer.from_pretrained(self.folder)
        self.max_length = int(self.attrs["max_length"])

    @property
    def tags(self) -> list[str]:
        return self.labels

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
    doc = _read_json(folder / "preprocessing.json") if (folder / "preprocessing.json").exists() else {}
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
    if record.get("model_sha256") and weights.exists() and _sha256(weights) != record["model_sha256"]:
        raise ConfigError(f"the ONNX export in {folder} was made from other weights than {weights} holds now; delete "
                          f"{folder} and run `{export_command(run_dir)}` again")
    return load_onnx_model(folder)


# ---------------------------------------------------------------- parity

def compare_logits(reference: np.ndarray, candidate: np.ndarray, *, rel_tolerance: float = REL_TOLERANCE) -> dict:
    """Parity of ``candidate`` (ONNX) with ``reference`` (PyTorch) logits, both ``(n, k)`` (one row per item; NER:
    per real token). Passes when ``max |candidate − reference| ≤ rel_tolerance · max(1, max |reference|)`` and the
    argmax differs only where the reference's top two logits are within twice that tolerance (a near tie)."""
    if reference.shape != candidate.shape:
        return {"compared": int(len(reference)), "passed": False,
                "error": f"shape mismatch: PyTorch {list(reference.shape)}, ONNX {list(candidate.shape)}"}
    n = len(reference)
    diff = float(np.abs(reference - candidate).max()) if n else 0.0
    scale = float(np.abs(reference).max()) if n else 0.0
    tolerance = rel_tolerance * max(1.0, scale)
    disagree = reference.argmax(-1) != candidate.argmax(-1) if n else np.zeros(0, bool)
    if reference.shape[-1] >= 2 and n:
        top2 = np.sort(reference, axis=-1)[:, -2:]
        margin = top2[:, 1] - top2[:, 0]
    else:
        margin = np.full(n, np.inf)
    beyond_ties = int((disagree & (margin > 2 * tolerance)).sum())
    finite = bool(np.isfinite(candidate).all())
    return {"compared": int(n), "max_abs_diff": diff, "logit_scale": scale, "rel_tolerance": rel_tolerance,
            "tolerance": tolerance, "argmax_agreement": float(1.0 - disagree.mean()) if n else 1.0,
            "argmax_disagreements": int(disagree.sum()), "argmax_disagreements_beyond_near_ties": beyond_ties,
            "passed": bool(finite and n > 0 and diff <= tolerance and beyond_ties == 0)}


def _parity_items(run, cap: int) -> tuple[list, dict]:
    """The items parity is checked on: the report's eval items (first ``cap``); image / audio files that are gone
    are skipped, and when none is left, seeded synthetic inputs stand in (the record says which)."""
    preds = run.report.get("eval_predictions") or {}
    if run.spec.token_level:
        items = [list(s) for s in preds.get("tokens") or [] if s]
        source = "the run's eval sentences (report.json eval_predictions.tokens)"
        if not items:
            items, source = [["synthetic", "sentence", str(i)] for i in range(4)], "4 synthetic sentences (the report holds no eval sentences)"
        return items[:cap], {"inputs": source, "items": min(len(items), cap), "items_available": len(items), "cap": cap}
    items = list(preds.get("items") or [])
    available = len(items)
    if run.modality != "text":
        items = [x for x in items if Path(str(x)).is_file()]
    source = "the run's eval items (report.json eval_predictions.items)"
    if len(items) < available:
        source += f"; {available - len(items)} eval file(s) no longer on disk were skipped"
    if not items:
        kind = {"image": "random-noise images", "audio": "random-noise clips"}.get(run.modality, "texts")
        items, source = _synthetic(run.modality), f"synthetic inputs: 8 seeded {kind} (the run's eval items are not available)"
    return items[:cap], {"inputs": source, "items": min(len(items), cap), "items_available": available, "cap": cap}


def _synthetic(modality: str) -> list:
    rng = np.random.default_rng(0)
    if modality == "image":
        from PIL import Image

        return [Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)) for _ in range(8)]
    if modality == "audio":
        return [((0.1 * rng.standard_normal(16000)).astype(np.float32), 16000) for _ in range(8)]
    return [f"synthetic example text number {i}" for i in range(8)]


@torch.no_grad()
def _parity(model, graph: _OnnxGraph, task: TaskSpec, items: list, rel_tolerance: float) -> dict:
    """Both pipelines end to end on ``items``: PyTorch (the run's backbone preprocessing + model) and ONNX (the
    exported preprocessing + onnxruntime), in batches of :data:`BATCH_SIZE`."""
    ref, got = [], []
    if task.token_level:
        enc_ref = encode(model.tokenizer, items, model.max_length)
        enc_got = encode(graph.tokenizer, items, graph.max_length)   # type: ignore[attr-defined]
        if enc_ref.input_ids != enc_got.input_ids:
            raise ExportError("the exported tokenizer splits the eval sentences differently from the run's; the export "
                              "is not usable")
        for start in range(0, len(enc_ref), BATCH_SIZE):
            idx = list(range(start, min(start + BATCH_SIZE, len(enc_ref))))
            batch, _ = model.collate(enc_ref, idx)
            real = batch["attention_mask"].numpy().astype(bool)
            ref.append(model(**batch).float().numpy()[real])
            got.append(graph.logits(graph.collate(enc_got, idx)[0])[real])   # type: ignore[attr-defined]
    else:
        for start in range(0, len(items), BATCH_SIZE):
            chunk = items[start:start + BATCH_SIZE]
            ref.append(model(**model.backbone.preprocess(chunk)).float().numpy())
            got.append(graph.logits(graph.preprocess(chunk)))   # type: ignore[attr-defined]
    k = len(graph.labels)
    result = compare_logits(np.concatenate(ref) if ref else np.zeros((0, k)), np.concatenate(got) if got else np.zeros((0, k)),
                            rel_tolerance=rel_tolerance)
    return {"unit": "tokens" if task.token_level else "items", **result}


# ---------------------------------------------------------------- the export

class _Positional(nn.Module):
    """torch.onnx.export passes tensors positionally; TransferLab models take them by name."""

    def __init__(self, model: nn.Module, names: Sequence[str]):
        super().__init__()
        self.model, self.names = model, list(names)

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        return self.model(**dict(zip(self.names, tensors)))


@contextlib.contextmanager
def _quiet():
    """The exporters warn (TracerWarning, axis renames) and may print; library code does neither."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


def _dynamic_axes(backbone, modality: str) -> dict[str, dict[int, str]]:
    """Which input axes vary with the input: batch always; the others found by preprocessing a short and a long
    synthetic item (text: sequence; speech encoders that pad to the longest clip: time; fixed-size images: none)."""
    if modality == "text":
        short, long = ["a"], [" ".join(["word"] * 40)]
    elif modality == "image":
        from PIL import Image

        short, long = [Image.new("RGB", (20, 20))], [Image.new("RGB", (96, 64))]
    else:
        short, long = [(np.zeros(8000, np.float32), 16000)], [(np.zeros(24000, np.float32), 16000)]
    a, b = backbone.preprocess(short), backbone.preprocess(long)
    axes: dict[str, dict[int, str]] = {}
    for name, tensor in b.items():
        axes[name] = {0: "batch"}
        for dim in range(1, tensor.dim()):
            if name in a and a[name].shape[dim] != tensor.shape[dim]:
                axes[name][dim] = _AXIS_NAMES.get(modality, {}).get(dim, f"{name}_dim{dim}")
    return axes


def _trace_example(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """At least two rows: torch.export specialises axes of size 1, which would freeze the batch axis."""
    if next(iter(batch.values())).shape[0] >= 2:
        return batch
    return {k: torch.cat([v, v]) for k, v in batch.items()}


def _export_graph(model: nn.Module, example: dict[str, torch.Tensor], axes: dict[str, dict[int, str]],
                  output_axes: dict[int, str], path: Path, what: str) -> str:
    """Write ``path``; return which exporter made it: the dynamo one, else (if it cannot trace) the TorchScript one."""
    names = list(example)
    wrapped = _Positional(model, names).eval()
    # one self-contained .onnx file, unless the weights pass protobuf's 2 GB limit
    big = sum(p.numel() * p.element_size() for p in model.parameters()) > 1_800_000_000
    args = tuple(example[n] for n in names)
    try:
        with _quiet():
            torch.onnx.export(wrapped, args, str(path), input_names=names, output_names=["logits"], dynamo=True,
                              dynamic_shapes=(tuple(axes[n] for n in names),), external_data=big)
        return "torch.onnx.export(dynamo=True)"
    except Exception as exc:   # the exporters raise many types; the TorchScript one gets its chance below
        dynamo_error = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ''}"
        log.info("dynamo ONNX export of %s failed (%s); trying the TorchScript exporter", what, dynamo_error)
    for leftover in path.parent.glob(path.name + "*"):
        leftover.unlink()
    try:
        with _quiet():
            torch.onnx.export(wrapped, args, str(path), input_names=names, output_names=["logits"], dynamo=False,
                              dynamic_axes={**axes, "logits": output_axes}, opset_version=17)
    except Exception as exc:
        raise ExportError(f"torch.onnx.export cannot export {what}: dynamo exporter — {dynamo_error}; TorchScript "
                          f"exporter — {type(exc).__name__}: {str(exc).strip()[:200]}") from None
    return f"torch.onnx.export(dynamo=False, TorchScript; the dynamo exporter failed: {dynamo_error})"


def export_onnx(run: str | Path, *, out: Optional[str | Path] = None, rel_tolerance: float = REL_TOLERANCE,
                max_items: int = PARITY_CAP, progress: ProgressFn = no_progress) -> ExportResult:
    """Export the run's model after transfer to ONNX in ``out`` (default ``RUN/export/onnx``), check parity with
    the PyTorch model on the run's eval items, and return what was written (module docstring). Raises
    ``ConfigError`` for an unsupported run or an existing export, ``ExportError`` when parity fails."""
    import onnx
    import onnxruntime

    loaded = LoadedRun(run)
    why = refusal(loaded)
    if why:
        raise ConfigError(f"{loaded.path}: cannot export to ONNX — {why}")
    dest = _destination(loaded.path, out)
    config = _model_config(loaded.path)
    name = config.get("backbone") or loaded.report.get("backbone") or ""
    kind, task, spec, modality = config["backbone_spec"]["kind"], loaded.task, loaded.spec, loaded.modality
    what = f"the {modality} backbone {name!r} ({kind})"

    progress(Progress("export", 0, 3, "loading the model"))
    model = loaded.after_model.eval()
    backbone = model.backbone
    labels = list(model.tags if spec.token_level else model.classes)
    items, parity_info = _parity_items(loaded, max_items)

    made_parent = not dest.parent.exists()   # RUN/export/ is removed again if the export fails
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp", dir=dest.parent))   # one per export, even in one process
    tmp.chmod(0o755)   # mkdtemp's 0700 would hide the export from everyone but its writer
    try:
        progress(Progress("export", 1, 3, f"exporting {what} with torch.onnx"))
        if spec.token_level:
            example, _ = model.collate(encode(model.tokenizer, items[:2], model.max_length), list(range(min(2, len(items)))))
            axes = {k: {0: "batch", 1: "sequence"} for k in example}
            output_axes = {0: "batch", 1: "sequence"}
        else:
            example = backbone.preprocess(items[:2])
            axes = _dynamic_axes(backbone, modality)
            output_axes = {0: "batch"}
        exporter = _export_graph(model, _trace_example(dict(example)), axes, output_axes, tmp / ONNX_FILE, what)
        attrs = _save_processor(backbone, kind, tmp)
        graph_inputs = _graph_signature(tmp / ONNX_FILE)
        doc = {"format": "onnx", "model": ONNX_FILE, "task": task, "modality": modality, "backbone": name,
               **_preprocessing_doc(kind, spec, backbone, attrs, graph_inputs["inputs"]),
               "outputs": graph_inputs["outputs"],
               "labels": f"labels.json: the {'tag' if spec.token_level else 'class'} of each logit, in order; "
                         + ("softmax over the last axis gives the probabilities TransferLab shows" if spec.output == "softmax"
                            else "the sigmoid of each logit gives that label's probability (thresholds: model/thresholds.json)"),
               "tlcore": {"task": task, "modality": modality, "kind": kind, "attrs": attrs}}
        doc["python"] = doc["python"] + [
            "import onnxruntime as ort",
            f"session = ort.InferenceSession(EXPORT_DIR + '/{ONNX_FILE}')",
            "logits = session.run(['logits'], {i.name: INPUTS[i.name] for i in session.get_inputs()})[0]"]
        _write_json(tmp / "preprocessing.json", doc)
        _write_json(tmp / "labels.json", labels)

        progress(Progress("export", 2, 3, f"checking parity on {len(items)} eval {spec.unit}"))
        graph = (OnnxTagger if spec.token_level else OnnxClassifier)(tmp)
        parity = {**parity_info, **_parity(model, graph, spec, items, rel_tolerance)}
        record = {"format": "onnx", "file": ONNX_FILE, "folder": _shown(dest, loaded.path), "exporter": exporter,
                  "opset": graph_inputs["opset"],
                  "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
                  "torch": torch.__version__, "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__,
                  "task": task, "modality": modality, "backbone": name,
                  "model_sha256": _sha256(loaded.path / "model" / "model.safetensors"),
                  "inputs": graph_inputs["inputs"], "outputs": graph_inputs["outputs"], "parity": parity}
        if not parity["passed"]:
            raise ExportError(f"the ONNX export of {what} does not reproduce the PyTorch model: " + _parity_line(parity)
                              + "; nothing was written")
        _write_json(tmp / "parity.json", record)
        (tmp / "README.md").write_text(model_card_markdown(loaded.report, export=record))
        progress(Progress("export", 3, 3, "done"))
        try:
            os.replace(tmp, dest)   # onto a missing or empty folder only: never over another export
        except OSError:
            raise ConfigError(f"{dest} was filled while exporting (another export?); nothing was overwritten") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if made_parent and not dest.exists():
            with contextlib.suppress(OSError):
                dest.parent.rmdir()
    return ExportResult(dest, record, doc, labels)


# ---------------------------------------------------------------- reading an export back

def read_export(folder: str | Path) -> Optional[dict]:
    """``parity.json`` of a finished export folder (what the model card's Export section renders), else None."""
    path = Path(folder) / "parity.json"
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def export_zip(folder: str | Path) -> bytes:
    """The export folder as zip bytes (entries under ``onnx/``), for a download."""
    folder = Path(folder)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(folder.rglob("*")):
            if f.is_file():
                zf.write(f, f"onnx/{f.relative_to(folder)}")
    return buf.getvalue()


def parity_summary(record: dict) -> str:
    """One line for people: how many items were compared and how close the logits are."""
    return _parity_line(record.get("parity") or {})


def _parity_line(p: dict) -> str:
    if "error" in p:
        return p["error"]
    if p.get("unit") == "tokens":
        unit = f"tokens of {p.get('items', '?')} sentences"
    else:
        unit = "items"
    capped = f" (first {p['items']} of {p['items_available']})" if p.get("items_available", 0) > p.get("items", 0) else ""
    return (f"{p.get('compared', 0)} {unit}{capped}: max |Δ logit| {p.get('max_abs_diff', float('nan')):.2e} "
            f"(tolerance {p.get('tolerance', float('nan')):.1e}), argmax agreement {100 * p.get('argmax_agreement', 0):.1f}%")


# ---------------------------------------------------------------- small helpers

def _graph_signature(path: Path) -> dict:
    """Names, dtypes and shapes (ints, or the names of dynamic axes) of the graph's inputs and outputs; its opset."""
    import onnx
    from onnx.helper import tensor_dtype_to_np_dtype

    def describe(values) -> list[dict]:
        return [{"name": v.name, "dtype": str(tensor_dtype_to_np_dtype(v.type.tensor_type.elem_type)),
                 "shape": [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]} for v in values]

    proto = onnx.load(str(path), load_external_data=False)
    opset = max((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), default=None)
    return {"inputs": describe(proto.graph.input), "outputs": describe(proto.graph.output), "opset": opset}


def _shown(dest: Path, run_dir: Path) -> str:
    try:
        return str(dest.resolve().relative_to(run_dir.resolve()))
    except ValueError:
        return str(dest)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _read_json(path: Path, want: type = dict):
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        raise DataError(f"{path}: missing or unreadable; the ONNX export is incomplete — delete its folder and export "
                        "again") from None
    if not isinstance(data, want):
        raise DataError(f"{path} is not a JSON {want.__name__}; delete the export folder and export again")
    return data


def _write_json(path: Path, data) -> None:
    path.write_text(json.dumps(data, indent=2, default=float))
