"""Audio file I/O through soundfile (WAV, FLAC, OGG, MP3), mixed to mono and resampled."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Union

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

from tlcore.errors import DataError


def load_audio(src: Union[str, Path, bytes], sample_rate: int) -> np.ndarray:
    """Read ``src`` (a path or the file's bytes) as mono float32 at ``sample_rate``."""
    try:
        data, sr = sf.read(io.BytesIO(src) if isinstance(src, bytes) else str(src), dtype="float32", always_2d=True)
    except Exception as exc:  # soundfile raises several types for bad files
        name = "uploaded audio" if isinstance(src, bytes) else Path(src).name
        raise DataError(f"{name}: cannot read audio ({exc}); use WAV, FLAC, OGG or MP3") from None
    wave = data.mean(axis=1)
    if wave.size == 0:
        raise DataError("audio of length zero")
    if sr != sample_rate:
        wave = AF.resample(torch.from_numpy(wave), sr, sample_rate).numpy()
    return wave.astype(np.float32)


def clip_seconds(paths) -> list[float]:
    """Duration in seconds of each audio file (from its header: nothing is decoded)."""
    out = []
    for p in paths:
        info = sf.info(str(p))
        out.append(info.frames / max(info.samplerate, 1))
    return out
