"""The report's calibration section (Compare page and shared views): the reliability diagram of before, after and
after temperature scaling, and their expected calibration errors with 95% intervals. Drawn only when the report has a
``calibration`` block (classification runs since issue 19, NER and multi-label runs since its part 3; older reports
render without it). A block that only says ``skipped`` (speech recognition) shows the reason. What the events are
(top-class items, NER words, multi-label (item, label) pairs) comes from the block itself."""

from __future__ import annotations

import streamlit as st

from tlcore import plots

MODELS = (("before", "before"), ("after", "after"), ("after_calibrated", "after, calibrated"))


def calibration_rows(block: dict) -> list[dict]:
    """One table row per model the block measured: its ECE with the 95% interval, NLL, and the temperature."""
    rows = []
    for key, name in MODELS:
        m = block.get(key)
        if not isinstance(m, dict) or "ece" not in m:
            continue
        lo, hi = m.get("ece_ci95") or (None, None)
        rows.append({"model": name, "ECE": round(m["ece"], 4),
                     "95% CI": f"{lo:.4f} – {hi:.4f}" if lo is not None else "",
                     "NLL": round(m["nll"], 4) if m.get("nll") is not None else None,
                     "temperature": round(block["temperature"], 3) if key == "after_calibrated" else 1.0})
    return rows


def fitted_text(block: dict) -> str:
    """What the temperature was fitted on, in words: its items (NER: sentences and their words; multi-label: items
    and their item-label pairs)."""
    fitted = block.get("fitted_on") or {}
    if "words" in fitted:
        return f"{fitted['items']} validation sentences ({fitted['words']} words)"
    if "pairs" in fitted:
        return f"{fitted['items']} validation items ({fitted['pairs']} item–label pairs)"
    return f"{fitted.get('items', '?')} items"


def calibration_section(report: dict, key: str) -> None:
    block = report.get("calibration")
    if not isinstance(block, dict):
        return
    st.subheader("Calibration")
    measured = [k for k, _ in MODELS if isinstance(block.get(k), dict) and "ece" in block[k]]
    if not measured:                     # a task with nothing to calibrate (speech recognition) says why
        st.caption(f"Not measured: {block.get('skipped', 'this run has no probabilities to calibrate')}.")
        return
    curves = {name: block[k]["bins"] for k, name in MODELS if isinstance(block.get(k), dict) and block[k].get("bins")}
    left, right = st.columns(2)
    with left:
        if curves:
            figure = plots.reliability_diagram(curves, f"Reliability diagram ({block.get('n_bins', '?')} equal-mass bins)")
            axes = block.get("axes") or {}
            if axes:                     # NER words, multi-label pairs: the block names its own axes
                figure.update_xaxes(title=axes.get("x"))
                figure.update_yaxes(title=axes.get("y"))
            st.plotly_chart(figure, key=f"{key}-reliability", width="stretch")
    with right:
        st.dataframe(calibration_rows(block), hide_index=True, width="stretch")
        fitted = block.get("fitted_on")
        if block.get("temperature") is not None and fitted:
            use = block.get("use") or ("Predict and Try it use the calibrated probabilities; the predictions and "
                                       "accuracy are the same at any T.")
            st.caption(f"Temperature T = {block['temperature']:.3f}, fitted on {fitted_text(block)}: "
                       f"{fitted['how']}. {use}")
        elif block.get("skipped"):
            st.caption(f"No temperature fitted: {block['skipped']}.")
        before = block.get("before") or {}
        if before.get("skipped"):
            st.caption(f"Before: {before['skipped']}.")
        if block.get("words_cut_off"):
            st.caption(f"{block['words_cut_off']} eval word(s) cut off by the backbone's max length have no "
                       "probability and are left out.")
        st.caption(f"ECE: {block.get('ece_definition', 'expected calibration error')}; 95% CI: "
                   f"{block.get('ci_method', 'bootstrap')}. Lower is better.")
