"""Plotly figure builders for reports and diagnostics: data in, figure out (no Streamlit, no I/O).

Every builder takes plain Python / report-JSON values and returns a ``plotly.graph_objects.Figure``,
so the app, notebooks and tests use the same pictures.
"""

from __future__ import annotations

from typing import Mapping, Optional, Sequence

# plotly looks pandas up in sys.modules without importing it; while another script thread is half-way through
# importing pandas that lookup fails ("partially initialized module 'pandas'"). Importing it here, under the
# import lock, means pandas is complete before any page builds a figure.
import pandas  # noqa: F401
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
                   metric: str = "f1", title: str = "", *, y_max: Optional[float] = 1.05,
                   names: tuple[str, str] = ("before", "after")) -> go.Figure:
    """Grouped bars per class (or entity type, or speaker group): ``metric`` before vs after.

    ``y_max`` None lets the axis grow (error rates such as WER can exceed 1); ``names`` labels the two bars
    (e.g. "source-only" / "adapted")."""
    classes = list(after) or list(before)
    fig = go.Figure()
    for name, block, color in ((names[0], before, BEFORE_COLOR), (names[1], after, AFTER_COLOR)):
        fig.add_bar(name=name, x=classes, y=[float((block.get(c) or {}).get(metric, 0.0)) for c in classes],
                    marker_color=color, hovertemplate=f"%{{x}}: {metric} %{{y:.3f}}<extra>{name}</extra>")
    fig.update_layout(barmode="group")
    fig.update_yaxes(title=metric, range=[0, y_max] if y_max else None, rangemode="tozero")
    fig.update_xaxes(type="category")
    return _layout(fig, title)


def _upper(values: Sequence[float], fixed: Optional[float]) -> Optional[list[float]]:
    """[0, fixed] when given, else [0, a little above the largest value] (None: let plotly decide)."""
    if fixed:
        return [0, fixed]
    top = max([v for v in values if v is not None] or [0.0])
    return [0, max(1e-9, top) * 1.15] if top > 0 else None


def metric_bars(entries: Sequence[Mapping], metric: str = "accuracy", title: str = "",
                y_max: Optional[float] = 1.12) -> go.Figure:
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
    fig.update_yaxes(title=metric, range=_upper([v + p for v, p in zip(values, plus)], y_max))
    fig.update_xaxes(type="category")
    return _layout(fig, title)


VAL_SCORES = (("val_accuracy", "validation accuracy"), ("val_entity_f1", "validation entity F1"),
              ("val_loss", "validation loss"))


def training_curves(history: Sequence[Mapping], title: str = "") -> go.Figure:
    """Loss (left) and a validation score (right) per epoch; one line per stage (train, scratch, ...).

    The right panel shows the first of ``val_accuracy``, ``val_entity_f1``, ``val_loss`` that the rows carry
    (speech recognition tracks only the validation loss)."""
    val_key, val_title = next(((k, t) for k, t in VAL_SCORES if any(r.get(k) is not None for r in history)),
                              VAL_SCORES[0])
    fig = make_subplots(rows=1, cols=2, subplot_titles=("training loss", val_title))
    stages: dict[str, list[Mapping]] = {}
    for entry in history:
        stages.setdefault(str(entry.get("stage") or "train"), []).append(entry)
    for i, (stage, rows) in enumerate(stages.items()):
        color = PALETTE[i % len(PALETTE)]
        for col, key in ((1, "train_loss"), (2, val_key)):
            pts = [(r["epoch"], r[key]) for r in rows if r.get(key) is not None and r.get("epoch") is not None]
            if pts:
                fig.add_scatter(x=[p[0] for p in pts], y=[p[1] for p in pts], mode="lines+markers", name=stage,
                                line=dict(color=color), legendgroup=stage, showlegend=col == 1 or not any(
                                    r.get("train_loss") is not None for r in rows), row=1, col=col)
    fig.update_xaxes(title="epoch")
    if val_key != "val_loss":  # accuracy and F1 live in [0, 1]
        fig.update_yaxes(range=[0, 1.05], row=1, col=2)
    if history and not any(r.get(val_key) is not None for r in history):
        fig.add_annotation(xref="x2 domain", yref="y2 domain", x=0.5, y=0.5, showarrow=False,
                           text="no validation split in this run<br>(too few labeled examples, or turned off)")
    fig = _layout(fig, title, height=340)
    # the legend sits above the two subplot titles, not on top of them
    fig.update_layout(legend=dict(y=1.16), margin=dict(t=100 if title else 70))
    return fig


def reliability_diagram(curves: Mapping[str, Sequence[Mapping]], title: str = "") -> go.Figure:
    """Reliability diagram: per model (``curves``: name → the report's ``calibration.<model>.bins``, each bin
    ``{"confidence", "accuracy", "count"}``) accuracy against mean confidence of its equal-mass bins; the diagonal is
    perfect calibration (below it: over-confident)."""
    fig = go.Figure()
    fig.add_scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfectly calibrated", hoverinfo="skip",
                    line=dict(color="#999999", dash="dash", width=1))
    colors = {"before": BEFORE_COLOR, "after": AFTER_COLOR}
    for i, (name, bins) in enumerate(curves.items()):
        fig.add_scatter(x=[b["confidence"] for b in bins], y=[b["accuracy"] for b in bins], mode="lines+markers",
                        name=name, line=dict(color=colors.get(name, PALETTE[(i + 2) % len(PALETTE)])),
                        customdata=[b.get("count", 0) for b in bins],
                        hovertemplate=f"{name}<br>confidence %{{x:.3f}}<br>accuracy %{{y:.3f}}<br>%{{customdata}} items"
                                      "<extra></extra>")
    fig.update_xaxes(title="mean confidence (top class)", range=[0, 1.02])
    fig.update_yaxes(title="accuracy", range=[0, 1.02])
    # the legend (up to four curves: two rows) goes under the axis title: above the plot it ran into the title
    return _layout(fig, title, height=420).update_layout(legend=dict(orientation="h", yanchor="top", y=-0.22, x=0),
                                                         margin=dict(b=90))


def strategy_ladder(rows: Sequence[Mapping], metric: str = "accuracy", title: str = "",
                    y_max: Optional[float] = 1.05) -> go.Figure:
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
    tops = [a + p for a, p in zip(after, plus)] + [r.get("before") or 0.0 for r in rows]
    fig.update_yaxes(title=metric, range=_upper(tops, y_max))
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


SEVERITY_COLORS = {"none": "#2a9d8f", "mild": "#e9a03b", "strong": WARN_COLOR}

# (key in the mismatch report, panel title, how to read its number, fixed axis range or None)
MISMATCH_PANELS = (
    ("pad", "proxy A-distance", lambda v: v.get("pad"), [0, 2]),
    ("mmd", "MMD²", lambda v: v.get("mmd2"), None),
    ("label_shift", "label shift (TV)", lambda v: v.get("total_variation"), [0, 1]),
    ("coral", "CORAL", lambda v: v, None),
    ("frechet", "Fréchet²", lambda v: v, None),
)
SIGNAL_OF = {"pad": "proxy_a_distance", "mmd": "mmd", "label_shift": "label_shift"}


def mismatch_panels(mismatch: Mapping[str, object], severities: Optional[Mapping[str, str]] = None,
                    title: str = "") -> go.Figure:
    """The domain-mismatch scores of a diagnose report, one small panel each (their scales differ by orders of
    magnitude, so one shared axis would hide all but the largest).

    ``mismatch`` is ``report["mismatch"]`` (``mmd: {mmd2, p_value}``, ``pad: {pad, auc}``, ``label_shift:
    {total_variation}``, ``coral``, ``frechet``); missing scores are left out. ``severities`` maps verdict signal
    names (``proxy_a_distance``, ``mmd``, ``label_shift``) to none/mild/strong and colors those bars; the others
    are grey (no threshold: compare them only between runs of the same backbone)."""
    panels = []
    for key, label, read, fixed in MISMATCH_PANELS:
        raw = mismatch.get(key)
        try:
            value = read(raw) if isinstance(raw, Mapping) or key in ("coral", "frechet") else None
        except AttributeError:
            value = None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            note = ""
            if key == "mmd" and isinstance(raw, Mapping) and raw.get("p_value") is not None:
                note = f"p = {float(raw['p_value']):.3g}"
            elif key == "pad" and isinstance(raw, Mapping) and raw.get("auc") is not None:
                note = f"AUC {float(raw['auc']):.2f}"
            elif key == "label_shift" and isinstance(raw, Mapping) and raw.get("chi2_p_value") is not None:
                note = f"p = {float(raw['chi2_p_value']):.3g}"
            panels.append((key, label, float(value), fixed, note))
    fig = make_subplots(rows=1, cols=max(1, len(panels)), subplot_titles=[p[1] for p in panels] or [""],
                        horizontal_spacing=0.07)
    for i, (key, label, value, fixed, note) in enumerate(panels, start=1):
        severity = (severities or {}).get(SIGNAL_OF.get(key, ""), "")
        color = SEVERITY_COLORS.get(severity, BEFORE_COLOR)
        tick = " · ".join(b for b in (severity, note) if b) or "no threshold"
        fig.add_bar(x=[tick], y=[value], marker_color=color, text=[f"{value:.3g}"], textposition="auto",
                    cliponaxis=False, showlegend=False, hovertemplate=f"{label}: %{{y:.4g}}<extra></extra>", row=1, col=i)
        top = fixed or [min(0.0, value * 1.2), max(value, 1e-9) * 1.2]
        fig.update_yaxes(range=top, row=1, col=i, tickfont=dict(size=10))
    fig.update_xaxes(type="category", tickfont=dict(size=10))
    fig.update_annotations(font_size=12, yshift=6)
    fig = _layout(fig, title, height=340)
    fig.update_layout(margin=dict(t=90 if title else 50))
    return fig


def rank_intervals(ranking: Sequence[Mapping], title: str = "") -> go.Figure:
    """Backbone ranking: per score one panel, per backbone its point estimate (dot) and subsampling interval
    (line). Overlapping lines mean the data cannot tell the backbones apart on that score.

    ``ranking`` is ``run_rank(...)["ranking"]``: ``[{"backbone", "rank", "scores": {name: {point, lo, hi}}}]``."""
    score_names = sorted({s for row in ranking for s in (row.get("scores") or {})})
    names = [str(r["backbone"]) for r in ranking][::-1]  # best on top
    fig = make_subplots(rows=1, cols=max(1, len(score_names)), subplot_titles=score_names or [""], shared_yaxes=True,
                        horizontal_spacing=0.04)
    for i, score in enumerate(score_names, start=1):
        for j, row in enumerate(reversed(list(ranking))):
            s = (row.get("scores") or {}).get(score)
            if not s:
                continue
            color = AFTER_COLOR if row is ranking[0] else BEFORE_COLOR
            fig.add_scatter(x=[s["lo"], s["hi"]], y=[names[j]] * 2, mode="lines", line=dict(color=color, width=6),
                            opacity=0.45, showlegend=False, hoverinfo="skip", row=1, col=i)
            fig.add_scatter(x=[s["point"]], y=[names[j]], mode="markers", marker=dict(color=color, size=11),
                            showlegend=False, row=1, col=i,
                            hovertemplate=f"{names[j]}<br>{score} %{{x:.3g}} (interval {s['lo']:.3g} – {s['hi']:.3g})"
                                          "<extra></extra>")
    fig.update_yaxes(type="category")
    fig.update_annotations(font_size=12)
    return _layout(fig, title, height=max(220, 120 + 44 * len(names)))


def label_projection(projection: Mapping, title: str = "") -> go.Figure:
    """"Expected accuracy with N more labels": the fitted curve as a dashed line in a shaded 95% band, both named
    *projection*, over the measured curve's points (markers, named *measured*). ``projection`` is a label-next
    report's ``projection`` (``n_now``, ``more_labels``, ``mean``, ``low``, ``high``, ``points``; ``metric``, the
    curve's metric, default accuracy: multi-label's is micro-F1)."""
    n_now = projection["n_now"]
    metric = projection.get("metric", "accuracy")
    x = [n_now + m for m in projection["more_labels"]]
    fig = go.Figure()
    fig.add_scatter(x=x + x[::-1], y=list(projection["high"]) + list(projection["low"])[::-1], fill="toself",
                    fillcolor="rgba(47,111,222,0.15)", line=dict(width=0), hoverinfo="skip",
                    name="projection: 95% band")
    fig.add_scatter(x=x, y=projection["mean"], mode="lines", line=dict(color=AFTER_COLOR, dash="dash"),
                    name="projection (fitted, not measured)",
                    hovertemplate="%{x} labels: %{y:.3f} projected<extra></extra>")
    points = projection.get("points") or []
    fig.add_scatter(x=[p["train"] for p in points], y=[p["mean"] for p in points], mode="markers",
                    marker=dict(color=BEFORE_COLOR, size=9), name="measured (mean over seeds)",
                    hovertemplate="%{x} labels: %{y:.3f} measured<extra></extra>")
    fig.add_vline(x=n_now, line=dict(color=BASELINE_COLOR, dash="dot"), annotation_text="labeled now")
    fig.update_xaxes(title="labeled training examples")
    fig.update_yaxes(title=metric, range=[0, 1.02])
    return _layout(fig, title or f"Projection: expected {metric} with N more labels (not a measurement)")
