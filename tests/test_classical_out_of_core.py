"""Above ``STREAM_ABOVE`` training items the classical baseline is fitted out of core (issue 21: memory that does not
grow with the data) — and it is the same model: same descriptors, same objective, every training item."""

from __future__ import annotations

import os
import re

import numpy as np
import pytest
from conftest import write_audio_set, write_image_set, write_text_set

from tlcore import storage
from tlcore.data.loaders import load_dataset
from tlcore.tasks.classification import classical


def _split(modality, writer, tmp_path, n_per_class):
    ds = load_dataset(writer(tmp_path / "d", n_per_class=n_per_class), modality)
    y = np.array([ds.classes.index(c) for c in ds.labels])
    train = np.arange(len(y)) % 4 != 0
    return ([ds.items[i] for i in np.flatnonzero(train)], y[train], [ds.items[i] for i in np.flatnonzero(~train)],
            y[~train])


@pytest.mark.parametrize("modality, writer, n", [("text", write_text_set, 30), ("image", write_image_set, 12),
                                                 ("audio", write_audio_set, 10)])
def test_the_out_of_core_fit_is_the_in_memory_model(tmp_path, monkeypatch, modality, writer, n):
    train, y, held, y_held = _split(modality, writer, tmp_path, n)
    monkeypatch.setattr(classical, "C_GRID_TEXT", (1.0,))     # one C: the two paths then fit the same objective
    monkeypatch.setattr(classical, "C_GRID", (1.0,))
    in_memory, info = classical.fit_classical(modality, train, y, seed=0)
    assert "fit" not in info
    monkeypatch.setattr(classical, "STREAM_ABOVE", len(train) - 1)      # now every fit streams ...
    monkeypatch.setattr(classical, "CHUNK", 7)                          # ... over several chunks on disk
    folders = []
    chunks = classical._Descriptors
    monkeypatch.setattr(classical, "_Descriptors", lambda m, items, folder: folders.append(folder) or chunks(m, items, folder))
    streamed, info = classical.fit_classical(modality, train, y, seed=0)
    # its chunks went to a folder gc can tell is this process's (removed by gc should the process be killed), now gone
    assert [f.name.startswith(f"{storage.CLASSICAL_PREFIX}{os.getpid()}-") for f in folders] == [True]
    assert not folders[0].exists()
    assert isinstance(streamed, classical.OutOfCoreLogistic)
    assert info["train_size"] == len(train) and info["C"] == 1.0 and "converged" in info["fit"]
    sample = re.search(r"subsample of (\d+) of the (\d+) training items", info["tuned"])
    assert len(train) // 2 < int(sample[1]) < len(train) == int(sample[2])
    a, b = np.asarray(in_memory.predict(held)), streamed.predict(held)
    assert (a == b).mean() >= 0.9                              # the same optimum, up to the optimiser's tolerance
    regression = in_memory[-1]
    if len(regression.classes_) > 2:                           # scikit-learn's multinomial weights: the same
        assert np.corrcoef(regression.coef_.ravel(), streamed.coef[regression.classes_].ravel())[0, 1] > 0.98
    pred, info = classical.classical_predictions(modality, train, y, held, seed=0)
    assert len(pred) == len(held) and (pred == y_held).mean() > 1 / len(set(y.tolist()))


def test_chunked_eval_scoring_equals_scoring_everything_at_once(tmp_path, monkeypatch):
    train, y, held, _ = _split("text", write_text_set, tmp_path, 20)
    model, _ = classical.fit_classical("text", train, y, seed=0)
    monkeypatch.setattr(classical, "CHUNK", 3)
    pred, _ = classical.classical_predictions("text", train, y, held, seed=0)
    assert (pred == model.predict(held)).all()


def test_the_p6_table_is_the_measured_json_and_every_combination_stays_flat():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import bench_memory

    assert bench_memory.block_matches(), "docs/benchmarks.md P6 block differs: run benchmarks/bench_memory.py --render"
    rows = bench_memory.load_rows(bench_memory.JSON_PATH)
    assert set(rows) == {(m, c) for m in ("image", "text") for c in bench_memory.COMBOS}
    for row in rows.values():
        assert row["small"]["exit"] == row["large"]["exit"] == 0
        assert row["ratio"] == round(row["large"]["peak_rss_mib"] / row["small"]["peak_rss_mib"], 3) <= 1.3, row
