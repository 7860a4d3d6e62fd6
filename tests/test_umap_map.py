"""UMAP beside PCA for the 2-D embedding map (Diagnose page)."""

from __future__ import annotations

import numpy as np
import pytest

from tlcore.diagnostics.embedding_map import embedding_map
from tlcore.errors import ConfigError


def _rings(seed: int = 0):
    """Two classes that PCA puts on top of each other: both centred, told apart only by a direction of low
    variance, each a tight cluster in cosine distance."""
    rng = np.random.default_rng(seed)
    base = rng.normal(0, 1, (1, 32))
    a = base + 0.05 * rng.normal(0, 1, (60, 32))
    b = -base + 0.05 * rng.normal(0, 1, (60, 32))
    return a, b


def _purity(x, y, labels, k: int = 5) -> float:
    pts = np.c_[x, y]
    d = ((pts[:, None] - pts[None]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    nn = np.argsort(d, axis=1)[:, :k]
    labels = np.asarray(labels)
    return float((labels[nn] == labels[:, None]).mean())


def test_umap_map_keeps_groups_apart_and_is_seeded():
    a, b = _rings()
    m = embedding_map(a, b, method="umap", seed=1)
    assert m.method == "umap" and len(m.x) == 120 and m.explained_variance == []
    assert _purity(m.x, m.y, m.domain) > 0.95
    again = embedding_map(a, b, method="umap", seed=1)
    assert np.allclose(m.x, again.x) and np.allclose(m.y, again.y)
    assert embedding_map(a, b).method == "pca"


def test_umap_with_too_few_points_falls_back_to_pca_and_bad_methods_are_refused():
    a, b = _rings()
    assert embedding_map(a[:1], b[:2], method="umap").method == "pca"
    with pytest.raises(ValueError, match="unknown map method"):
        embedding_map(a, b, method="tsne")


def test_diagnose_returns_the_umap_map_when_asked(tmp_path, one_thread):
    from tests.conftest import write_text_set
    from tlcore.api import diagnose

    src = write_text_set(tmp_path / "s", n_per_class=10, seed=1)
    tgt = write_text_set(tmp_path / "t", n_per_class=10, seed=2)
    out = diagnose(src, tgt, modality="text", backbone="tiny-text", map_method="umap").to_dict()
    m = out["mismatch"]["map"]
    assert m["method"] == "umap" and len(m["x"]) == 40
    with pytest.raises(ConfigError, match="umap"):
        diagnose(src, tgt, modality="text", backbone="tiny-text", map_method="tsne")
