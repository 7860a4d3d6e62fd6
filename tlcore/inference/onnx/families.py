"""The preprocessing that travels with an ONNX export, one entry per backbone kind (``backbone_spec["kind"]`` of a
saved model): what is saved next to ``model.onnx`` (:attr:`Family.save`), how the export folder alone turns raw items
into the graph's inputs with the backbone's own preprocessing function (:attr:`Family.preprocessor`), and how
``preprocessing.json`` explains it to someone without TransferLab (:attr:`Family.describe`).

``transformers`` is imported where a tokenizer or processor is read back: it takes seconds to import.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from tlcore.errors import ConfigError
from tlcore.models.audio import fit_chunk, speech_preprocess, whisper_preprocess
from tlcore.models.efficientnet_lite import IMAGENET_LITE_NORMALIZE
from tlcore.models.image import lite_preprocess, processor_preprocess
from tlcore.models.text import tokenize
from tlcore.tasks import TaskSpec

Preprocess = Callable[[Sequence[Any]], dict[str, torch.Tensor]]


@dataclass(frozen=True)
class Family:
    """One backbone kind's export of its preprocessing."""

    kind: str
    save: Callable[[Any, Path], dict]            # (backbone, export folder) -> attrs: write its processor files
    preprocessor: Callable[[Path, dict], Preprocess]   # (export folder, attrs) -> raw items -> input tensors
    describe: Callable[[Any, dict, TaskSpec], dict]    # (backbone, attrs, task) -> sections of preprocessing.json


def _r(x: float) -> float:
    return round(float(x), 6)


# ---------------------------------------------------------------- EfficientNet-Lite (bundled image backbone)

def _lite_save(backbone, folder: Path) -> dict:
    return {"image_size": int(backbone.image_size)}


def _lite_preprocessor(folder: Path, attrs: dict) -> Preprocess:
    size = attrs["image_size"]
    return lambda items: lite_preprocess(list(items), size)


def _lite_describe(backbone, attrs: dict, task: TaskSpec) -> dict:
    n, size = IMAGENET_LITE_NORMALIZE, attrs["image_size"]
    return {
        "image": {
            "color": "RGB (grayscale replicated to 3 channels, alpha dropped)",
            "resize": {"width": size, "height": size, "interpolation": "bilinear (PIL.Image.BILINEAR)",
                       "keep_aspect_ratio": False, "crop": None},
            "scale": "uint8 pixel values / 255 -> [0, 1]",
            "normalize": f"(x * {n['scale']:g} - {n['mean']:g}) / {n['std']:g}, the same for every channel",
            "mean": [_r(n["mean"] / n["scale"])] * 3, "std": [_r(n["std"] / n["scale"])] * 3,
            "mean_std_units": "of x in [0, 1]: (x - mean) / std",
            "layout": f"float32 NCHW (batch, 3, {size}, {size}), channels in RGB order",
        },
        "steps": [f"open the image as RGB; resize to {size}x{size} (bilinear, no crop, aspect ratio not kept)",
                  "divide by 255", "normalize: (x * 255 - 127) / 128 on every channel",
                  "transpose HWC -> CHW and stack into float32 (batch, 3, H, W)"],
        "python": ["from PIL import Image; import numpy as np",
                   f"x = np.asarray(Image.open(p).convert('RGB').resize(({size}, {size}), Image.BILINEAR), np.float32) / 255",
                   "pixel_values = ((x * 255 - 127) / 128).transpose(2, 0, 1)[None]"],
    }


# ---------------------------------------------------------------- Hugging Face image encoders

def _image_save(backbone, folder: Path) -> dict:
    backbone.processor.save_pretrained(folder)
    return {}


def _image_preprocessor(folder: Path, attrs: dict) -> Preprocess:
    from transformers import AutoImageProcessor

    processor = AutoImageProcessor.from_pretrained(folder)
    return lambda items: processor_preprocess(processor, list(items))


def _image_describe(backbone, attrs: dict, task: TaskSpec) -> dict:
    keys = ("do_resize", "size", "resample", "do_center_crop", "crop_size", "do_rescale", "rescale_factor",
            "do_normalize", "image_mean", "image_std", "do_convert_rgb")
    config = backbone.processor.to_dict()
    return {
        "image": {"processor": f"{type(backbone.processor).__name__}: preprocessor_config.json in this folder",
                  **{k: config[k] for k in keys if k in config}, "layout": "float32 NCHW, RGB"},
        "steps": ["open the image as RGB", "run the image processor saved here (resize / crop / rescale / "
                  "normalize as listed under 'image')"],
        "python": ["from transformers import AutoImageProcessor",
                   "pixel_values = AutoImageProcessor.from_pretrained(EXPORT_DIR)(images=[img], return_tensors='np')['pixel_values']"],
    }


# ---------------------------------------------------------------- Hugging Face text encoders

def _text_save(backbone, folder: Path) -> dict:
    backbone.tokenizer.save_pretrained(folder)
    return {"max_length": int(backbone.max_length)}


def _text_preprocessor(folder: Path, attrs: dict) -> Preprocess:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    return lambda items: tokenize(tokenizer, list(items), attrs["max_length"])


def _text_describe(backbone, attrs: dict, task: TaskSpec) -> dict:
    text = {"tokenizer": f"{type(backbone.tokenizer).__name__}: the tokenizer files in this folder",
            "max_length": attrs["max_length"], "truncation": True,
            "padding": "to the longest text of the batch (right); attention_mask 1 on real tokens",
            "special_tokens": "added by the tokenizer ([CLS] ... [SEP] style)"}
    call = "padding=True, truncation=True"
    if task.token_level:
        text["words"] = ("split the sentence on whitespace and tokenize the words with is_split_into_words=True; "
                         "a word's tag is the argmax of the logits at its first sub-token (labels.json)")
        call += ", is_split_into_words=True"
    return {
        "text": text,
        "steps": ["tokenize with the tokenizer saved here: padding=True, truncation=True, "
                  f"max_length={attrs['max_length']}", "feed every tensor the model lists under 'inputs' as int64"],
        "python": ["from transformers import AutoTokenizer",
                   f"enc = AutoTokenizer.from_pretrained(EXPORT_DIR)(texts, {call}, max_length={attrs['max_length']}, "
                   "return_tensors='np')"],
    }


# ---------------------------------------------------------------- speech: the Whisper encoder and HF encoders

def _speech_save(backbone, folder: Path) -> dict:
    backbone.feature_extractor.save_pretrained(folder)
    return {"sample_rate": int(backbone.sample_rate)}


def _whisper_save(backbone, folder: Path) -> dict:
    attrs = _speech_save(backbone, folder)
    path = folder / "preprocessor_config.json"   # a whole-second chunk saved as an int loads with int sample counts
    config = json.loads(path.read_text())
    if isinstance(config.get("chunk_length"), float) and config["chunk_length"].is_integer():
        config["chunk_length"] = int(config["chunk_length"])
        path.write_text(json.dumps(config, indent=2))
    return attrs


def _whisper_preprocessor(folder: Path, attrs: dict) -> Preprocess:
    from transformers import WhisperFeatureExtractor

    fe = WhisperFeatureExtractor.from_pretrained(folder)
    fe = fit_chunk(fe, fe.chunk_length)
    return lambda items: whisper_preprocess(fe, list(items), attrs["sample_rate"])


def _speech_preprocessor(folder: Path, attrs: dict) -> Preprocess:
    from transformers import AutoFeatureExtractor

    fe = AutoFeatureExtractor.from_pretrained(folder)
    return lambda items: speech_preprocess(fe, list(items), attrs["sample_rate"])


def _speech_doc(backbone, attrs: dict, steps: list[str], **audio: Any) -> dict:
    fe, sr = backbone.feature_extractor, attrs["sample_rate"]
    return {
        "audio": {"sample_rate": sr, "channels": "mono (average the channels)", "dtype": "float32 waveform in [-1, 1]",
                  "feature_extractor": f"{type(fe).__name__}: preprocessor_config.json in this folder", **audio},
        "steps": [f"load as mono float32 and resample to {sr} Hz", *steps],
        "python": ["from transformers import AutoFeatureExtractor",
                   f"feats = AutoFeatureExtractor.from_pretrained(EXPORT_DIR)(waves, sampling_rate={sr}, padding=True, "
                   "return_tensors='np')"],
    }


def _whisper_describe(backbone, attrs: dict, task: TaskSpec) -> dict:
    fe, seconds = backbone.feature_extractor, float(backbone.chunk_seconds)
    samples = int(seconds * attrs["sample_rate"])
    return _speech_doc(backbone, attrs, [f"pad or cut to {seconds:g} s",
                                         "Whisper log-mel features with the feature extractor saved here"],
                       clip_seconds=seconds, pad_or_cut=f"zero-pad or cut each clip to {samples} samples",
                       features=f"Whisper log-mel spectrogram: {fe.feature_size} mel bins, n_fft {fe.n_fft}, "
                                f"hop {fe.hop_length} -> ({fe.feature_size}, {samples // fe.hop_length})")


def _speech_describe(backbone, attrs: dict, task: TaskSpec) -> dict:
    return _speech_doc(backbone, attrs, ["run the feature extractor saved here with padding=True"],
                       padding="to the longest clip of the batch")


FAMILIES: dict[str, Family] = {f.kind: f for f in (
    Family("efficientnet_lite", _lite_save, _lite_preprocessor, _lite_describe),
    Family("hf_image", _image_save, _image_preprocessor, _image_describe),
    Family("hf_text", _text_save, _text_preprocessor, _text_describe),
    Family("whisper_encoder", _whisper_save, _whisper_preprocessor, _whisper_describe),
    Family("hf_audio", _speech_save, _speech_preprocessor, _speech_describe),
)}
#: Backbone kinds whose models export.
KINDS = tuple(FAMILIES)


def family(kind: str, where: Path | str = "") -> Family:
    """The export family of backbone kind ``kind``; ConfigError for a kind this TransferLab does not know."""
    if kind not in FAMILIES:
        raise ConfigError(f"export in {where} has an unknown preprocessing kind {kind!r}; was it made by a newer "
                          f"TransferLab? Known kinds: {', '.join(KINDS)}")
    return FAMILIES[kind]
