"""Speech backbones: the Whisper encoder (bundled tiny.en weights, converted once) and HF audio encoders.

Whisper's encoder insists on 30 s of mel frames; for short clips we keep the first ``N`` position
embeddings and a feature extractor with ``chunk_length = N / 50`` seconds (N = 100 -> 2 s), ~12x faster.

Preprocessing configs (``preprocessing()``, saved as ``preprocessing.json``)::

    {"kind": "whisper_encoder", "modality": "audio", "feature_extractor": "WhisperFeatureExtractor",
     "sample_rate": 16000, "channels": "mono", "chunk_seconds": 2.0, "padding": "pad or cut to chunk_seconds",
     "mel_bins": 80, "n_fft": 400, "hop_length": 160}
    {"kind": "hf_audio", "modality": "audio", "feature_extractor": "Wav2Vec2FeatureExtractor", "sample_rate": 16000,
     "channels": "mono", "padding": "longest"}

``sample_rate`` (what clips are resampled to; it must be the feature extractor's) and ``chunk_seconds`` (the window,
which must match the encoder's position table) are read back; the feature extractor's own settings (mel bins, FFT,
hop) are listed for readers and live in the files saved next to the config.

``transformers`` (and ``torchaudio`` for resampling) are imported where they are used: they take seconds to import,
and importing the engine stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from tlcore.data.audio import load_audio
from tlcore.errors import ConfigError
from tlcore.models.base import PREPROCESSING_FILE, Preprocess, check_preprocessing
from tlcore.models.hf import HFBackbone


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


def _sample_rate(fe, config: dict, kind: str, fixed: dict) -> int:
    """Check an audio preprocessing ``config`` of ``kind`` (``fixed``: facts it cannot change) and return the sample
    rate it asks for, which must be the feature extractor's (it computes features at that one rate)."""
    check_preprocessing(config, kind, {"modality": "audio", "channels": "mono", **fixed})
    rate = config.get("sample_rate", fe.sampling_rate)
    if rate != fe.sampling_rate:
        raise ConfigError(f"{PREPROCESSING_FILE}: sample_rate {rate!r} is not the feature extractor's "
                          f"({fe.sampling_rate} Hz, preprocessor_config.json); clips are resampled to that rate")
    return int(rate)


def _chunk_seconds(fe, config: dict) -> float:
    seconds = config.get("chunk_seconds", fe.chunk_length)
    if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or seconds <= 0:
        raise ConfigError(f"{PREPROCESSING_FILE}: chunk_seconds must be a positive number of seconds, not {seconds!r}")
    return float(seconds)


_WHISPER_PADDING = {"padding": "pad or cut to chunk_seconds"}


class WhisperEncoderBackbone(HFBackbone):
    kind = "whisper_encoder"
    modality = "audio"

    def __init__(self, encoder: nn.Module, feature_extractor, chunk_seconds: float):
        super().__init__(encoder, fit_chunk(feature_extractor, chunk_seconds))
        self.chunk_seconds = chunk_seconds
        self.sample_rate = int(feature_extractor.sampling_rate)

    @property
    def feature_extractor(self):
        return self.processor

    def preprocess(self, items: Sequence[Any]) -> dict[str, torch.Tensor]:
        return whisper_preprocess(self.feature_extractor, items, self.sample_rate)

    def forward(self, input_features: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return self.net(input_features=input_features).last_hidden_state.mean(1)

    def preprocessing(self) -> dict:
        fe = self.feature_extractor
        return {"kind": self.kind, "modality": "audio", "feature_extractor": type(fe).__name__,
                "sample_rate": self.sample_rate, "channels": "mono", "chunk_seconds": self.chunk_seconds,
                **_WHISPER_PADDING, "mel_bins": fe.feature_size, "n_fft": fe.n_fft, "hop_length": fe.hop_length}

    def use_preprocessing(self, config: dict) -> None:
        self.sample_rate = _sample_rate(self.feature_extractor, config, self.kind, _WHISPER_PADDING)
        seconds = _chunk_seconds(self.feature_extractor, {"chunk_seconds": self.chunk_seconds, **config})
        positions = int(self.net.config.max_source_positions)
        if int(round(seconds * 50)) != positions:
            raise ConfigError(f"{PREPROCESSING_FILE}: chunk_seconds {seconds:g} does not fit the saved encoder, whose "
                              f"window is {positions / 50:g} s ({positions} positions)")
        self.chunk_seconds = seconds
        fit_chunk(self.feature_extractor, seconds)

    @classmethod
    def preprocessor(cls, folder: Path, config: dict) -> Preprocess:
        fe = cls.load_processor(folder)
        rate = _sample_rate(fe, config, cls.kind, _WHISPER_PADDING)
        fe = fit_chunk(fe, _chunk_seconds(fe, config))
        return lambda items: whisper_preprocess(fe, list(items), rate)

    def save_processor(self, folder: Path) -> None:
        self.feature_extractor.save_pretrained(folder)
        path = folder / "preprocessor_config.json"   # a whole-second chunk saved as an int loads with int sample counts
        config = json.loads(path.read_text())
        if isinstance(config.get("chunk_length"), float) and config["chunk_length"].is_integer():
            config["chunk_length"] = int(config["chunk_length"])
            path.write_text(json.dumps(config, indent=2))

    def spec(self) -> dict:
        return {"kind": self.kind, "chunk_seconds": self.chunk_seconds}

    @classmethod
    def folder_kwargs(cls, spec: dict) -> dict:
        return {"chunk_seconds": spec["chunk_seconds"]}

    @classmethod
    def load_processor(cls, source: str | Path) -> Any:
        from transformers import WhisperFeatureExtractor

        return WhisperFeatureExtractor.from_pretrained(source)

    @classmethod
    def load_config(cls, source: str | Path, overrides: dict | None = None) -> Any:
        from transformers import WhisperConfig

        return WhisperConfig.from_pretrained(source, **(overrides or {}))

    @classmethod
    def model_from_config(cls, config: Any) -> nn.Module:
        from transformers.models.whisper.modeling_whisper import WhisperEncoder

        return WhisperEncoder(config)


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
    from transformers import WhisperModel
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    fe = WhisperEncoderBackbone.load_processor(folder)
    if pretrained and not config_overrides:
        full = WhisperModel.from_pretrained(folder).encoder
        positions = _short_encoder(full.config, chunk_seconds)
        weight = full.embed_positions.weight.data[:positions].clone()
        encoder = WhisperEncoder(full.config)
        state = {k: v for k, v in full.state_dict().items() if k != "embed_positions.weight"}
        encoder.load_state_dict(state, strict=False)
        encoder.embed_positions.weight.data.copy_(weight)
    else:
        config = WhisperEncoderBackbone.load_config(folder, config_overrides)
        _short_encoder(config, chunk_seconds)
        encoder = WhisperEncoder(config)   # random init from torch's RNG: the caller seeds it
    return WhisperEncoderBackbone(encoder, fe, chunk_seconds)


_SPEECH_PADDING = {"padding": "longest"}


class HFAudioBackbone(HFBackbone):
    """Any ``AutoModel`` speech encoder (wav2vec2, HuBERT, WavLM, AST...) with its feature extractor; the mean over the
    clip's frames (its own frames only, where the feature extractor gives a padding mask)."""

    kind = "hf_audio"
    modality = "audio"

    def __init__(self, model: nn.Module, feature_extractor):
        super().__init__(model, feature_extractor)
        self.sample_rate = int(feature_extractor.sampling_rate)

    @property
    def feature_extractor(self):
        return self.processor

    def preprocess(self, items: Sequence[Any]) -> dict[str, torch.Tensor]:
        return speech_preprocess(self.feature_extractor, items, self.sample_rate)

    def forward(self, **batch: torch.Tensor) -> torch.Tensor:
        """The mean of the last hidden state over the clip's own frames: with a padding mask (the feature extractor
        returns one when the model takes it) the frames of the padding are left out, as in transformers' own
        ``...ForSequenceClassification`` heads, so a clip's features do not depend on the clips batched with it."""
        hidden = self.net(**batch).last_hidden_state
        mask = batch.get("attention_mask")
        frames_of = getattr(self.net, "_get_feature_vector_attention_mask", None)
        if mask is None or frames_of is None:
            return hidden.mean(1)
        frames = frames_of(hidden.shape[1], mask).unsqueeze(-1).to(hidden.dtype)
        return (hidden * frames).sum(1) / frames.sum(1).clamp(min=1.0)

    def preprocessing(self) -> dict:
        return {"kind": self.kind, "modality": "audio", "feature_extractor": type(self.feature_extractor).__name__,
                "sample_rate": self.sample_rate, "channels": "mono", **_SPEECH_PADDING}

    def use_preprocessing(self, config: dict) -> None:
        self.sample_rate = _sample_rate(self.feature_extractor, config, self.kind, _SPEECH_PADDING)

    @classmethod
    def preprocessor(cls, folder: Path, config: dict) -> Preprocess:
        fe = cls.load_processor(folder)
        rate = _sample_rate(fe, config, cls.kind, _SPEECH_PADDING)
        return lambda items: speech_preprocess(fe, list(items), rate)

    @classmethod
    def load_processor(cls, source: str | Path) -> Any:
        from transformers import AutoFeatureExtractor

        return AutoFeatureExtractor.from_pretrained(source)


def hf_audio_backbone(source: str, *, pretrained: bool = True) -> HFAudioBackbone:
    return HFAudioBackbone.from_source(source, pretrained=pretrained)  # type: ignore[return-value]
