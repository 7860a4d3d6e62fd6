"""Fine-tune: task, data, backbone, strategy and settings (built from FinetuneConfig's fields); start a background
run; live progress."""

from ui.entry import via_app

via_app()

import streamlit as st

from tlcore.config import FinetuneConfig, field_help
from tlcore.errors import TransferLabError
from tlcore.tasks import DEFAULT_TASK
from ui import datasets
from ui.forms import config_form, finetune_settings
from ui.progress import finished_note, live_progress
from ui.report import headline_numbers
from ui.runs import get_run, select_run, selected_run_id, start_run
from ui.tasks import (
    OTHER_BACKBONE,
    backbone_hint,
    backbone_options,
    spec_of,
    strategy_options,
    task_choices,
    task_title,
)

SETTINGS = finetune_settings()

st.title("Fine-tune")
helps = field_help(FinetuneConfig)
current = datasets.resolve(st.query_params.get("data"))
task_names = task_choices()
task = st.radio("Task", task_names, format_func=task_title, horizontal=True, key="ft-task",
                index=task_names.index(current.task) if current is not None and current.task in task_names else 0,
                help=helps["task"]["help"])
spec = spec_of(task)
suffix = "" if task == DEFAULT_TASK else f"-{task}"   # the default task's widgets keep their keys from before tasks
choice = datasets.data_picker("ft-data", task=task)
if choice is not None:
    modality = choice.modality
    st.caption(f"{datasets.kind_label(modality, choice.task)} · splits: {', '.join(choice.splits)}")
    backbones = backbone_options(task, modality)
    descriptions = dict(backbones)
    options = strategy_options(task)
    if not options:
        st.error(f"No strategies are available for {spec.description} in this version.")
        st.stop()
    by_name = {o.name: o for o in options}
    c1, c2 = st.columns(2)
    backbone = c1.selectbox("backbone", list(descriptions) + [OTHER_BACKBONE],
                            format_func=lambda n: f"{n}: {descriptions[n]}" if n in descriptions else
                            "other: a Hugging Face model id or a local folder",
                            help=helps["backbone"]["help"], key=f"ft-backbone{suffix}")
    if backbone == OTHER_BACKBONE:
        backbone = c1.text_input("model id or local folder", key=f"ft-backbone-other{suffix}", help=backbone_hint(task),
                                 placeholder="owner/model or /path/to/folder").strip()
    # the task's default for this backbone (speech recognition: decoder for Whisper, full for a CTC model); the box
    # starts over at it when another backbone changes it
    default = spec.strategy_for(backbone or None)
    if default in by_name and st.session_state.get(f"ft-strategy-default{suffix}") != default:
        st.session_state[f"ft-strategy-default{suffix}"] = default
        st.session_state[f"ft-strategy{suffix}"] = default
    strategy = c2.selectbox(
        "strategy", list(by_name),
        format_func=lambda n: ("[adaptation] " if by_name[n].transductive else "") + f"{n}: {by_name[n].description}",
        help="Inductive strategies learn from the labeled target set. Strategies marked [adaptation] are "
             "transductive: they adapt a model trained on the labeled source set to unlabeled target data and "
             "never see target labels (the eval labels are used only to score source-only vs adapted).",
        key=f"ft-strategy{suffix}")
    transductive = by_name[strategy].transductive
    splits: dict = {"target": None, "source": None, "eval": None, "unlabeled": None}
    ready = True
    if transductive:
        labeled = [s for s in ("source", "target") if s in choice.splits]
        unlabeled = [s for s in ("unlabeled", "target", "eval") if s in choice.splits]
        scored = [s for s in ("eval", "target") if s in choice.splits]
        if "source" not in choice.splits:
            st.info("Adaptation needs a labeled **source** set in this data set: add one on the Data page, or pick an "
                    "inductive strategy.")
            ready = False
        else:
            cols = st.columns(3)
            splits["source"] = choice.splits[cols[0].selectbox(
                "labeled source", labeled, key="ft-tr-source", help=helps["source"]["help"])]
            splits["unlabeled"] = choice.splits[cols[1].selectbox(
                "unlabeled target", unlabeled, key="ft-tr-unlabeled",
                help="Target-domain items the adaptation sees without labels (any labels in this split are ignored).")]
            splits["eval"] = choice.splits[cols[2].selectbox(
                "eval (labels only for scoring)", scored, key="ft-tr-eval", help=helps["eval"]["help"])]
            if splits["eval"] == splits["unlabeled"]:
                st.caption("The unlabeled and eval splits are the same items: adaptation sees them without labels "
                           "(transductive setting); pick different splits to measure on unseen items.")
    else:
        splits["target"] = choice.splits.get("target")
        if not splits["target"]:
            st.info("This data set has no labeled **target** split: pick an [adaptation] strategy, or add a target "
                    "set on the Data page.")
            ready = False
        use = {}
        cols = st.columns(3)
        for col, split in zip(cols, ("source", "eval")):
            if split in choice.splits:
                use[split] = col.checkbox(f"use the {split} set", value=True, key=f"ft-use-{split}",
                                          help=helps[split]["help"])
                splits[split] = choice.splits[split] if use[split] else None
    with st.expander("Settings", expanded=False):
        values = config_form(FinetuneConfig, SETTINGS, key="ft")
    if not spec.baselines:
        values["baselines"] = []  # the task computes none (a scratch speech recognizer would be a strawman)
    if spec.seeds and "target" in choice.splits:     # the sweep compares classification runs item by item
        st.page_link("pages/analyze.py", label="Which strategy? Run every strategy and baseline on this data and get "
                     "a recommendation", query_params={"tab": "sweep", "data": choice.ref}, icon=":material/leaderboard:")
    name = st.text_input("Run name (optional)", key="ft-name", placeholder=f"{choice.name} · {strategy}")
    if st.button("Start fine-tuning" if not transductive else "Start adaptation", type="primary",
                 icon=":material/play_arrow:", disabled=not ready or not backbone):
        try:
            cfg = FinetuneConfig(modality=modality, task=task, backbone=backbone, strategy=strategy, **splits, **values)
            run = start_run(cfg, name=name or f"{choice.name} · {strategy} · {backbone}", dataset=choice.ref)
        except TransferLabError as exc:
            st.error(str(exc))
        else:
            select_run(run.id)
            st.rerun()

run = get_run(selected_run_id())
if run is not None:
    st.divider()
    st.subheader(f"Run: {run.name}")
    if not run.is_finished:
        live_progress(run.id)
    elif run.status == "done":
        label, before, after, _ = headline_numbers(run.config.get("task"), run.metrics)
        if before is not None and after is not None:
            st.success(f"Finished: {label} before {before:.3f} → after {after:.3f}.")
        else:
            st.success("Finished.")
        st.page_link("pages/compare.py", label="Open the before/after comparison", query_params={"run": run.id},
                     icon=":material/compare:")
    else:
        finished_note(run)
