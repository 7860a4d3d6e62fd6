"""Home: what TransferLab does, and one-click demos."""

from ui.entry import via_app

via_app()

import streamlit as st

from tlcore.errors import TransferLabError
from tlcore.strategies import STRATEGIES
from ui import datasets
from ui.demos import HOME_DEMOS, demo_result_line, followups_of, launch_demo
from ui.report import headline_numbers
from ui.runs import is_finetune_run, read_report, run_page, visible_runs

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
           "live progress; the before/after comparison appears when it finishes (well under a minute on a laptop CPU), "
           "then the same network trained from scratch on the same labels follows in the background for comparison.")
specs = {d["name"]: d for d in datasets.demo_specs()}
mine = visible_runs()
last_done = {}
ADAPTATION = {n for n in STRATEGIES.names() if STRATEGIES.get(n).needs_unlabeled}
for r in mine:  # newest first: the latest finished run of each demo
    # the demo's own kind of run (inductive): an adaptation run on the same demo answers another question
    if r.status == "done" and r.dataset and is_finetune_run(r) and r.config.get("strategy") not in ADAPTATION:
        last_done.setdefault(r.dataset, r)
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
        done = last_done.get(f"demo:{name}")
        report = read_report(done) if done else None
        pending = done is not None and any(not f.is_finished for f in followups_of(done, mine))
        line = demo_result_line(report, scratch_pending=pending) if report else ""
        if line:
            st.markdown(f":material/insights: **Last run:** {line}.")
            st.page_link("pages/compare.py", label="Open its comparison", query_params={"run": done.id})
        if st.button("Run demo", key=f"demo-{name}", type="primary", width="stretch"):
            try:
                run = launch_demo(name)
            except TransferLabError as exc:
                st.error(str(exc))
            else:
                st.switch_page("pages/compare.py", query_params={"run": run.id})

runs = [r for r in mine if not r.config.get("parent_run")][:5]
if runs:
    st.subheader("Recent runs")
    for run in runs:
        label, before, after, _ = headline_numbers(run.config.get("task"), run.metrics)
        extra = f" · {label} {before:.3f} → {after:.3f}" if before is not None and after is not None else ""
        page, run_id = run_page(run)
        st.page_link(page, label=f"{run.name} [{run.status}]{extra}", query_params={"run": run_id},
                     icon=":material/chevron_right:")
