"""The ``spoken-digits`` demo: spoken 'zero'..'nine' in clean US / British RP voices (source) -> Scottish,
Caribbean, Lancashire and West Midlands voices over a noisy telephone line (target), synthesized with eSpeak NG."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from tlcore.data.demos._common import (
    DEMOS,
    DIGIT_NAMES,
    SPLITS,
    SPOKEN_RATE,
    DemoSpec,
    _espeak_available,
    _finish_clips,
    _PerClass,
    _rng,
    _write_audio,
)

_SPOKEN_SIZES = {"small": _PerClass(4, 3, 3, 2), "default": _PerClass(60, 12, 30, 30)}
SOURCE_VOICES = tuple(f"{accent}{variant}" for accent in ("en-us", "en-gb-x-rp")
                      for variant in ("", "+m1", "+m2", "+m3", "+f1", "+f2"))
_TARGET_ACCENTS = ("en-gb-scotland", "en-029", "en-gb-x-gbclan", "en-gb-x-gbcwmd")
# speakers (accent + voice variant) never repeat across target, eval and unlabeled
TARGET_VOICES = {
    "target": tuple(a + v for a in _TARGET_ACCENTS for v in ("+m4", "+f3")),
    "eval": tuple(a + v for a in _TARGET_ACCENTS for v in ("+m5", "+f4", "+m6")),
    "unlabeled": tuple(a + v for a in _TARGET_ACCENTS for v in ("+m7", "+f5")),
}


def _spoken_jobs(voices: Sequence[str], per_class: int, rng: np.random.Generator) -> list[dict]:
    jobs = []
    for word in DIGIT_NAMES:
        for _ in range(per_class):
            jobs.append({"text": word, "voice": voices[int(rng.integers(len(voices)))],
                         "rate": int(rng.integers(130, 221)), "pitch": int(rng.integers(25, 76)),
                         "seed": int(rng.integers(2**31 - 1))})
    return jobs


def _phone_channel(clip: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The target domain's channel: telephone band (300-3400 Hz), background noise at 5-15 dB SNR, lower level."""
    from scipy.signal import butter, sosfiltfilt

    sos = butter(4, [300, 3400], btype="bandpass", fs=SPOKEN_RATE, output="sos")
    voiced = sosfiltfilt(sos, clip.astype(np.float64))
    snr_db = rng.uniform(5.0, 15.0)
    noise = rng.normal(0.0, 1.0, len(voiced))
    noise *= np.sqrt(np.mean(voiced ** 2) / (np.mean(noise ** 2) * 10 ** (snr_db / 10)))
    mixed = (voiced + noise) * rng.uniform(0.3, 0.7) / max(np.abs(voiced + noise).max(), 1e-6)
    return np.clip(mixed, -1.0, 32767 / 32768).astype(np.float32)


def _make_spoken(out: Path, seed: int, size: str) -> None:
    from tlcore.data.demos.espeak import synthesize_batch

    counts, rng = _SPOKEN_SIZES[size], _rng(seed, "spoken-digits")
    splits = {"source": _spoken_jobs(SOURCE_VOICES, counts.source, rng)}
    for split in ("target", "eval", "unlabeled"):
        splits[split] = _spoken_jobs(TARGET_VOICES[split], getattr(counts, split), rng)
    splits["unlabeled"] = [splits["unlabeled"][i] for i in rng.permutation(len(splits["unlabeled"]))]
    jobs = [job for split in SPLITS for job in splits[split]]
    clips, rate = synthesize_batch(jobs)  # one fresh process: reproducible output
    clips = _finish_clips(clips, rate)
    start = 0
    for split in SPLITS:
        part = clips[start:start + len(splits[split])]
        start += len(part)
        labels = None if split == "unlabeled" else [job["text"] for job in splits[split]]
        if split != "source":
            part = [_phone_channel(clip, rng) for clip in part]
        voices = None if split == "unlabeled" else [job["voice"] for job in splits[split]]
        _write_audio(out / split, part, labels, SPOKEN_RATE, groups=voices)   # the group of a clip: its speaker


DEMOS.register("spoken-digits", DemoSpec(
    "spoken-digits", "audio", "classify",
    "spoken 'zero'..'nine' in clean US/British RP voices (source) -> Scottish, Caribbean, Lancashire, "
    "West Midlands voices over a noisy telephone line (target)",
    "synthesized with eSpeak NG (GPL-3.0-or-later engine and voice data, bundled by espeakng-loader); "
    "the generated audio is TransferLab's own",
    _make_spoken, _espeak_available))
