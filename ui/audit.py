"""The Data page's "Audit labels": likely mislabeled items, duplicates and outliers of the chosen data set's labeled
target (and source) set (:func:`tlcore.api.audit`), a table with each item shown, a CSV download, and "Re-run without
these": two linear-probe runs queued on the same eval split, one as is and one with the flagged training items left
out (``FinetuneConfig.exclude``)."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Optional

import streamlit as st

import tlcore
from tlcore.config import FinetuneConfig
from tlcore.data.exclude import issues_csv
from tlcore.errors import TransferLabError
from tlcore.experiments.configs import AuditConfig
from tlcore.models.registry import DEFAULT_BACKBONE, list_backbones
from tlcore.paths import owner_scope
from ui import datasets
from ui.auth import current_user
from ui.runs import select_run, start_run
from ui.tasks import spec_of

KIND_LABELS = {"label": "likely mislabeled", "conflict": "conflicting labels", "train_eval_duplicate": "train/eval duplicate",
               "exact_duplicate": "exact duplicate", "near_duplicate": "near-duplicate", "outlier": "outlier"}
MAX_ROWS = 500          # rows shown in the table (the CSV has them all)
THUMB = 64


@st.cache_data(show_spinner="Auditing the labels (pretrained features, cross-validated probes, cleanlab)…",
               max_entries=16)
def audit(settings: dict, owner: Optional[str] = None) -> dict:
    """The audit of ``settings`` (an ``AuditConfig.to_dict()``); ``owner`` keys the cache (see pages/diagnose.py)."""
    with owner_scope(owner):
        return tlcore.audit(config=AuditConfig.from_dict(settings)).to_dict()


@st.cache_data(max_entries=2048, show_spinner=False)
def _thumbnail(path: str) -> Optional[str]:
    """A small PNG of an image as a data URI (the table's image column), or None when it cannot be read."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            im.thumbnail((THUMB, THUMB))
            buf = io.BytesIO()
            im.save(buf, format="PNG")
    except (OSError, ValueError):
        return None
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _table(rows: list[dict], modality: str) -> None:
    shown = rows[:MAX_ROWS]
    data: dict = {}
    config: dict = {}
    if modality == "image":
        data["item"] = [_thumbnail(r["item"]) for r in shown]
        config["item"] = st.column_config.ImageColumn("item", width="small")
    elif modality == "text":
        data["item"] = [r["item"] for r in shown]
    data.update({"set": [r["set"] for r in shown], "name": [r["name"] for r in shown],
                 "issue": [KIND_LABELS.get(r["issue"], r["issue"]) for r in shown],
                 "label": [r["label"] for r in shown], "suggested": [r["suggested"] or "" for r in shown],
                 "score": [r["score"] for r in shown], "reason": [r["reason"] for r in shown]})
    config["score"] = st.column_config.NumberColumn("score", help="In [0, 1]: lower = more likely a problem "
                                                    "(cleanlab's convention)", format="%.3f")
    st.dataframe(data, column_config=config, hide_index=True, width="stretch", key="audit-table")
    if len(rows) > MAX_ROWS:
        st.caption(f"The first {MAX_ROWS} of {len(rows)} rows; the CSV has them all.")
    if modality == "audio":
        with st.expander("Listen to the flagged clips"):
            for r in shown[:12]:
                if Path(r["item"]).exists():
                    st.caption(f"{r['name']} · {KIND_LABELS.get(r['issue'], r['issue'])} · {r['label']}")
                    st.audio(r["item"])


def _rerun_without(choice, report: dict, kinds: list[str], backbone: str) -> None:
    """Queue the comparison: a linear-probe run as is and one without the target's flagged training items."""
    rows = [r for r in report["issues"] if r["set"] == "target" and r["issue"] in kinds]
    path = datasets.save_upload("audit-exclude.csv", issues_csv(rows).encode("utf-8"))
    names = len({r["name"] for r in rows})
    common = dict(modality=choice.modality, task=report["task"], backbone=backbone,
                  strategy="linear_probe", target=choice.splits["target"], eval=choice.splits.get("eval"))
    start_run(FinetuneConfig(**common), name=f"{choice.name} · linear_probe · as is", dataset=choice.ref)
    run = start_run(FinetuneConfig(**common, exclude=str(path)),
                    name=f"{choice.name} · linear_probe · without {names} flagged", dataset=choice.ref)
    select_run(run.id)
    st.switch_page("pages/finetune.py", query_params={"data": choice.ref, "run": run.id})


def audit_section(choice) -> None:
    """The "Audit labels" section for a data set with a labeled target split (classification)."""
    if "target" not in choice.splits:
        return
    st.divider()
    st.subheader("Audit labels")
    spec = spec_of(choice.task)
    try:
        spec.part("audit")
    except TransferLabError:
        st.caption(f"The label audit covers classification; {spec.description} data has none in this version.")
        return
    st.caption("Finds likely mislabeled items (with the label a cross-validated probe on the pretrained features "
               "suggests), exact and near-duplicates (also under conflicting labels, and training items that copy "
               "an eval item) and outliers, with [cleanlab](https://github.com/cleanlab/cleanlab). Nothing is "
               "changed in your data.")
    names = [s.name for s in list_backbones(choice.modality, include_tiny=True)]
    default = DEFAULT_BACKBONE[choice.modality]
    backbone = st.selectbox("backbone (pretrained features)", names, index=names.index(default) if default in names else 0,
                            key="audit-backbone")
    settings = AuditConfig(modality=choice.modality, target=choice.splits["target"], eval=choice.splits.get("eval"),
                           source=choice.splits.get("source"), backbone=backbone, task=spec.name).to_dict()
    if st.button("Audit labels", icon=":material/fact_check:", key="audit-run"):
        st.session_state["audit-settings"] = settings
    if st.session_state.get("audit-settings") != settings:
        return
    try:
        report = audit(settings, current_user())
    except TransferLabError as exc:
        st.error(str(exc))
        return
    data = report["data"]
    for role, counts in report["counts"].items():
        found = ", ".join(f"{n} {KIND_LABELS[k]}" for k, n in counts.items() if n) or "no issues found"
        st.markdown(f"**{role}**: {report['flagged_items'][role]} of {data[role]} items flagged ({found})")
    for role, why in report.get("label_skipped", {}).items():
        st.info(f"{role}: labels not checked: {why}")
    for role, said in report.get("notes", {}).items():
        st.caption(f"{role}, cleanlab says: " + " ".join(said))
    rows = report["issues"]
    if not rows:
        st.success("No label issues, duplicates or outliers found.")
        return
    _table(rows, choice.modality)
    st.download_button("Download the issues (CSV)", issues_csv(rows), file_name=f"audit-{choice.name}.csv",
                       mime="text/csv", icon=":material/download:", key="audit-csv")
    target_kinds = [k for k in KIND_LABELS if any(r["set"] == "target" and r["issue"] == k for r in rows)]
    if not target_kinds:
        return
    if not getattr(spec.part("pipeline"), "EXCLUDES_ITEMS", False):
        st.caption(f"Runs of {spec.description} cannot leave listed items out in this version: download the CSV and "
                   "fix the labels in your data instead.")
        return
    kinds = st.multiselect("Leave out the target's training items flagged as", target_kinds, default=target_kinds,
                           format_func=KIND_LABELS.get, key="audit-kinds")
    n = len({r["name"] for r in rows if r["set"] == "target" and r["issue"] in kinds})
    st.caption(f"Queues two linear-probe runs with {backbone}: one as is, one without these {n} training items. The "
               "eval split is never changed (flagged items that are held out for evaluation stay there), and the run's "
               "report records what was removed and why.")
    if st.button("Re-run without these", type="primary", icon=":material/replay:", key="audit-rerun",
                 disabled=not kinds):
        try:
            _rerun_without(choice, report, kinds, backbone)
        except TransferLabError as exc:
            st.error(str(exc))
