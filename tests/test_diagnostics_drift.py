"""Property drift and the per-modality property extractors, on hand-made inputs with known answers."""

import json

import numpy as np
import pytest
from PIL import Image

from tlcore.diagnostics import (
    audio_properties,
    image_properties,
    property_drift,
    separating_words,
    text_properties,
    vocabulary_overlap,
)

# --- property_drift --------------------------------------------------------------------------------


def test_drift_finds_the_one_planted_change_among_ten():
    rng = np.random.default_rng(0)
    props_a = {f"p{i}": rng.normal(0, 1, 400) for i in range(10)}
    props_b = {f"p{i}": rng.normal(0, 1, 300) for i in range(10)}
    props_b["p6"] = rng.normal(1.0, 1, 300)  # planted: one standard deviation
    report = property_drift(props_a, props_b)
    assert [r.name for r in report.rows] == [f"p{i}" for i in range(10)]
    assert [r.name for r in report.rows if r.drifting] == ["p6"]
    p6 = report.rows[6]
    assert p6.test == "ks" and p6.q_value < 1e-6 and p6.effect == pytest.approx(1.0, abs=0.2)
    json.dumps(report.to_dict(), allow_nan=False)


def test_drift_ignores_trivial_shift_in_huge_samples():
    rng = np.random.default_rng(1)
    report = property_drift({"x": rng.normal(0, 1, 200_000)}, {"x": rng.normal(0.03, 1, 200_000)})
    row = report.rows[0]
    assert row.q_value < 1e-6  # statistically certain ...
    assert row.effect < 0.1 and not row.drifting  # ... but too small to matter


def test_drift_q_values_are_benjamini_hochberg():
    rng = np.random.default_rng(2)
    props_a = {f"p{i}": rng.normal(0, 1, 60) for i in range(6)}
    props_b = {f"p{i}": rng.normal(0.15 * i, 1, 60) for i in range(6)}
    rows = property_drift(props_a, props_b).rows
    p = np.array([r.p_value for r in rows])
    order = np.argsort(p)
    k = len(p)
    ranked = p[order] * k / np.arange(1, k + 1)
    q_sorted = np.minimum(1, np.minimum.accumulate(ranked[::-1])[::-1])
    expected = np.empty(k)
    expected[order] = q_sorted
    np.testing.assert_allclose([r.q_value for r in rows], expected)


def test_drift_uses_chi_square_for_few_valued_and_text_properties():
    a = {"channels": [3] * 90 + [1] * 10, "fmt": ["png"] * 50 + ["jpg"] * 50, "only_a": [1.0, 2.0]}
    b = {"channels": [3] * 40 + [1] * 60, "fmt": ["png"] * 50 + ["jpg"] * 50, "only_b": [1.0, 2.0]}
    report = property_drift(a, b)
    rows = {r.name: r for r in report.rows}
    assert rows["channels"].test == "chi2" and rows["channels"].drifting
    assert rows["channels"].effect == pytest.approx(0.5)  # TV between (0.1, 0.9) and (0.6, 0.4)
    assert rows["fmt"].test == "chi2" and not rows["fmt"].drifting and rows["fmt"].mean_a is None
    assert sorted(report.skipped) == ["only_a", "only_b"]


def test_drift_drops_missing_values():
    a = {"pitch": [100.0, np.nan, 110.0, 105.0, np.nan, 120.0, 101.5]}
    b = {"pitch": [100.5, 111.0, np.nan, 104.0, 119.0, 102.0]}
    row = property_drift(a, b).rows[0]
    assert (row.n_a, row.n_b) == (5, 5) and not row.drifting


# --- images ----------------------------------------------------------------------------------------


def test_image_properties_known_values(tmp_path):
    black = Image.new("RGB", (40, 20), (0, 0, 0))
    white = Image.new("L", (10, 10), 255)
    red = Image.new("RGB", (8, 16), (255, 0, 0))
    checker = Image.fromarray(((np.indices((32, 32)).sum(axis=0) % 2) * 255).astype(np.uint8))
    path = tmp_path / "gray.png"
    Image.new("RGB", (30, 10), (128, 128, 128)).save(path)
    props = image_properties([black, white, red, checker, path])
    np.testing.assert_allclose(props["width"], [40, 10, 8, 32, 30])
    np.testing.assert_allclose(props["height"], [20, 10, 16, 32, 10])
    np.testing.assert_allclose(props["aspect_ratio"], [2.0, 1.0, 0.5, 1.0, 3.0])
    np.testing.assert_allclose(props["brightness"], [0.0, 1.0, 0.299, 0.5, 128 / 255], atol=1e-3)
    np.testing.assert_allclose(props["channels"], [1, 1, 3, 1, 1])
    np.testing.assert_allclose(props["contrast"][[0, 1, 2, 4]], 0.0, atol=1e-9)
    assert props["contrast"][3] == pytest.approx(0.5)
    np.testing.assert_allclose(props["mean_r"], [0, 1, 1, 0.5, 128 / 255], atol=1e-3)
    np.testing.assert_allclose(props["mean_g"][2], 0.0)
    np.testing.assert_allclose(props["saturation"], [0, 0, 1, 0, 0])
    # A flat image has no edges; a one-pixel checkerboard has Laplacian ±4·255 everywhere.
    assert props["sharpness"][0] == 0.0 and props["sharpness"][3] == pytest.approx((4 * 255) ** 2)


def test_image_sharpness_drops_with_blur():
    from PIL import ImageFilter

    rng = np.random.default_rng(0)
    sharp = Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    props = image_properties([sharp, sharp.filter(ImageFilter.GaussianBlur(2))])
    assert props["sharpness"][1] < 0.1 * props["sharpness"][0]


# --- text ------------------------------------------------------------------------------------------


class FakeTokenizer:
    """Splits on spaces; words not in its vocabulary map to the unknown id 0."""

    unk_token_id = 0
    vocab = {"the": 1, "cat": 2, "sat": 3}

    def __call__(self, texts, add_special_tokens=True):
        return {"input_ids": [[self.vocab.get(w, 0) for w in t.split()] for t in texts]}


def test_text_properties_known_values():
    texts = ["Hello, world!", "the cat sat on 42 mats", "Ünïcode ÄÖ", "", "don't STOP"]
    props = text_properties(texts, tokenizer=FakeTokenizer())
    np.testing.assert_allclose(props["characters"], [13, 22, 10, 0, 10])
    np.testing.assert_allclose(props["words"], [2, 6, 2, 0, 2])
    np.testing.assert_allclose(props["digit_share"], [0, 2 / 22, 0, 0, 0])
    np.testing.assert_allclose(props["non_ascii_share"], [0, 0, 4 / 10, 0, 0])
    np.testing.assert_allclose(props["uppercase_share"], [1 / 10, 0, 3 / 9, 0, 4 / 8])
    np.testing.assert_allclose(props["tokens"], [2, 6, 2, 0, 2])
    np.testing.assert_allclose(props["unk_rate"], [1.0, 0.5, 1.0, 0.0, 1.0])
    np.testing.assert_allclose(props["tokens_per_word"], [1, 1, 1, 0, 1])
    assert "tokens" not in text_properties(texts)


def test_vocabulary_overlap_known_values():
    res = vocabulary_overlap(["a b c", "c d"], ["C d e", "e e"])
    assert res["jaccard"] == pytest.approx(2 / 5)  # {c, d} of {a, b, c, d, e}
    assert res["oov_rate_b_given_a"] == pytest.approx(3 / 5)  # e, e, e of c d e e e
    assert res["oov_type_rate_b_given_a"] == pytest.approx(1 / 3)


def test_separating_words_direction_and_prior():
    a = ["the movie was great great fun"] * 20
    b = ["the invoice was overdue please pay"] * 20
    top = separating_words(a, b, k=4)
    words_a = {w for w, z, ca, cb in top if z > 0}
    words_b = {w for w, z, ca, cb in top if z < 0}
    assert "great" in words_a and words_b and words_b <= {"invoice", "overdue", "please", "pay"}
    assert top[0] == ("great", pytest.approx(top[0][1]), 40, 0)
    assert all(w not in {"the", "was"} for w, *_ in top)
    assert separating_words(["a a"], ["a"]) == []


# --- audio -----------------------------------------------------------------------------------------


def test_audio_properties_known_values():
    sr = 16000
    t = np.arange(sr) / sr
    sine = 0.5 * np.sin(2 * np.pi * 200 * t)
    clipped = np.clip(2.0 * np.sin(2 * np.pi * 200 * t), -1, 1)
    half_silent = sine.copy()
    half_silent[: sr // 2] = 0.0
    stereo_1k = np.stack([np.sin(2 * np.pi * 1000 * t)] * 2, axis=1) * 0.9
    noise = 0.1 * np.random.default_rng(0).standard_normal(sr)
    props = audio_properties([(sine, sr), (clipped, sr), (half_silent, sr), (stereo_1k, sr), (noise, 8000)])
    np.testing.assert_allclose(props["duration_s"], [1, 1, 1, 1, 2])
    np.testing.assert_allclose(props["channels"], [1, 1, 1, 2, 1])
    np.testing.assert_allclose(props["pitch_hz"][:3], 200, rtol=0.01)
    assert np.isnan(props["pitch_hz"][4])  # white noise is unvoiced
    assert props["loudness_dbfs"][0] == pytest.approx(20 * np.log10(0.5 / np.sqrt(2)), abs=0.01)
    # sin(x) ≥ 0.5 (|2 sin| ≥ 1) for 2/3 of a period
    assert props["clipping_share"][1] == pytest.approx(2 / 3, abs=0.01) and props["clipping_share"][0] == 0
    assert props["silence_ratio"][2] == pytest.approx(0.5, abs=0.02)
    assert props["snr_db"][2] > 60 and abs(props["snr_db"][0]) < 1
    assert props["spectral_centroid_hz"][3] == pytest.approx(1000, rel=0.02)
    assert props["spectral_centroid_hz"][4] == pytest.approx(2000, rel=0.1)  # white noise: half of Nyquist


def test_audio_accepts_integer_pcm():
    sr = 8000
    pcm = (0.5 * np.sin(2 * np.pi * 150 * np.arange(sr) / sr) * 32767).astype(np.int16)
    props = audio_properties([(pcm, sr)])
    assert props["pitch_hz"][0] == pytest.approx(150, rel=0.01)
    assert props["loudness_dbfs"][0] == pytest.approx(20 * np.log10(0.5 / np.sqrt(2)), abs=0.05)
