"""Diagnose: how different is the target from the source, and which backbone will transfer best?

Verdict first, then the mismatch scores and the embedding map, the property drift, the task's own part
(entity types and unseen entities for NER, transcript vocabulary for speech recognition) and the backbone
ranking (zero-shot error rates of speech recognisers for ASR). Both computations take about a minute with the
real default backbones on a laptop CPU (sentiment demo: diagnose ~17 s, ranking minilm-l6 and its random twin
~40 s), so they start on a button and are cached per settings. The settings are a ``DiagnoseConfig`` and a
``RankConfig`` (their help texts and limits feed the widgets), checked by the API through the same ``validate`` as
the CLI's flags, so a bad value is refused here with the CLI's words.
"""

from ui.entry import via_app

via_app()

import streamlit as st

import tlcore
from tlcore import plots
from tlcore.api import DiagnoseConfig, RankConfig
from tlcore.config import field_help
from tlcore.diagnostics.rank import candidate_backbones
from tlcore.errors import TransferLabError
from tlcore.models.registry import DEFAULT_BACKBONE, RANDOM_SUFFIX, list_backbones
from tlcore.paths import owner_scope
from ui import datasets
from ui.auth import current_user, split_server_paths
from ui.diagnose import task_sections
from ui.forms import number_limits
from ui.tasks import spec_of

st.title("Diagnose")

SEVERITY_BOX = {"none": st.success, "mild": st.warning, "strong": st.error}
SEVERITY_TITLE = {"none": "No detectable mismatch", "mild": "Mild mismatch", "strong": "Strong mismatch"}
DOMAIN_NAMES = {"A": "source", "B": "target", "a": "source", "b": "target"}  # run_diagnose compares A=source, B=target
SCORE_NAMES = {"logme": "LogME", "knn_accuracy": "k-NN accuracy", "h_score": "H-score", "leep": "LEEP", "nce": "NCE"}


@st.cache_data(show_spinner="Comparing source and target (pretrained features, mismatch scores, drift tests)…",
               max_entries=16)
def diagnose(settings: dict, owner: str | None = None) -> dict:
    """The diagnosis of ``settings`` (a ``DiagnoseConfig.to_dict()``); the API validates them first."""
    # ``owner`` only keys the cache: a diagnosis belongs to its user (uploads are content-addressed, so two users
    # with the same bytes have the same paths; neither may learn from a cache hit that the other has them)
    with owner_scope(owner):   # features cached for this user only
        return tlcore.diagnose(config=DiagnoseConfig.from_dict(settings)).to_dict()


@st.cache_data(show_spinner="Scoring each candidate backbone on the labeled target (no fine-tuning)…", max_entries=16)
def rank(settings: dict, owner: str | None = None) -> dict:
    """The ranking of ``settings`` (a ``RankConfig.to_dict()``); the API validates them first."""
    with owner_scope(owner):
        return tlcore.rank(config=RankConfig.from_dict(settings)).to_dict()


st.caption("Compares the source and target sets on pretrained features and simple data properties, before you "
           "spend time training: a large mismatch means transfer needs more target data or more adaptation. It also "
           "ranks candidate backbones on the labeled target without fine-tuning. Works for classification, named-entity "
           "recognition (NER) and speech recognition (ASR) sets.")
choice = datasets.data_picker("dx-data")
if choice is None:
    st.stop()
spec = spec_of(choice.task)
task = spec.name
# A task with pretrained models of its own (speech recognizers) ranks those, zero-shot, by its error rates; its
# mismatch scores and map still use a feature encoder of the modality.
own_models = spec.backbones is not None
score_names = {**SCORE_NAMES, **{m.key: m.label for m in spec.metrics}}
if "source" not in choice.splits or "target" not in choice.splits:
    st.info("Diagnose compares a **source** set with a **target** set: add a source set on the Data page.")
    st.stop()
names = [s.name for s in list_backbones(choice.modality, include_tiny=True)]
default = DEFAULT_BACKBONE[choice.modality]
c1, c2 = st.columns([3, 1])
backbone = c1.selectbox(f"{choice.modality} encoder (for the mismatch scores and the map)" if own_models else
                        "backbone (for the mismatch scores and the map)", names,
                        index=names.index(default) if default in names else 0, key="dx-backbone")
helps = field_help(DiagnoseConfig)
seed = c2.number_input("seed", value=0, step=1, key="dx-seed", help=helps["seed"]["help"],
                       **number_limits(helps["seed"]))
better = "higher" if spec.metric.higher_is_better else "lower"
if own_models:
    recognizers = candidate_backbones(choice.modality, task=task)
    candidates = st.multiselect(
        f"{spec.noun} models to rank", recognizers, default=recognizers, key="dx-candidates",
        help=f"Each model runs on the target {spec.unit} as it is (zero-shot, no training); {better} "
             f"{spec.metric.label} is better. `@random` is the same architecture with random weights: a control any "
             "pretrained model should beat.")
    extra = st.text_input("also rank (model folders or Hugging Face ids, comma-separated)", key="dx-extra")
    extra_ids = [x.strip() for x in extra.split(",") if x.strip()]
    extra_ids, folders = split_server_paths(extra_ids)
    if folders:
        st.error(f"{', '.join(folders)}: only an admin can rank model folders on the server; give a Hugging Face "
                 "model id instead.")
    candidates = list(dict.fromkeys(candidates + extra_ids))
else:
    suggested = candidate_backbones(choice.modality, task=task)
    candidates_all = list(dict.fromkeys(suggested + names + [n + RANDOM_SUFFIX for n in names]))
    candidates = st.multiselect(
        "backbones to rank", candidates_all, default=suggested, key="dx-candidates",
        help=("Each candidate is scored on word features of the tagged target sentences (LogME, H-score, k-NN accuracy, "
              "the word's tag as its label). " if spec.token_level else
              "Each candidate is scored on the labeled target set (LogME, H-score, k-NN accuracy; LEEP and NCE for image "
              "backbones with a pretrained classifier). ")
        + "`@random` is the same architecture with random weights: a control that any useful pretrained backbone "
          "should beat.")
dx_settings = DiagnoseConfig(modality=choice.modality, source=choice.splits["source"], target=choice.splits["target"],
                             backbone=backbone, seed=int(seed), task=task).to_dict()
rank_settings = RankConfig(modality=choice.modality, target=choice.splits["target"], backbones=candidates,
                           seed=int(seed), task=task).to_dict()
st.caption("About a minute with the default backbones on a laptop CPU; results are kept, so reopening is instant.")
if st.button("Run diagnosis", type="primary", icon=":material/troubleshoot:"):
    st.session_state["dx-key"] = dx_settings
    st.session_state["dx-rank-key"] = rank_settings
if st.session_state.get("dx-key") != dx_settings:
    st.stop()
try:
    result = diagnose(dx_settings, owner=current_user())
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
st.caption(f"{data.get('source', '?')} source vs {data.get('target', '?')} target {data.get('unit', 'items')} · backbone "
           f"**{result.get('backbone', backbone)}** · seed {result.get('seed', seed)}")

# ------------------------------------------------------------------ mismatch + map
mismatch = result.get("mismatch") or {}
st.subheader("Domain mismatch")
left, right = st.columns(2)
with left:
    st.plotly_chart(plots.mismatch_panels(mismatch, {s.get("name"): s.get("severity") for s in signals
                                                     if isinstance(s, dict)}, "Mismatch scores (pretrained features)"),
                    key="dx-mm", width="stretch")
    definitions = {**(mismatch.get("definitions") or {}), **(result.get("definitions") or {})}
    if definitions:
        with st.expander("What the scores mean"):
            st.markdown("\n".join(f"- **{k}**: {v}" for k, v in definitions.items()))
with right:
    m = mismatch.get("map") or result.get("map") or {}
    if m.get("x"):
        label_name = data.get("map_label") or "label"
        color, c_left, c_right = "domain", *st.columns(2)
        projection = c_left.radio(
            "Projection", ["pca", "umap"], horizontal=True, key="dx-projection", format_func=str.upper,
            help="PCA: the two directions of largest variance (linear; distances mean something). UMAP: keeps each "
                 "point's nearest neighbours together, so groups that PCA overlaps separate; distances between "
                 "far-apart groups and the axes mean nothing.")
        if projection == "umap":
            try:
                umap_result = diagnose({**dx_settings, "map_method": "umap"}, owner=current_user())
            except TransferLabError as exc:
                st.error(str(exc))
            else:
                m = (umap_result.get("mismatch") or {}).get("map") or umap_result.get("map") or m
        if any(v is not None for v in m.get("label") or []):
            color = c_right.radio("Color the map by", ["domain", "label"], horizontal=True, key="dx-color",
                                  format_func=lambda c: c if c == "domain" else label_name)
        domains = [DOMAIN_NAMES.get(str(d), str(d)) for d in m["domain"]]
        name = "UMAP" if m.get("method") == "umap" else "PCA"
        st.plotly_chart(plots.embedding_map(m["x"], m["y"], domains, m.get("label"), color_by=color,
                                            title=f"Embedding map ({name} of pretrained features)"),
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

# ------------------------------------------------------------------ the task's own measures (entities, transcripts)
task_sections(result)

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
if own_models:
    st.subheader("Which speech recognizer? Zero-shot error rates")
    st.caption(f"Each candidate runs on the target {spec.unit} as it is (no training): "
               f"{' and '.join(m.label for m in (spec.metric, spec.second))}, **{better} is better**, with 95% "
               f"bootstrap intervals over {spec.unit}. When two candidates' intervals overlap, the data **cannot "
               "tell** them apart.")
else:
    st.subheader("Which backbone? Ranking without fine-tuning")
    st.caption("**Which score to trust:** in our validation on the demos (ranking vs. real fine-tuned accuracy, see the "
               "README) **LogME** agreed with the fine-tuned ranking on three of four demos, **k-NN accuracy** on two, "
               "and the shrinkage **H-score** (as its paper defines it) on one: with a few dozen labeled examples it "
               "shrinks almost fully and cannot tell backbones apart. With few labeled examples every score is "
               "rough: when two candidates' intervals overlap, or the scores favour different candidates, the "
               "data **cannot tell** them apart, so treat them as equal and fine-tune both if it matters. Intervals come "
               "from repeated 80% subsamples of the target, so they describe the score at 80% of the data and need not "
               "contain the full-data point.")
    if spec.token_level:
        st.caption("NER: scores on word features (each word's first sub-token) with the word's BIO tag as its label; "
                   "the subsamples draw whole sentences. The validation above is for classification; on word features "
                   "a random-init twin can score well by telling word identities apart, so a `@random` candidate "
                   "close to a pretrained one means fine-tune and compare, not that pretraining does not help.")
if not candidates:
    st.info("Pick at least one backbone to rank.")
    st.stop()
if st.session_state.get("dx-rank-key") != rank_settings:
    if st.button("Rank these backbones", icon=":material/leaderboard:", key="dx-rank-button"):
        st.session_state["dx-rank-key"] = rank_settings
    else:
        st.stop()
try:
    ranked = rank(rank_settings, owner=current_user())
except TransferLabError as exc:
    st.warning(f"Cannot rank backbones on this target: {exc}")
    st.stop()
table = ranked.get("ranking") or []
ranked_scores = sorted({s for row in table for s in (row.get("scores") or {})})


def _cell(s: dict | None) -> str:
    return "–" if not s else f"{s['point']:.3g} [{s['lo']:.3g}, {s['hi']:.3g}]"


st.dataframe([{"rank": row.get("rank"), "backbone": row.get("backbone"),
               **{score_names.get(s, s): _cell((row.get("scores") or {}).get(s)) for s in ranked_scores},
               "cannot tell from best on": ", ".join(score_names.get(s, s) for s in row.get("tied_with_best") or [])
               if row.get("rank") != 1 else "(best)"} for row in table], hide_index=True, width="stretch")
if table:
    title = ("Error rate with 95% interval (lower is better; best in blue)" if ranked.get("lower_is_better")
             else "Score with subsampling interval (best backbone in blue)")
    st.plotly_chart(plots.rank_intervals(table, title), key="dx-rank", width="stretch")
zero_shot = ranked.get("zero_shot") or {}
if zero_shot:
    with st.expander("Zero-shot transcripts and error rate per group"):
        for name, block in zero_shot.items():
            shown = (spec.metric, spec.second)
            st.markdown(f"**{name}**: " + ", ".join(f"{m.label} {m.fmt(block.get(m.key, 0))}" for m in shown)
                        + (f", {block['runaway']} runaway transcript(s)" if block.get("runaway") else ""))
            rows = [{"group": f"{column}: {value}", **{m.label: round(v.get(m.key, 0), 3) for m in shown},
                     spec.unit: v.get("n")} for column, values in (block.get("per_group") or {}).items()
                    for value, v in values.items()]
            if rows:
                st.dataframe(rows, hide_index=True, width="stretch")
            st.dataframe(block.get("examples") or [], hide_index=True, width="stretch")
if ranked.get("advice"):
    st.info(ranked["advice"], icon=":material/lightbulb:")
