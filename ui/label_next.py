"""The Data page's "What to label next" section: rank an unlabeled pool, download the list, show the projection, and
bring the labels a person added back as a new version of the set (:mod:`tlcore.experiments.label_next`)."""

from __future__ import annotations

from typing import Optional

import streamlit as st

import tlcore
from tlcore import plots
from tlcore.config import FinetuneConfig
from tlcore.errors import ConfigError, TransferLabError
from tlcore.experiments.configs import LabelNextConfig
from tlcore.experiments.label_next import (
    LABEL_NEXT_STRATEGIES,
    MAX_BUDGET,
    MAX_POOL,
    new_version_files,
    ranked_csv,
    task_part,
)
from tlcore.paths import owner_scope
from ui import datasets
from ui.auth import current_user
from ui.media import item_grid

STRATEGY_TITLES = {"typiclust": "TypiClust (typical items of uncovered clusters; best for a few labels per class)",
                   "margin_kcenter": "margin × k-center (uncertain and spread out)",
                   "margin": "margin (most uncertain)", "kcenter": "k-center (most spread out)",
                   "random": "random (baseline)"}
CSV_NAME = "label-next.csv"


@st.cache_data(show_spinner="Ranking the pool on pretrained features…", max_entries=16)
def rank_pool(settings: dict, owner: Optional[str] = None) -> dict:
    """The label-next report of ``settings`` (a ``LabelNextConfig.to_dict()``); ``owner`` keys the cache and scopes the
    feature cache, as on the Diagnose page."""
    with owner_scope(owner):
        return tlcore.label_next(config=LabelNextConfig.from_dict(settings)).to_dict()


def _show_ranked(modality: str, ranked: list) -> None:
    def guess(r: dict) -> str:
        return f"{r['suggested']} ({r['suggested_p']:.2f})" if "suggested" in r else ""

    if modality == "text":
        st.dataframe([{"rank": r["rank"], "text": r["item"], "probe's guess": guess(r),
                       **({"uncertainty": r["uncertainty"]} if "uncertainty" in r else {})} for r in ranked],
                     hide_index=True, width="stretch")
        return
    shown = ranked[:48]
    item_grid(modality, [r["item"] for r in shown],
              [f"#{r['rank']} · {r['name']}" + (f" · guess {guess(r)}" if guess(r) else "") for r in shown])
    if len(ranked) > len(shown):
        st.caption(f"The first {len(shown)} of {len(ranked)} shown; the CSV lists all.")


def _new_version(choice: datasets.DataChoice, pool_path: str, from_unlabeled: bool, text: str) -> str:
    """Save the labels of the uploaded list as a new upload set (in the set's own format: label folders, or a
    multi-label table); returns its reference (the old set is unchanged). Without an eval split the very items the
    earlier runs were scored on become the new version's eval split."""
    files, n_picked = new_version_files(choice.modality, choice.splits["target"], pool_path, text,
                                        eval=choice.splits.get("eval"), eval_fraction=FinetuneConfig().eval_fraction,
                                        task=choice.task)
    saved: list = []
    paths = {}
    for split, (name, data) in files.items():
        paths[split] = str(datasets.save_upload(name, data, also=saved))
        saved.append(paths[split])
    splits = {k: v for k, v in choice.splits.items() if not (from_unlabeled and k == "unlabeled")}
    splits.update(paths)
    return datasets.save_upload_set(choice.modality, splits, name=f"{choice.name} + {n_picked} labels",
                                    task=choice.task)


def _open(ref: str) -> None:
    st.query_params["data"] = ref
    st.session_state["data-mode"] = "Upload my data"


def render_label_next(choice: datasets.DataChoice) -> None:
    """The section for one data set (classification and multi-label sets; others get a line saying why not)."""
    st.subheader("What to label next")
    try:
        part = task_part(choice.task)
    except ConfigError as exc:
        st.caption(f"Ranking items to label is not available here: {exc}.")
        return
    st.caption("Ranks unlabeled items by how much labeling them should help, on the backbone's pretrained features "
               "(TypiClust by default: Hacohen et al., ICML 2022, made for budgets of a few labels per class). "
               f"Download the list, fill in the `label` column with {part.LIST_HINT}, and upload it below: the "
               "labels come back as a new version of this set.")
    sources = (["the set's unlabeled split"] if choice.splits.get("unlabeled") else []) + ["upload a pool"]
    source = st.radio("Pool", sources, horizontal=True, key="ln-source")
    if source == "upload a pool":
        up = st.file_uploader("Unlabeled pool", type=datasets.upload_types(choice.task), key="ln-pool",
                              help=f"at most {MAX_POOL:,} items; {datasets.upload_help(choice.task)}")
        if up is None:
            return
        pool_path = str(datasets.save_upload(up.name, up.getvalue()))
    else:
        pool_path = choice.splits["unlabeled"]
    c1, c2 = st.columns([1, 2])
    budget = c1.number_input("Labels to add (N)", 1, MAX_BUDGET, 20, key="ln-budget")
    strategy = c2.selectbox("Strategy", LABEL_NEXT_STRATEGIES, format_func=STRATEGY_TITLES.get, key="ln-strategy")
    if strategy in ("margin", "margin_kcenter") and not choice.splits.get("target"):
        st.info("This strategy needs the set's labeled target; pick TypiClust or k-center.")
        return
    settings = LabelNextConfig(modality=choice.modality, pool=pool_path, target=choice.splits.get("target"),
                               eval=choice.splits.get("eval"), budget=int(budget), strategy=strategy,
                               task=choice.task).to_dict()
    if st.session_state.get("ln-key") != settings:
        if not st.button("Rank the pool", icon=":material/format_list_numbered:", key="ln-run"):
            return
        st.session_state["ln-key"] = settings
    try:
        report = rank_pool(settings, owner=current_user())
    except TransferLabError as exc:
        st.error(f"Cannot rank this pool: {exc}")
        return
    for w in report["warnings"]:
        st.warning(w)
    st.markdown(f"**{len(report['ranked'])} items to label next** of {report['pool']['n']} "
                f"({report['strategy']}; {report['backbone']}).")
    st.caption(report["method"])
    _show_ranked(choice.modality, report["ranked"])
    st.download_button("Download the list (CSV)", ranked_csv(report), file_name=CSV_NAME, mime="text/csv",
                       icon=":material/download:", key="ln-download")
    proj = report.get("projection")
    if proj:
        st.markdown(f"**Expected {proj.get('metric', 'accuracy')} with {proj['more_labels'][-1]} more labels: "
                    f"{proj['mean'][-1]:.3f}** "
                    f"(projection; 95% band {proj['low'][-1]:.3f}–{proj['high'][-1]:.3f}), from {proj['mean'][0]:.3f} "
                    f"projected at the {proj['n_now']} labels there are now.")
        st.plotly_chart(plots.label_projection(proj), key="ln-projection", width="stretch")
        st.caption(f"**Projection, not a measurement**: {proj['model']} fitted to {proj['source']}; shaded: "
                   f"{proj['band']}. It assumes labels drawn like the curve's (at random); the ranked items may do "
                   "better or worse." + (" Past twice the measured range the curve is extrapolated."
                                         if any(proj["extrapolated"]) else ""))
    else:
        st.info(f"No projection: {report['projection_missing']}")
    if not choice.splits.get("target"):
        return
    st.markdown("**Bring the labels back**")
    filled = st.file_uploader("The list with its `label` column filled in (CSV)", type=["csv"], key="ln-labels")
    if filled is None:
        return
    try:
        ref = _new_version(choice, pool_path, source != "upload a pool", filled.getvalue().decode("utf-8-sig"))
    except (TransferLabError, UnicodeDecodeError, PermissionError) as exc:
        st.error(f"Cannot use this list: {exc}")
        return
    st.success("Saved as a new version of the set; the earlier version is unchanged.")
    st.button("Open the new version", type="primary", key="ln-open", on_click=_open, args=(ref,))
