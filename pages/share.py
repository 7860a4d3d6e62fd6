"""Share: create a read-only link to one run's results, with an expiry; list and revoke links."""

from ui.entry import via_app

via_app()

from datetime import timedelta

import streamlit as st

from tlcore.errors import TransferLabError
from tlcore.runs import create_share, list_shares, revoke_share
from ui.auth import current_user, is_admin
from ui.runs import get_store, run_picker, visible_runs

EXPIRY = {"1 hour": timedelta(hours=1), "1 day": timedelta(days=1), "7 days": timedelta(days=7),
          "30 days": timedelta(days=30)}

st.title("Share")
st.caption("A share link opens a read-only view of one run's results (report, plots, flipped examples, errors item by item; for an analysis "
           "its clusters or curve) and nothing else: no other runs, no uploads, no training. Anyone with the link can "
           "view it until it expires or you revoke it.")
runs = visible_runs(status="done")
if not runs:
    st.info("No finished run to share yet.")
    st.stop()
run = run_picker("Run", runs, key="share-run")
store = get_store()

with st.form("new-share"):
    c1, c2 = st.columns(2)
    expiry = c1.selectbox("Expires after", list(EXPIRY), index=2)
    label = c2.text_input("Label (optional)", placeholder="e.g. for the team meeting")
    created = st.form_submit_button("Create link", type="primary", icon=":material/link:")
if created:
    try:
        token, link = create_share(store, run.id, expires_in=EXPIRY[expiry], created_by=current_user(), label=label,
                                   admin=is_admin())
    except (TransferLabError, PermissionError, ValueError) as exc:
        st.error(str(exc))
    else:
        st.success(f"Link created; it expires {link.expires_at:%Y-%m-%d %H:%M} UTC. Copy it now: it is shown only once.")
        base = st.context.url.split("?")[0].rsplit("/", 1)[0] if st.context.url else ""
        st.code(f"{base}/?share={token}", language=None)

links = list_shares(store, run.id)
st.subheader(f"Links for this run ({len(links)})")
if not links:
    st.caption("None yet.")
for link in links:
    with st.container(border=True):
        c1, c2 = st.columns([4, 1])
        c1.markdown(f"**{link.label or 'link ' + link.id[:8]}** · {link.state} · expires "
                    f"{link.expires_at:%Y-%m-%d %H:%M} UTC · {link.views} view(s)")
        if link.state == "active" and c2.button("Revoke", key=f"revoke-{link.id}", icon=":material/link_off:"):
            try:
                revoke_share(store, link.id, by=current_user(), admin=is_admin())
            except (TransferLabError, PermissionError) as exc:
                st.error(str(exc))
            else:
                st.rerun()
