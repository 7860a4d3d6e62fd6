"""Who is using the app, and what they may see: an OIDC user when ``st.login`` is configured, else local mode.

The ownership rules, in one place (pages and ``ui.runs`` / ``ui.datasets`` ask these functions):

* **Local mode** (no ``[auth]`` section in ``.streamlit/secrets.toml``): one person on their own machine; every
  run and upload set is theirs, as before accounts existed.
* **Login configured**: a signed-in **member** sees and uses only what they own (runs, analyses, upload sets,
  diagnoses); a run or upload set made before login was enabled (owner None) belongs to nobody and is visible to
  admins only. An **admin** (email listed in ``[transferlab] admins = [...]`` in the secrets) sees everything.
* **Who a user is** (:func:`identity`): their email only when the provider vouches for it (``email_verified``
  true; ``[transferlab] trust_email = true`` for a provider that never sends that claim), else ``sub`` from the
  issuer, which no email can equal. So nobody becomes another user, or an admin, by typing someone's address
  into an account whose email the provider never checked.
  Nobody else's thing is reachable by ``?run=``, ``?data=`` or a file name: it reads as "not found". The one way
  to show a run to someone else is a share link (read-only, one run).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Optional

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


def _is_true(value: Any) -> bool:
    """An OIDC boolean claim: JSON true (some providers send the string "true")."""
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def identity(claims: Mapping, *, trust_email: bool = False) -> Optional[str]:
    """The owner id for a signed-in user's ID-token claims (module docstring): the email when ``email_verified``
    is true (or ``trust_email``), else ``sub:<sub> at <issuer>``; None when the provider sent neither."""
    email = str(claims.get("email") or "").strip()
    if email and (trust_email or _is_true(claims.get("email_verified"))):
        return email
    sub = str(claims.get("sub") or "").strip()
    if not sub:
        return None
    issuer = str(claims.get("iss") or "").strip()
    return f"sub:{sub} at {issuer}" if issuer else f"sub:{sub}"


def _settings() -> Mapping:
    """The ``[transferlab]`` section of the secrets (admins, trust_email), empty when there is none."""
    try:
        return st.secrets.get("transferlab") or {}
    except Exception:
        return {}


def current_user() -> Optional[str]:
    """The owner id for new runs and upload sets (:func:`identity`); None in local mode (and before sign-in)."""
    if not login_configured() or not is_logged_in():
        return None
    return identity(st.user.to_dict(), trust_email=_is_true(_settings().get("trust_email", False)))


def display_name() -> Optional[str]:
    """How the signed-in user is named in the sidebar: the owner id, with the unchecked email beside a sub id."""
    user = current_user()
    if user is None or not user.startswith("sub:"):
        return user
    email = str(st.user.get("email") or "").strip()
    return f"{email} (email not verified by the provider; your runs are kept under {user})" if email else user


def admin_emails() -> frozenset[str]:
    """The admins named in the secrets (``[transferlab] admins = ["ops@example.com"]``), lower-cased."""
    admins = _settings().get("admins") or []
    if isinstance(admins, str):
        admins = [admins]
    return frozenset(str(a).strip().lower() for a in admins if str(a).strip())


def is_admin() -> bool:
    """True for a signed-in user whose (verified) email is in the admin list (login configured only)."""
    user = current_user()
    return user is not None and user.lower() in admin_emails()


def may_see(owner: Optional[str], user: Optional[str], *, login: bool, admin: bool = False) -> bool:
    """The ownership rule for one run / upload set owned by ``owner``, asked by ``user``.

    Local mode (``login`` False): everything. With login: admins everything, members only their own; things
    without an owner (made before login was enabled) belong to no member.
    """
    if not login:
        return True
    if admin:
        return True
    return user is not None and owner is not None and owner == user


def can_see(owner: Optional[str]) -> bool:
    """:func:`may_see` for the current session."""
    return may_see(owner, current_user(), login=login_configured(), admin=is_admin())


def owner_key(user: Optional[str]) -> str:
    """A file-name-safe, fixed-length key for a user's folders (``sha256`` of the owner id, 24 hex digits)."""
    from tlcore.paths import owner_key as key

    return key(user or "")


def sidebar_account() -> None:
    """The sidebar note: who is logged in, or that the app runs in single-user local mode."""
    with st.sidebar:
        if not login_configured():
            st.caption("Single-user local mode: no login is configured, so every run here is yours. "
                       "Add an `[auth]` section to `.streamlit/secrets.toml` to enable accounts.")
        elif is_logged_in():
            role = " (admin: sees every user's runs and uploads)" if is_admin() else ""
            st.caption(f"Signed in as **{display_name()}**{role}")
            if st.button("Log out", key="logout"):
                st.logout()


def require_login() -> None:
    """With login configured, stop the page until the user is signed in (with an identity we can own things by)."""
    if login_configured() and not is_logged_in():
        st.title("TransferLab")
        st.info("Please sign in to see and start your runs.")
        if st.button("Log in", type="primary"):
            st.login()
        st.stop()
    if login_configured() and current_user() is None:
        st.title("TransferLab")
        st.error("Your identity provider sent neither a verified email nor a subject (`sub`) claim, so TransferLab "
                 "cannot tell whose runs are yours. Ask your administrator to add the `openid email` scopes.")
        if st.button("Log out"):
            st.logout()
        st.stop()


_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


def split_server_paths(names: list[str]) -> tuple[list[str], list[str]]:
    """``(allowed, refused)`` model names a user typed: on a team server (login on) a member may name Hugging Face
    ids only; a folder path would load whatever lies on the server, so only admins (and local mode) may."""
    if not login_configured() or is_admin():
        return list(names), []
    refused = [n for n in names if not _HUB_ID.fullmatch(n) or Path(n).exists()]
    return [n for n in names if n not in refused], refused
