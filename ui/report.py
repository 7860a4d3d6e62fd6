"""One run's results: headline numbers, plots, flipped examples, baselines; used by Compare and share links."""

from __future__ import annotations

import streamlit as st

from tlcore import plots
from ui.media import show_item


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _ci(block: dict) -> str:
    lo, hi = block.get("accuracy_ci95") or (None, None)
    return "" if lo is None else f"95% CI {_pct(lo)} – {_pct(hi)}"


def headline(report: dict) -> None:
    before, after = report["before"], report["after"]
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Accuracy before", _pct(before["accuracy"]), help=before.get("kind"))
    c1.caption(_ci(before))
    c2.metric("Accuracy after", _pct(after["accuracy"]),
              delta=f"{100 * (after['accuracy'] - before['accuracy']):+.1f} points")
    c2.caption(_ci(after))
    c3.metric("Macro-F1 before", f"{before['macro_f1']:.3f}")
    c4.metric("Macro-F1 after", f"{after['macro_f1']:.3f}",
              delta=f"{after['macro_f1'] - before['macro_f1']:+.3f}")
    st.caption(f"Both on the same eval split of {report['data']['eval']} items. "
               f"**Before** = {before.get('kind', 'the model before transfer')}; **after** = {report['strategy']} on "
               f"{report['backbone']}.")


def metric_entries(report: dict) -> list[dict]:
    entries = [{"name": "before", "value": report["before"]["accuracy"], "ci": report["before"].get("accuracy_ci95"),
                "color": plots.BEFORE_COLOR},
               {"name": "after", "value": report["after"]["accuracy"], "ci": report["after"].get("accuracy_ci95"),
                "color": plots.AFTER_COLOR}]
    for name, block in (report.get("baselines") or {}).items():
        if isinstance(block, dict) and "accuracy" in block:
            label = {"scratch": "scratch (random init)", "knn": f"k-NN (k={block.get('k', 5)})"}.get(name, name)
            entries.append({"name": label, "value": block["accuracy"], "ci": block.get("accuracy_ci95"),
                            "color": plots.BASELINE_COLOR})
    return entries


def flipped(report: dict, key: str) -> None:
    flips = report.get("flipped") or {}
    modality = report["modality"]
    n_fixed = flips.get("n_fixed", len(flips.get("fixed", [])))
    n_broken = flips.get("n_broken", len(flips.get("broken", [])))
    st.subheader("Flipped examples")
    st.caption("Eval items whose prediction changed correctness: **fixed** were wrong before and right after; "
               "**broken** were right before and wrong after.")
    tabs = st.tabs([f"Fixed ({n_fixed})", f"Broken ({n_broken})"])
    for tab, kind in zip(tabs, ("fixed", "broken")):
        with tab:
            rows = (flips.get(kind) or [])[:12]
            if not rows:
                st.caption("None.")
                continue
            cols = st.columns(4 if modality == "image" else 2 if modality == "audio" else 1)
            for i, row in enumerate(rows):
                with cols[i % len(cols)]:
                    show_item(modality, row["item"],
                              f"true **{row['true']}** · before {row['before']} → after {row['after']}")


def render_report(report: dict, *, key: str, title: str | None = None) -> None:
    """The full before/after comparison of one run (read-only: safe for share links)."""
    if title:
        st.subheader(title)
    data = report["data"]
    st.caption(f"{report['modality']} · backbone **{report['backbone']}** · strategy **{report['strategy']}** · "
               f"{data['train']} train / {data['eval']} eval items · {len(data['classes'])} classes"
               + (f" · {data['source']} source items" if data.get("source") else ""))
    for w in report.get("warnings") or []:
        if w.startswith("negative transfer:"):
            st.error(w, icon=":material/trending_down:")
        else:
            st.warning(w)
    headline(report)
    missing = [b for b in ("scratch", "knn") if b not in (report.get("baselines") or {})]
    if missing:
        st.caption(f"Baseline(s) not computed for this run: {', '.join(missing)} (one-click demos skip the scratch "
                   "baseline to stay fast; start a run on the Fine-tune page to get it).")
    left, right = st.columns(2)
    with left:
        st.plotly_chart(plots.metric_bars(metric_entries(report), title="Accuracy with 95% CI: before, after, baselines"),
                        key=f"{key}-bars", width="stretch")
    with right:
        metric = st.radio("Per-class metric", ["f1", "recall", "precision"], horizontal=True, key=f"{key}-pcm")
        st.plotly_chart(plots.per_class_bars(report["before"]["per_class"], report["after"]["per_class"], metric,
                                             title=f"Per-class {metric}"), key=f"{key}-pc", width="stretch")
    classes = data["classes"]
    left, right = st.columns(2)
    with left:
        st.plotly_chart(plots.confusion_matrix_figure(report["before"]["confusion"], classes, "Confusion before"),
                        key=f"{key}-cm-b", width="stretch")
    with right:
        st.plotly_chart(plots.confusion_matrix_figure(report["after"]["confusion"], classes, "Confusion after"),
                        key=f"{key}-cm-a", width="stretch")
    history = (report.get("training") or {}).get("history") or []
    if history:
        st.plotly_chart(plots.training_curves(history, "Training curves"), key=f"{key}-curves", width="stretch")
    flipped(report, key)
    comps = report.get("comparisons") or {}
    if comps:
        st.subheader("Is the gain real?")
        rows = [{"after vs": ref, "difference (points)": round(100 * c["difference"], 1),
                 "95% CI": f"{100 * c['ci95'][0]:.1f} to {100 * c['ci95'][1]:.1f}",
                 "beyond noise": "yes" if c["ci95"][0] > 0 else "no"} for ref, c in comps.items()]
        st.dataframe(rows, hide_index=True, width="stretch")
    problems = data.get("problems") or []
    if problems:
        with st.expander(f"{len(problems)} data problem(s) skipped"):
            st.write("\n".join(f"- {p}" for p in problems[:200]))


def ladder_rows(runs_reports: list[tuple[str, dict]]) -> list[dict]:
    rows = []
    for label, rep in runs_reports:
        rows.append({"label": label, "before": rep["before"]["accuracy"], "after": rep["after"]["accuracy"],
                     "after_ci": rep["after"].get("accuracy_ci95"),
                     "baselines": {k: v["accuracy"] for k, v in (rep.get("baselines") or {}).items()
                                   if isinstance(v, dict) and "accuracy" in v}})
    return rows
