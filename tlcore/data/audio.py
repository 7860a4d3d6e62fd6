"""Audio file I/O through soundfile (WAV, FLAC, OGG, MP3), mixed to mono and resampled.

Untrusted clips are checked from their header (``soundfile.info``) before anything is decoded: a clip longer than
``max_audio_seconds()`` (``TRANSFERLAB_MAX_AUDIO_SECONDS``, default 600 s) is refused, so a long file cannot fill
memory; empty and unreadable files get a message naming the file.
"""

from __future__ import annotations

import io
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Optional, Union

import numpy as np
import soundfile as sf
import torch
import torchaudio
import torchaudio.functional as AF

from tlcore.errors import DataError

DEFAULT_MAX_AUDIO_SECONDS = 600.0


def max_audio_seconds() -> float:
    """The duration cap of one clip in seconds (``TRANSFERLAB_MAX_AUDIO_SECONDS``, default 600)."""
    try:
        value = float(os.environ.get("TRANSFERLAB_MAX_AUDIO_SECONDS", DEFAULT_MAX_AUDIO_SECONDS))
    except ValueError:
        return DEFAULT_MAX_AUDIO_SECONDS
    return value if value > 0 else DEFAULT_MAX_AUDIO_SECONDS


def _detail(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else "no detail"
    text = re.sub(r"Error opening '[^']*': ", "", text).strip()[:120]     # the file is named by the caller
    return f"{type(exc).__name__}: {text}"


def audio_problem(src: Union[str, Path, io.BytesIO]) -> Optional[str]:
    """Why the clip cannot be used, or None: header only (length zero, over the duration cap, unreadable)."""
    if isinstance(src, (str, Path)) and Path(src).stat().st_size == 0:
        return "empty audio file (0 bytes)"
    try:
        info = sf.info(src if isinstance(src, io.BytesIO) else str(src))
    except Exception as exc:  # noqa: BLE001 - soundfile raises several types for bad files
        return f"unreadable or corrupt audio ({_detail(exc)}); use WAV, FLAC, OGG or MP3"
    if isinstance(src, io.BytesIO):
        src.seek(0)
    if info.frames <= 0 or info.samplerate <= 0:
        return "audio of length zero"
    seconds = info.frames / info.samplerate
    cap = max_audio_seconds()
    if seconds > cap:
        return (f"clip is {seconds:.0f} s long, over the limit of {cap:.0f} s; cut it into shorter clips "
                "(or raise TRANSFERLAB_MAX_AUDIO_SECONDS)")
    return None


def load_audio(src: Union[str, Path, bytes], sample_rate: int) -> np.ndarray:
    """Read ``src`` (a path or the file's bytes) as mono float32 at ``sample_rate`` (any rate, any channel count)."""
    name = "uploaded audio" if isinstance(src, bytes) else Path(src).name
    handle = io.BytesIO(src) if isinstance(src, bytes) else str(src)
    if not isinstance(src, bytes) and not Path(src).is_file():
        raise DataError(f"{name}: audio file not found; check the path")
    reason = audio_problem(handle if isinstance(handle, io.BytesIO) else Path(handle))
    if reason:
        raise DataError(f"{name}: {reason.replace('unreadable or corrupt audio', 'cannot read audio', 1)}")
    try:
        data, sr = sf.read(handle, dtype="float32", always_2d=True)
    except Exception as exc:  # noqa: BLE001 - soundfile raises several types for bad files
        raise DataError(f"{name}: cannot read audio ({_detail(exc)}); use WAV, FLAC, OGG or MP3") from None
    wave = data.mean(axis=1)
    if wave.size == 0:
        raise DataError(f"{name}: audio of length zero (the file holds no samples); re-export it")
    if not np.isfinite(wave).all():
        raise DataError(f"{name}: audio holds NaN or infinite samples; re-export it")
    if sr != sample_rate:
        wave = AF.resample(torch.from_numpy(np.ascontiguousarray(wave)), sr, sample_rate).numpy()
    return wave.astype(np.float32)


def clip_seconds(paths) -> list[float]:
    """Duration in seconds of each audio file (from its header: nothing is decoded)."""
    out = []
    for p in paths:
        try:
            info = sf.info(str(p))
        except Exception as exc:  # noqa: BLE001
            raise DataError(f"{Path(p).name}: unreadable or corrupt audio ({_detail(exc)})") from None
        out.append(info.frames / max(info.samplerate, 1))
    return out


MFCC_SAMPLE_RATE = 16_000
N_MFCC = 20


@lru_cache(maxsize=1)
def _mfcc() -> torch.nn.Module:
    return torchaudio.transforms.MFCC(sample_rate=MFCC_SAMPLE_RATE, n_mfcc=N_MFCC,
                                      melkwargs={"n_fft": 400, "hop_length": 160, "n_mels": 40})


@torch.no_grad()
def clip_mfcc(src: Union[str, Path, bytes]) -> torch.Tensor:
    """(20, frames) MFCCs of a clip at 16 kHz (25 ms windows, 10 ms hop, 40 mel bands): the classic hand-made
    audio descriptor, for the baselines and diagnostics that use no pretrained model."""
    return _mfcc()(torch.from_numpy(load_audio(src, MFCC_SAMPLE_RATE)))
