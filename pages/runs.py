"""Runs: history with status, duration and headline numbers; open, delete, download the model."""

from ui.entry import via_app

via_app()

import streamlit as st

from tlcore.errors import TransferLabError
from ui.report import headline_numbers
from ui.runs import get_store, model_zip, run_picker, select_run, visible_runs

st.title("Runs")
runs = visible_runs()
if not runs:
    st.info("No runs yet. Start one from **Home** (one-click demos) or **Fine-tune**.")
    st.stop()


def _num(value):
    return None if value is None else round(float(value), 3)


def _row(r) -> dict:
    task = r.config.get("task") or "classify"
    metric, before, after, gain = headline_numbers(task, r.metrics)
    strategy = r.config.get("strategy")
    # the numbers first, so they stay visible on narrow screens; provenance after
    return {"name": r.name, "status": r.status, "metric": metric + (" ↓" if task == "asr" else ""),
            "before": _num(before), "after": _num(after), "improvement": _num(gain), "task": task,
            "strategy": strategy, "backbone": r.config.get("backbone") or "default",
            "created": r.created_at.strftime("%Y-%m-%d %H:%M"),
            "duration (s)": None if r.duration_s is None else round(r.duration_s, 1), "error": r.error or ""}


SMALL = {c: st.column_config.Column(width="small") for c in ("status", "task", "duration (s)", "after")}
st.dataframe([_row(r) for r in runs], hide_index=True, width="stretch",
             column_config={**SMALL, "name": st.column_config.Column(width="medium"),
                            "improvement": st.column_config.NumberColumn(
                                "gain", width="small",
                                help="after − before; for WER (↓, lower is better) before − after: positive is better"),
                            "before": st.column_config.NumberColumn(
                                width="small", help="the source-only model for adaptation runs")})

st.subheader("Selected run")
run = run_picker("Run", runs, key="runs-run")
c1, c2, c3 = st.columns(3)
if c1.button("Open", icon=":material/open_in_new:", width="stretch"):
    st.switch_page("pages/compare.py", query_params={"run": run.id})
model_dir = run.out / "model"
if run.status == "done" and model_dir.exists():
    if c2.toggle("Prepare model download", key=f"zip-{run.id}",
                 help="Zips the exported model folder (save_pretrained format) with its report and model card."):
        st.download_button("Download model (.zip)", model_zip(model_dir), file_name=f"transferlab-{run.id[:8]}.zip",
                           mime="application/zip", icon=":material/download:", type="primary", on_click="ignore")
else:
    c2.caption("No exported model (the run did not finish).")
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
