"""Diagnose: how different is the target from the source, and which backbone will transfer best?

Verdict first, then the mismatch scores and the embedding map, the property drift, and the backbone ranking.
Both computations take about a minute with the real default backbones on a laptop CPU (sentiment demo:
diagnose ~17 s, ranking minilm-l6 and its random twin ~40 s), so they start on a button and are cached per
(modality, source, target, backbone, seed) and (modality, target, candidates, seed).
"""

from ui.entry import via_app

via_app()

import streamlit as st

from tlcore import plots
from tlcore.errors import TransferLabError
from tlcore.models.registry import DEFAULT_BACKBONE, RANDOM_SUFFIX, list_backbones
from ui import datasets

st.title("Diagnose")
try:
    from tlcore.diagnostics.diagnose import candidate_backbones, run_diagnose, run_rank
except ImportError:
    st.info("Diagnostics are not installed in this version yet (`tlcore.diagnostics.diagnose` is missing).")
    st.stop()

SEVERITY_BOX = {"none": st.success, "mild": st.warning, "strong": st.error}
SEVERITY_TITLE = {"none": "No detectable mismatch", "mild": "Mild mismatch", "strong": "Strong mismatch"}
DOMAIN_NAMES = {"A": "source", "B": "target", "a": "source", "b": "target"}  # run_diagnose compares A=source, B=target
SCORE_NAMES = {"logme": "LogME", "knn_accuracy": "k-NN accuracy", "h_score": "H-score", "leep": "LEEP", "nce": "NCE"}


@st.cache_data(show_spinner="Comparing source and target (pretrained features, mismatch scores, drift tests)…",
               max_entries=16)
def diagnose(modality: str, source: str, target: str, backbone: str, seed: int) -> dict:
    return run_diagnose(modality, source, target, backbone=backbone, seed=seed)


@st.cache_data(show_spinner="Scoring each candidate backbone on the labeled target (no fine-tuning)…", max_entries=16)
def rank(modality: str, target: str, backbones: tuple, seed: int) -> dict:
    return run_rank(modality, target, backbones=list(backbones), seed=seed)


st.caption("Compares the source and target sets on pretrained features and simple data properties, before you "
           "spend time training: a large mismatch means transfer needs more target data or more adaptation. It also "
           "ranks candidate backbones on the labeled target without fine-tuning.")
choice = datasets.data_picker("dx-data", task="classify")
if choice is None:
    st.stop()
if "source" not in choice.splits or "target" not in choice.splits:
    st.info("Diagnose compares a **source** set with a **target** set: add a source set on the Data page.")
    st.stop()
names = [s.name for s in list_backbones(choice.modality, include_tiny=True)]
default = DEFAULT_BACKBONE[choice.modality]
c1, c2 = st.columns([3, 1])
backbone = c1.selectbox("backbone (for the mismatch scores and the map)", names,
                        index=names.index(default) if default in names else 0, key="dx-backbone")
seed = c2.number_input("seed", value=0, min_value=0, key="dx-seed")
candidates_all = list(dict.fromkeys(candidate_backbones(choice.modality) + names + [n + RANDOM_SUFFIX for n in names]))
candidates = st.multiselect(
    "backbones to rank", candidates_all, default=candidate_backbones(choice.modality), key="dx-candidates",
    help="Each candidate is scored on the labeled target set (LogME, H-score, k-NN accuracy; LEEP and NCE for image "
         "backbones with a pretrained classifier). `@random` is the same architecture with random weights: a control "
         "that any useful pretrained backbone should beat.")
key = (choice.modality, choice.splits["source"], choice.splits["target"], backbone, int(seed))
rank_key = (choice.modality, choice.splits["target"], tuple(candidates), int(seed))
st.caption("About a minute with the default backbones on a laptop CPU; results are kept, so reopening is instant.")
if st.button("Run diagnosis", type="primary", icon=":material/troubleshoot:"):
    st.session_state["dx-key"] = key
    st.session_state["dx-rank-key"] = rank_key
if st.session_state.get("dx-key") != key:
    st.stop()
try:
    result = diagnose(*key)
except TransferLabError as exc:
    st.error(str(exc))
    st.stop()

# ------------------------------------------------------------------ verdict
verdict = result.get("verdict") or {}
severity = str(verdict.get("severity", "")).lower()
SEVERITY_BOX.get(severity, st.info)(
    f"**{SEVERITY_TITLE.get(severity, 'Verdict')}.** {verdict.get('summary', '')}\n\n"
    f"**What to do:** {verdict.get('recommendation', '')}")
signals = verdict.get("signals") or []
if signals:
    st.dataframe([{"signal": s.get("name", ""), "severity": s.get("severity", ""),
                   "value": round(float(s["value"]), 4) if isinstance(s.get("value"), (int, float)) else s.get("value"),
                   "meaning": s.get("meaning", "")} for s in signals if isinstance(s, dict)],
                 hide_index=True, width="stretch",
                 column_config={"meaning": st.column_config.TextColumn(width="large")})
data = result.get("data") or {}
st.caption(f"{data.get('source', '?')} source vs {data.get('target', '?')} target items · backbone "
           f"**{result.get('backbone', backbone)}** · seed {result.get('seed', seed)}")

# ------------------------------------------------------------------ mismatch + map
mismatch = result.get("mismatch") or {}
st.subheader("Domain mismatch")
left, right = st.columns(2)
with left:
    st.plotly_chart(plots.mismatch_panels(mismatch, {s.get("name"): s.get("severity") for s in signals
                                                     if isinstance(s, dict)}, "Mismatch scores (pretrained features)"),
                    key="dx-mm", width="stretch")
    definitions = mismatch.get("definitions") or result.get("definitions") or {}
    if definitions:
        with st.expander("What the scores mean"):
            st.markdown("\n".join(f"- **{k}**: {v}" for k, v in definitions.items()))
with right:
    m = mismatch.get("map") or result.get("map") or {}
    if m.get("x"):
        color = st.radio("Color the map by", ["domain", "label"], horizontal=True, key="dx-color")
        domains = [DOMAIN_NAMES.get(str(d), str(d)) for d in m["domain"]]
        st.plotly_chart(plots.embedding_map(m["x"], m["y"], domains, m.get("label"), color_by=color,
                                            title="Embedding map (2-D projection of pretrained features)"),
                        key="dx-map", width="stretch")

# ------------------------------------------------------------------ drift
rows = (result.get("drift") or {}).get("rows") or []
if rows:
    st.subheader("Property drift")
    n_drift = sum(bool(r.get("drifting")) for r in rows)
    st.caption(f"{n_drift} of {len(rows)} simple item properties differ between source and target after "
               "false-discovery-rate correction (red). Effect size: standardised difference, target vs source.")
    left, right = st.columns([2, 3])
    with left:
        st.plotly_chart(plots.drift_bars(rows, "Effect size per property"), key="dx-drift", width="stretch")
    with right:
        cols = ["name", "drifting", "effect", "mean_a", "mean_b", "q_value", "test"]
        st.dataframe([{c: (round(r[c], 4) if isinstance(r.get(c), float) else r.get(c)) for c in cols} for r in rows],
                     hide_index=True, width="stretch",
                     column_config={"mean_a": "mean (source)", "mean_b": "mean (target)"})
text = result.get("text") or {}
if text:
    voc = text.get("vocabulary") or {}
    words = text.get("separating_words") or []
    with st.expander("Vocabulary: words that separate source and target"):
        if voc:
            st.caption(f"Vocabulary overlap (Jaccard) {voc.get('jaccard', 0):.2f}; "
                       f"{100 * voc.get('oov_rate_b_given_a', 0):.0f}% of target words never occur in the source.")
        if words:
            st.dataframe([{"word": w[0], "typical of": "source" if w[1] > 0 else "target", "z": round(w[1], 2),
                           "count source": w[2], "count target": w[3]} for w in words], hide_index=True, width="stretch")

# ------------------------------------------------------------------ backbone ranking
st.subheader("Which backbone? Ranking without fine-tuning")
st.caption("**Which score to trust:** in our validation on the demos (ranking vs. real fine-tuned accuracy, see the "
           "README) **H-score** agreed with the fine-tuned ranking on every demo; **LogME** got one demo "
           "backwards and **k-NN accuracy** two. With few labeled examples every score is rough: when two candidates' intervals overlap, the "
           "data **cannot tell** them apart, so treat them as equal and fine-tune both if it matters. Intervals come "
           "from repeated 80% subsamples of the target, so they describe the score at 80% of the data and need not "
           "contain the full-data point.")
if not candidates:
    st.info("Pick at least one backbone to rank.")
    st.stop()
if st.session_state.get("dx-rank-key") != rank_key:
    if st.button("Rank these backbones", icon=":material/leaderboard:", key="dx-rank-button"):
        st.session_state["dx-rank-key"] = rank_key
    else:
        st.stop()
try:
    ranked = rank(*rank_key)
except TransferLabError as exc:
    st.warning(f"Cannot rank backbones on this target: {exc}")
    st.stop()
table = ranked.get("ranking") or []
score_names = sorted({s for row in table for s in (row.get("scores") or {})})


def _cell(s: dict | None) -> str:
    return "–" if not s else f"{s['point']:.3g} [{s['lo']:.3g}, {s['hi']:.3g}]"


st.dataframe([{"rank": row.get("rank"), "backbone": row.get("backbone"),
               **{SCORE_NAMES.get(s, s): _cell((row.get("scores") or {}).get(s)) for s in score_names},
               "cannot tell from best on": ", ".join(SCORE_NAMES.get(s, s) for s in row.get("tied_with_best") or [])
               if row.get("rank") != 1 else "(best)"} for row in table], hide_index=True, width="stretch")
if table:
    st.plotly_chart(plots.rank_intervals(table, "Score with subsampling interval (best backbone in blue)"),
                    key="dx-rank", width="stretch")
if ranked.get("advice"):
    st.info(ranked["advice"], icon=":material/lightbulb:")
