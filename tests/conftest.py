import csv
import os
import wave
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """Every test gets its own TRANSFERLAB_HOME, except the shared converted-weights cache."""
    home = tmp_path_factory.mktemp("tlhome")
    monkeypatch.setenv("TRANSFERLAB_HOME", str(home))
    shared = Path(os.environ.get("TRANSFERLAB_TEST_CACHE", Path.home() / ".cache" / "transferlab-test"))
    (home / "cache").mkdir(parents=True, exist_ok=True)
    for name in ("whisper-tiny.en", "demos"):
        (shared / name).mkdir(parents=True, exist_ok=True)
        link = home / "cache" / name
        if not link.exists():
            link.symlink_to(shared / name)
    yield home


def write_text_set(folder: Path, n_per_class: int = 12, seed: int = 0) -> Path:
    """A small, learnable sentiment-like text set in DESIGN.md's CSV format."""
    rng = np.random.default_rng(seed)
    words = {"positive": ["great", "wonderful", "excellent", "lovely"], "negative": ["awful", "terrible", "horrible", "dreadful"]}
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "data.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        for label, vocab in words.items():
            for i in range(n_per_class):
                w.writerow([f"the film was {vocab[rng.integers(len(vocab))]} number {i}", label])
    return folder


def write_image_set(folder: Path, n_per_class: int = 8, seed: int = 0, labeled: bool = True) -> Path:
    """Bright vs dark squares, 16x16 PNGs in the image-folder layout."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for label, level in (("bright", 200), ("dark", 40)):
        d = folder / label if labeled else folder
        d.mkdir(parents=True, exist_ok=True)
        for i in range(n_per_class):
            arr = np.clip(level + rng.normal(0, 20, (16, 16, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(arr).save(d / f"{label}_{i}.png")
    return folder


def write_wav(path: Path, freq: float, seconds: float = 0.5, sr: int = 16000, amp: float = 0.3) -> None:
    t = np.arange(int(seconds * sr)) / sr
    data = (amp * np.sin(2 * np.pi * freq * t) * 32767).astype(np.int16)
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes(data.tobytes())


def write_audio_set(folder: Path, n_per_class: int = 8, seed: int = 0) -> Path:
    """Low vs high tones in the audio-folder layout."""
    rng = np.random.default_rng(seed)
    for label, base in (("low", 200.0), ("high", 1500.0)):
        for i in range(n_per_class):
            write_wav(folder / label / f"{label}_{i}.wav", base * (1 + 0.1 * rng.random()), sr=22050 if i % 2 else 16000)
    return folder
