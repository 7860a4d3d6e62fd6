"""CTranslate2 reader on a hand-written model.bin; Whisper tiny.en conversion end to end (offline)."""

from __future__ import annotations

import ctypes
import json
import os
import re
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from tlcore.models.whisper_ct2 import (  # noqa: E402
    cached_conversion,
    ct2_whisper_to_hf_state_dict,
    read_ct2_model,
    whisper_config_from_ct2,
    whisper_tiny_en_dir,
)

SENTENCE = "the quick brown fox jumps over the lazy dog"


# ---------------------------------------------------------------- writing the CTranslate2 format by hand
def _string(s: str) -> bytes:
    raw = s.encode() + b"\0"
    return struct.pack("<H", len(raw)) + raw


def _write_ct2(path: Path, variables: dict[str, tuple[int, np.ndarray]], aliases: dict[str, str]) -> None:
    """Write ``{name: (dtype code, array)}`` in CTranslate2 binary version 6."""
    out = [struct.pack("<I", 6), _string("WhisperSpec"), struct.pack("<I", 3), struct.pack("<I", len(variables))]
    for name, (code, array) in variables.items():
        raw = array.tobytes()
        out += [_string(name), struct.pack("<B", array.ndim), struct.pack(f"<{array.ndim}I", *array.shape)]
        out += [struct.pack("<BI", code, len(raw)), raw]
    out.append(struct.pack("<I", len(aliases)))
    for alias, target in aliases.items():
        out += [_string(alias), _string(target)]
    path.write_bytes(b"".join(out))


def test_read_ct2_model_names_shapes_dtypes_values_and_aliases(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    w16 = rng.normal(size=(3, 4)).astype("<f2")
    w32 = rng.normal(size=(5,)).astype("<f4")
    bf16_values = np.array([1.0, -2.5, 0.15625], dtype=np.float32)  # exactly representable in bf16
    bf16_raw = (bf16_values.view(np.uint32) >> 16).astype("<u2")
    variables = {
        "encoder/conv1/weight": (4, w16),
        "encoder/conv1/bias": (0, w32),
        "encoder/num_heads": (2, np.array(6, dtype="<i2")),
        "decoder/pre_norm": (1, np.array(1, dtype="i1")),
        "decoder/ids": (3, np.arange(6, dtype="<i4").reshape(2, 3)),
        "decoder/scale": (5, bf16_raw),
    }
    path = tmp_path / "model.bin"
    _write_ct2(path, variables, {"decoder/projection/weight": "encoder/conv1/weight"})

    got = read_ct2_model(path)
    assert set(got) == set(variables) | {"decoder/projection/weight"}
    assert got["encoder/conv1/weight"].dtype == np.float16 and got["encoder/conv1/weight"].shape == (3, 4)
    np.testing.assert_array_equal(got["encoder/conv1/weight"], w16)
    np.testing.assert_array_equal(got["encoder/conv1/bias"], w32)
    assert got["encoder/num_heads"].shape == () and int(got["encoder/num_heads"]) == 6
    assert got["encoder/num_heads"].dtype == np.int16 and got["decoder/pre_norm"].dtype == np.int8
    np.testing.assert_array_equal(got["decoder/ids"], np.arange(6).reshape(2, 3))
    assert got["decoder/scale"].dtype == np.float32
    np.testing.assert_array_equal(got["decoder/scale"], bf16_values)
    np.testing.assert_array_equal(got["decoder/projection/weight"], w16)

    # a model.bin split in two parts reads the same
    data = path.read_bytes()
    (tmp_path / "a").write_bytes(data[:100])
    (tmp_path / "b").write_bytes(data[100:])
    assert set(read_ct2_model([tmp_path / "a", tmp_path / "b"])) == set(got)

    (tmp_path / "cut.bin").write_bytes(data[:-40])
    with pytest.raises((ValueError, struct.error)):
        read_ct2_model(tmp_path / "cut.bin")


def _tiny_whisper_variables(d: int = 8, ffn: int = 16, vocab: int = 51864, layers: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    r = lambda *shape: rng.normal(size=shape).astype(np.float16)  # noqa: E731
    v: dict[str, np.ndarray] = {
        "encoder/conv1/weight": r(d, 4, 3), "encoder/conv1/bias": r(d),
        "encoder/conv2/weight": r(d, d, 3), "encoder/conv2/bias": r(d),
        "encoder/position_encodings/encodings": r(10, d), "decoder/position_encodings/encodings": r(7, d),
        "decoder/embeddings/weight": r(vocab, d),
        "encoder/num_heads": np.array(2, dtype=np.int16), "decoder/num_heads": np.array(2, dtype=np.int16),
    }
    for stack in ("encoder", "decoder"):
        v[f"{stack}/layer_norm/gamma"], v[f"{stack}/layer_norm/beta"] = r(d), r(d)
        for i in range(layers):
            p = f"{stack}/layer_{i}"
            attns = {"self_attention": [3 * d, d]} | ({"attention": [d, 2 * d, d]} if stack == "decoder" else {})
            for attn, outs in attns.items():
                v[f"{p}/{attn}/layer_norm/gamma"], v[f"{p}/{attn}/layer_norm/beta"] = r(d), r(d)
                for j, n_out in enumerate(outs):
                    v[f"{p}/{attn}/linear_{j}/weight"] = r(n_out, d)
                    v[f"{p}/{attn}/linear_{j}/bias"] = r(n_out)
                # Whisper's key projections have no bias: CTranslate2 stores zeros there
                k_bias = slice(d, 2 * d) if attn == "self_attention" else slice(0, d)
                fused = f"{p}/{attn}/linear_0/bias" if attn == "self_attention" else f"{p}/{attn}/linear_1/bias"
                v[fused][k_bias] = 0
            v[f"{p}/ffn/layer_norm/gamma"], v[f"{p}/ffn/layer_norm/beta"] = r(d), r(d)
            v[f"{p}/ffn/linear_0/weight"], v[f"{p}/ffn/linear_0/bias"] = r(ffn, d), r(ffn)
            v[f"{p}/ffn/linear_1/weight"], v[f"{p}/ffn/linear_1/bias"] = r(d, ffn), r(d)
    return v


def test_tiny_synthetic_whisper_maps_onto_transformers_exactly() -> None:
    from transformers import WhisperForConditionalGeneration

    v = _tiny_whisper_variables(layers=2)
    config = whisper_config_from_ct2(v, {"suppress_ids": [1, 2], "suppress_ids_begin": [220, 50256]})
    assert (config.d_model, config.encoder_layers, config.decoder_layers) == (8, 2, 2)
    assert (config.num_mel_bins, config.encoder_ffn_dim, config.encoder_attention_heads) == (4, 16, 2)
    assert (config.max_source_positions, config.max_target_positions, config.vocab_size) == (10, 7, 51864)
    assert (config.eos_token_id, config.decoder_start_token_id) == (50256, 50257)
    state = ct2_whisper_to_hf_state_dict(v, config)
    model = WhisperForConditionalGeneration(config)
    model.load_state_dict(state, strict=True)
    # q, k, v split in order along dim 0
    d = 8
    qkv = v["encoder/layer_1/self_attention/linear_0/weight"].astype(np.float32)
    attn = model.model.encoder.layers[1].self_attn
    np.testing.assert_array_equal(attn.k_proj.weight.detach().numpy(), qkv[d : 2 * d])
    np.testing.assert_array_equal(attn.v_proj.weight.detach().numpy(), qkv[2 * d :])
    kv = v["decoder/layer_0/attention/linear_1/weight"].astype(np.float32)
    cross = model.model.decoder.layers[0].encoder_attn
    np.testing.assert_array_equal(cross.v_proj.weight.detach().numpy(), kv[d:])
    assert torch.equal(model.proj_out.weight, model.model.decoder.embed_tokens.weight)
    assert all(t.dtype == torch.float32 for t in state.values())

    multi = _tiny_whisper_variables(vocab=51865)
    assert whisper_config_from_ct2(multi, {}).decoder_start_token_id == 50258
    with pytest.raises(ValueError):
        whisper_config_from_ct2(v, {}, vocab_size=51865)


# ---------------------------------------------------------------- real weights, real speech
def _word_error_rate(reference: list[str], hypothesis: list[str]) -> float:
    """Levenshtein distance over words / reference length."""
    row = list(range(len(hypothesis) + 1))
    for i, ref in enumerate(reference, 1):
        prev, row[0] = row[0], i
        for j, hyp in enumerate(hypothesis, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ref != hyp))
    return row[-1] / len(reference)


def _espeak(text: str, voice: str = "en", words_per_minute: int = 130) -> tuple[np.ndarray, int]:
    """Synthesize ``text`` with the eSpeak NG library bundled in ``espeakng_loader`` (float32 mono, its rate)."""
    import espeakng_loader

    lib = ctypes.CDLL(espeakng_loader.get_library_path())
    data_parent = str(Path(espeakng_loader.get_data_path()).parent).encode()
    rate = lib.espeak_Initialize(2, 0, data_parent, 0)  # 2 = AUDIO_OUTPUT_SYNCHRONOUS
    assert rate > 0, "espeak_Initialize failed"
    chunks: list[np.ndarray] = []
    callback_type = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)

    def on_samples(wav, n, events):  # noqa: ANN001
        if n > 0:
            chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        return 0

    callback = callback_type(on_samples)
    lib.espeak_SetSynthCallback(callback)
    lib.espeak_SetVoiceByName(voice.encode())
    lib.espeak_SetParameter(1, words_per_minute, 0)  # 1 = espeakRATE
    raw = text.encode() + b"\0"
    lib.espeak_Synth(raw, len(raw), 0, 0, 0, 1, None, None)  # 1 = espeakCHARS_UTF8
    lib.espeak_Synchronize()
    return np.concatenate(chunks).astype(np.float32) / 32768.0, rate


@pytest.fixture(scope="module")
def tiny_en_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TRANSFERLAB_HOME", str(tmp_path_factory.mktemp("tlhome")))
        path = whisper_tiny_en_dir()
    assert path.is_relative_to(tmp_path_factory.getbasetemp())
    return path


def test_converted_tiny_en_loads_cleanly_and_tokenizes(tiny_en_dir: Path) -> None:
    from transformers import WhisperFeatureExtractor, WhisperForConditionalGeneration, WhisperProcessor

    model, info = WhisperForConditionalGeneration.from_pretrained(tiny_en_dir, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    assert 37_000_000 < sum(p.numel() for p in model.parameters()) < 38_500_000
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert model.generation_config.decoder_start_token_id == 50257
    assert model.generation_config.no_timestamps_token_id == 50362

    processor = WhisperProcessor.from_pretrained(tiny_en_dir)
    assert WhisperFeatureExtractor.from_pretrained(tiny_en_dir).feature_size == 80
    tok = processor.tokenizer
    assert tok.convert_tokens_to_ids(["<|endoftext|>", "<|startoftranscript|>", "<|notimestamps|>"]) == [
        50256, 50257, 50362,
    ]
    assert len(tok) == model.config.vocab_size == 51864
    ids = tok(" Hello world.").input_ids
    assert ids[:2] == [50257, 50362] and ids[-1] == 50256
    assert tok.decode(ids, skip_special_tokens=True) == " Hello world."
    assert tok.decode(ids).startswith("<|startoftranscript|><|notimestamps|>")


def test_tiny_en_transcribes_espeak_sentence(tiny_en_dir: Path) -> None:
    import torchaudio.functional as AF
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    audio, rate = _espeak(SENTENCE)
    assert rate == 22050 and 1.0 < len(audio) / rate < 6.0
    audio16 = AF.resample(torch.from_numpy(audio), rate, 16000).numpy()
    processor = WhisperProcessor.from_pretrained(tiny_en_dir)
    model = WhisperForConditionalGeneration.from_pretrained(tiny_en_dir).eval()
    features = processor(audio16, sampling_rate=16000, return_tensors="pt").input_features
    with torch.no_grad():
        ids = model.generate(features, max_new_tokens=40)
    text = processor.batch_decode(ids, skip_special_tokens=True)[0]
    words = re.findall(r"[a-z]+", text.lower())
    hits = sum(w in words for w in SENTENCE.split())
    # tiny.en on robotic eSpeak speech is good, not perfect (measured: "The quick brown fox jump over the lazy dog.")
    assert hits >= 6, text
    assert _word_error_rate(SENTENCE.split(), words) <= 1 / 3, text


def test_cached_conversion_reuses_and_refreshes(tiny_en_dir: Path, tmp_path: Path) -> None:
    marker = json.loads((tiny_en_dir / "transferlab_source.json").read_text())
    source = Path(marker["source"])
    assert marker["size"] == source.stat().st_size
    # a second call with the same source returns the cached folder without converting
    stamp = (tiny_en_dir / "model.safetensors").stat().st_mtime_ns
    assert cached_conversion(source.parent, tiny_en_dir.parent) == tiny_en_dir
    assert (tiny_en_dir / "model.safetensors").stat().st_mtime_ns == stamp
    # a stale marker (as if the package changed) triggers a fresh conversion in place
    (tiny_en_dir / "transferlab_source.json").write_text(json.dumps(marker | {"size": 1}))
    assert cached_conversion(source.parent, tiny_en_dir.parent) == tiny_en_dir
    assert json.loads((tiny_en_dir / "transferlab_source.json").read_text()) == marker
    assert not [p for p in tiny_en_dir.parent.iterdir() if p.name.startswith(".")]  # no temp folders left
