"""Text backbones: any Hugging Face encoder (BERT-like), mean-pooled over tokens.

``transformers`` is imported inside the builders: it takes seconds to import, and importing the engine stays fast."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from tlcore.models.base import Backbone


def find_layers(model: nn.Module) -> nn.ModuleList:
    """The longest ModuleList of transformer layers (``encoder.layer`` in BERT, ``layers`` elsewhere)."""
    best = None
    for _, module in model.named_modules():
        if isinstance(module, nn.ModuleList) and (best is None or len(module) > len(best)):
            best = module
    if best is None:
        raise ValueError(f"{type(model).__name__} has no list of layers to unfreeze")
    return best


def tokenize(tokenizer, items: Sequence[str], max_length: int) -> dict[str, torch.Tensor]:
    """A text backbone's preprocessing: the tokenizer's tensors for a batch of texts, padded to the longest and cut at
    ``max_length`` tokens (an ONNX export runs the same function with the tokenizer it saved)."""
    enc = tokenizer(list(items), padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    return {k: v for k, v in enc.items() if k in ("input_ids", "attention_mask", "token_type_ids")}


class HFTextBackbone(Backbone):
    modality = "text"

    def __init__(self, model: nn.Module, tokenizer, max_length: int = 128):
        super().__init__()
        self.net = model
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.feature_dim = int(model.config.hidden_size)
        names = {n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, nn.Linear)}
        self.lora_target_modules = [n for n in ("query", "value", "q_proj", "v_proj", "q_lin", "v_lin") if n in names] or sorted(names)

    def preprocess(self, items: Sequence[str]) -> dict[str, torch.Tensor]:
        return tokenize(self.tokenizer, items, self.max_length)

    def forward(self, **batch: torch.Tensor) -> torch.Tensor:
        hidden = self.net(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)

    def blocks(self) -> list[nn.Module]:
        return list(find_layers(self.net))

    def save_backbone(self, folder: Path) -> dict:
        self.net.config.save_pretrained(folder)
        self.tokenizer.save_pretrained(folder)
        return {"kind": "hf_text", "max_length": self.max_length}

    @classmethod
    def from_folder(cls, folder: Path, spec: dict) -> "HFTextBackbone":
        from transformers import AutoConfig, AutoModel, AutoTokenizer

        model = AutoModel.from_config(AutoConfig.from_pretrained(folder))
        return cls(model, AutoTokenizer.from_pretrained(folder), spec.get("max_length", 128))


def hf_text_backbone(source: str, *, pretrained: bool = True, max_length: int = 128, config_overrides: dict | None = None) -> HFTextBackbone:
    """Load a text encoder from a local folder or a hub id; ``pretrained=False`` keeps the architecture, random weights
    drawn from torch's global RNG (``build_backbone`` seeds it in a private scope)."""
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(source)
    if pretrained and not config_overrides:
        model = AutoModel.from_pretrained(source)
    else:
        config = AutoConfig.from_pretrained(source, **(config_overrides or {}))
        model = AutoModel.from_config(config)   # random init from torch's RNG: the caller seeds it
    return HFTextBackbone(model, tokenizer, max_length)

