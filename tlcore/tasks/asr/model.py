"""Whisper for speech recognition transfer: loading, the short-window encoder, inputs, labels, decoding and
the three fine-tuning strategies.

Short window: transformers' Whisper encoder insists on ``2 * max_source_positions`` mel frames (30 s of
audio). Our clips are a few seconds, so we keep the first N rows of the encoder's (fixed, sinusoidal)
position table, set ``max_source_positions = N`` and compute log-mel features for N / 50 seconds (the same
trick as :mod:`tlcore.models.audio`). Training and decoding both use the window; the saved model gets its
full 1500-row table back, so ``model/`` is a standard 30 s Whisper folder.

Labels follow Whisper's layout: the decoder reads ``prompt + text`` and predicts ``text + <|endoftext|>``;
the prompt (``<|startoftranscript|><|notimestamps|>`` for English-only models, with ``<|en|><|transcribe|>``
for multilingual ones) is given, never scored (-100), and so is padding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
from torch import nn

from tlcore.errors import ConfigError
from tlcore.tasks.asr import SPEC

ASR_STRATEGIES = ("decoder", "full", "lora")      # Whisper's; a CTC model takes full and lora (tasks/asr/ctc.py)
#: What each strategy does to a Whisper (the report's ``training.strategy_help`` of a Whisper run).
STRATEGY_HELP = {
    "decoder": "decoder-only fine-tuning: the encoder is frozen (its outputs are computed once), token embeddings stay fixed",
    "full": "every weight is fine-tuned",
    "lora": "LoRA adapters on q_proj/v_proj of encoder and decoder attention, merged into the weights at the end",
}
DEFAULT_BACKBONE = SPEC.backbones[0][0]
#: The names of the bundled offline Whisper tiny.en (None: no backbone given).
BUNDLED_NAMES = (None, "", DEFAULT_BACKBONE, "whisper-tiny.en", "whisper_tiny_en")
SAMPLE_RATE = 16_000
POSITIONS_PER_SECOND = 50  # one encoder position per 20 ms (two 10 ms mel frames, conv stride 2)


def resolve_backbone(backbone: Optional[str]) -> tuple[Path | str, str]:
    """(folder or hub id, display name) of a speech recognizer. None / "whisper-tiny-en" -> the bundled offline
    tiny.en (converted once); a folder must hold a ``config.json``; a name with a "/" is a hub id (for online users).
    Which kind of recognizer it is (Whisper, CTC) is read from its config (:mod:`tlcore.tasks.asr.kinds`)."""
    if backbone in BUNDLED_NAMES:
        from tlcore.models.whisper_ct2 import whisper_tiny_en_dir

        return whisper_tiny_en_dir(), DEFAULT_BACKBONE
    folder = Path(str(backbone)).expanduser()
    if folder.is_dir():
        if not (folder / "config.json").is_file():
            raise ConfigError(f"{folder} is not a Hugging Face model folder (no config.json): save the model with "
                              "save_pretrained, together with its processor")
        return folder, folder.name
    if "/" in str(backbone):  # a hub id, for online users
        return str(backbone), str(backbone)
    raise ConfigError(f"unknown speech recognition backbone {backbone!r}; use {DEFAULT_BACKBONE} (offline default), "
                      "a folder with a Whisper model or a CTC model (e.g. wav2vec2) saved with its processor, or a "
                      "Hugging Face model id of either")


def load_whisper(source: Path | str):
    """``(WhisperForConditionalGeneration, WhisperProcessor)`` from a folder (or hub id), in eval mode."""
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    model = WhisperForConditionalGeneration.from_pretrained(source)
    model.eval()
    return model, WhisperProcessor.from_pretrained(source)


MIN_WINDOW_SECONDS = 8  # shorter windows made tiny.en loop and misread (source-accent WER 0.45 at 3 s, 0.16 at 8 s)


def window_positions(max_seconds: float, *, full: int = 1500) -> int:
    """Encoder positions covering ``max_seconds`` plus half a second, in whole seconds, at least
    ``MIN_WINDOW_SECONDS`` (8 s), at most ``full`` (30 s)."""
    seconds = max(MIN_WINDOW_SECONDS, math.ceil(max_seconds + 0.5))
    return int(min(full, seconds * POSITIONS_PER_SECOND))


def set_encoder_window(model: nn.Module, positions: Optional[int]) -> int:
    """Cut the encoder of a WhisperForConditionalGeneration to ``positions`` (None: back to the full table).
    Returns the positions now in use."""
    encoder = model.model.encoder
    full = getattr(encoder, "_tl_full_positions", None)
    if full is None:
        full = encoder.embed_positions.weight.detach().clone()
        encoder._tl_full_positions = full  # plain attribute: not a parameter, not saved
    positions = int(full.shape[0]) if positions is None else int(min(positions, full.shape[0]))
    table = nn.Embedding(positions, full.shape[1])
    table.weight.data.copy_(full[:positions])
    table.requires_grad_(False)
    encoder.embed_positions = table
    encoder.max_source_positions = positions
    for config in {id(c): c for c in (model.config, encoder.config)}.values():
        config.max_source_positions = positions
    return positions


def load_waves(paths: Sequence[str]) -> list[np.ndarray]:
    from tlcore.data.audio import load_audio

    return [load_audio(p, SAMPLE_RATE) for p in paths]


def log_mel(feature_extractor, waves: Sequence[np.ndarray], positions: int, *, batch: int = 32) -> torch.Tensor:
    """Log-mel inputs ``(n, n_mels, 2 * positions)``: each clip padded with silence (or trimmed) to the window."""
    samples = positions * 2 * feature_extractor.hop_length
    parts = [feature_extractor(list(waves[i:i + batch]), sampling_rate=SAMPLE_RATE, max_length=samples,
                               padding="max_length", truncation=True, return_tensors="pt").input_features
             for i in range(0, len(waves), batch)]
    return torch.cat(parts) if parts else torch.zeros(0)


def prompt_ids(tokenizer, generation_config) -> list[int]:
    """Whisper's decoder prompt for English transcription without timestamps."""
    ids = [int(generation_config.decoder_start_token_id)]
    if getattr(generation_config, "is_multilingual", False):
        ids += [tokenizer.convert_tokens_to_ids("<|en|>"), tokenizer.convert_tokens_to_ids("<|transcribe|>")]
    ids.append(int(generation_config.no_timestamps_token_id))
    return ids


def encode_targets(tokenizer, texts: Sequence[str], prompt: Sequence[int], *, max_tokens: int = 448) -> list[list[int]]:
    """Token ids of each transcript as Whisper writes it (a leading space), truncated to fit the decoder."""
    room = max_tokens - len(prompt) - 1
    return [tokenizer(" " + t.strip(), add_special_tokens=False).input_ids[:room] for t in texts]


def decoder_batch(token_lists: Sequence[Sequence[int]], prompt: Sequence[int], eot: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``decoder_input_ids = prompt + text`` (padded with <|endoftext|>) and ``labels = text + <|endoftext|>`` aligned
    one step ahead, with -100 under the prompt and the padding."""
    length = len(prompt) + max((len(t) for t in token_lists), default=0)
    inputs = torch.full((len(token_lists), length), eot, dtype=torch.long)
    labels = torch.full((len(token_lists), length), -100, dtype=torch.long)
    for row, tokens in enumerate(token_lists):
        seq = list(prompt) + list(tokens)
        inputs[row, :len(seq)] = torch.tensor(seq)
        target = list(tokens) + [eot]
        labels[row, len(prompt) - 1:len(prompt) - 1 + len(target)] = torch.tensor(target)
    return inputs, labels


def max_new_tokens(positions: int) -> int:
    """A decoding budget for the window: ~8 tokens per second of audio plus slack (stops runaway repetition)."""
    return int(8 * positions / POSITIONS_PER_SECOND + 8)


@torch.no_grad()
def transcribe(model: nn.Module, tokenizer, features: torch.Tensor, *, batch_size: int = 16,
               should_cancel=None, max_tokens: Optional[int] = None) -> list[str]:
    """Greedy transcripts of log-mel ``features`` made for the model's current encoder window (at most
    ``max_tokens`` new tokens each; default :func:`max_new_tokens` of the window)."""
    from tlcore.errors import Cancelled

    whisper = model
    whisper.eval()
    gen = whisper.generation_config
    kwargs = {"language": "en", "task": "transcribe"} if getattr(gen, "is_multilingual", False) else {}
    budget = max_tokens or max_new_tokens(whisper.config.max_source_positions)
    budget = min(budget, whisper.config.max_target_positions - 4)  # room for the prompt
    out: list[str] = []
    for start in range(0, len(features), batch_size):
        if should_cancel is not None and should_cancel():
            raise Cancelled("cancelled while transcribing")
        batch = features[start:start + batch_size]
        device = next(whisper.parameters()).device      # a model loaded for predict on a GPU runs there
        if device.type != "cpu":
            batch = batch.to(device)
        # every frame of the window is input (clips are padded with silence, as Whisper was trained): an all-ones
        # mask, which also spares the "attention mask is not set" warning on every batch (same transcripts)
        mask = torch.ones(batch.shape[0], batch.shape[-1], dtype=torch.long, device=batch.device)
        ids = whisper.generate(input_features=batch, attention_mask=mask, max_new_tokens=budget,
                               num_beams=1, do_sample=False, **kwargs)
        out += [t.strip() for t in tokenizer.batch_decode(ids, skip_special_tokens=True)]
    return out


@dataclass
class Prepared:
    """What a strategy hands to the training loop."""

    model: nn.Module               # the module to call (a peft wrapper for lora)
    whisper: nn.Module             # the WhisperForConditionalGeneration inside it
    train_modules: list[nn.Module]  # put in train mode each epoch
    frozen_encoder: bool           # encoder outputs can be computed once


def prepare_strategy(model: nn.Module, strategy: str, *, lora_r: int = 8, seed: int = 0) -> Prepared:
    """Set ``requires_grad`` for ``strategy`` (see STRATEGY_HELP); raises ConfigError for other names."""
    check_strategy(strategy)
    for p in model.parameters():
        p.requires_grad_(False)
    if strategy == "decoder":
        decoder = model.model.decoder
        for p in decoder.parameters():
            p.requires_grad_(True)
        decoder.embed_tokens.weight.requires_grad_(False)  # tied to the output layer: the vocabulary stays as is
        return Prepared(model, model, [decoder], True)
    if strategy == "full":
        for name, p in model.named_parameters():
            p.requires_grad_("encoder.embed_positions" not in name)  # fixed sinusoids in Whisper
        return Prepared(model, model, [model], False)
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(seed)
    config = LoraConfig(r=lora_r, lora_alpha=2 * lora_r, lora_dropout=0.05, bias="none",
                        target_modules=["q_proj", "v_proj"])
    wrapped = get_peft_model(model, config)
    return Prepared(wrapped, model, [wrapped], False)


def finalize_strategy(prepared: Prepared, strategy: str) -> nn.Module:
    """The plain WhisperForConditionalGeneration after training (LoRA merged into the weights), frozen, eval mode."""
    model = prepared.model.merge_and_unload() if strategy == "lora" else prepared.model
    for p in model.parameters():
        p.requires_grad_(False)
    model.eval()
    return model


def check_strategy(strategy: str) -> None:
    if strategy not in ASR_STRATEGIES:
        listing = "; ".join(f"{k} ({v})" for k, v in STRATEGY_HELP.items())
        raise ConfigError(f"strategy {strategy!r} is not available for speech recognition; use one of "
                          f"{', '.join(ASR_STRATEGIES)}: {listing}")
