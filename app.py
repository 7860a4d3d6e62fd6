"""TransferLab: the Streamlit entry point (navigation and the shared sidebar, nothing else).

Run it with ``streamlit run app.py``. A ``?share=<token>`` URL opens only the read-only view of one run.
"""

import streamlit as st

st.set_page_config(page_title="TransferLab", page_icon=":material/swap_horiz:", layout="wide")

from ui.runs import require_store  # noqa: E402

require_store()
if "share" in st.query_params:
    # A share link: exactly one read-only page, no navigation, no sidebar, no login needed.
    st.navigation([st.Page("pages/shared.py", title="Shared run", url_path="shared", default=True)],
                  position="hidden").run()
    st.stop()

from ui.auth import require_login, sidebar_account  # noqa: E402

require_login()
pages = {
    "": [st.Page("pages/home.py", title="Home", icon=":material/home:", default=True)],
    "Prepare": [st.Page("pages/data.py", title="Data", icon=":material/dataset:"),
                st.Page("pages/diagnose.py", title="Diagnose", icon=":material/troubleshoot:")],
    "Transfer": [st.Page("pages/finetune.py", title="Fine-tune", icon=":material/model_training:"),
                 st.Page("pages/compare.py", title="Compare", icon=":material/compare:"),
                 st.Page("pages/try_it.py", title="Try it", icon=":material/science:"),
                 st.Page("pages/analyze.py", title="Analyze", icon=":material/insights:")],
    "Manage": [st.Page("pages/runs.py", title="Runs", icon=":material/history:"),
               st.Page("pages/share.py", title="Share", icon=":material/share:")],
}
page = st.navigation(pages)
sidebar_account()
page.run()
