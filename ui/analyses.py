"""Results of the two analyses (clustering, data-efficiency curve): their figures and how the app shows them.

The Analyze page and the read-only shared view both call :func:`render_analysis`. The figure builders at the top are
pure (data in, figure out) and tested without Streamlit.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Mapping, Optional, Sequence

import plotly.graph_objects as go
import streamlit as st

from tlcore import plots
from tlcore.experiments.curve import labels_for_accuracy
from ui.sweep import render_sweep_result

SIDE_NAMES = {"pretrained": "pretrained features", "raw": "raw inputs"}
MAP_MAX_POINTS = 3000
#: colors beyond plots.PALETTE for k > 10 clusters
_MORE_COLORS = ("#264653", "#f4a261", "#8ab17d", "#9d4edd", "#e76f51", "#577590", "#bc6c25", "#6d597a", "#43aa8b",
                "#f94144", "#90be6d", "#277da1")
COLORS = plots.PALETTE + _MORE_COLORS


def _hex_rgba(color: str, alpha: float) -> str:
    r, g, b = (int(color[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def _natural(name: str) -> tuple:
    """Sort key that puts "cluster 2" before "cluster 10"."""
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(name)))


def _layout(fig: go.Figure, title: str = "", height: int = 380) -> go.Figure:
    fig.update_layout(title=title or None, height=height, template="plotly_white",
                      margin=dict(l=10, r=10, t=80 if title else 30, b=10),
                      legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0))
    return fig


# ------------------------------------------------------------------------------------------------ figures (pure)

def cluster_map_figure(x: Sequence[float], y: Sequence[float], groups: Sequence[str], hover: Sequence[str],
                       title: str = "", max_points: int = MAP_MAX_POINTS) -> go.Figure:
    """2-D map of items, one color per group (cluster or true class); at most ``max_points`` points (evenly spaced)."""
    if not len(x) == len(y) == len(groups) == len(hover):
        raise ValueError("x, y, groups and hover must have the same length")
    step = max(1, math.ceil(len(x) / max_points))
    keep = range(0, len(x), step)
    fig = go.Figure()
    for i, g in enumerate(sorted({str(groups[k]) for k in keep}, key=_natural)):
        idx = [k for k in keep if str(groups[k]) == g]
        fig.add_scatter(name=g, x=[x[k] for k in idx], y=[y[k] for k in idx], mode="markers",
                        marker=dict(color=COLORS[i % len(COLORS)], size=7, opacity=0.8),
                        text=[hover[k] for k in idx], hovertemplate="%{text}<extra>" + g + "</extra>")
    fig.update_xaxes(showticklabels=False, title="", zeroline=False, showgrid=False)
    fig.update_yaxes(showticklabels=False, title="", zeroline=False, showgrid=False, scaleanchor="x")
    return _layout(fig, title, height=420)


def cluster_score_figure(report: Mapping, title: str = "") -> go.Figure:
    """NMI and ARI of the clusters against the true classes: raw inputs (grey) vs pretrained features (blue)."""
    raw, pre = report.get("raw") or {}, report.get("pretrained") or {}
    block = {side: {name: {"score": float(r.get(key, 0.0))} for name, key in (("NMI", "nmi"), ("ARI", "ari"))}
             for side, r in (("raw", raw), ("pretrained", pre))}
    negative = any(v["score"] < 0 for b in block.values() for v in b.values())
    return plots.per_class_bars(block["raw"], block["pretrained"], metric="score", title=title,
                                y_max=None if negative else 1.05, names=("raw inputs", "pretrained features"))


def silhouette_figure(report: Mapping, title: str = "") -> go.Figure:
    """Silhouette against k for both representations; the chosen k ringed."""
    fig = go.Figure()
    for side in ("pretrained", "raw"):
        r = report.get(side) or {}
        by_k = sorted((int(k), float(v)) for k, v in (r.get("silhouette_by_k") or {}).items())
        if not by_k:
            continue
        color = plots.AFTER_COLOR if side == "pretrained" else plots.BEFORE_COLOR
        fig.add_scatter(x=[k for k, _ in by_k], y=[v for _, v in by_k], mode="lines+markers", name=SIDE_NAMES[side],
                        line=dict(color=color), hovertemplate="k = %{x}: silhouette %{y:.3f}<extra></extra>")
        if r.get("silhouette") is not None:
            fig.add_scatter(x=[r["k"]], y=[r["silhouette"]], mode="markers", showlegend=False, hoverinfo="skip",
                            marker=dict(size=16, color="rgba(0,0,0,0)", line=dict(width=2, color=color)))
    fig.update_xaxes(title="k (number of clusters)", dtick=1)
    fig.update_yaxes(title="silhouette")
    return _layout(fig, title, height=300)


def _x_labels(points: Sequence[Mapping]) -> list[str]:
    return [f"all ({p['shots']})" if p.get("all") else str(p["shots"]) for p in points]


def curve_figure(points: Sequence[Mapping], *, target: Optional[float] = None, title: str = "") -> go.Figure:
    """Eval accuracy against labeled examples per class: pretrained (blue) and scratch (gold), each a line of means
    with its 95% band; ``target`` (0..1) as a dashed line."""
    fig = go.Figure()
    shots = [p["shots"] for p in points]
    for side, color, name in (("pretrained", plots.AFTER_COLOR, "pretrained"), ("scratch", plots.BASELINE_COLOR, "from scratch")):
        rows = [p for p in points if side in p]
        if not rows:
            continue
        xs = [p["shots"] for p in rows]
        band = [(p, p[side]["ci95"]) for p in rows if p[side].get("ci95")]
        if band:
            bx = [p["shots"] for p, _ in band]
            fig.add_scatter(x=bx + bx[::-1], y=[ci[1] for _, ci in band] + [ci[0] for _, ci in band][::-1],
                            mode="lines", fill="toself", fillcolor=_hex_rgba(color, 0.18), line=dict(width=0), hoverinfo="skip",
                            name=f"{name}: 95% band", legendgroup=side, showlegend=False)
        custom = [[p[side]["std"], *(p[side].get("ci95") or [float("nan")] * 2), len(p[side].get("values") or []),
                   _x_labels([p])[0]] for p in rows]
        fig.add_scatter(x=xs, y=[p[side]["mean"] for p in rows], mode="lines+markers", name=name, legendgroup=side,
                        line=dict(color=color, width=3), marker=dict(size=9), customdata=custom,
                        hovertemplate="%{customdata[4]} per class: %{y:.1%} (± %{customdata[0]:.1%} over "
                                      "%{customdata[3]} seed(s); 95% band %{customdata[1]:.1%} – %{customdata[2]:.1%})"
                                      f"<extra>{name}</extra>")
    if target is not None:
        fig.add_hline(y=target, line=dict(color=plots.WARN_COLOR, dash="dash", width=1.5),
                      annotation_text=f"target {target:.0%}", annotation_position="top left")
    log = bool(shots) and min(shots) >= 1 and max(shots) / min(shots) >= 4
    fig.update_xaxes(title="labeled examples per class", type="log" if log else "linear", tickvals=shots,
                     ticktext=_x_labels(points))
    fig.update_yaxes(title="eval accuracy", tickformat=".0%", range=[0, 1.03])
    return _layout(fig, title, height=420)


# ------------------------------------------------------------------------------------------------ plain words (pure)

def cluster_verdict(report: Mapping) -> tuple[str, str]:
    """(level, sentence): do pretrained features group the items by class better than raw inputs?"""
    pre, raw = report.get("pretrained") or {}, report.get("raw") or {}
    raw_kind = report.get("raw_features") or "raw inputs"
    k_note = ""
    if pre.get("k") != raw.get("k"):
        classes = (report.get("data") or {}).get("true_classes") or []
        k_note = (f" The two chose different k ({pre.get('k')} vs {raw.get('k')}); for a like-for-like comparison set k "
                  f"to {'the number of classes (' + str(len(classes)) + ')' if classes else 'one value'}.")
    if "nmi" not in pre or "nmi" not in raw:
        return "info", ("No labels: the clusters cannot be scored against classes. Browse them below to judge whether "
                        "they group what matters to you. The silhouette (how compact and separate the clusters are: "
                        f"{_fmt(pre.get('silhouette'))} pretrained, {_fmt(raw.get('silhouette'))} raw) is not comparable "
                        "between the two representations." + k_note)
    diff = pre["nmi"] - raw["nmi"]
    nums = f"NMI {pre['nmi']:.2f} vs {raw['nmi']:.2f}, ARI {pre['ari']:.2f} vs {raw['ari']:.2f}"
    if diff >= 0.05:
        if pre["nmi"] < 0.3:
            return "success", (f"Pretrained features group the items by class better than raw {raw_kind} ({nums}), "
                               "but weakly: their clusters follow other things too (topic, style, background…). Browse "
                               "them below to see what they group by." + k_note)
        return "success", (f"Pretrained features group the items by class better than raw {raw_kind} ({nums}): the "
                           "backbone's features already carry this data's class structure, a good sign for transfer." + k_note)
    if diff <= -0.05:
        return "warning", (f"Raw {raw_kind} group the items by class better than the pretrained features ({nums}): "
                           "the backbone's features add little here; try another backbone, or fine-tune it." + k_note)
    return "info", f"Pretrained features and raw {raw_kind} group the items by class about equally well ({nums})." + k_note


def _fmt(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def labels_needed_text(points: Sequence[Mapping], target: float, side: str = "pretrained") -> tuple[str, str]:
    """(level, sentence): how many labeled examples per class reach ``target`` (0..1) on the measured curve."""
    who = "The pretrained model" if side == "pretrained" else "Training from scratch"
    r = labels_for_accuracy(points, target, side=side)
    if r["best"] is None:
        return "info", f"{who}: not measured."
    if not r["reached"]:
        b = r["best"]
        every = next((p for p in points if p.get("all")), None)
        if b["all"]:
            return "warning", (f"{who} does not reach {target:.0%}, not even with all your labels ({b['shots']} per "
                               f"class): its best is {b['mean']:.1%}. More labels than you have would be needed; how "
                               "many, the measured curve cannot say.")
        if every is not None:
            return "warning", (f"{who} does not reach {target:.0%}, not even with all your labels ({every['shots']} per "
                               f"class): its best is {b['mean']:.1%} at {b['shots']} per class. How many more labels it "
                               "would take, the measured curve cannot say.")
        return "warning", (f"{who} does not reach {target:.0%} on the measured curve: its best is {b['mean']:.1%} at "
                           f"{b['shots']} per class. Measure more labels per class (up to all) to see whether and where "
                           "it gets there.")
    shots, mean = r["shots"], r["mean"]
    at = f"**all your labels, {shots} per class**" if r["all"] else f"**{shots} labeled examples per class**"
    if r["between"] is None:
        text = f"{who} reaches {target:.0%} at the smallest measured point: {at} ({mean:.1%}). Fewer were not measured."
    else:
        guess = math.ceil(r["interpolated"] - 1e-9)
        text = (f"{who} reaches {target:.0%} at {at} ({mean:.1%}); it is below at {r['between']} per class, so "
                f"somewhere in between — about {guess} on a straight line between the two points.")
    if r["ci_low"] is not None and r["ci_low"] < target:
        text += (f" The 95% band there reaches down to {r['ci_low']:.1%}: with other examples it may fall short, so "
                 "plan for some margin.")
    return "success", text


# ------------------------------------------------------------------------------------------------ Streamlit views

@st.cache_data(show_spinner=False, max_entries=16)
def _read_json(path: str, mtime: float) -> Optional[dict]:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def read_clusters(out: Path) -> Optional[dict]:
    """``clusters.json`` of a clustering run folder (cached by modification time), or None."""
    path = Path(out) / "clusters.json"
    try:
        return _read_json(str(path), path.stat().st_mtime)
    except OSError:
        return None


def _alert(level: str, text: str) -> None:
    {"success": st.success, "warning": st.warning, "error": st.error}.get(level, st.info)(text)


def _cluster_metrics(report: Mapping) -> None:
    pre, raw = report.get("pretrained") or {}, report.get("raw") or {}
    cols = st.columns(4)
    cols[0].metric("Items clustered", (report.get("data") or {}).get("n", "?"))
    cols[1].metric("k pretrained / raw", f"{pre.get('k')} / {raw.get('k')}")
    if "nmi" in pre and "nmi" in raw:
        cols[2].metric("NMI pretrained", f"{pre['nmi']:.3f}", f"{pre['nmi'] - raw['nmi']:+.3f} vs raw",
                       help="Normalised mutual information between clusters and true classes (0 = unrelated, 1 = same)")
        cols[3].metric("ARI pretrained", f"{pre['ari']:.3f}", f"{pre['ari'] - raw['ari']:+.3f} vs raw",
                       help="Adjusted Rand index (0 = chance, 1 = the clusters are the classes)")
    else:
        cols[2].metric("Silhouette pretrained", _fmt(pre.get("silhouette")))
        cols[3].metric("Silhouette raw", _fmt(raw.get("silhouette")))


def _hover(clusters: Mapping) -> list[str]:
    items = clusters.get("items") or {}
    names, labels = items.get("name") or [], items.get("label")
    text = items.get("snippet") or names
    return [str(t)[:80] + (f" · class {labels[i]}" if labels else "") for i, t in enumerate(text)]


def cluster_maps(report: Mapping, clusters: Mapping, key: str) -> None:
    """Side-by-side 2-D maps (pretrained / raw), colored by cluster or by true class."""
    labels = (clusters.get("items") or {}).get("label")
    color_by = "cluster"
    if labels:
        color_by = st.radio("Color the maps by", ["cluster", "true class"], horizontal=True, key=f"{key}-color",
                            help="The classes are never used to form the clusters; coloring by them shows whether the "
                                 "clusters follow them.")
    hover = _hover(clusters)
    cols = st.columns(2)
    for col, side in zip(cols, ("pretrained", "raw")):
        s = clusters["sides"][side]
        groups = ([f"cluster {c + 1}" for c in s["cluster"]] if color_by == "cluster" else [str(v) for v in labels or []])
        ev = s.get("explained_variance") or [0, 0]
        with col:
            # the title outside the figure: a legend of many clusters wraps onto several lines above the plot
            st.markdown(f"**{SIDE_NAMES[side].capitalize()}** · k = {report[side]['k']}")
            st.plotly_chart(cluster_map_figure(s["x"], s["y"], groups, [f"{h} · cluster {c + 1}" for h, c in
                                                                       zip(hover, s["cluster"])]),
                            key=f"{key}-map-{side}", width="stretch")
            st.caption(f"PCA of the {SIDE_NAMES[side]} ({ev[0] + ev[1]:.0%} of the variance on these two axes).")


def _card_title(card: Mapping) -> str:
    head = f"**Cluster {card['id'] + 1}** · {card['size']} item{'s' if card['size'] != 1 else ''}"
    top = card.get("top_labels") or []
    if top:
        parts = [f"`{name}` {n / card['size']:.0%}" for name, n in top[:3]]
        head += " · classes: " + ", ".join(parts)
    return head


def cluster_browser(report: Mapping, clusters: Mapping, out: Path, key: str) -> None:
    """Every cluster with its most central items: thumbnails, text snippets or audio players."""
    from ui.media import item_grid

    modality = clusters.get("modality") or report.get("modality")
    side = st.radio("Clusters of", ["pretrained", "raw"], format_func=SIDE_NAMES.get, horizontal=True,
                    key=f"{key}-side")
    cards = clusters["sides"][side].get("clusters") or []
    options = ["all"] + [c["id"] for c in cards]
    pick = st.selectbox("Show", options, key=f"{key}-pick-{side}",
                        format_func=lambda c: "all clusters" if c == "all" else _card_title(
                            next(x for x in cards if x["id"] == c)).replace("**", "").replace("`", ""))
    st.caption("Each cluster shows the items closest to its centre (the most typical ones)"
               + (", captioned with their true class." if report.get("data", {}).get("labeled_for_scoring") else "."))
    for card in cards:
        if pick != "all" and card["id"] != pick:
            continue
        with st.container(border=True, key=f"{key}-cluster-{side}-{card['id']}"):
            st.markdown(_card_title(card))
            examples = card.get("examples") or []
            captions = [e.get("label") or e.get("name") or "" for e in examples]
            if modality == "text":
                rows = {"text": [e.get("text", "") for e in examples]}
                if any(e.get("label") is not None for e in examples):
                    rows["class"] = [e.get("label") for e in examples]
                st.dataframe(rows, hide_index=True, width="stretch")
                continue
            shown = [(str(Path(out) / e["file"]), c) for e, c in zip(examples, captions) if e.get("file")]
            if not shown:
                st.caption("No example could be shown (files unreadable or too large).")
                continue
            if modality == "image":   # thumbnails that fit their column (item_grid's images have a fixed width)
                cols = st.columns(8)
                for i, (path, caption) in enumerate(shown):
                    with cols[i % 8]:
                        if Path(path).exists():
                            st.image(path, caption=caption, width="stretch")
                        else:
                            st.caption(f"{caption} (file no longer available)")
                continue
            item_grid(modality, [p for p, _ in shown], [c for _, c in shown])


def render_cluster_result(report: Mapping, out: Path, *, key: str) -> None:
    """The clustering result: verdict, numbers, score bars, maps and the cluster browser."""
    data = report.get("data") or {}
    sample = f" (a random sample of {data['n_total']})" if data.get("n_total") else ""
    st.caption(f"{report.get('modality')} · backbone `{report.get('backbone')}` · {data.get('n', '?')} items{sample} · "
               f"raw baseline: {report.get('raw_features')} · seed {report.get('seed', 0)}"
               + (f" · {data['skipped']} unreadable file(s) skipped" if data.get("skipped") else ""))
    _alert(*cluster_verdict(report))
    _cluster_metrics(report)
    pre, raw = report.get("pretrained") or {}, report.get("raw") or {}
    labeled = "nmi" in pre
    chosen = len(pre.get("silhouette_by_k") or {}) > 1   # k chosen by silhouette, not given
    c1, c2 = st.columns(2)
    if labeled:
        with c1:
            st.plotly_chart(cluster_score_figure(report, "agreement with the true classes (higher is better)"),
                            key=f"{key}-scores", width="stretch")
    with c2 if labeled else c1:
        if chosen:
            st.plotly_chart(silhouette_figure(report, "how k was chosen: silhouette per k"), key=f"{key}-silhouette",
                            width="stretch")
        else:
            st.markdown(f"**k = {pre.get('k')} was given** for both representations. Silhouette (how compact and "
                        f"separated the clusters are, −1 to 1): {_fmt(pre.get('silhouette'))} on pretrained features, "
                        f"{_fmt(raw.get('silhouette'))} on raw inputs; it compares clusterings of one representation, "
                        "not the two with each other.")
            if labeled:
                st.caption("NMI: normalised mutual information between clusters and classes (0 = unrelated, 1 = the "
                           "same grouping). ARI: adjusted Rand index (0 = chance, 1 = identical).")
    clusters = read_clusters(out)
    if clusters is None:
        st.warning("This run's clusters.json is missing or unreadable: the maps and the cluster browser cannot be shown.")
        return
    st.subheader("Map of the items")
    cluster_maps(report, clusters, key)
    st.subheader("Cluster browser")
    cluster_browser(report, clusters, out, key)


def _pct(x: Optional[float]) -> str:
    return "—" if x is None else f"{x:.1%}"


def curve_table(points: Sequence[Mapping]) -> list[dict]:
    """One row per measured point, for a dataframe."""
    rows = []
    for p, label in zip(points, _x_labels(points)):
        row = {"labels per class": label, "train items": p.get("train")}
        for side in ("pretrained", "scratch"):
            if side in p:
                s = p[side]
                ci = s.get("ci95")
                row[f"{side}"] = _pct(s["mean"])
                row[f"{side} ± std"] = _pct(s["std"])
                row[f"{side} 95% band"] = f"{ci[0]:.1%} – {ci[1]:.1%}" if ci else "—"
        rows.append(row)
    return rows


def _point_name(p: Mapping) -> str:
    if p.get("all"):
        return f"all labels ({p['shots']} per class)"
    return f"{p['shots']} label{'s' if p['shots'] != 1 else ''} per class"


def render_curve_result(report: Mapping, *, key: str) -> None:
    """The curve plot with its bands, the "how many labels for X%" answer and the measured points."""
    points = report.get("points") or []
    if not points:
        st.warning("This curve has no measured points.")
        return
    seeds = len(report.get("seeds") or [])
    kinds = {p[s].get("ci95_kind") for p in points for s in ("pretrained", "scratch") if s in p}
    band = ("mean over seeds ± 95% interval over the seeds (which examples were drawn, and training noise)"
            if kinds == {"seeds"} else "one seed: the band is the eval accuracy's 95% bootstrap interval")
    st.caption(f"{report.get('modality')} · backbone `{report.get('backbone')}` · strategy {report.get('strategy')} · "
               f"{report.get('epochs')} epochs · {seeds} seed(s) per point · {report.get('eval')} eval items · "
               f"{len(report.get('classes') or [])} classes")
    first, last = points[0], points[-1]
    cols = st.columns(3)
    cols[0].metric(f"Pretrained, {_point_name(first)}", _pct(first["pretrained"]["mean"]))
    cols[1].metric(f"Pretrained, {_point_name(last)}", _pct(last["pretrained"]["mean"]))
    if "scratch" in last:
        cols[2].metric(f"From scratch, {_point_name(last)}", _pct(last["scratch"]["mean"]),
                       f"{(last['scratch']['mean'] - last['pretrained']['mean']) * 100:+.1f} pts vs pretrained")
    st.markdown("**How many labels do I need?**")
    c1, c2 = st.columns([1, 3])
    best = max(p["pretrained"]["mean"] for p in points)
    default = float(min(95, max(5, math.floor(best * 20) * 5)))   # the best measured accuracy, rounded down to 5%
    target = c1.number_input("Target accuracy (%)", min_value=1.0, max_value=100.0, value=default, step=1.0,
                             format="%g", key=f"{key}-target",
                             help="Read off the measured curve: the fewest measured labels per class whose mean "
                                  "accuracy reaches it (no extrapolation beyond the measured points).")
    with c2:
        _alert(*labels_needed_text(points, target / 100))
        if any("scratch" in p for p in points):
            st.caption(labels_needed_text(points, target / 100, side="scratch")[1].replace("**", ""))
    st.plotly_chart(curve_figure(points, target=target / 100, title="eval accuracy vs labeled examples per class"),
                    key=f"{key}-curve", width="stretch")
    st.caption(f"Lines: mean accuracy on the same eval split; bands: {band}.")
    st.dataframe(curve_table(points), hide_index=True, width="stretch")


def render_analysis(report: Mapping, out: Path, *, key: str) -> None:
    """A finished analysis run's result, by its report's ``kind``."""
    if report.get("kind") == "cluster":
        render_cluster_result(report, out, key=key)
    elif report.get("kind") == "curve":
        render_curve_result(report, key=key)
    elif report.get("kind") == "sweep":
        render_sweep_result(report, key=key)
    else:
        st.warning("This run's report is not a clustering, curve or strategy-sweep result.")


def analysis_headline_of_metrics(metrics: Optional[Mapping]) -> Optional[tuple[str, Optional[float], Optional[float]]]:
    """:func:`analysis_headline` from the numbers the worker stored with the run (no report read: with an artifact
    store that would download the run); None for a run finished before they were stored."""
    m = metrics or {}
    if "cluster_scored" in m:
        if m["cluster_scored"] and m.get("raw_nmi") is not None and m.get("pretrained_nmi") is not None:
            return "NMI raw → pretrained", float(m["raw_nmi"]), float(m["pretrained_nmi"])
        return "no labels: no score", None, None
    if m.get("curve_pretrained_accuracy") is not None and m.get("curve_shots") is not None:
        where = "all labels" if m.get("curve_all") else f"{int(m['curve_shots'])}/class"
        scratch = m.get("curve_scratch_accuracy")
        return (f"accuracy ({where}) scratch → pretrained", None if scratch is None else float(scratch),
                float(m["curve_pretrained_accuracy"]))
    if m.get("sweep_best") is not None:
        plain = m.get("sweep_no_pretraining")
        return ("best strategy vs no pretraining", None if plain is None else float(plain), float(m["sweep_best"]))
    return None


def analysis_headline(report: Optional[Mapping]) -> tuple[str, Optional[float], Optional[float]]:
    """(what is compared, baseline value, pretrained value) of an analysis report, for the runs table:
    clustering: NMI of raw inputs vs pretrained features; curve: accuracy from scratch vs pretrained at the last
    (largest) measured point. Values are None where the report has none (e.g. clustering without labels)."""
    from tlcore.runs.jobs import analysis_metrics

    return analysis_headline_of_metrics(analysis_metrics(dict(report or {}))) or ("", None, None)
    if report.get("kind") == "cluster":
        pre, raw = report.get("pretrained") or {}, report.get("raw") or {}
        if "nmi" in pre and "nmi" in raw:
            return "NMI raw → pretrained", float(raw["nmi"]), float(pre["nmi"])
        return "no labels: no score", None, None
    if report.get("kind") == "curve" and report.get("points"):
        last = report["points"][-1]
        where = "all labels" if last.get("all") else f"{last['shots']}/class"
        scratch = last.get("scratch", {}).get("mean")
        return (f"accuracy ({where}) scratch → pretrained", None if scratch is None else float(scratch),
                float(last["pretrained"]["mean"]))
    return "", None, None
