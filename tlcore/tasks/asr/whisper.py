"""Whisper as a speech recognizer of the ASR job (:class:`~tlcore.tasks.asr.recognizer.Recognizer`): log-mel inputs
for the short encoder window, greedy ``generate()`` decoding, the ``decoder`` / ``full`` / ``lora`` strategies and
Whisper's token cross-entropy (the model code is in :mod:`tlcore.tasks.asr.model`)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from tlcore.progress import CancelFn
from tlcore.tasks.asr import SPEC
from tlcore.tasks.asr.data import AsrData
from tlcore.tasks.asr.model import (
    SAMPLE_RATE,
    STRATEGY_HELP,
    encode_targets,
    finalize_strategy,
    load_waves,
    load_whisper,
    log_mel,
    prepare_strategy,
    prompt_ids,
    set_encoder_window,
    transcribe,
    window_positions,
)
from tlcore.tasks.asr.recognizer import MAX_SECONDS, Recognizer, trainable_params
from tlcore.tasks.asr.train import Utterances, encoder_states, train_asr
from tlcore.tasks.job import RunContext
from tlcore.training.trainer import TrainConfig, TrainResult


class WhisperRecognizer(Recognizer):
    """A ``WhisperForConditionalGeneration`` with its ``WhisperProcessor``."""

    kind = "whisper"
    title = "Whisper"
    strategies = ("decoder", "full", "lora")
    strategy_help = STRATEGY_HELP
    lrs = dict(SPEC.lrs)
    before_kind = "the pretrained Whisper as it is (greedy decoding, English)"

    @staticmethod
    def matches(config: dict) -> bool:
        return config.get("model_type") == "whisper"

    @classmethod
    def load(cls, source: Path | str) -> "WhisperRecognizer":
        return cls(*load_whisper(source))

    @property
    def sample_rate(self) -> int:
        return SAMPLE_RATE

    def prepare(self, sets: dict[str, AsrData], longest: float) -> None:
        """Log-mel features of every set for an encoder window that covers the longest clip."""
        self.sets, self.longest = sets, longest
        self.positions = window_positions(min(longest, MAX_SECONDS))
        set_encoder_window(self.model, self.positions)
        fe = self.processor.feature_extractor
        self.feats = {name: log_mel(fe, load_waves(d.paths), self.positions) for name, d in sets.items()}

    def transcribe(self, name: str, *, should_cancel: Optional[CancelFn] = None) -> list[str]:
        return transcribe(self.model, self.processor.tokenizer, self.feats[name], should_cancel=should_cancel)

    def train(self, ctx: RunContext, config: TrainConfig) -> tuple[TrainResult, dict]:
        cfg, model, tok = ctx.cfg, self.model, self.processor.tokenizer
        prepared = prepare_strategy(model, cfg.strategy, lora_r=cfg.lora_r, seed=cfg.seed)
        trainable = trainable_params(prepared.model)
        prompt = prompt_ids(tok, model.generation_config)
        eot = int(model.generation_config.eos_token_id)

        def utterances(name: str) -> Utterances:
            x = encoder_states(model, self.feats[name]) if prepared.frozen_encoder else self.feats[name]
            return Utterances(x, encode_targets(tok, self.sets[name].texts, prompt), encoded=prepared.frozen_encoder,
                              prompt=prompt, eot=eot)

        result = train_asr(prepared.model, utterances("fit"), utterances("val") if len(self.sets["val"]) else None,
                           config=config, train_modules=prepared.train_modules,
                           checkpoint_dir=ctx.checkpoints("after"), resume=ctx.resume, stage="train",
                           progress=ctx.progress, should_cancel=ctx.should_cancel)
        self.model = finalize_strategy(prepared, cfg.strategy)
        return result, {"strategy_help": STRATEGY_HELP[cfg.strategy], "trainable_params": trainable}

    def transcribe_waves(self, waves: Sequence[np.ndarray], *, batch_size: int = 16) -> list[str]:
        """New clips through a window for the longest of them (the model's full table is put back afterwards)."""
        positions = window_positions(min(max(len(w) for w in waves) / SAMPLE_RATE, MAX_SECONDS))
        set_encoder_window(self.model, positions)
        try:
            return transcribe(self.model, self.processor.tokenizer,
                              log_mel(self.processor.feature_extractor, waves, positions), batch_size=batch_size)
        finally:
            set_encoder_window(self.model, None)

    def save(self, folder: Path) -> None:
        set_encoder_window(self.model, None)  # back to Whisper's 30 s table: model/ is a standard folder
        self.model.save_pretrained(folder)
        self.processor.save_pretrained(folder)

    def report(self) -> dict:
        return {"window": {"encoder_positions": self.positions, "seconds": self.positions / 50,
                           "longest_clip_s": round(self.longest, 3)}}
