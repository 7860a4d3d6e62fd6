"""The preprocessing that travels with an ONNX export. Its facts are the backbone's own preprocessing config
(``Backbone.preprocessing()``, the ``preprocessing.json`` of a model folder), never restated here:

* :func:`save_preprocessing` writes the backbone's processor files next to ``model.onnx`` and returns its config,
  kept as ``preprocessing.json['tlcore']['attrs']`` of the export;
* :func:`preprocessor` rebuilds, from the export folder alone, the function that turns raw items into the graph's
  inputs: the backbone class's own (``Backbone.preprocessor``), read from that config;
* :func:`describe` writes the human part of ``preprocessing.json`` (what someone without TransferLab does to raw
  inputs) from that config, one writer per backbone kind (``backbone_spec["kind"]`` of a saved model).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from tlcore.models.base import Backbone, Preprocess
from tlcore.models.registry import kind_preprocessor
from tlcore.tasks import TaskSpec


def _r(x: float) -> float:
    return round(float(x), 6)


def save_preprocessing(backbone: Backbone, folder: Path) -> dict:
    """Write the backbone's processor files into the export ``folder``; return its preprocessing config."""
    backbone.save_processor(folder)
    return backbone.preprocessing()


def preprocessor(kind: str, folder: Path, attrs: dict) -> Preprocess:
    """Raw items -> the graph's inputs, from the export ``folder`` and its saved config ``attrs`` (an export made
    before the whole config was saved holds only its size / max length / sample rate: the rest is the default's)."""
    return kind_preprocessor(kind, folder, attrs, where=f"export in {folder}")


# ---------------------------------------------------------------- EfficientNet-Lite (bundled image backbone)

def _lite_describe(c: dict, task: TaskSpec) -> dict:
    size, interpolation, mean, std = c["image_size"], c["interpolation"], c["mean"], c["std"]
    uniform = len(set(mean)) == 1 and len(set(std)) == 1
    formula = f"(x * 255 - {255 * mean[0]:g}) / {255 * std[0]:g}" if uniform else "(x - mean) / std"
    pil = f"Image.{interpolation.upper()}"
    return {
        "image": {
            "color": "RGB (grayscale replicated to 3 channels, alpha dropped)",
            "resize": {"width": size, "height": size, "interpolation": f"{interpolation} (PIL.{pil})",
                       "keep_aspect_ratio": c["keep_aspect_ratio"], "crop": c["crop"]},
            "scale": "uint8 pixel values / 255 -> [0, 1]",
            "normalize": f"{formula}, the same for every channel" if uniform else f"{formula} per channel (R, G, B)",
            "mean": [_r(m) for m in mean], "std": [_r(s) for s in std],
            "mean_std_units": "of x in [0, 1]: (x - mean) / std",
            "layout": f"float32 NCHW (batch, 3, {size}, {size}), channels in RGB order",
        },
        "steps": [f"open the image as RGB; resize to {size}x{size} ({interpolation}, no crop, aspect ratio not kept)",
                  "divide by 255", f"normalize: {formula} on every channel",
                  "transpose HWC -> CHW and stack into float32 (batch, 3, H, W)"],
        "python": ["from PIL import Image; import numpy as np",
                   f"x = np.asarray(Image.open(p).convert('RGB').resize(({size}, {size}), {pil}), np.float32) / 255",
                   f"pixel_values = ({formula if uniform else f'(x - np.array({mean})) / np.array({std})'})"
                   ".transpose(2, 0, 1)[None]"],
    }


# ---------------------------------------------------------------- Hugging Face image encoders

def _image_describe(c: dict, task: TaskSpec) -> dict:
    settings = {k: v for k, v in c.items() if k not in ("kind", "modality", "processor", "color")}
    return {
        "image": {"processor": f"{c['processor']}: preprocessor_config.json in this folder", **settings,
                  "layout": "float32 NCHW, RGB"},
        "steps": ["open the image as RGB", "run the image processor saved here (resize / crop / rescale / "
                  "normalize as listed under 'image')"],
        "python": ["from transformers import AutoImageProcessor",
                   "pixel_values = AutoImageProcessor.from_pretrained(EXPORT_DIR)(images=[img], return_tensors='np')['pixel_values']"],
    }


# ---------------------------------------------------------------- Hugging Face text encoders

def _text_describe(c: dict, task: TaskSpec) -> dict:
    max_length = c["max_length"]
    text = {"tokenizer": f"{c['tokenizer']}: the tokenizer files in this folder",
            "max_length": max_length, "truncation": c["truncation"],
            "padding": f"to the {c['padding']} text of the batch ({c['padding_side']}); attention_mask 1 on real tokens",
            "special_tokens": "added by the tokenizer ([CLS] ... [SEP] style)"}
    call = "padding=True, truncation=True"
    if task.token_level:
        text["words"] = ("split the sentence on whitespace and tokenize the words with is_split_into_words=True; "
                         "a word's tag is the argmax of the logits at its first sub-token (labels.json)")
        call += ", is_split_into_words=True"
    return {
        "text": text,
        "steps": ["tokenize with the tokenizer saved here: padding=True, truncation=True, "
                  f"max_length={max_length}", "feed every tensor the model lists under 'inputs' as int64"],
        "python": ["from transformers import AutoTokenizer",
                   f"enc = AutoTokenizer.from_pretrained(EXPORT_DIR)(texts, {call}, max_length={max_length}, "
                   "return_tensors='np')"],
    }


# ---------------------------------------------------------------- speech: the Whisper encoder and HF encoders

def _speech_doc(c: dict, steps: list[str], **audio: Any) -> dict:
    sr = c["sample_rate"]
    return {
        "audio": {"sample_rate": sr, "channels": "mono (average the channels)", "dtype": "float32 waveform in [-1, 1]",
                  "feature_extractor": f"{c['feature_extractor']}: preprocessor_config.json in this folder", **audio},
        "steps": [f"load as mono float32 and resample to {sr} Hz", *steps],
        "python": ["from transformers import AutoFeatureExtractor",
                   f"feats = AutoFeatureExtractor.from_pretrained(EXPORT_DIR)(waves, sampling_rate={sr}, padding=True, "
                   "return_tensors='np')"],
    }


def _whisper_describe(c: dict, task: TaskSpec) -> dict:
    seconds, hop, bins = float(c["chunk_seconds"]), c["hop_length"], c["mel_bins"]
    samples = int(seconds * c["sample_rate"])
    return _speech_doc(c, [f"pad or cut to {seconds:g} s", "Whisper log-mel features with the feature extractor saved here"],
                       clip_seconds=seconds, pad_or_cut=f"zero-pad or cut each clip to {samples} samples",
                       features=f"Whisper log-mel spectrogram: {bins} mel bins, n_fft {c['n_fft']}, hop {hop} -> "
                                f"({bins}, {samples // hop})")


def _speech_describe(c: dict, task: TaskSpec) -> dict:
    return _speech_doc(c, ["run the feature extractor saved here with padding=True"],
                       padding="to the longest clip of the batch")


#: How ``preprocessing.json`` explains each backbone kind's preprocessing: (its config, the task) -> sections.
DESCRIBE: dict[str, Callable[[dict, TaskSpec], dict]] = {
    "efficientnet_lite": _lite_describe,
    "hf_image": _image_describe,
    "hf_text": _text_describe,
    "whisper_encoder": _whisper_describe,
    "hf_audio": _speech_describe,
}
#: Backbone kinds whose models export.
KINDS = tuple(DESCRIBE)


def describe(kind: str, config: dict, task: TaskSpec) -> dict:
    """The ``preprocessing.json`` sections (the modality's section, ``steps``, ``python``) of backbone ``kind``."""
    return DESCRIBE[kind](config, task)
