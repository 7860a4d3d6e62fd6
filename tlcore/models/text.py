"""Text backbones: any Hugging Face encoder (BERT-like), mean-pooled over tokens.

Preprocessing config (``preprocessing()``, saved as ``preprocessing.json``)::

    {"kind": "hf_text", "modality": "text", "tokenizer": "BertTokenizerFast", "max_length": 128,
     "padding": "longest", "truncation": true, "padding_side": "right", "special_tokens": true}

``max_length`` and ``padding_side`` are read back; ``padding`` / ``truncation`` / ``special_tokens`` are what
:func:`tokenize` always does (another value is refused); the tokenizer itself is the files saved next to it.

``transformers`` is imported inside the loaders: it takes seconds to import, and importing the engine stays fast."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from tlcore.errors import ConfigError
from tlcore.models.base import PREPROCESSING_FILE, Preprocess, check_preprocessing
from tlcore.models.hf import HFBackbone

__all__ = ["HFTextBackbone", "hf_text_backbone", "tokenize"]

_FIXED = {"modality": "text", "padding": "longest", "truncation": True, "special_tokens": True}


def tokenize(tokenizer, items: Sequence[str], max_length: int) -> dict[str, torch.Tensor]:
    """A text backbone's preprocessing: the tokenizer's tensors for a batch of texts, padded to the longest and cut at
    ``max_length`` tokens (an ONNX export runs the same function with the tokenizer it saved)."""
    enc = tokenizer(list(items), padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    return {k: v for k, v in enc.items() if k in ("input_ids", "attention_mask", "token_type_ids")}


def _read_config(tokenizer, config: dict, max_length: int) -> int:
    """Apply ``config`` to ``tokenizer`` (its padding side); return the max length it sets (else ``max_length``)."""
    check_preprocessing(config, HFTextBackbone.kind, _FIXED)
    if config.get("padding_side") in ("left", "right"):
        tokenizer.padding_side = config["padding_side"]
    elif "padding_side" in config:
        raise ConfigError(f"{PREPROCESSING_FILE}: padding_side must be 'left' or 'right', not {config['padding_side']!r}")
    value = config.get("max_length", max_length)
    if not isinstance(value, int) or isinstance(value, bool) or value < 2:
        raise ConfigError(f"{PREPROCESSING_FILE}: max_length must be a whole number of tokens >= 2, not {value!r}")
    return value


def _splits_like_text(tokenizer) -> bool:
    """Does ``tokenizer`` give a sentence's words, passed one by one, the tokens it gives them in the sentence?"""
    words = ["to", "to"]
    split = tokenizer([words], is_split_into_words=True, add_special_tokens=False)["input_ids"][0]
    return split == tokenizer(" ".join(words), add_special_tokens=False)["input_ids"]


class HFTextBackbone(HFBackbone):
    kind = "hf_text"
    modality = "text"

    def __init__(self, model: nn.Module, tokenizer: Any, max_length: int = 128):
        super().__init__(model, tokenizer)
        self.max_length = max_length

    @property
    def tokenizer(self) -> Any:
        return self.processor

    def preprocess(self, items: Sequence[str]) -> dict[str, torch.Tensor]:
        return tokenize(self.tokenizer, items, self.max_length)

    def input_length(self, item: str) -> int:
        return len(item)     # characters: enough to put texts of similar token counts in one batch

    def read_split_words(self) -> None:
        """Make the tokenizer read a sentence given as words (NER's input) the way it reads running text. A byte-level
        BPE tokenizer (RoBERTa, GPT-2) saved with ``add_prefix_space`` off reads each given word as if glued to the
        one before it ("to" becomes "t", "o" instead of the "Ġto" of "flew to"): such a tokenizer is reloaded with the
        prefix space on, which it keeps when saved with the model."""
        if not _splits_like_text(self.tokenizer) and getattr(self.tokenizer, "name_or_path", ""):
            from transformers import AutoTokenizer

            again = AutoTokenizer.from_pretrained(self.tokenizer.name_or_path, add_prefix_space=True)
            if _splits_like_text(again):
                again.padding_side = self.tokenizer.padding_side
                self.processor = again

    def forward(self, **batch: torch.Tensor) -> torch.Tensor:
        hidden = self.net(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)

    # ------------------------------------------------------------ preprocessing as data

    def preprocessing(self) -> dict:
        return {"kind": self.kind, "modality": self.modality, "tokenizer": type(self.tokenizer).__name__,
                "max_length": self.max_length, **_FIXED, "padding_side": self.tokenizer.padding_side}

    def use_preprocessing(self, config: dict) -> None:
        self.max_length = _read_config(self.tokenizer, config, self.max_length)

    @classmethod
    def preprocessor(cls, folder: Path, config: dict) -> Preprocess:
        tokenizer = cls.load_processor(folder)
        max_length = _read_config(tokenizer, config, 128)
        return lambda items: tokenize(tokenizer, list(items), max_length)

    # ------------------------------------------------------------ saving and loading

    def spec(self) -> dict:
        return {"kind": self.kind, "max_length": self.max_length}

    @classmethod
    def folder_kwargs(cls, spec: dict) -> dict:
        return {"max_length": spec.get("max_length", 128)}

    @classmethod
    def load_processor(cls, source: str | Path) -> Any:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(source)


def hf_text_backbone(source: str, *, pretrained: bool = True, max_length: int = 128, config_overrides: dict | None = None) -> HFTextBackbone:
    """Load a text encoder from a local folder or a hub id; ``pretrained=False`` keeps the architecture, random weights
    drawn from torch's global RNG (``build_backbone`` seeds it in a private scope)."""
    return HFTextBackbone.from_source(source, pretrained=pretrained, config_overrides=config_overrides,  # type: ignore[return-value]
                                      max_length=max_length)
