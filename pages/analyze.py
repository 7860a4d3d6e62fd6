"""Analyze: clustering without labels (do pretrained features group the data?), the data-efficiency curve (how many
labels does transfer need?) and the strategy sweep (which strategy, if any, should I use?). All run in the background
worker; results are shown here and in share links."""

from ui.entry import via_app

via_app()

import json

import streamlit as st

from tlcore.api import ClusterConfig, CurveConfig, SweepConfig
from tlcore.config import BASELINES, LIMITS, field_help
from tlcore.errors import TransferLabError
from tlcore.experiments.sweep import SWEEP_STRATEGIES
from tlcore.tasks import DEFAULT_TASK
from ui import datasets
from ui.analyses import render_analysis
from ui.forms import number_limits
from ui.progress import finished_note, live_progress
from ui.runs import (
    CLUSTER_JOB,
    CURVE_JOB,
    KIND_LABELS,
    SWEEP_JOB,
    get_run,
    read_report,
    run_kind,
    run_picker,
    select_run,
    selected_run_id,
    start_analysis,
    visible_runs,
)
from ui.tasks import backbone_options, strategy_options

TASK = DEFAULT_TASK   # clustering and the curve work on classification data sets (items with class labels)
TABS = {"cluster": "Clustering (no labels)", "curve": "Data-efficiency curve", "sweep": "Which strategy?"}
SPLIT_ORDER = ("eval", "unlabeled", "target", "source")   # the clustering tab's default split comes first


def _load(path: str, modality: str):
    """The split as a Dataset, or None after showing why it cannot be used."""
    try:
        return datasets.load(path, modality)
    except TransferLabError as exc:
        st.error(str(exc))
        return None


def _backbone(modality: str, key: str) -> str:
    options = dict(backbone_options(TASK, modality))
    return st.selectbox("Backbone", list(options), format_func=lambda n: f"{n}: {options[n]}", key=key,
                        help="Whose features are used; the first is the modality's default.")


def _start(cfg, job: str, name: str, dataset: str) -> None:
    try:
        run = start_analysis(cfg, job=job, name=name, dataset=dataset)
    except TransferLabError as exc:
        st.error(str(exc))
    else:
        select_run(run.id)
        st.rerun()


def cluster_form() -> None:
    helps = field_help(ClusterConfig)
    st.caption("Cluster a data set on the backbone's pretrained features and, as the baseline, on its raw inputs "
               "(pixels, TF-IDF words, MFCCs). No labels are needed; if the set has labels they are hidden from the "
               "clustering and only score it (NMI / ARI).")
    choice = datasets.data_picker("an-cl-data", task=TASK)
    if choice is None:
        return
    splits = [s for s in SPLIT_ORDER if s in choice.splits]
    c1, c2 = st.columns(2)
    split = c1.selectbox("Split to cluster", splits, key="an-cl-split", help=helps["data"]["help"])
    with c2:
        backbone = _backbone(choice.modality, "an-cl-backbone")
    ds = _load(choice.splits[split], choice.modality)
    if ds is not None:
        what = (f"labeled ({len(ds.classes)} classes): the labels only score the clusters" if ds.labeled
                else "no labels: the clusters are shown without scores")
        st.caption(f"{split}: {len(ds)} {choice.modality} items · {what}.")
    c1, c2, c3 = st.columns(3)
    k = c1.number_input("Number of clusters k", **number_limits(LIMITS["k"]), value=None, step=1, key="an-cl-k",
                        placeholder="auto (silhouette, 2–12)",
                        help=helps["k"]["help"] + (f" Set it to the number of classes ({len(ds.classes)}) to compare "
                                                   "both representations at the same k." if ds is not None and ds.labeled
                                                   else ""))
    seed = c2.number_input("Seed", **number_limits(LIMITS["seed"]), value=0, step=1, key="an-cl-seed",
                           help=helps["seed"]["help"])
    max_items = c3.number_input("At most this many items", **number_limits(LIMITS["max_items"]), value=5000, step=500,
                                key="an-cl-max", help=helps["max_items"]["help"])
    name = st.text_input("Run name (optional)", key="an-cl-name", max_chars=200,
                         placeholder=f"{choice.name} · {split} · clusters · {backbone}")
    if st.button("Start clustering", type="primary", icon=":material/bubble_chart:", disabled=ds is None,
                 key="an-cl-start"):
        cfg = ClusterConfig(modality=choice.modality, data=choice.splits[split], backbone=backbone,
                            k=None if k is None else int(k), seed=int(seed), max_items=int(max_items))
        _start(cfg, CLUSTER_JOB, name.strip() or f"{choice.name} · {split} · clusters · {backbone}", choice.ref)


def curve_form() -> None:
    helps = field_help(CurveConfig)
    st.caption("Fine-tune on 1, 2, 5, … labeled examples per class (several random draws each) and measure eval "
               "accuracy, pretrained vs the same network from scratch: how many labels does this data need?")
    choice = datasets.data_picker("an-cv-data", task=TASK)
    if choice is None:
        return
    target_path = choice.splits.get("target")
    if not target_path:
        st.info("This data set has no **target** split: the curve trains on labeled target examples. Pick another "
                "data set, or add a labeled target set on the Data page.")
        return
    target = _load(target_path, choice.modality)
    if target is None:
        return
    if not target.labeled or len(target.classes) < 2:
        st.warning("The target split needs labels of at least two classes: the curve trains on labeled examples.")
        return
    smallest = min(target.class_counts().values())
    eval_path = None
    c1, c2 = st.columns(2)
    if "eval" in choice.splits and c1.checkbox("Score on the eval split", value=True, key="an-cv-use-eval",
                                               help=helps["eval"]["help"]):
        eval_path = choice.splits["eval"]
    c1.caption(f"target: {len(target)} items, {len(target.classes)} classes (smallest: {smallest} items)"
               + ("" if eval_path else " · part of it is held out for eval"))
    with c2:
        backbone = _backbone(choice.modality, "an-cv-backbone")
    options = {o.name: o.description for o in strategy_options(TASK) if not o.transductive}
    c1, c2 = st.columns(2)
    strategy = c1.selectbox("Strategy", list(options), format_func=lambda n: f"{n}: {options[n]}", key="an-cv-strategy",
                            help=helps["strategy"]["help"])
    shots_text = c2.text_input("Labeled examples per class", value="1, 2, 5, 10, all", key="an-cv-shots",
                               help="Comma-separated numbers of labeled examples per class to try; all (or 0) = every "
                                    "labeled example.")
    c1, c2, c3 = st.columns(3)
    seeds = c1.number_input("Seeds per point", **number_limits(LIMITS["seeds"]), value=3, step=1, key="an-cv-seeds",
                            help=helps["seeds"]["help"])
    epochs = c2.number_input("Epochs per point", **number_limits(LIMITS["epochs"]), value=10, step=1, key="an-cv-epochs",
                             help=helps["epochs"]["help"])
    scratch = c3.checkbox("Also train from scratch", value=True, key="an-cv-scratch", help=helps["scratch"]["help"])
    shots = None
    try:
        shots = CurveConfig.parse_shots(shots_text)
    except TransferLabError as exc:
        st.error(str(exc))
    if shots is not None:
        n = len(set(shots)) * int(seeds)
        st.caption(f"{len(set(shots))} point(s) × {int(seeds)} seed(s) = {n} fine-tuning run(s)"
                   + (", each also training the scratch twin" if scratch else "")
                   + (f". Counts above {smallest} per class are measured as 'all' (the smallest class has {smallest})."
                      if any(s > smallest for s in shots) else "."))
    name = st.text_input("Run name (optional)", key="an-cv-name", max_chars=200,
                         placeholder=f"{choice.name} · curve · {strategy} · {backbone}")
    if st.button("Start curve", type="primary", icon=":material/show_chart:", disabled=shots is None, key="an-cv-start"):
        cfg = CurveConfig(modality=choice.modality, target=target_path, eval=eval_path, backbone=backbone,
                          strategy=strategy, epochs=int(epochs), shots=shots, seeds=int(seeds), scratch=scratch)
        _start(cfg, CURVE_JOB, name.strip() or f"{choice.name} · curve · {strategy} · {backbone}", choice.ref)


def sweep_form() -> None:
    helps = field_help(SweepConfig)
    st.caption("Fine-tune with every strategy — linear probe, LoRA, partial, full — and train every baseline (the same "
               "network from scratch, a classical model with no pretrained weights, k-NN), all on the same split with "
               "the same epochs, seed and validation rule; then one table and a recommendation: the cheapest strategy "
               "within noise of the best, or that no pretrained strategy beats the classical baseline on this data.")
    choice = datasets.data_picker("an-sw-data", task=TASK)
    if choice is None:
        return
    if "target" not in choice.splits:
        st.info("This data set has no **target** split: the sweep trains on labeled target examples. Pick another "
                "data set, or add a labeled target set on the Data page.")
        return
    c1, c2 = st.columns(2)
    use_eval = "eval" in choice.splits and c1.checkbox("Score on the eval split", value=True, key="an-sw-use-eval",
                                                       help=helps["eval"]["help"])
    use_source = "source" in choice.splits and c1.checkbox("Use the source split for 'before'", value=True,
                                                           key="an-sw-use-source", help=helps["source"]["help"])
    with c2:
        backbone = _backbone(choice.modality, "an-sw-backbone")
    c1, c2 = st.columns(2)
    strategies = c1.multiselect("Strategies", list(SWEEP_STRATEGIES), default=list(SWEEP_STRATEGIES),
                                key="an-sw-strategies", help=helps["strategies"]["help"])
    baselines = c2.multiselect("Baselines", list(BASELINES), default=list(BASELINES), key="an-sw-baselines",
                               help=helps["baselines"]["help"])
    c1, c2 = st.columns(2)
    epochs = c1.number_input("Epochs (every model)", **number_limits(LIMITS["epochs"]), value=10, step=1,
                             key="an-sw-epochs", help=helps["epochs"]["help"])
    seed = c2.number_input("Seed", **number_limits(LIMITS["seed"]), value=0, step=1, key="an-sw-seed",
                           help=helps["seed"]["help"])
    st.caption(f"{len(strategies)} fine-tuning run(s) on the same split; the baselines are trained once.")
    name = st.text_input("Run name (optional)", key="an-sw-name", max_chars=200,
                         placeholder=f"{choice.name} · which strategy? · {backbone}")
    if st.button("Start the sweep", type="primary", icon=":material/leaderboard:", disabled=not strategies,
                 key="an-sw-start"):
        try:
            cfg = SweepConfig(modality=choice.modality, target=choice.splits["target"],
                              eval=choice.splits["eval"] if use_eval else None,
                              source=choice.splits["source"] if use_source else None, backbone=backbone,
                              strategies=list(strategies), baselines=list(baselines), epochs=int(epochs),
                              seed=int(seed))
        except TransferLabError as exc:
            st.error(str(exc))
            return
        _start(cfg, SWEEP_JOB, name.strip() or f"{choice.name} · which strategy? · {backbone}", choice.ref)


def run_section(kind: str) -> None:
    """The selected (else newest) run of this kind: live progress while it runs, then its result."""
    runs = [r for r in visible_runs() if run_kind(r) == kind]
    if not runs:
        return
    st.divider()
    run = run_picker(f"{KIND_LABELS[kind].capitalize()} run", runs, key=f"an-{kind}-run")
    assert run is not None
    if not run.is_finished:
        st.subheader(f"{run.name}: in progress")
        st.caption("It runs in the background: you can reload or close this tab, the run goes on.")
        live_progress(run.id)
        return
    report = read_report(run) if run.status == "done" else None
    if report is None:
        finished_note(run)
        if run.status == "done":
            st.error("This run has no readable report.json in its folder.")
        return
    st.subheader(run.name)
    render_analysis(report, run.out, key=f"an-{kind}")
    c1, c2 = st.columns(2)
    c1.page_link("pages/share.py", label="Share a read-only link to this result", query_params={"run": run.id},
                 icon=":material/share:")
    c2.download_button("Download report.json", json.dumps(report, indent=2), file_name=f"transferlab-{run.id[:8]}.json",
                       mime="application/json", icon=":material/download:", on_click="ignore", key=f"an-{kind}-dl")


st.title("Analyze")
selected = get_run(selected_run_id())
opened = run_kind(selected) if selected is not None else None
if "an-tab" not in st.session_state:
    # Entering the page: open the tab of the run in the URL. Not via ``default=``: a default that changes between
    # reruns (the run pickers set ?run=) makes a new widget, and the user's tab click would be lost.
    asked = st.query_params.get("tab", "")        # a link from Fine-tune or Compare: ?tab=sweep
    st.session_state["an-tab"] = TABS.get(opened or asked, TABS["cluster"])
    if selected is not None and selected.dataset and "data" not in st.query_params:
        st.query_params["data"] = selected.dataset   # the form starts from the opened run's data set
tabs = st.tabs(list(TABS.values()), key="an-tab", on_change="rerun")
for tab, (kind, form) in zip(tabs, (("cluster", cluster_form), ("curve", curve_form), ("sweep", sweep_form))):
    with tab:
        if tab.open is not False:   # only the open tab runs (None: state tracking unavailable, run both)
            form()
            run_section(kind)
