"""Fine-tune: backbone, strategy and settings (built from FinetuneConfig's fields); start a background run; live progress."""

from ui.entry import via_app

via_app()

import streamlit as st

from tlcore.config import FinetuneConfig, field_help
from tlcore.errors import TransferLabError
from tlcore.models.registry import DEFAULT_BACKBONE, list_backbones
from tlcore.strategies import STRATEGIES
from ui import datasets
from ui.forms import config_form, finetune_settings
from ui.progress import finished_note, live_progress
from ui.runs import get_run, select_run, selected_run_id, start_run

SETTINGS = finetune_settings()

st.title("Fine-tune")
helps = field_help(FinetuneConfig)
choice = datasets.data_picker("ft-data")
if choice is not None:
    modality = choice.modality
    st.caption(f"{modality} · splits: {', '.join(choice.splits)}")
    specs = list_backbones(modality, include_tiny=True)
    names = [s.name for s in specs]
    default = DEFAULT_BACKBONE[modality]
    c1, c2 = st.columns(2)
    backbone = c1.selectbox("backbone", names, index=names.index(default) if default in names else 0,
                            format_func=lambda n: f"{n}: {next(s for s in specs if s.name == n).description}",
                            help=helps["backbone"]["help"], key="ft-backbone")
    strategies = [n for n in STRATEGIES.names() if "unlabeled" in choice.splits or not STRATEGIES.get(n).needs_unlabeled]
    strategy = c2.selectbox("strategy", strategies, format_func=lambda n: f"{n}: {STRATEGIES.get(n).description}",
                            help=helps["strategy"]["help"], key="ft-strategy")
    use = {}
    cols = st.columns(3)
    for col, split in zip(cols, ("source", "eval", "unlabeled")):
        if split in choice.splits:
            wanted = split != "unlabeled" or STRATEGIES.get(strategy).needs_unlabeled
            use[split] = col.checkbox(f"use the {split} set", value=wanted, key=f"ft-use-{split}",
                                      help=helps[split]["help"])
    with st.expander("Settings", expanded=False):
        values = config_form(FinetuneConfig, SETTINGS, key="ft")
    name = st.text_input("Run name (optional)", key="ft-name", placeholder=f"{choice.name} · {strategy}")
    if st.button("Start fine-tuning", type="primary", icon=":material/play_arrow:"):
        try:
            cfg = FinetuneConfig(modality=modality, target=choice.splits.get("target"), backbone=backbone,
                                 strategy=strategy,
                                 **{s: choice.splits.get(s) if use.get(s) else None for s in ("source", "eval", "unlabeled")},
                                 **values)
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
        m = run.metrics
        st.success(f"Finished: accuracy before {m.get('before_accuracy', 0):.3f} → after {m.get('after_accuracy', 0):.3f}.")
        st.page_link("pages/compare.py", label="Open the before/after comparison", query_params={"run": run.id},
                     icon=":material/compare:")
    else:
        finished_note(run)
