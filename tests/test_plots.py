"""The pure plotly builders: right traces, right numbers, no Streamlit."""

import ast
from pathlib import Path

import plotly.graph_objects as go
import pytest

from tlcore import plots


def test_plots_module_never_imports_streamlit():
    tree = ast.parse(Path(plots.__file__).read_text())
    names = {a.name for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom)) for a in n.names}
    mods = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not any("streamlit" in (m or "") for m in names | mods)


def test_confusion_matrix_counts_and_axes():
    fig = plots.confusion_matrix_figure([[3, 1], [0, 4]], ["cat", "dog"], "before")
    hm = fig.data[0]
    assert isinstance(hm, go.Heatmap) and [list(r) for r in hm.z] == [[3, 1], [0, 4]]
    assert list(hm.x) == ["cat", "dog"] and fig.layout.title.text == "before"
    with pytest.raises(ValueError):
        plots.confusion_matrix_figure([[1, 2]], ["a", "b"])


def test_per_class_bars_before_after():
    before = {"a": {"f1": 0.5}, "b": {"f1": 0.25}}
    after = {"a": {"f1": 0.75}, "b": {"f1": 1.0}}
    fig = plots.per_class_bars(before, after, "f1")
    assert [t.name for t in fig.data] == ["before", "after"]
    assert list(fig.data[1].y) == [0.75, 1.0] and list(fig.data[0].x) == ["a", "b"]


def test_metric_bars_asymmetric_ci():
    fig = plots.metric_bars([{"name": "before", "value": 0.6, "ci": [0.5, 0.65]}, {"name": "after", "value": 0.8}])
    bar = fig.data[0]
    assert list(bar.y) == [0.6, 0.8]
    assert bar.error_y.array[0] == pytest.approx(0.05) and bar.error_y.arrayminus[0] == pytest.approx(0.1)
    assert bar.error_y.array[1] == 0.0


def test_training_curves_per_stage():
    hist = [{"stage": "train", "epoch": 1, "train_loss": 1.0, "val_accuracy": 0.5},
            {"stage": "train", "epoch": 2, "train_loss": 0.5, "val_accuracy": 0.7},
            {"stage": "scratch", "epoch": 1, "train_loss": 2.0}]
    fig = plots.training_curves(hist)
    loss_train = [t for t in fig.data if t.name == "train" and t.xaxis in ("x", None)][0]
    assert list(loss_train.y) == [1.0, 0.5]
    assert sum(1 for t in fig.data if t.name == "scratch") == 1  # no val accuracy for scratch here
    assert len(fig.layout.annotations) == 2                        # the two panel titles, no note
    fig = plots.training_curves([{"stage": "train", "epoch": 1, "train_loss": 1.0}])
    assert "no validation split" in fig.layout.annotations[-1].text   # an empty right panel says why


def test_strategy_ladder_rows():
    rows = [{"label": "probe", "before": 0.5, "after": 0.7, "after_ci": [0.6, 0.8], "baselines": {"knn": 0.55}},
            {"label": "full", "before": 0.5, "after": 0.9, "baselines": {"knn": 0.55, "scratch": 0.4}}]
    fig = plots.strategy_ladder(rows)
    names = [t.name for t in fig.data]
    assert names[:2] == ["after", "before"] and set(names[2:]) == {"knn", "scratch"}
    scratch = [t for t in fig.data if t.name == "scratch"][0]
    assert list(scratch.y) == [None, 0.4]


def test_embedding_map_colors_by_domain_or_label():
    fig = plots.embedding_map([0, 1, 2], [0, 1, 2], ["source", "target", "target"], ["a", "b", None])
    assert sorted(t.name for t in fig.data) == ["source", "target"]
    fig = plots.embedding_map([0, 1, 2], [0, 1, 2], ["source", "target", "target"], ["a", "b", None], color_by="label")
    assert sorted(t.name for t in fig.data) == ["(unlabeled)", "a", "b"]
    with pytest.raises(ValueError):
        plots.embedding_map([0], [0, 1], ["s"])


def test_drift_bars_and_table_highlight_drifting():
    rows = [{"name": "brightness", "test": "ks", "p_value": 0.001, "q_value": 0.003, "effect": 0.9, "drifting": True},
            {"name": "size", "test": "ks", "p_value": 0.5, "q_value": 0.6, "effect": -0.1, "drifting": False}]
    bars = plots.drift_bars(rows)
    assert list(bars.data[0].y) == ["size", "brightness"]  # sorted by |effect|
    assert bars.data[0].marker.color[1] == plots.WARN_COLOR
    table = plots.drift_table(rows)
    assert table.data[0].cells.values[0] == ("brightness", "size") or list(table.data[0].cells.values[0]) == ["brightness", "size"]


def test_mismatch_bars_skip_non_numbers_and_read_value_dicts():
    fig = plots.mismatch_bars({"mmd": 0.3, "pad": {"value": 1.2}, "note": "x", "flag": True})
    assert list(fig.data[0].x) == ["mmd", "pad"] and list(fig.data[0].y) == [0.3, 1.2]


def test_class_counts_and_top_k():
    fig = plots.class_counts_bar({"a": 3, "b": 5})
    assert list(fig.data[0].y) == [3, 5]
    fig = plots.top_k_bars([("a", 0.7), ("b", 0.2)])
    assert list(fig.data[0].y) == ["b", "a"]  # best on top


def test_mismatch_panels_one_panel_per_score_colored_by_severity():
    mismatch = {"mmd": {"mmd2": 0.07, "p_value": 0.005}, "pad": {"pad": 1.8, "auc": 0.99}, "frechet": 22.5,
                "coral": 2e-5, "label_shift": {"total_variation": 0.0, "chi2_p_value": 1.0}, "map": {"x": []}}
    fig = plots.mismatch_panels(mismatch, {"proxy_a_distance": "strong", "mmd": "mild"})
    assert [t.y[0] for t in fig.data] == [1.8, 0.07, 0.0, 2e-5, 22.5]
    assert fig.data[0].marker.color == plots.WARN_COLOR and fig.data[1].marker.color == plots.SEVERITY_COLORS["mild"]
    assert fig.data[3].marker.color == plots.BEFORE_COLOR  # no threshold for CORAL: grey
    assert list(fig.layout.yaxis.range) == [0, 2]  # PAD on its own fixed scale
    assert len(plots.mismatch_panels({"mmd": {"mmd2": 0.1}}).data) == 1


def test_rank_intervals_point_and_interval_per_backbone_and_score():
    ranking = [{"backbone": "a", "rank": 1, "scores": {"logme": {"point": 1.0, "lo": 0.8, "hi": 1.2}}},
               {"backbone": "b", "rank": 2, "scores": {"logme": {"point": 0.5, "lo": 0.4, "hi": 0.9}}}]
    fig = plots.rank_intervals(ranking)
    lines = [t for t in fig.data if t.mode == "lines"]
    assert sorted(tuple(t.x) for t in lines) == [(0.4, 0.9), (0.8, 1.2)]
    best = [t for t in fig.data if t.mode == "markers" and t.y[0] == "a"][0]
    assert best.marker.color == plots.AFTER_COLOR and best.x[0] == 1.0


def test_error_rates_may_exceed_one_and_entity_f1_curves():
    fig = plots.metric_bars([{"name": "before", "value": 1.4}, {"name": "after", "value": 0.3}], "wer", y_max=None)
    assert fig.layout.yaxis.range[1] > 1.4
    fig = plots.per_class_bars({"spk1": {"wer": 1.3}}, {"spk1": {"wer": 0.2}}, "wer", y_max=None)
    assert fig.layout.yaxis.range is None
    fig = plots.training_curves([{"epoch": 1, "train_loss": 1.0, "val_entity_f1": 0.3}])
    assert fig.layout.annotations[1].text == "validation entity F1" and list(fig.data[1].y) == [0.3]
    fig = plots.training_curves([{"epoch": 1, "train_loss": 1.0, "val_loss": 0.9}])
    assert fig.layout.annotations[1].text == "validation loss"
