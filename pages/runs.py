"""Runs: history with status, duration and headline numbers; open, delete, download the model."""

from ui.entry import via_app

via_app()

import json

import streamlit as st

from tlcore.errors import TransferLabError
from tlcore.tasks import DEFAULT_TASK, task_of
from ui.analyses import analysis_headline, analysis_headline_of_metrics
from ui.auth import is_admin
from ui.export import export_panel
from ui.report import headline_numbers
from ui.runs import (
    ANALYSIS_KINDS,
    KIND_LABELS,
    get_store,
    model_zip,
    read_report,
    run_kind,
    run_page,
    run_picker,
    select_run,
    visible_runs,
)

st.title("Runs")
ADMIN_VIEW = is_admin()   # an admin sees every user's runs: say whose each one is
runs = visible_runs()
if not runs:
    st.info("No runs yet. Start one from **Home** (one-click demos), **Fine-tune** or **Analyze**.")
    st.stop()


def _num(value):
    return None if value is None else round(float(value), 3)


def _row(r) -> dict:
    kind = run_kind(r)
    if kind in ANALYSIS_KINDS:
        metric, before, after = (analysis_headline_of_metrics(r.metrics)
                                 or analysis_headline(read_report(r) if r.status == "done" else None))
        gain = None if before is None or after is None else after - before
        task = "unsupervised" if kind == "cluster" else DEFAULT_TASK   # a curve fine-tunes classifiers
    else:
        spec = task_of(r.config)
        task = spec.name
        metric, before, after, gain = headline_numbers(task, r.metrics)
        metric += "" if spec.metric.higher_is_better else " ↓"
    strategy = r.config.get("strategy")
    # the numbers first, so they stay visible on narrow screens; provenance after
    return {"name": r.name, "kind": KIND_LABELS[kind], "status": r.status, "metric": metric,
            "before": _num(before), "after": _num(after), "improvement": _num(gain), "task": task,
            "strategy": strategy, "backbone": r.config.get("backbone") or "default",
            "created": r.created_at.strftime("%Y-%m-%d %H:%M"),
            "duration (s)": None if r.duration_s is None else round(r.duration_s, 1), "error": r.error or "",
            **({"owner": r.owner or "(before login)"} if ADMIN_VIEW else {})}


SMALL = {c: st.column_config.Column(width="small") for c in ("kind", "status", "task", "duration (s)", "after")}
st.dataframe([_row(r) for r in runs], hide_index=True, width="stretch",
             column_config={**SMALL, "name": st.column_config.Column(width="medium"),
                            "improvement": st.column_config.NumberColumn(
                                "gain", width="small",
                                help="after − before; for WER (↓, lower is better) before − after: positive is better"),
                            "before": st.column_config.NumberColumn(
                                width="small", help="the source-only model for adaptation runs; raw inputs for "
                                                    "clustering; training from scratch for curves")})

st.subheader("Selected run")
run = run_picker("Run", runs, key="runs-run")
c1, c2, c3 = st.columns(3)
if c1.button("Open", icon=":material/open_in_new:", width="stretch"):
    target_page, target_run = run_page(run)
    st.switch_page(target_page, query_params={"run": target_run})
model_dir = run.out / "model"
report = read_report(run) if run_kind(run) in ANALYSIS_KINDS and run.status == "done" else None
if report is not None:
    c2.download_button("Download report.json", json.dumps(report, indent=2), file_name=f"transferlab-{run.id[:8]}.json",
                       mime="application/json", icon=":material/download:", on_click="ignore", width="stretch")
elif run_kind(run) in ANALYSIS_KINDS:
    c2.caption("No report (the analysis did not finish).")
elif run.status == "done" and model_dir.exists():
    if c2.toggle("Prepare model download", key=f"zip-{run.id}",
                 help="Zips the exported model folder (save_pretrained format) with its report and model card."):
        st.download_button("Download model (.zip)", model_zip(model_dir), file_name=f"transferlab-{run.id[:8]}.zip",
                           mime="application/zip", icon=":material/download:", type="primary", on_click="ignore")
else:
    c2.caption("No exported model (the run did not finish).")
if run_kind(run) == "finetune" and run.status == "done":
    with st.expander("Export to ONNX", icon=":material/deployed_code:"):
        export_panel(run)
with c3.popover("Delete", icon=":material/delete:", width="stretch"):
    st.write(f"Delete **{run.name}**, its files and its share links?")
    if st.button("Yes, delete", type="primary", key="delete-yes"):
        try:
            get_store().delete_run(run.id)
        except TransferLabError as exc:
            st.error(str(exc))
        else:
            select_run(None)
            st.rerun()
