"""The "Which strategy?" sweep's result: the recommendation, one table of every strategy and baseline under one
protocol, and the metric of each with its interval (:mod:`tlcore.experiments.sweep`)."""

from __future__ import annotations

from typing import Mapping

import plotly.graph_objects as go
import streamlit as st

from tlcore.tasks import get_task


def _interval(ci) -> str:
    return f"{100 * ci[0]:+.1f} to {100 * ci[1]:+.1f}" if ci else "—"


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n else "—"


def sweep_rows(report: Mapping) -> list[dict]:
    """One row per strategy, then one per baseline: metric with its 95% interval, paired difference against the best
    strategy (for a baseline: the best strategy's gain over it), training time and model size."""
    metric = get_task(report.get("task")).metrics[0]
    best = report["best"]
    rows = []
    for r in report.get("strategies") or []:
        ci = r.get("ci95")
        rows.append({"model": r["strategy"] + (" (best)" if r["strategy"] == best else ""),
                     metric.label: metric.fmt(r[metric.key]),
                     "95% CI": f"{metric.fmt(ci[0])} – {metric.fmt(ci[1])}" if ci else "—",
                     "vs best (points)": "—" if r["strategy"] == best else
                     f"{100 * r['vs_best']['difference']:+.1f} ({_interval(r['vs_best']['ci95'])})",
                     "within noise of best": "yes" if r["within_noise_of_best"] else "no",
                     "training time": f"{r['train_seconds']:.1f} s", "model size": _size(r.get("model_bytes") or 0)})
    for b in (report.get("baselines") or {}).values():
        ci = b.get("ci95")
        rows.append({"model": f"baseline: {b['label']}" + ("" if b["no_pretraining"] else " (pretrained features)"),
                     metric.label: metric.fmt(b[metric.key]),
                     "95% CI": f"{metric.fmt(ci[0])} – {metric.fmt(ci[1])}" if ci else "—",
                     "vs best (points)": f"best {100 * b['best_vs']['difference']:+.1f} "
                                         f"({_interval(b['best_vs']['ci95'])})",
                     "within noise of best": "—", "training time": f"{b['train_seconds']:.1f} s", "model size": "—"})
    return rows


def _bars(report: Mapping) -> go.Figure:
    metric = get_task(report.get("task")).metrics[0]
    names, values, lows, highs, colours = [], [], [], [], []
    for r in report.get("strategies") or []:
        names.append(r["strategy"])
        values.append(r[metric.key])
        ci = r.get("ci95") or [r[metric.key]] * 2
        lows.append(r[metric.key] - ci[0])
        highs.append(ci[1] - r[metric.key])
        colours.append("#2e7d32" if r["strategy"] == (report.get("recommendation") or {}).get("strategy") else "#1f77b4")
    for b in (report.get("baselines") or {}).values():
        names.append(b["label"])
        values.append(b[metric.key])
        ci = b.get("ci95") or [b[metric.key]] * 2
        lows.append(b[metric.key] - ci[0])
        highs.append(ci[1] - b[metric.key])
        colours.append("#9e9e9e")
    fig = go.Figure(go.Bar(x=names, y=values, marker_color=colours,
                           error_y={"type": "data", "symmetric": False, "array": highs, "arrayminus": lows}))
    fig.update_layout(title=f"{metric.label} on the same eval items (95% CI)", height=360,
                      yaxis={"range": [0, 1.05], "tickformat": ".0%" if metric.percent else ".2f"},
                      margin={"l": 40, "r": 10, "t": 50, "b": 40})
    return fig


def render_sweep_result(report: Mapping, *, key: str) -> None:
    """The recommendation first, then the chart and the table, then how it was measured."""
    rec = report.get("recommendation") or {}
    if rec.get("strategy"):
        st.success(rec["text"][0].upper() + rec["text"][1:], icon=":material/recommend:")
    else:
        st.warning(rec.get("text", "no recommendation"), icon=":material/balance:")
    st.plotly_chart(_bars(report), key=f"{key}-bars", width="stretch")
    st.dataframe(sweep_rows(report), hide_index=True, width="stretch")
    cfg = report.get("config") or {}
    epochs = cfg.get("epochs")
    st.caption(f"Every strategy: the same {report.get('eval')} eval items, {epochs} epoch{'' if epochs == 1 else 's'}, batch size "
               f"{cfg.get('batch_size')}, seed {cfg.get('seed')} and validation rule; the baselines trained once under "
               f"the same protocol. Paired differences on the same items; intervals: {report.get('ci_method')}. "
               "Within noise of the best = its paired 95% interval against the best reaches 0; the recommendation is "
               "the cheapest of those by training time, then model size.")
