"""The read-only view a share link opens: one run's results and nothing else."""

from ui.entry import via_app

via_app()

import streamlit as st

from tlcore.runs import ShareError, resolve_share
from ui.analyses import render_analysis
from ui.errors import error_section
from ui.report import render_report
from ui.runs import ANALYSIS_KINDS, get_store, read_report, run_kind

st.markdown("<style>[data-testid='stSidebar'], [data-testid='stSidebarCollapsedControl'] {display: none}</style>",
            unsafe_allow_html=True)
token = st.query_params.get("share", "")
try:
    run = resolve_share(get_store(), token)
except ShareError as exc:
    st.title("TransferLab: shared run")
    st.error(f"This link cannot be opened. {str(exc)[0].upper()}{str(exc)[1:]}.", icon=":material/block:")
    st.stop()

st.title(f"Shared run: {run.name}")
st.info("Read-only view shared from TransferLab. It shows this one run only.", icon=":material/visibility:")
report = read_report(run) if run.status == "done" else None
if report is None:
    st.warning("This run has no results to show.")
    st.stop()
if run_kind(run) in ANALYSIS_KINDS:
    render_analysis(report, run.out, key="shared")
else:
    render_report(report, key="shared")
    st.divider()
    error_section(report, key="shared")
