"""Per-recording audio properties (duration, loudness, clipping, silence, spectrum, SNR, pitch); numpy only."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

FRAME_S = 0.025          # analysis frame for energy and spectrum (25 ms, hop 10 ms)
HOP_S = 0.010
PITCH_FRAME_S = 0.050    # pitch frame: ≥ 2 periods of the lowest pitch searched (60 Hz -> 33 ms)
MAX_FRAMES = 3000        # longer recordings use a larger hop so the cost stays bounded
SILENCE_DBFS = -40.0
CLIP_LEVEL = 0.999
F0_MIN, F0_MAX = 60.0, 400.0
VOICING_THRESHOLD = 0.5  # normalised autocorrelation at the chosen lag needed to call a frame voiced
FLOOR = 1e-10            # power floor: −100 dBFS

AUDIO_PROPERTIES = (
    "duration_s", "sample_rate", "channels", "loudness_dbfs", "clipping_share", "silence_ratio",
    "spectral_centroid_hz", "spectral_bandwidth_hz", "snr_db", "pitch_hz",
)


def _to_float(wave: np.ndarray) -> np.ndarray:
    arr = np.asarray(wave)
    if arr.dtype.kind in "iu":
        info = np.iinfo(arr.dtype)
        scale = float(max(abs(info.min), info.max))
        arr = (arr.astype(np.float64) - (0.0 if info.min < 0 else (info.max + 1) / 2)) / scale
    return np.asarray(arr, dtype=np.float64)


def _frames(x: np.ndarray, length: int, hop: int) -> np.ndarray:
    """(n_frames, length) view-copy of x; x is zero-padded to at least one frame."""
    if x.size < length:
        x = np.pad(x, (0, length - x.size))
    n_frames = 1 + (x.size - length) // hop
    hop = max(hop, (x.size - length) // max(MAX_FRAMES - 1, 1)) if n_frames > MAX_FRAMES else hop
    return np.lib.stride_tricks.sliding_window_view(x, length)[::hop]


def _db(power: np.ndarray | float) -> np.ndarray | float:
    return 10.0 * np.log10(np.maximum(power, FLOOR))


def _spectral(frames: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame spectral centroid and bandwidth (Hz) of Hann-windowed magnitude spectra."""
    nfft = int(2 ** np.ceil(np.log2(frames.shape[1])))
    mag = np.abs(np.fft.rfft(frames * np.hanning(frames.shape[1]), n=nfft, axis=1))
    freqs = np.fft.rfftfreq(nfft, d=1.0 / sr)
    total = np.maximum(mag.sum(axis=1), FLOOR)
    centroid = (mag @ freqs) / total
    bandwidth = np.sqrt(np.maximum((mag * (freqs[None, :] - centroid[:, None]) ** 2).sum(axis=1) / total, 0.0))
    return centroid, bandwidth


def _pitch(x: np.ndarray, sr: int) -> float:
    """Median f0 (Hz) over voiced frames by autocorrelation; NaN if no frame is voiced."""
    length = int(round(PITCH_FRAME_S * sr))
    min_lag, max_lag = int(np.floor(sr / F0_MAX)), int(np.ceil(sr / F0_MIN))
    if length <= max_lag + 1 or min_lag < 1:
        return float("nan")
    frames = _frames(x, length, max(1, int(round(HOP_S * sr))))
    frames = frames - frames.mean(axis=1, keepdims=True)
    energy = np.mean(frames**2, axis=1)
    nfft = int(2 ** np.ceil(np.log2(2 * length)))
    spec = np.fft.rfft(frames, n=nfft, axis=1)
    acf = np.fft.irfft(spec * np.conj(spec), n=nfft, axis=1)[:, : max_lag + 2]
    r0 = np.maximum(acf[:, :1], FLOOR)
    lags = np.arange(acf.shape[1])
    # Search only past the first negative value of the ACF: skips the central lobe around lag 0.
    past_dip = np.cumsum(acf < 0, axis=1) > 0
    allowed = past_dip & (lags >= min_lag) & (lags <= max_lag)
    # The biased ACF (no 1/(N−lag)) falls with lag, which favours the true period over its multiples.
    masked = np.where(allowed, acf, -np.inf)
    best = np.argmax(masked, axis=1)
    rows = np.arange(acf.shape[0])
    peak = acf[rows, best] / r0[:, 0] * length / (length - best)
    voiced = np.isfinite(masked[rows, best]) & (peak >= VOICING_THRESHOLD) & (_db(energy) > SILENCE_DBFS)
    if not np.any(voiced):
        return float("nan")
    b = best[voiced]
    r = rows[voiced]
    left, mid, right = acf[r, b - 1], acf[r, b], acf[r, np.minimum(b + 1, acf.shape[1] - 1)]
    denom = left - 2.0 * mid + right
    shift = np.where(np.abs(denom) > 0, 0.5 * (left - right) / np.where(denom == 0, 1.0, denom), 0.0)
    period = b + np.clip(shift, -0.5, 0.5)
    return float(np.median(sr / period))


def _one(wave: np.ndarray, sr: int) -> dict[str, float]:
    arr = _to_float(wave)
    if arr.ndim == 1:
        channels, mono = 1, arr
    elif arr.ndim == 2:
        # (n, ch) as documented; a (ch, n) array with few rows is transposed, as torchaudio returns it.
        if arr.shape[0] < arr.shape[1] and arr.shape[0] <= 8:
            arr = arr.T
        channels, mono = arr.shape[1], arr.mean(axis=1)
    else:
        raise ValueError(f"waveform must be 1-D (n,) or 2-D (n, channels); got shape {arr.shape}")
    if sr <= 0:
        raise ValueError(f"sample rate must be positive; got {sr}")
    n = mono.size
    out = {
        "duration_s": n / sr, "sample_rate": float(sr), "channels": float(channels),
        "clipping_share": float(np.mean(np.abs(arr) >= CLIP_LEVEL)) if arr.size else 0.0,
    }
    if n == 0:
        nan = float("nan")
        out.update(loudness_dbfs=nan, silence_ratio=nan, spectral_centroid_hz=nan,
                   spectral_bandwidth_hz=nan, snr_db=nan, pitch_hz=nan)
        return out
    out["loudness_dbfs"] = float(_db(np.mean(mono**2)))
    frames = _frames(mono, max(1, int(round(FRAME_S * sr))), max(1, int(round(HOP_S * sr))))
    frame_db = _db(np.mean(frames**2, axis=1))
    loud = frame_db > SILENCE_DBFS
    out["silence_ratio"] = float(np.mean(~loud))
    centroid, bandwidth = _spectral(frames, sr)
    use = loud if np.any(loud) else np.ones_like(loud)
    out["spectral_centroid_hz"] = float(centroid[use].mean())
    out["spectral_bandwidth_hz"] = float(bandwidth[use].mean())
    power = np.sort(np.mean(frames**2, axis=1))
    tenth = max(1, int(round(0.1 * power.size)))
    out["snr_db"] = float(_db(power[-tenth:].mean()) - _db(power[:tenth].mean()))
    out["pitch_hz"] = _pitch(mono, sr)
    return out


def audio_properties(waveforms: Iterable[tuple[np.ndarray, int]]) -> dict[str, np.ndarray]:
    """Measure simple properties of each recording; one float array of length n per property.

    Input: n pairs (waveform, sample_rate); waveform float in [−1, 1] (integer PCM is rescaled), shape (t,)
    mono or (t, channels). Channels are averaged to mono for everything but ``channels`` and clipping.
    Frames: 25 ms, hop 10 ms (hop grows for very long recordings so at most 3000 frames are used).
      * ``duration_s`` = t / sr; ``sample_rate``; ``channels``;
      * ``loudness_dbfs`` = 10·log10(mean x²) (RMS re full scale 1.0; a full-scale sine is −3.01 dB);
      * ``clipping_share`` = share of samples (all channels) with |x| ≥ 0.999;
      * ``silence_ratio`` = share of frames whose RMS is below −40 dBFS;
      * ``spectral_centroid_hz`` c = Σ_f f·|X(f)| / Σ_f |X(f)| and ``spectral_bandwidth_hz`` =
        √(Σ_f (f − c)²·|X(f)| / Σ_f |X(f)|) per Hann-windowed frame (as in librosa), averaged over
        non-silent frames;
      * ``snr_db`` = 10·log10(mean power of the loudest 10 % of frames / that of the quietest 10 %),
        a blind estimate (speech pauses act as the noise floor; a stationary signal gives ≈ 0 dB);
        powers are floored at −100 dBFS, so digital silence caps it near 100 dB;
      * ``pitch_hz`` = median f0 over voiced frames; f0 per 50 ms frame from the autocorrelation peak at
        lags sr/400 … sr/60 (60–400 Hz) past the first ACF dip, with parabolic interpolation (cf. Rabiner
        1977, "On the use of autocorrelation analysis for pitch detection"); a frame is voiced when it is
        above −40 dBFS and its normalised ACF at the peak is ≥ 0.5. NaN when no frame is voiced.
    """
    rows = [_one(wave, int(sr)) for wave, sr in waveforms]
    return {k: np.asarray([r[k] for r in rows], dtype=np.float64) for k in AUDIO_PROPERTIES}
