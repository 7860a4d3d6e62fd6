"""Speech backbones: the Whisper encoder (bundled tiny.en weights, converted once) and HF audio encoders.

Whisper's encoder insists on 30 s of mel frames; for short clips we keep the first ``N`` position
embeddings and a feature extractor with ``chunk_length = N / 50`` seconds (N = 100 -> 2 s), ~12x faster.

``transformers`` (and ``torchaudio`` for resampling) are imported where they are used: they take seconds to import,
and importing the engine stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from tlcore.data.audio import load_audio
from tlcore.models.base import Backbone
from tlcore.models.text import find_layers


def load_wave(item: Any, sample_rate: int) -> np.ndarray:
    """A path, file bytes, or a ``(waveform, sample_rate)`` pair as mono float32 at ``sample_rate``."""
    if isinstance(item, tuple):
        wave, sr = item
        wave = np.asarray(wave, dtype=np.float32)
        wave = wave.mean(axis=1) if wave.ndim == 2 else wave
        if sr != sample_rate:
            import torchaudio.functional as AF

            wave = AF.resample(torch.from_numpy(wave), sr, sample_rate).numpy()
        return wave
    return load_audio(item, sample_rate)


def whisper_preprocess(feature_extractor, items: Sequence[Any], sample_rate: int) -> dict[str, torch.Tensor]:
    """The Whisper encoder's preprocessing: log-mel features of each clip, padded or cut to the extractor's window
    (an ONNX export runs the same function with the feature extractor it saved)."""
    waves = [load_wave(i, sample_rate) for i in items]
    feats = feature_extractor(waves, sampling_rate=sample_rate, return_tensors="pt")
    return {"input_features": feats["input_features"]}


def speech_preprocess(feature_extractor, items: Sequence[Any], sample_rate: int) -> dict[str, torch.Tensor]:
    """A Hugging Face speech encoder's preprocessing: its feature extractor on the clips, padded to the longest (an
    ONNX export runs the same function with the feature extractor it saved)."""
    waves = [load_wave(i, sample_rate) for i in items]
    return dict(feature_extractor(waves, sampling_rate=sample_rate, padding=True, return_tensors="pt"))


class WhisperEncoderBackbone(Backbone):
    modality = "audio"
    lora_target_modules = ["q_proj", "v_proj"]

    def __init__(self, encoder: nn.Module, feature_extractor, chunk_seconds: float):
        super().__init__()
        self.net = encoder
        self.feature_extractor = feature_extractor
        self.chunk_seconds = chunk_seconds
        self.feature_dim = int(encoder.config.d_model)
        self.sample_rate = int(feature_extractor.sampling_rate)

    def preprocess(self, items: Sequence[Any]) -> dict[str, torch.Tensor]:
        return whisper_preprocess(self.feature_extractor, items, self.sample_rate)

    def forward(self, input_features: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return self.net(input_features=input_features).last_hidden_state.mean(1)

    def blocks(self) -> list[nn.Module]:
        return list(self.net.layers)

    def save_backbone(self, folder: Path) -> dict:
        self.net.config.save_pretrained(folder)
        self.feature_extractor.save_pretrained(folder)
        return {"kind": "whisper_encoder", "chunk_seconds": self.chunk_seconds}

    @classmethod
    def from_folder(cls, folder: Path, spec: dict) -> "WhisperEncoderBackbone":
        from transformers import WhisperConfig, WhisperFeatureExtractor
        from transformers.models.whisper.modeling_whisper import WhisperEncoder

        config = WhisperConfig.from_pretrained(folder)
        fe = fit_chunk(WhisperFeatureExtractor.from_pretrained(folder), spec["chunk_seconds"])
        return cls(WhisperEncoder(config), fe, spec["chunk_seconds"])


def fit_chunk(fe, chunk_seconds: float):
    """Cut the feature extractor's window to ``chunk_seconds``. The sample and frame counts must be ints: a saved
    extractor stores ``chunk_length`` as a float (2.0), and transformers then pads by a float count and fails."""
    fe.chunk_length = chunk_seconds
    fe.n_samples = int(round(chunk_seconds * fe.sampling_rate))
    fe.nb_max_frames = fe.n_samples // fe.hop_length
    return fe


def _short_encoder(config, chunk_seconds: float):
    positions = int(round(chunk_seconds * 50))
    config.max_source_positions = positions
    return positions


def whisper_encoder_backbone(folder: str | Path, *, pretrained: bool = True, chunk_seconds: float = 2.0, config_overrides: dict | None = None) -> WhisperEncoderBackbone:
    """The encoder of a Whisper checkpoint folder (HF layout), cut to ``chunk_seconds`` of audio."""
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperModel
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    fe = fit_chunk(WhisperFeatureExtractor.from_pretrained(folder, chunk_length=chunk_seconds), chunk_seconds)
    if pretrained and not config_overrides:
        full = WhisperModel.from_pretrained(folder).encoder
        positions = _short_encoder(full.config, chunk_seconds)
        weight = full.embed_positions.weight.data[:positions].clone()
        encoder = WhisperEncoder(full.config)
        state = {k: v for k, v in full.state_dict().items() if k != "embed_positions.weight"}
        encoder.load_state_dict(state, strict=False)
        encoder.embed_positions.weight.data.copy_(weight)
    else:
        config = WhisperConfig.from_pretrained(folder, **(config_overrides or {}))
        _short_encoder(config, chunk_seconds)
        encoder = WhisperEncoder(config)   # random init from torch's RNG: the caller seeds it
    return WhisperEncoderBackbone(encoder, fe, chunk_seconds)


class HFAudioBackbone(Backbone):
    """Any ``AutoModel`` speech encoder (wav2vec2, HuBERT, AST...) with its feature extractor; mean over time."""

    modality = "audio"

    def __init__(self, model: nn.Module, feature_extractor):
        super().__init__()
        self.net = model
        self.feature_extractor = feature_extractor
        self.feature_dim = int(model.config.hidden_size)
        self.sample_rate = int(feature_extractor.sampling_rate)
        names = {n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, nn.Linear)}
        self.lora_target_modules = [n for n in ("q_proj", "v_proj", "query", "value") if n in names] or sorted(names)

    def preprocess(self, items: Sequence[Any]) -> dict[str, torch.Tensor]:
        return speech_preprocess(self.feature_extractor, items, self.sample_rate)

    def forward(self, **batch: torch.Tensor) -> torch.Tensor:
        return self.net(**batch).last_hidden_state.mean(1)

    def blocks(self) -> list[nn.Module]:
        return list(find_layers(self.net))

    def save_backbone(self, folder: Path) -> dict:
        self.net.config.save_pretrained(folder)
        self.feature_extractor.save_pretrained(folder)
        return {"kind": "hf_audio"}

    @classmethod
    def from_folder(cls, folder: Path, spec: dict) -> "HFAudioBackbone":
        from transformers import AutoConfig, AutoFeatureExtractor, AutoModel

        return cls(AutoModel.from_config(AutoConfig.from_pretrained(folder)), AutoFeatureExtractor.from_pretrained(folder))


def hf_audio_backbone(source: str, *, pretrained: bool = True) -> HFAudioBackbone:
    from transformers import AutoConfig, AutoFeatureExtractor, AutoModel

    fe = AutoFeatureExtractor.from_pretrained(source)
    model = AutoModel.from_pretrained(source) if pretrained else AutoModel.from_config(AutoConfig.from_pretrained(source))
    return HFAudioBackbone(model, fe)
