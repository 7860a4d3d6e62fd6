"""Diagnose: how different is the target from the source? Verdict first, then mismatch scores, the map, drift."""

from ui.entry import via_app

via_app()

import streamlit as st

from tlcore import plots
from tlcore.errors import TransferLabError
from tlcore.models.registry import DEFAULT_BACKBONE, list_backbones
from ui import datasets

st.title("Diagnose")
try:
    from tlcore.diagnose import run_diagnose
except ImportError:
    st.info("Diagnostics are not installed in this version yet (`tlcore.diagnose` is missing).")
    st.stop()


@st.cache_data(show_spinner="Comparing source and target (pretrained features, mismatch scores, drift tests)…",
               max_entries=16)
def diagnose(modality: str, source: str, target: str, backbone: str, seed: int) -> dict:
    return run_diagnose(modality, source, target, backbone=backbone, seed=seed)


st.caption("Compares the source and target sets on pretrained features and simple data properties, before you "
           "spend time training: a large mismatch means transfer needs more target data or more adaptation.")
choice = datasets.data_picker("dx-data")
if choice is None:
    st.stop()
if "source" not in choice.splits or "target" not in choice.splits:
    st.info("Diagnose compares a **source** set with a **target** set: add a source set on the Data page.")
    st.stop()
names = [s.name for s in list_backbones(choice.modality, include_tiny=True)]
default = DEFAULT_BACKBONE[choice.modality]
c1, c2 = st.columns([3, 1])
backbone = c1.selectbox("backbone", names, index=names.index(default) if default in names else 0, key="dx-backbone")
seed = c2.number_input("seed", value=0, min_value=0, key="dx-seed")
key = (choice.modality, choice.splits["source"], choice.splits["target"], backbone, int(seed))
if st.button("Run diagnosis", type="primary", icon=":material/troubleshoot:"):
    st.session_state["dx-key"] = key
if st.session_state.get("dx-key") != key:
    st.stop()
try:
    result = diagnose(*key)
except TransferLabError as exc:
    st.error(str(exc))
    st.stop()

verdict = result.get("verdict") or {}
severity = str(verdict.get("severity", "")).lower()
box = {"low": st.success, "none": st.success, "ok": st.success, "medium": st.warning, "moderate": st.warning,
       "high": st.error, "severe": st.error}.get(severity, st.info)
box(f"**{severity.capitalize() or 'Verdict'}: {verdict.get('summary', '')}**\n\n{verdict.get('recommendation', '')}")
signals = verdict.get("signals") or []
if signals:
    with st.expander("Why: the signals behind the verdict"):
        for s in signals:
            st.write(f"- {s if isinstance(s, str) else ', '.join(f'{k}: {v}' for k, v in dict(s).items())}")

left, right = st.columns(2)
with left:
    st.plotly_chart(plots.mismatch_bars(result.get("mismatch") or {}, "Domain mismatch scores"), key="dx-mm",
                    width="stretch")
with right:
    m = result.get("map") or {}
    if m.get("x"):
        color = st.radio("Color the map by", ["domain", "label"], horizontal=True, key="dx-color")
        st.plotly_chart(plots.embedding_map(m["x"], m["y"], m["domain"], m.get("label"), color_by=color,
                                            title="Embedding map (pretrained features)"), key="dx-map", width="stretch")
rows = (result.get("drift") or {}).get("rows") or []
if rows:
    st.subheader("Property drift")
    st.plotly_chart(plots.drift_bars(rows, "Effect size per property (red: drifting after FDR correction)"),
                    key="dx-drift", width="stretch")
    st.dataframe(rows, hide_index=True, width="stretch")
