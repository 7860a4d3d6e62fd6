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

#: The attention projections LoRA adapts, by their names in BERT / ViT (query, value), DeBERTa (query_proj, value_proj),
#: most other encoders (q_proj, v_proj) and DistilBERT (q_lin, v_lin); a model with none of them gets every linear
#: layer, and a convolutional network without linear layers (ResNet) its convolutions.
LORA_NAMES = ("query", "value", "query_proj", "value_proj", "q_proj", "v_proj", "q_lin", "v_lin")
#: Families (by ``config.model_type``) whose attention projections LoRA must not wrap, and what it adapts instead.
#: WavLM's attention hands the weights of q/k/v_proj to ``F.multi_head_attention_forward`` without calling those
#: layers, so adapters on them would never run (training would leave the backbone as it was): its feed-forward
#: layers take them.
LORA_TARGETS: dict[str, tuple[str, ...]] = {"wavlm": ("intermediate_dense", "output_dense")}


def lora_targets(model: nn.Module) -> list[str]:
    """The names of the layers LoRA adapts in ``model`` (see :data:`LORA_NAMES`, :data:`LORA_TARGETS`); empty when it
    has no linear or convolution layer."""
    names = {kind: {n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, kind)}
             for kind in (nn.Linear, nn.Conv2d)}
    special = LORA_TARGETS.get(getattr(model.config, "model_type", ""), ())
    return ([n for n in special if n in names[nn.Linear]] or [n for n in LORA_NAMES if n in names[nn.Linear]]
            or sorted(names[nn.Linear]) or sorted(names[nn.Conv2d]))


def _size(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _layer_list(stage: nn.Module) -> nn.Module | None:
    """The list of repeated layers inside a stage of a hierarchical model (Swin's ``blocks``, ConvNeXt's and ResNet's
    ``layers``): a ModuleList / Sequential of modules of one class that have parts of their own (not an MLP's
    ``Sequential(Linear, GELU, Linear)`` nor ConvNeXt's ``downsampling_layer``); None when the stage is a layer."""
    lists = [m for m in stage.children() if isinstance(m, (nn.ModuleList, nn.Sequential)) and len(m)
             and len({type(x) for x in m}) == 1 and next(iter(m[0].children()), None) is not None]
    return max(lists, key=_size) if lists else None


def find_blocks(model: nn.Module) -> list[nn.Module]:
    """The network's blocks, bottom to top: the list of layers that holds most of its weights (``encoder.layer`` in
    BERT, ``encoder.layers`` in wav2vec2 and not its smaller list of convolutions), with the stages of a
    hierarchical model (Swin, ConvNeXt, ResNet: a list of stages, each with its own list of layers) opened into their
    layers, so the top block is the last layer of the last stage and not one in the middle of the longest stage. A
    stage's other parts with weights (its downsampling) are blocks of their own, where they sit. Empty when the
    model has no list of layers."""
    lists = [m for m in model.modules() if isinstance(m, nn.ModuleList) and len(m)]
    if not lists:
        return []
    blocks: list[nn.Module] = []
    for stage in max(lists, key=_size):
        layers = _layer_list(stage)
        if layers is None:
            blocks.append(stage)
            continue
        for part in stage.children():
            blocks += list(part) if part is layers else [part] if _size(part) else []
    return blocks


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
        self.lora_target_modules = lora_targets(model)

    def blocks(self) -> list[nn.Module]:
        return find_blocks(self.net)

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
