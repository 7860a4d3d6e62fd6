"""Home: what TransferLab does, and one-click demos."""

from ui.entry import via_app

via_app()

import streamlit as st

from tlcore.errors import TransferLabError
from ui import datasets
from ui.demos import HOME_DEMOS, launch_demo
from ui.report import headline_numbers
from ui.runs import visible_runs

st.title("TransferLab")
st.markdown(
    "TransferLab adapts a pretrained image, text or speech model to **your** data: bring a small labeled set "
    "(and optionally a larger source set), pick how much of the model to train, and it fine-tunes in the background. "
    "It then shows the model **before and after** transfer side by side on the same held-out split — accuracy with "
    "confidence intervals, per-class scores, confusion matrices and the examples that flipped — next to simple baselines. "
    "Diagnose tells you up front how different your data is from the source domain, and every result can be "
    "exported or shared as a read-only link.")

st.subheader("Try a demo in one click")
st.caption("Each demo queues a linear-probe run on a built-in data set with a real domain shift and opens its "
           "live progress; the before/after comparison appears when it finishes (about a minute on a laptop CPU).")
specs = {d["name"]: d for d in datasets.demo_specs()}
cols = st.columns(3)
for col, (modality, name) in zip(cols, HOME_DEMOS.items()):
    spec = specs.get(name)
    with col, st.container(border=True):
        icon = {"image": ":material/image:", "text": ":material/article:", "audio": ":material/graphic_eq:"}[modality]
        st.markdown(f"#### {icon} {'Speech' if modality == 'audio' else modality.capitalize()}: `{name}`")
        if spec is None or spec["unavailable"]:
            st.caption(spec["unavailable"] if spec else "not installed")
            st.button("Run demo", key=f"demo-{name}", disabled=True, width="stretch")
            continue
        st.caption(spec["description"])
        if st.button("Run demo", key=f"demo-{name}", type="primary", width="stretch"):
            try:
                run = launch_demo(name)
            except TransferLabError as exc:
                st.error(str(exc))
            else:
                st.switch_page("pages/compare.py", query_params={"run": run.id})

runs = visible_runs()[:5]
if runs:
    st.subheader("Recent runs")
    for run in runs:
        label, before, after, _ = headline_numbers(run.config.get("task"), run.metrics)
        extra = f" · {label} {before:.3f} → {after:.3f}" if before is not None and after is not None else ""
        st.page_link("pages/compare.py", label=f"{run.name} [{run.status}]{extra}", query_params={"run": run.id},
                     icon=":material/chevron_right:")
