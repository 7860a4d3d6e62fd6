"""One base for the Hugging Face backbones (text, image and speech encoders): what they share.

An :class:`HFBackbone` is an ``AutoModel`` encoder (``net``) with its processor (tokenizer, image processor or feature
extractor, ``processor``). The base holds the feature size, the LoRA targets, the blocks ``partial`` unfreezes,
saving (the model's config + the processor files) and rebuilding from a model folder or a Hugging Face source; a
family (:mod:`tlcore.models.text`, :mod:`~tlcore.models.image`, :mod:`~tlcore.models.audio`) keeps only its own
preprocessing, its forward pass and pooling, and how it reads its processor.

``transformers`` is imported where a model or processor is read: it takes seconds to import, and importing the engine
stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from tlcore.models.base import Backbone

#: The attention projections LoRA adapts, by their names in BERT / ViT (query, value), most other encoders (q_proj,
#: v_proj) and DistilBERT (q_lin, v_lin); a model with none of them gets every linear layer.
LORA_NAMES = ("query", "value", "q_proj", "v_proj", "q_lin", "v_lin")


def find_layers(model: nn.Module) -> nn.ModuleList:
    """The longest ModuleList of transformer layers (``encoder.layer`` in BERT, ``layers`` elsewhere)."""
    best = None
    for _, module in model.named_modules():
        if isinstance(module, nn.ModuleList) and (best is None or len(module) > len(best)):
            best = module
    if best is None:
        raise ValueError(f"{type(model).__name__} has no list of layers to unfreeze")
    return best


def json_ready(value: Any) -> Any:
    """``value`` with tuples as lists (a processor's ``to_dict`` holds tuples; JSON gives lists back)."""
    if isinstance(value, (tuple, list)):
        return [json_ready(v) for v in value]
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    return value


class HFBackbone(Backbone):
    """A Hugging Face encoder and its processor. Subclasses set ``kind`` and ``modality``, read their processor
    (:meth:`load_processor`) and define ``preprocess`` / ``forward`` and the preprocessing config."""

    def __init__(self, model: nn.Module, processor: Any):
        super().__init__()
        self.net = model
        self.processor = processor
        cfg = model.config
        self.feature_dim = int(getattr(cfg, "hidden_size", None) or cfg.hidden_sizes[-1])
        names = {n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, nn.Linear)}
        self.lora_target_modules = [n for n in LORA_NAMES if n in names] or sorted(names)

    def blocks(self) -> list[nn.Module]:
        return list(find_layers(self.net))

    # ------------------------------------------------------------ saving and rebuilding

    def spec(self) -> dict:
        """The saved ``backbone_spec``: the kind, and what older TransferLab versions read besides the processor."""
        return {"kind": self.kind}

    def save_processor(self, folder: Path) -> None:
        self.processor.save_pretrained(folder)

    def save_backbone(self, folder: Path) -> dict:
        self.net.config.save_pretrained(folder)
        self.save_processor(folder)
        return self.spec()

    @classmethod
    def load_processor(cls, source: str | Path) -> Any:
        """The family's processor saved in ``source`` (a folder or a hub id)."""
        raise NotImplementedError

    @classmethod
    def model_from_config(cls, config: Any) -> nn.Module:
        """A random-init network of ``config`` (torch's global RNG: the caller seeds it)."""
        from transformers import AutoModel

        return AutoModel.from_config(config)

    @classmethod
    def load_config(cls, source: str | Path, overrides: dict | None = None) -> Any:
        from transformers import AutoConfig

        return AutoConfig.from_pretrained(source, **(overrides or {}))

    @classmethod
    def folder_kwargs(cls, spec: dict) -> dict:
        """Constructor arguments beyond (model, processor) read from a saved ``backbone_spec``."""
        return {}

    @classmethod
    def from_folder(cls, folder: Path, spec: dict) -> "HFBackbone":
        """The architecture and processor saved in ``folder`` (weights are loaded separately)."""
        return cls(cls.model_from_config(cls.load_config(folder)), cls.load_processor(folder), **cls.folder_kwargs(spec))

    @classmethod
    def pretrained_model(cls, source: str | Path) -> nn.Module:
        from transformers import AutoModel

        return AutoModel.from_pretrained(source)

    @classmethod
    def from_source(cls, source: str | Path, *, pretrained: bool = True, config_overrides: dict | None = None,
                    **kwargs: Any) -> "HFBackbone":
        """Load from a local folder or a hub id; ``pretrained=False`` (or ``config_overrides``) keeps the architecture
        with random weights drawn from torch's global RNG (``build_backbone`` seeds it in a private scope)."""
        processor = cls.load_processor(source)
        if pretrained and not config_overrides:
            model = cls.pretrained_model(source)
        else:
            model = cls.model_from_config(cls.load_config(source, config_overrides))
        return cls(model, processor, **kwargs)
