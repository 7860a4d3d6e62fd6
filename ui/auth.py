"""Who is using the app: an OIDC user when ``st.login`` is configured, else single-user local mode."""

from __future__ import annotations

from typing import Optional

import streamlit as st


def login_configured() -> bool:
    """True when ``.streamlit/secrets.toml`` has an ``[auth]`` section (OIDC for ``st.login``)."""
    try:
        return "auth" in st.secrets
    except Exception:  # no secrets file at all: local mode
        return False


def is_logged_in() -> bool:
    try:
        return bool(st.user.is_logged_in)
    except Exception:
        return False


def current_user() -> Optional[str]:
    """The owner id for new runs and the filter for the runs list; None in local mode."""
    if not login_configured() or not is_logged_in():
        return None
    user = st.user
    return str(user.get("email") or user.get("sub") or user.get("name") or "user")


def sidebar_account() -> None:
    """The sidebar note: who is logged in, or that the app runs in single-user local mode."""
    with st.sidebar:
        if not login_configured():
            st.caption("Single-user local mode: no login is configured, so every run here is yours. "
                       "Add an `[auth]` section to `.streamlit/secrets.toml` to enable accounts.")
        elif is_logged_in():
            st.caption(f"Signed in as **{current_user()}**")
            if st.button("Log out", key="logout"):
                st.logout()


def require_login() -> None:
    """With login configured, stop the page until the user is signed in."""
    if login_configured() and not is_logged_in():
        st.title("TransferLab")
        st.info("Please sign in to see and start your runs.")
        if st.button("Log in", type="primary"):
            st.login()
        st.stop()
