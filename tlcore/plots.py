"""Plotly figure builders for reports and diagnostics: data in, figure out (no Streamlit, no I/O).

Every builder takes plain Python / report-JSON values and returns a ``plotly.graph_objects.Figure``,
so the app, notebooks and tests use the same pictures.
"""

from __future__ import annotations

from typing import Mapping, Optional, Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

BEFORE_COLOR = "#9aa5b1"
AFTER_COLOR = "#2f6fde"
BASELINE_COLOR = "#c7a25a"
WARN_COLOR = "#d1495b"
PALETTE = ("#2f6fde", "#d1495b", "#2a9d8f", "#e9a03b", "#7b5ea7", "#5c946e", "#c16e70", "#3d5a80",
           "#8d99ae", "#b5838d")


def _layout(fig: go.Figure, title: str = "", height: int = 360) -> go.Figure:
    fig.update_layout(title=title or None, height=height, margin=dict(l=10, r=10, t=80 if title else 30, b=10),
                      template="plotly_white", legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0))
    return fig


def confusion_matrix_figure(confusion: Sequence[Sequence[int]], classes: Sequence[str], title: str = "") -> go.Figure:
    """Heatmap of a confusion matrix: rows are true classes, columns predicted; cells show counts."""
    z = [list(map(int, row)) for row in confusion]
    labels = [str(c) for c in classes]
    if len(z) != len(labels) or any(len(row) != len(labels) for row in z):
        raise ValueError(f"confusion matrix must be {len(labels)}x{len(labels)} for {len(labels)} classes")
    fig = go.Figure(go.Heatmap(z=z, x=labels, y=labels, colorscale="Blues", showscale=False,
                               text=z, texttemplate="%{text}", hovertemplate="true %{y}<br>predicted %{x}<br>%{z} items<extra></extra>"))
    fig.update_xaxes(title="predicted", type="category", side="bottom")
    fig.update_yaxes(title="true", type="category", autorange="reversed")
    return _layout(fig, title, height=max(300, 60 + 28 * len(labels)))


def per_class_bars(before: Mapping[str, Mapping[str, float]], after: Mapping[str, Mapping[str, float]],
                   metric: str = "f1", title: str = "") -> go.Figure:
    """Grouped bars per class: ``metric`` (f1, precision or recall) before vs after."""
    classes = list(after) or list(before)
    fig = go.Figure()
    for name, block, color in (("before", before, BEFORE_COLOR), ("after", after, AFTER_COLOR)):
        fig.add_bar(name=name, x=classes, y=[float((block.get(c) or {}).get(metric, 0.0)) for c in classes],
                    marker_color=color, hovertemplate=f"%{{x}}: {metric} %{{y:.3f}}<extra>{name}</extra>")
    fig.update_layout(barmode="group")
    fig.update_yaxes(title=metric, range=[0, 1.05])
    fig.update_xaxes(type="category")
    return _layout(fig, title)


def metric_bars(entries: Sequence[Mapping], metric: str = "accuracy", title: str = "") -> go.Figure:
    """One bar per entry ``{"name", "value", "ci": [lo, hi] or None, "color": optional}`` with 95% CI error bars."""
    names = [str(e["name"]) for e in entries]
    values = [float(e["value"]) for e in entries]
    plus = [max(0.0, float(e["ci"][1]) - v) if e.get("ci") else 0.0 for e, v in zip(entries, values)]
    minus = [max(0.0, v - float(e["ci"][0])) if e.get("ci") else 0.0 for e, v in zip(entries, values)]
    colors = [e.get("color") or PALETTE[i % len(PALETTE)] for i, e in enumerate(entries)]
    fig = go.Figure(go.Bar(x=names, y=values, marker_color=colors, text=[f"{v:.3f}" for v in values],
                           textposition="inside", insidetextanchor="middle", textfont=dict(color="white"),
                           error_y=dict(type="data", symmetric=False, array=plus, arrayminus=minus, visible=True),
                           hovertemplate="%{x}: %{y:.3f}<extra></extra>"))
    fig.update_yaxes(title=metric, range=[0, 1.12])
    fig.update_xaxes(type="category")
    return _layout(fig, title)


def training_curves(history: Sequence[Mapping], title: str = "") -> go.Figure:
    """Loss (left) and validation accuracy (right) per epoch; one line per stage (train, scratch, ...)."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("training loss", "validation accuracy"))
    stages: dict[str, list[Mapping]] = {}
    for entry in history:
        stages.setdefault(str(entry.get("stage") or "train"), []).append(entry)
    for i, (stage, rows) in enumerate(stages.items()):
        color = PALETTE[i % len(PALETTE)]
        for col, key in ((1, "train_loss"), (2, "val_accuracy")):
            pts = [(r["epoch"], r[key]) for r in rows if r.get(key) is not None and r.get("epoch") is not None]
            if pts:
                fig.add_scatter(x=[p[0] for p in pts], y=[p[1] for p in pts], mode="lines+markers", name=stage,
                                line=dict(color=color), legendgroup=stage, showlegend=col == 1 or not any(
                                    r.get("train_loss") is not None for r in rows), row=1, col=col)
    fig.update_xaxes(title="epoch")
    return _layout(fig, title, height=320)


def strategy_ladder(rows: Sequence[Mapping], metric: str = "accuracy", title: str = "") -> go.Figure:
    """Several runs of one data set side by side: ``{"label", "before", "after", "after_ci": [lo, hi],
    "baselines": {"scratch": x, "knn": y}}`` per run. Bars are 'after' with CIs; 'before' and baselines are markers."""
    labels = [str(r["label"]) for r in rows]
    after = [float(r["after"]) for r in rows]
    plus = [max(0.0, float(r["after_ci"][1]) - a) if r.get("after_ci") else 0.0 for r, a in zip(rows, after)]
    minus = [max(0.0, a - float(r["after_ci"][0])) if r.get("after_ci") else 0.0 for r, a in zip(rows, after)]
    fig = go.Figure(go.Bar(name="after", x=labels, y=after, marker_color=AFTER_COLOR, text=[f"{a:.3f}" for a in after],
                           textposition="inside", error_y=dict(type="data", symmetric=False, array=plus, arrayminus=minus)))
    fig.add_scatter(name="before", x=labels, y=[r.get("before") for r in rows], mode="markers",
                    marker=dict(symbol="line-ew-open", size=28, line=dict(width=3, color="#333")))
    names = sorted({k for r in rows for k in (r.get("baselines") or {})})
    for i, name in enumerate(names):
        fig.add_scatter(name=name, x=labels, y=[(r.get("baselines") or {}).get(name) for r in rows], mode="markers",
                        marker=dict(symbol=("diamond", "x", "triangle-up")[i % 3], size=11, color=BASELINE_COLOR if i == 0 else "#8d6a9f"))
    fig.update_yaxes(title=metric, range=[0, 1.05])
    fig.update_xaxes(type="category")
    return _layout(fig, title)


def embedding_map(x: Sequence[float], y: Sequence[float], domain: Sequence[str], label: Optional[Sequence] = None,
                  color_by: str = "domain", title: str = "") -> go.Figure:
    """2-D map of embeddings: color by ``domain`` (source/target) or by ``label``; the other sets the symbol."""
    if len(x) != len(y) or len(x) != len(domain):
        raise ValueError("x, y and domain must have the same length")
    labels = [None if v is None else str(v) for v in (label if label is not None else [None] * len(x))]
    groups = [str(d) for d in domain] if color_by == "domain" else [v if v is not None else "(unlabeled)" for v in labels]
    other = labels if color_by == "domain" else [str(d) for d in domain]
    symbols = {s: ("circle", "x", "diamond", "square", "triangle-up")[i % 5] for i, s in enumerate(sorted({str(o) for o in other}))}
    fig = go.Figure()
    for i, g in enumerate(sorted(set(groups))):
        idx = [k for k, v in enumerate(groups) if v == g]
        fig.add_scattergl(name=g, x=[x[k] for k in idx], y=[y[k] for k in idx], mode="markers",
                          marker=dict(color=PALETTE[i % len(PALETTE)], size=7, opacity=0.75,
                                      symbol=[symbols[str(other[k])] for k in idx]),
                          text=[f"{domain[k]} / {labels[k] or 'unlabeled'}" for k in idx],
                          hovertemplate="%{text}<extra></extra>")
    fig.update_xaxes(showticklabels=False, title="")
    fig.update_yaxes(showticklabels=False, title="", scaleanchor="x")
    return _layout(fig, title, height=420)


def drift_bars(rows: Sequence[Mapping], title: str = "") -> go.Figure:
    """Horizontal bars of each property's effect size; drifting properties (q below threshold) highlighted."""
    rows = sorted(rows, key=lambda r: abs(float(r.get("effect") or 0.0)))
    fig = go.Figure(go.Bar(
        x=[float(r.get("effect") or 0.0) for r in rows], y=[str(r["name"]) for r in rows], orientation="h",
        marker_color=[WARN_COLOR if r.get("drifting") else BEFORE_COLOR for r in rows],
        customdata=[[r.get("test", ""), r.get("p_value"), r.get("q_value")] for r in rows],
        hovertemplate="%{y}: effect %{x:.3f}<br>%{customdata[0]} p=%{customdata[1]:.3g} q=%{customdata[2]:.3g}<extra></extra>"))
    fig.update_xaxes(title="effect size (target vs source)")
    fig.update_yaxes(type="category")
    return _layout(fig, title, height=max(260, 40 + 26 * len(rows)))


def drift_table(rows: Sequence[Mapping], title: str = "") -> go.Figure:
    """The drift test results as a table figure (for exports; the app shows a dataframe)."""
    cols = ["name", "test", "p_value", "q_value", "effect", "mean_a", "mean_b", "drifting"]

    def fmt(v: object) -> str:
        return f"{v:.3g}" if isinstance(v, float) else str(v)

    fig = go.Figure(go.Table(header=dict(values=cols, fill_color="#e8eef9", align="left"),
                             cells=dict(values=[[fmt(r.get(c)) for r in rows] for c in cols], align="left",
                                        fill_color=[["#fbe3e6" if r.get("drifting") else "white" for r in rows]])))
    return _layout(fig, title, height=max(200, 60 + 28 * len(rows)))


def mismatch_bars(mismatch: Mapping[str, object], title: str = "") -> go.Figure:
    """One bar per numeric domain-mismatch score (MMD, proxy A-distance, ...); dict values use their 'value' key."""
    names, values = [], []
    for key, value in mismatch.items():
        if isinstance(value, Mapping):
            value = value.get("value", value.get("score"))
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            names.append(key)
            values.append(float(value))
    fig = go.Figure(go.Bar(x=names, y=values, marker_color=PALETTE[: len(names)] or None,
                           text=[f"{v:.3g}" for v in values], textposition="outside", cliponaxis=False))
    fig.update_xaxes(type="category")
    return _layout(fig, title, height=300)


def class_counts_bar(counts: Mapping[str, int], title: str = "") -> go.Figure:
    """Items per class of one data set."""
    fig = go.Figure(go.Bar(x=[str(k) for k in counts], y=[int(v) for v in counts.values()], marker_color=AFTER_COLOR,
                           text=[int(v) for v in counts.values()], textposition="outside", cliponaxis=False))
    fig.update_xaxes(type="category", title="class")
    fig.update_yaxes(title="items")
    return _layout(fig, title, height=280)


def top_k_bars(pairs: Sequence[tuple[str, float]], title: str = "", color: str = AFTER_COLOR) -> go.Figure:
    """Horizontal bars of the top-k (class, probability) pairs, best on top."""
    pairs = list(pairs)[::-1]
    fig = go.Figure(go.Bar(x=[p for _, p in pairs], y=[c for c, _ in pairs], orientation="h", marker_color=color,
                           text=[f"{p:.1%}" for _, p in pairs], textposition="auto"))
    fig.update_xaxes(range=[0, 1], tickformat=".0%", title="probability")
    fig.update_yaxes(type="category")
    return _layout(fig, title, height=60 + 34 * max(1, len(pairs)))
