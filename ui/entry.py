"""Make every page run through app.py (navigation, sidebar, share-link gate).

Streamlit serves the files in ``pages/`` on their own ("MPA v1") until the main script has called
``st.navigation`` in this server process. If the very first request of a fresh server is a page URL
(e.g. ``/data`` or ``/runs?share=...``), the page would run without app.py. ``via_app()`` notices that
(app.py is not on the call stack), switches Streamlit to app.py's navigation and reruns, so the same URL
then resolves through ``st.navigation``.
"""

import sys
from pathlib import Path

import streamlit as st

APP = Path(__file__).resolve().parents[1] / "app.py"


def _under_app() -> bool:
    frame = sys._getframe(2)
    while frame is not None:
        name = Path(frame.f_code.co_filename).name
        if frame.f_code.co_name == "<module>" and name == APP.name:
            return True
        if name == "local_script_runner.py":  # streamlit.testing's AppTest runs pages this way by design
            return True
        frame = frame.f_back
    return False


def via_app() -> None:
    if _under_app():
        return
    from streamlit.runtime.pages_manager import PagesManager

    PagesManager.uses_pages_directory = False  # what st.navigation itself sets; app.py runs next
    st.rerun()
