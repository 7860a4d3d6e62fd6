"""Tiny random-weight Hugging Face model folders of the families people bring (what a hub id resolves to): each is a
``save_pretrained`` folder of the family's ``AutoModel`` with its tokenizer, image processor or feature extractor,
written offline from transformers' config classes (hidden size 16-32, two layers or stages, a small vocabulary or
image size). The compatibility matrix (``tests/test_compat_matrix.py``) and the script that writes its README table
(``benchmarks/compat_matrix.py``) both build their folders here, so the two agree.

    folder = build_family("roberta", tmp / "roberta")      # -> tmp/roberta, loadable with tlcore's backbone=...
    FAMILIES["roberta"].modality                            # "text"
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

#: Words the tiny tokenizers know whole (the matrix's text and NER sets use them); any other lower-case word is
#: spelled out from single letters, so no text is all-unknown.
WORDS = ("the", "film", "was", "great", "wonderful", "excellent", "lovely", "awful", "terrible", "horrible",
         "dreadful", "number", "anna", "bob", "omar", "lena", "flew", "to", "paris", "berlin", "rome", "for", "acme",
         "tesco", "today", "again")
SEED = 0


def _seeded(build: Callable[[], Any]) -> Any:
    """A model initialised from a fixed seed on a private RNG (the same weights every build; the caller's RNG kept)."""
    import torch  # lazy, like transformers below: conftest imports this module and most tests need neither

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        return build()


def _save(model_cls, config, folder: Path, *processors) -> Path:
    _seeded(lambda: model_cls(config)).save_pretrained(folder)
    for processor in processors:
        processor.save_pretrained(folder)
    return folder


# ---------------------------------------------------------------- tokenizers (built from a tiny vocabulary)

def _wordpiece_vocab(folder: Path) -> Path:
    letters = list(string.ascii_lowercase + string.digits)
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, *letters, *(f"##{c}" for c in letters),
              *string.punctuation]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(tokens) + "\n")
    return folder / "vocab.txt"


def wordpiece_tokenizer(folder: Path, cls_name: str = "BertTokenizerFast"):
    """A WordPiece tokenizer (BERT, DistilBERT, ELECTRA) of the tiny vocabulary."""
    import transformers

    return getattr(transformers, cls_name)(vocab=str(_wordpiece_vocab(folder)), do_lower_case=True)


def bpe_tokenizer():
    """A byte-level BPE tokenizer (RoBERTa): the 256 byte symbols plus merges that spell each of :data:`WORDS`
    (after a space, "Ġword") as one token."""
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import RobertaTokenizerFast

    tokens = ["<s>", "<pad>", "</s>", "<unk>", "<mask>", *sorted(ByteLevel.alphabet())]
    merges: list[str] = []
    for word in WORDS:
        piece = "Ġ"
        for c in word:
            merges.append(f"{piece} {c}")
            piece += c
            tokens.append(piece)
    vocab = {t: i for i, t in enumerate(dict.fromkeys(tokens))}
    return RobertaTokenizerFast(vocab=vocab, merges=[tuple(m.split(" ")) for m in dict.fromkeys(merges)])


def unigram_tokenizer(cls_name: str = "DebertaV2TokenizerFast", pad: str = "[PAD]", unk: str = "[UNK]"):
    """A SentencePiece-style Unigram tokenizer (DeBERTa-v2/v3, ALBERT): whole words, then letters."""
    import transformers

    letters = string.ascii_lowercase + string.digits + string.punctuation
    vocab = [(pad, 0.0), (unk, 0.0), ("[CLS]", 0.0), ("[SEP]", 0.0), ("[MASK]", 0.0), ("▁", -2.0)]
    vocab += [(f"▁{w}", -1.0) for w in WORDS] + [(c, -5.0) for c in letters] + [(f"▁{c}", -4.0) for c in letters]
    return getattr(transformers, cls_name)(vocab=vocab, do_lower_case=True, pad_token=pad, unk_token=unk)


# ---------------------------------------------------------------- text encoders

_TEXT = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
             max_position_embeddings=128)


def bert(folder: Path) -> Path:
    from transformers import BertConfig, BertModel

    tok = wordpiece_tokenizer(folder)
    return _save(BertModel, BertConfig(vocab_size=len(tok), **_TEXT), folder, tok)


def distilbert(folder: Path) -> Path:
    from transformers import DistilBertConfig, DistilBertModel

    tok = wordpiece_tokenizer(folder, "DistilBertTokenizerFast")
    config = DistilBertConfig(vocab_size=len(tok), dim=32, n_layers=2, n_heads=2, hidden_dim=64,
                              max_position_embeddings=128)
    return _save(DistilBertModel, config, folder, tok)


def electra(folder: Path) -> Path:
    from transformers import ElectraConfig, ElectraModel

    tok = wordpiece_tokenizer(folder, "ElectraTokenizerFast")
    return _save(ElectraModel, ElectraConfig(vocab_size=len(tok), embedding_size=16, **_TEXT), folder, tok)


def roberta(folder: Path) -> Path:
    from transformers import RobertaConfig, RobertaModel

    tok = bpe_tokenizer()
    config = RobertaConfig(vocab_size=len(tok), pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
                           eos_token_id=tok.eos_token_id, **{**_TEXT, "max_position_embeddings": 130})
    return _save(RobertaModel, config, folder, tok)


def deberta_v2(folder: Path) -> Path:
    from transformers import DebertaV2Config, DebertaV2Model

    tok = unigram_tokenizer()
    config = DebertaV2Config(vocab_size=len(tok), pad_token_id=tok.pad_token_id, relative_attention=True,
                             position_buckets=16, pos_att_type=["p2c", "c2p"], norm_rel_ebd="layer_norm",
                             share_att_key=True, position_biased_input=False, **_TEXT)
    return _save(DebertaV2Model, config, folder, tok)


def albert(folder: Path) -> Path:
    """ALBERT: one set of layer weights shared by every layer (partial has no separate top block to train)."""
    from transformers import AlbertConfig, AlbertModel

    tok = unigram_tokenizer("AlbertTokenizerFast", pad="<pad>", unk="<unk>")
    config = AlbertConfig(vocab_size=len(tok), embedding_size=16, pad_token_id=tok.pad_token_id, **_TEXT)
    return _save(AlbertModel, config, folder, tok)


# ---------------------------------------------------------------- image encoders (32x32 inputs)

def _square(cls_name: str, **kw):
    import transformers

    return getattr(transformers, cls_name)(size={"height": 32, "width": 32}, **kw)


def vit(folder: Path) -> Path:
    from transformers import ViTConfig, ViTModel

    config = ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                       intermediate_size=64)
    return _save(ViTModel, config, folder, _square("ViTImageProcessor"))


def dinov2(folder: Path) -> Path:
    from transformers import BitImageProcessor, Dinov2Config, Dinov2Model

    config = Dinov2Config(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                          mlp_ratio=2)
    processor = BitImageProcessor(size={"shortest_edge": 36}, crop_size={"height": 32, "width": 32},
                                  image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225])
    return _save(Dinov2Model, config, folder, processor)


def swin(folder: Path) -> Path:
    from transformers import SwinConfig, SwinModel

    config = SwinConfig(image_size=32, patch_size=4, embed_dim=16, depths=[2, 1], num_heads=[1, 2], window_size=4,
                        mlp_ratio=2.0)
    return _save(SwinModel, config, folder, _square("ViTImageProcessor"))


def convnext(folder: Path) -> Path:
    from transformers import ConvNextConfig, ConvNextImageProcessor, ConvNextModel

    config = ConvNextConfig(num_channels=3, patch_size=4, hidden_sizes=[8, 16], depths=[2, 1], num_stages=2)
    return _save(ConvNextModel, config, folder, ConvNextImageProcessor(size={"shortest_edge": 32}, crop_pct=1.0))


def resnet(folder: Path) -> Path:
    from transformers import ConvNextImageProcessor, ResNetConfig, ResNetModel

    config = ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[2, 1], layer_type="basic")
    return _save(ResNetModel, config, folder, ConvNextImageProcessor(size={"shortest_edge": 32}, crop_pct=1.0))


# ---------------------------------------------------------------- speech encoders

_WAVE = dict(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32, conv_dim=(8, 8),
             conv_stride=(5, 4), conv_kernel=(10, 8), num_feat_extract_layers=2, num_conv_pos_embeddings=16,
             num_conv_pos_embedding_groups=2, vocab_size=12)
#: The two kinds of raw-waveform encoder: "large" ones (wav2vec2-large-lv60, WavLM) normalise each conv layer and take
#: a padding mask; "base" ones (wav2vec2-base, hubert-base) group-normalise the first conv over time and take none
#: (their feature extractor returns no mask: padding is zeros the model sees).
_LARGE = dict(feat_extract_norm="layer", do_stable_layer_norm=True)
_BASE = dict(feat_extract_norm="group", do_stable_layer_norm=False)


def _wave_extractor(mask: bool):
    from transformers import Wav2Vec2FeatureExtractor

    return Wav2Vec2FeatureExtractor(sampling_rate=16000, return_attention_mask=mask, do_normalize=True)


def wav2vec2(folder: Path) -> Path:
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    return _save(Wav2Vec2Model, Wav2Vec2Config(**_WAVE, **_LARGE), folder, _wave_extractor(True))


def hubert(folder: Path) -> Path:
    from transformers import HubertConfig, HubertModel

    return _save(HubertModel, HubertConfig(**_WAVE, **_BASE), folder, _wave_extractor(False))


def wavlm(folder: Path) -> Path:
    from transformers import WavLMConfig, WavLMModel

    config = WavLMConfig(**_WAVE, **_LARGE, num_buckets=32, max_bucket_distance=64)
    return _save(WavLMModel, config, folder, _wave_extractor(True))


def ast(folder: Path) -> Path:
    from transformers import ASTConfig, ASTFeatureExtractor, ASTModel

    config = ASTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                       num_mel_bins=16, max_length=64, patch_size=16, frequency_stride=10, time_stride=10)
    return _save(ASTModel, config, folder, ASTFeatureExtractor(num_mel_bins=16, max_length=64))


def whisper(folder: Path) -> Path:
    """A whole Whisper model (encoder and decoder, as ``openai/whisper-*`` holds them): classification uses its encoder."""
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperModel

    config = WhisperConfig(vocab_size=64, num_mel_bins=80, d_model=32, encoder_layers=2, decoder_layers=1,
                           encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=64,
                           decoder_ffn_dim=64, max_source_positions=1500, max_target_positions=32,
                           pad_token_id=1, bos_token_id=2, eos_token_id=2, decoder_start_token_id=3)
    return _save(WhisperModel, config, folder, WhisperFeatureExtractor(feature_size=80))


# ---------------------------------------------------------------- the families

@dataclass(frozen=True)
class Family:
    name: str
    label: str             # as the README's matrix names it
    modality: str
    build: Callable[[Path], Path]
    #: The module (in the ``AutoModel``) that is the network's top block: what ``partial`` must train first.
    top_block: str
    #: Does a clip's prediction not depend on the clips batched with it? Not for "base" speech encoders, which see
    #: the padding (transformers' documented behaviour for them).
    batch_invariant: bool = True


FAMILIES: dict[str, Family] = {f.name: f for f in (
    Family("bert", "BERT", "text", bert, "encoder.layer.1"),
    Family("roberta", "RoBERTa (byte-level BPE)", "text", roberta, "encoder.layer.1"),
    Family("deberta-v2", "DeBERTa-v2/v3 (SentencePiece)", "text", deberta_v2, "encoder.layer.1"),
    Family("electra", "ELECTRA", "text", electra, "encoder.layer.1"),
    Family("distilbert", "DistilBERT", "text", distilbert, "transformer.layer.1"),
    Family("albert", "ALBERT (shared layers)", "text", albert, "encoder.albert_layer_groups.0.albert_layers.0"),
    Family("vit", "ViT", "image", vit, "layers.1"),
    Family("convnext", "ConvNeXt", "image", convnext, "encoder.stages.1.layers.0"),
    Family("swin", "Swin", "image", swin, "encoder.layers.1.blocks.0"),
    Family("dinov2", "DINOv2", "image", dinov2, "encoder.layer.1"),
    Family("resnet", "ResNet (no linear layers)", "image", resnet, "encoder.stages.1.layers.0"),
    Family("wav2vec2", "wav2vec2 (large-style: padding mask)", "audio", wav2vec2, "encoder.layers.1"),
    Family("hubert", "HuBERT (base-style: no padding mask)", "audio", hubert, "encoder.layers.1",
           batch_invariant=False),
    Family("wavlm", "WavLM", "audio", wavlm, "encoder.layers.1"),
    Family("ast", "AST (spectrogram)", "audio", ast, "layers.1"),
    Family("whisper", "Whisper (encoder)", "audio", whisper, "layers.1"),
)}


def build_family(name: str, folder: Path) -> Path:
    """Write family ``name``'s tiny folder at ``folder`` (once: an existing folder is returned as it is)."""
    folder = Path(folder)
    if not (folder / "config.json").exists():
        FAMILIES[name].build(folder)
    return folder
