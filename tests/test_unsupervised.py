"""Clustering of features and the raw-input baselines, against cases with known answers."""

import json

import numpy as np
import pytest
from conftest import write_audio_set, write_image_set
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from tlcore.diagnostics.clustering import ClusterResult, cluster_features, cluster_scores, compare_clustering, raw_features


def blobs(n_per=40, d=64, k=3, seed=0):
    """k tight blobs around random (hence nearly orthogonal) directions; labels in blob order."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, d)) * 3
    y = np.repeat(np.arange(k), n_per)
    return (centres[y] + rng.normal(scale=0.5, size=(len(y), d))).astype(np.float32), y


def test_cluster_features_recovers_blobs_and_picks_k_by_silhouette():
    x, y = blobs()
    res = cluster_features(x, seed=0)
    assert isinstance(res, ClusterResult)
    assert res.k == 3
    assert sorted(res.silhouette_by_k) == list(range(2, 13))
    assert res.silhouette == max(res.silhouette_by_k.values()) > 0.5
    assert cluster_scores(y, res.labels)["nmi"] > 0.95
    assert res.labels.shape == (120,)
    json.dumps(res.to_dict())


def test_cluster_features_fixed_k_and_determinism():
    x, y = blobs(seed=1, k=4)
    a, b = cluster_features(x, k=4, seed=5), cluster_features(x, k=4, seed=5)
    assert a.k == 4 and list(a.silhouette_by_k) == [4]
    assert np.array_equal(a.labels, b.labels)
    assert cluster_scores(y, a.labels)["ari"] > 0.95
    with pytest.raises(ValueError, match="k must be"):
        cluster_features(x, k=0)
    with pytest.raises(ValueError, match="need at least"):
        cluster_features(x[:2])


def test_cluster_scores_hand_case():
    truth = np.array([0, 0, 0, 1, 1, 1])
    assert cluster_scores(truth, np.array([5, 5, 5, 2, 2, 2])) == {"nmi": 1.0, "ari": 1.0}   # names don't matter
    pred = np.array([0, 0, 1, 1, 2, 2])
    # By hand: H(Y) = ln 2, H(K) = ln 3, I = H(Y) − H(Y|K) = ln 2 − (1/3)·ln 2 = (2/3) ln 2 (the middle cluster is mixed).
    nmi = (2 / 3) * np.log(2) / ((np.log(2) + np.log(3)) / 2)
    # ARI by hand: Σ C(n_ij, 2) = 2, Σ C(a_i, 2) = 6, Σ C(b_j, 2) = 3, C(6, 2) = 15 → expected 6·3/15 = 1.2.
    ari = (2 - 1.2) / ((6 + 3) / 2 - 1.2)
    scores = cluster_scores(truth, pred)
    assert scores["nmi"] == pytest.approx(nmi) == pytest.approx(normalized_mutual_info_score(truth, pred))
    assert scores["ari"] == pytest.approx(ari) == pytest.approx(adjusted_rand_score(truth, pred))
    with pytest.raises(ValueError):
        cluster_scores(truth, pred[:3])


def test_raw_features_image_shape(tmp_path):
    folder = write_image_set(tmp_path / "img", n_per_class=3)
    paths = sorted(folder.rglob("*.png"))
    f = raw_features(paths, "image")
    assert f.shape == (6, 32 * 32) and f.dtype == np.float32
    assert 0.0 <= f.min() and f.max() <= 1.0
    bright = np.array(["bright" in p.name for p in paths])
    assert f[bright].mean() > f[~bright].mean() + 0.3


def test_raw_features_text_shape():
    texts = [f"the film was {w} number {i}" for i in range(10) for w in ("great", "awful")]
    f = raw_features(texts, "text")
    assert f.shape[0] == 20 and 1 <= f.shape[1] <= 100 and f.dtype == np.float32
    assert np.array_equal(f, raw_features(texts, "text"))


def test_raw_features_audio_shape_and_separates_tones(tmp_path):
    folder = write_audio_set(tmp_path / "aud", n_per_class=3)
    paths = sorted(folder.rglob("*.wav"))
    f = raw_features(paths, "audio")
    assert f.shape == (6, 40) and f.dtype == np.float32 and np.isfinite(f).all()
    y = [p.parent.name for p in paths]
    assert cluster_scores(y, cluster_features(f, k=2).labels)["nmi"] == pytest.approx(1.0)


def test_raw_features_rejects_unknown_modality():
    with pytest.raises(ValueError, match="image, text or audio"):
        raw_features(["a"], "video")


def test_compare_clustering_reports_both_with_scores():
    x, y = blobs()
    noise = np.random.default_rng(0).normal(size=(120, 30)).astype(np.float32)
    out = compare_clustering(x, noise, y, k=3)
    assert set(out) == {"pretrained", "raw"}
    assert out["pretrained"]["k"] == out["raw"]["k"] == 3
    assert out["pretrained"]["nmi"] > 0.95 > 0.3 > out["raw"]["nmi"]
    json.dumps(out)
    no_labels = compare_clustering(x, noise, k=3)
    assert "nmi" not in no_labels["pretrained"] and no_labels["pretrained"]["k"] == 3
    with pytest.raises(ValueError, match="same items"):
        compare_clustering(x, noise[:10])
