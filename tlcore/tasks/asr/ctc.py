"""CTC speech recognition: an encoder with a CTC head over characters (wav2vec2, HuBERT, WavLM, ...: any
``AutoModelForCTC`` checkpoint saved with its processor, i.e. a feature extractor and a CTC tokenizer with a character
vocabulary) as a recognizer of the ASR job (:class:`~tlcore.tasks.asr.recognizer.Recognizer`).

Training minimises the CTC loss (Graves et al. 2006, "Connectionist Temporal Classification": ``-log p(y|x)`` summed
over every frame alignment of the target characters, with a blank between repeats), averaged over the clips of a
batch after dividing by each target's length (``ctc_loss_reduction="mean"``; impossible alignments, a transcript
longer than the clip's frames, count as zero: ``ctc_zero_infinity``). The convolutional feature encoder stays frozen,
as in every wav2vec2-style CTC fine-tuning recipe (Baevski et al. 2020; Hugging Face's ``freeze_feature_encoder``):
``full`` trains the transformer, its feature projection and the CTC head; ``lora`` trains LoRA adapters on the
attention's ``q_proj``/``v_proj`` and the CTC head. Decoding is greedy: the most likely token per frame, repeats
merged, blanks dropped (``processor.batch_decode`` of the argmax ids).

Clips are kept as waveforms and padded per batch by the feature extractor (with the attention mask it makes); the
padded frames of a clip are never decoded. Targets are the transcripts in the scoring form of
:func:`~tlcore.tasks.asr.metrics.normalize_text` (lower case, numbers as words, no punctuation), in the vocabulary's
letter case, with the characters the vocabulary lacks dropped (listed in the report).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch
from peft import LoraConfig, get_peft_model
from torch import nn
from transformers import AutoModelForCTC, AutoProcessor

from tlcore.data.audio import load_audio
from tlcore.errors import Cancelled, ConfigError
from tlcore.progress import CancelFn
from tlcore.tasks.asr.data import AsrData
from tlcore.tasks.asr.metrics import normalize_text
from tlcore.tasks.asr.recognizer import MAX_SECONDS, Recognizer, trainable_params
from tlcore.tasks.asr.train import train_asr
from tlcore.tasks.job import RunContext
from tlcore.training.trainer import TrainConfig, TrainResult

FROZEN = "the convolutional feature encoder (frozen, as is standard for wav2vec2-style CTC fine-tuning)"
STRATEGY_HELP = {
    "full": "every weight but the convolutional feature encoder is fine-tuned (transformer, projection, CTC head)",
    "lora": "LoRA adapters on q_proj/v_proj of the encoder's attention, and the CTC head, trained; merged into the "
            "weights at the end",
}


def is_ctc_config(config: dict) -> bool:
    """A model with a CTC head: an ``...ForCTC`` architecture (what ``save_pretrained`` of one writes)."""
    return any(str(a).endswith("ForCTC") for a in config.get("architectures") or [])


def load_ctc(source: Path | str) -> tuple[nn.Module, Any]:
    """``(model, processor)`` of a CTC checkpoint, in eval mode; ConfigError when the processor has no CTC vocabulary."""
    model = AutoModelForCTC.from_pretrained(source)
    processor = AutoProcessor.from_pretrained(source)
    tokenizer = getattr(processor, "tokenizer", None)
    if tokenizer is None or getattr(processor, "feature_extractor", None) is None:
        raise ConfigError(f"{source}: a CTC model needs its processor saved beside it (feature extractor and a CTC "
                          "tokenizer with the character vocabulary, e.g. Wav2Vec2Processor.save_pretrained(folder)); "
                          f"found only a {type(processor).__name__}")
    if not getattr(tokenizer, "word_delimiter_token", None):
        raise ConfigError(f"{source}: the tokenizer {type(tokenizer).__name__} is not a character CTC tokenizer (no "
                          "word delimiter token); use one like Wav2Vec2CTCTokenizer")
    spelled = [i for t, i in tokenizer.get_vocab().items() if len(t) == 1 or t == tokenizer.word_delimiter_token]
    if max(spelled, default=0) >= model.config.vocab_size:
        raise ConfigError(f"{source}: the tokenizer spells with token ids up to {max(spelled)} but the CTC head has "
                          f"{model.config.vocab_size} outputs; save the model with the processor it was trained with")
    model.eval()
    return model, processor


def ctc_targets(tokenizer: Any, texts: Sequence[str]) -> tuple[list[list[int]], list[str]]:
    """Token ids of each transcript as the CTC head spells it (module docstring) and the characters dropped."""
    vocab = tokenizer.get_vocab()
    letters = [t for t in vocab if len(t) == 1 and t.isalpha()]
    upper = sum(t.isupper() for t in letters) > sum(t.islower() for t in letters)
    dropped: set[str] = set()
    ids = []
    for text in texts:
        text = normalize_text(text)
        text = text.upper() if upper else text
        dropped.update(c for c in text if c != " " and c not in vocab)
        kept = " ".join("".join(c for c in text if c == " " or c in vocab).split())
        ids.append(list(tokenizer(kept).input_ids))
    return ids, sorted(dropped)


def pad_targets(targets: Sequence[Sequence[int]]) -> torch.Tensor:
    """``(n, longest)`` target ids, -100 after each target's end (what the CTC heads of transformers read)."""
    labels = torch.full((len(targets), max((len(t) for t in targets), default=0)), -100, dtype=torch.long)
    for row, t in enumerate(targets):
        labels[row, :len(t)] = torch.tensor(list(t), dtype=torch.long)
    return labels


def model_inputs(feature_extractor: Any, waves: Sequence[np.ndarray]) -> dict[str, torch.Tensor]:
    """One batch of clips padded to its longest clip, with the attention mask when the extractor makes one."""
    return dict(feature_extractor(list(waves), sampling_rate=feature_extractor.sampling_rate, padding=True,
                                  return_tensors="pt"))


class CtcClips:
    """Waveforms and target ids, batched by index (the training loop's data, like Whisper's ``Utterances``)."""

    def __init__(self, feature_extractor: Any, waves: Sequence[np.ndarray], targets: Sequence[Sequence[int]]):
        self.feature_extractor, self.waves, self.targets = feature_extractor, list(waves), list(targets)

    def __len__(self) -> int:
        return len(self.targets)

    def batch(self, idx: Sequence[int]) -> dict[str, torch.Tensor]:
        idx = list(idx)
        return {**model_inputs(self.feature_extractor, [self.waves[i] for i in idx]),
                "labels": pad_targets([self.targets[i] for i in idx])}


def _frames(model: nn.Module, inputs: dict, waves: Sequence[np.ndarray], n_frames: int) -> list[int]:
    """The output frames of each clip that are not padding."""
    lengths = torch.tensor([len(w) for w in waves])
    if "input_values" in inputs and hasattr(model, "_get_feat_extract_output_lengths"):
        frames = model._get_feat_extract_output_lengths(lengths)
    else:   # another front end: the clip's share of the padded batch
        frames = torch.ceil(lengths * n_frames / lengths.max())
    return [int(f) for f in frames.clamp(max=n_frames)]


@torch.no_grad()
def greedy_transcripts(model: nn.Module, processor: Any, waves: Sequence[np.ndarray], *, batch_size: int = 16,
                       should_cancel: Optional[CancelFn] = None) -> list[str]:
    """Greedy CTC transcripts of ``waves`` (module docstring), in order."""
    model.eval()
    device = next(model.parameters()).device
    out: list[str] = []
    for start in range(0, len(waves), batch_size):
        if should_cancel is not None and should_cancel():
            raise Cancelled("cancelled while transcribing")
        chunk = waves[start:start + batch_size]
        inputs = model_inputs(processor.feature_extractor, chunk)
        ids = model(**{k: v.to(device) for k, v in inputs.items()}).logits.argmax(-1).cpu()
        frames = _frames(model, inputs, chunk, ids.shape[1])
        texts = processor.batch_decode([row[:n].tolist() for row, n in zip(ids, frames)])
        out += [" ".join(t.split()) for t in texts]
    return out


def prepare_ctc_strategy(model: nn.Module, strategy: str, *, lora_r: int, seed: int) -> nn.Module:
    """Set ``requires_grad`` for ``strategy`` (``STRATEGY_HELP``); returns the module to train (a peft wrapper for
    lora). The feature encoder is frozen either way."""
    if strategy not in STRATEGY_HELP:
        raise ConfigError(f"strategy {strategy!r} is not available for a CTC speech recognizer; use one of "
                          f"{', '.join(STRATEGY_HELP)}")
    for p in model.parameters():
        p.requires_grad_(strategy == "full")
    if strategy == "full":
        if hasattr(model, "freeze_feature_encoder"):   # every CTC model with a convolutional front end has it
            model.freeze_feature_encoder()
        return model
    leaves = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    if not {"q_proj", "v_proj"} <= leaves:
        raise ConfigError(f"lora: {type(model).__name__} has no attention projections named q_proj/v_proj to adapt; "
                          "use --strategy full")
    torch.manual_seed(seed)
    config = LoraConfig(r=lora_r, lora_alpha=2 * lora_r, lora_dropout=0.05, bias="none",
                        target_modules=["q_proj", "v_proj"], modules_to_save=["lm_head"])
    return get_peft_model(model, config)


class CtcRecognizer(Recognizer):
    """An ``AutoModelForCTC`` with its processor (feature extractor + character CTC tokenizer)."""

    kind = "ctc"
    title = "CTC model (an encoder with a CTC head)"
    strategies = tuple(STRATEGY_HELP)
    strategy_help = STRATEGY_HELP
    # full: the learning rate of Hugging Face's wav2vec2 CTC fine-tuning recipe; lora: ten times it, LoRA's usual ratio
    # (no CTC demo: neither was chosen on data)
    lrs = {"full": 1e-4, "lora": 1e-3}
    before_kind = "the pretrained CTC model as it is (greedy CTC decoding)"
    refusals = {"decoder": "a CTC model has no decoder to fine-tune alone (it is an encoder with a CTC head over "
                           "characters)"}

    @staticmethod
    def matches(config: dict) -> bool:
        return is_ctc_config(config)

    @classmethod
    def load(cls, source: Path | str) -> "CtcRecognizer":
        return cls(*load_ctc(source))

    @property
    def sample_rate(self) -> int:
        return int(self.processor.feature_extractor.sampling_rate)

    def _waves(self, paths: Sequence[str]) -> list[np.ndarray]:
        cap = int(MAX_SECONDS * self.sample_rate)
        return [load_audio(p, self.sample_rate)[:cap] for p in paths]

    def prepare(self, sets: dict[str, AsrData], longest: float) -> None:
        """The waveforms of every set (batches are padded when they are drawn) and the targets of fit and val."""
        self.sets = sets
        self.waves = {name: self._waves(d.paths) for name, d in sets.items()}
        tok = self.processor.tokenizer
        self.targets, dropped = {}, set()
        for name in ("fit", "val"):
            self.targets[name], lost = ctc_targets(tok, sets[name].texts)
            dropped.update(lost)
        self.dropped = sorted(dropped)

    def transcribe(self, name: str, *, should_cancel: Optional[CancelFn] = None) -> list[str]:
        return greedy_transcripts(self.model, self.processor, self.waves[name], should_cancel=should_cancel)

    def train(self, ctx: RunContext, config: TrainConfig) -> tuple[TrainResult, dict]:
        cfg, fe = ctx.cfg, self.processor.feature_extractor
        model = prepare_ctc_strategy(self.model, cfg.strategy, lora_r=cfg.lora_r, seed=cfg.seed)
        trainable = trainable_params(model)
        settings = self.model.config
        saved = settings.ctc_loss_reduction, settings.ctc_zero_infinity
        settings.ctc_loss_reduction, settings.ctc_zero_infinity = "mean", True   # for training only: not saved
        try:
            result = train_asr(model, CtcClips(fe, self.waves["fit"], self.targets["fit"]),
                               CtcClips(fe, self.waves["val"], self.targets["val"]) if self.targets["val"] else None,
                               config=config, train_modules=[model], checkpoint_dir=ctx.checkpoints("after"),
                               resume=ctx.resume, stage="train", progress=ctx.progress,
                               should_cancel=ctx.should_cancel)
        finally:
            settings.ctc_loss_reduction, settings.ctc_zero_infinity = saved
        self.model = model.merge_and_unload() if cfg.strategy == "lora" else model
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.model.eval()
        frozen = FROZEN if hasattr(self.model, "freeze_feature_encoder") else "nothing (no convolutional front end)"
        return result, {"strategy_help": STRATEGY_HELP[cfg.strategy], "trainable_params": trainable, "frozen": frozen,
                        "loss": "CTC (mean over clips of the loss per target character)",
                        "targets": "transcripts in the scoring form, in the vocabulary's letter case",
                        "dropped_characters": self.dropped}

    def transcribe_waves(self, waves: Sequence[np.ndarray], *, batch_size: int = 16) -> list[str]:
        cap = int(MAX_SECONDS * self.sample_rate)
        return greedy_transcripts(self.model, self.processor, [w[:cap] for w in waves], batch_size=batch_size)

    def save(self, folder: Path) -> None:
        self.model.save_pretrained(folder)
        self.processor.save_pretrained(folder)

    def report(self) -> dict:
        return {"ctc": {"vocabulary_size": int(self.model.config.vocab_size), "sample_rate": self.sample_rate,
                        "dropped_characters": self.dropped}}
