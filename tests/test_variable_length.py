"""Raw-waveform encoders (wav2vec2-style) pad each batch to its own length: training on more clips than one cached
chunk holds, with clips of different lengths, must not fail (it raised "Sizes of tensors must match")."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from conftest import make_tiny_wav2vec2

import tlcore


@pytest.fixture(scope="module")
def wav2vec2_folder(tmp_path_factory):
    """A tiny random-weight wav2vec2 saved as a local ``save_pretrained`` folder (what a hub id resolves to)."""
    return make_tiny_wav2vec2(tmp_path_factory.mktemp("w2v") / "model")


def _clips(folder, per_class: int = 50):
    rng = np.random.default_rng(0)
    for label, freq in (("low", 300), ("high", 1200)):
        (folder / label).mkdir(parents=True)
        for i in range(per_class):
            n = int(rng.integers(4000, 9000))          # 0.25-0.56 s: every chunk pads to another length
            t = np.arange(n) / 16000
            wave = 0.3 * np.sin(2 * np.pi * freq * t) + 0.01 * rng.normal(size=n)
            sf.write(folder / label / f"{i}.wav", wave.astype(np.float32), 16000)
    return folder


@pytest.mark.parametrize("strategy", ["full", "lora"])
def test_a_wav2vec2_style_encoder_fine_tunes_on_clips_of_many_lengths(tmp_path, wav2vec2_folder, strategy):
    data = _clips(tmp_path / "clips")
    report = tlcore.finetune(modality="audio", target=str(data), backbone=str(wav2vec2_folder), strategy=strategy,
                             epochs=1, batch_size=8, baselines=["scratch"], out=str(tmp_path / "run")).report
    assert report["data"]["train"] > 64                 # more than one cached chunk of inputs
    assert report["training"]["epochs_run"] == 1 and report["baselines"]["scratch"]["training"]["epochs_run"] == 1
    run = tlcore.load_run(tmp_path / "run")
    first = sorted((data / "high").iterdir())[:3]
    assert [p["prediction"] for p in run.predict([str(p) for p in first])] != []


def test_texts_are_batched_by_length_and_their_features_come_back_in_item_order():
    """Feature extraction batches texts of similar length together (each batch pads to its own longest text): the
    features equal those of each text alone (no padding at all), in the items' order."""
    import torch

    from tlcore.data.dataset import Dataset
    from tlcore.models.features import extract_features, length_order
    from tlcore.models.registry import build_backbone

    rng = np.random.default_rng(0)
    texts = [" ".join(["word"] * int(n)) + f" {i}" for i, n in enumerate(rng.integers(1, 60, size=23))]
    ds = Dataset(modality="text", items=texts, labels=["a"] * len(texts))
    backbone = build_backbone("tiny-text", "text", seed=0)
    order = length_order(backbone, texts)
    assert [len(texts[i]) for i in order] == sorted(len(t) for t in texts) and sorted(order) == list(range(23))
    batched = extract_features(backbone, ds, batch_size=8, use_cache=False)
    with torch.no_grad():
        backbone.eval()       # as extract_features runs it (no dropout)
        alone = np.concatenate([backbone(**backbone.preprocess([t])).numpy() for t in texts])
    np.testing.assert_allclose(batched, alone, atol=1e-5)
