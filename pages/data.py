"""Data: pick a demo or upload your own; see previews, class counts and problems per file."""

from ui.entry import via_app

via_app()

import streamlit as st

from tlcore.config import MODALITIES
from tlcore.errors import TransferLabError
from ui import datasets
from ui.audit import audit_section
from ui.auth import current_user
from ui.label_next import render_label_next
from ui.media import preview
from ui.tasks import spec_of, task_choices, task_title

st.title("Data")
st.caption("Bring a **target** set (small, labeled), optionally a **source** set (large, labeled, another domain), an "
           "**eval** set (labeled, held out; else part of the target is held out once) and an **unlabeled** target "
           "set (for domain adaptation). Classification: image folder as .zip (`<label>/<file>.png`), text as "
           "CSV/TSV/JSONL with `text` and `label` columns, audio folder as .zip (`<label>/<file>.wav`) or a .zip with "
           "a CSV of `path,label`. Named entities: JSONL with `tokens` and `tags` (BIO) or CoNLL text. Speech "
           "recognition: .zip of clips with a `metadata.csv` of `file_name,transcription`.")

mode = st.radio("Data source", ["Built-in demo", "Upload my data"], horizontal=True, key="data-mode",
                index=1 if (st.query_params.get("data") or "").startswith("upload:") else 0)
choice = None
if mode == "Built-in demo":
    demos = [d for d in datasets.demo_specs()]
    names = [d["name"] for d in demos]
    by_name = {d["name"]: d for d in demos}
    current = (st.query_params.get("data") or "").removeprefix("demo:")
    name = st.selectbox("Demo", names, index=names.index(current) if current in names else 0,
                        format_func=lambda n: f"{n} ({datasets.kind_label(by_name[n]['modality'], by_name[n]['task'])})")
    spec = next(d for d in demos if d["name"] == name)
    st.markdown(f"{spec['description']}  \n*Data:* {spec['license']}")
    if spec["unavailable"]:
        st.warning(f"This demo is not available here: {spec['unavailable']}")
    else:
        try:
            choice = datasets.resolve(f"demo:{name}")
        except TransferLabError as exc:
            st.error(str(exc))
else:
    c1, c2 = st.columns(2)
    task = c1.selectbox("Task", task_choices(), format_func=task_title, key="upload-task")
    spec = spec_of(task)
    modality = spec.fixed_modality or c2.selectbox("Modality", [m for m in MODALITIES if m in spec.modalities],
                                                   key="upload-modality")
    if spec.fixed_modality:
        c2.caption(f"Modality: {modality}")
    splits: dict[str, str] = {}
    refused = False
    cols = st.columns(4)
    for col, split, required in zip(cols, ("target", "source", "eval", "unlabeled"), (True, False, False, False)):
        with col:
            up = st.file_uploader(f"{split} set" + ("" if required else " (optional)"), type=datasets.upload_types(task),
                                  key=f"upload-{split}", help=f"{split}: {datasets.upload_help(task)}")
            if up is not None:
                try:
                    splits[split] = str(datasets.save_upload(up.name, up.getvalue(), also=splits.values()))
                except datasets.QuotaExceeded as exc:
                    refused = True
                    st.error(f"{split}: {exc}", icon=":material/block:")
    if refused:
        st.stop()
    if "target" in splits or ("source" in splits and "unlabeled" in splits):
        ref = datasets.save_upload_set(modality, splits, task=task)
        st.query_params["data"] = ref
        choice = datasets.resolve(ref)
    elif splits:
        st.info("Add the target set (it is the one the model is adapted to), or a labeled source set plus an "
                "unlabeled target set for domain adaptation.")
    else:
        prior = datasets.resolve(st.query_params.get("data"))
        if prior is not None and not prior.is_demo:
            st.caption(f"Current upload: **{prior.name}** ({prior.modality}). Upload files to replace it.")
            choice = prior
            with st.popover("Remove this upload set", icon=":material/delete:"):
                st.write("Remove it from your data sets? Runs made on it keep their results.")
                if st.button("Yes, remove", type="primary", key="remove-upload-set"):
                    datasets.delete_upload_set(prior.ref)
                    del st.query_params["data"]
                    st.rerun()
    if current_user() is not None:
        used, quota = datasets.usage_bytes(current_user()), datasets.user_quota_bytes()
        st.caption(f"Your uploads use {datasets.format_size(used)} of your {datasets.format_size(quota)} quota.")

if choice is not None:
    if choice.is_demo:
        st.query_params["data"] = choice.ref
    st.divider()
    st.subheader(f"Preview: {choice.name}")
    usable = True
    for split in ("target", "source", "eval", "unlabeled"):
        path = choice.splits.get(split)
        if not path:
            continue
        with st.container(border=True):
            try:
                ds = datasets.load_split(path, choice.modality, choice.task)
            except TransferLabError as exc:
                usable = usable and split != "target"
                st.error(f"{split}: {exc}")
                continue
            preview(ds, split, key=f"pv-{split}")
    if usable:
        c1, c2 = st.columns(2)
        if c1.button("Diagnose this data", icon=":material/troubleshoot:", width="stretch"):
            st.switch_page("pages/diagnose.py", query_params={"data": choice.ref})
        if c2.button("Fine-tune on this data", type="primary", icon=":material/model_training:", width="stretch"):
            st.switch_page("pages/finetune.py", query_params={"data": choice.ref})
        st.divider()
        render_label_next(choice)
        audit_section(choice)
