"""The Runs page's ONNX export panel: export a finished run's model in-process, show how closely the export matches
PyTorch, and offer the export folder as a zip. The work is :mod:`tlcore.inference.onnx_export`; this file reads
one button and renders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st

from tlcore.errors import TransferLabError
from tlcore.inference import onnx_export as ox


def _run_folder(run: Any) -> Path:
    return Path(run.out) if hasattr(run, "out") else Path(run)


def export_panel(run: Any) -> None:
    """For a finished run (a run store ``Run`` or a run folder): an "Export to ONNX" button, then the parity
    numbers and a download of the export; a run that cannot be exported shows why instead."""
    folder = _run_folder(run)
    key = f"onnx-{getattr(run, 'id', None) or folder.name}"
    st.markdown("**ONNX export**")
    if getattr(run, "status", "done") != "done" or not (folder / "model" / "config.json").is_file():
        st.caption("Available once the run has finished.")
        return
    dest = ox.default_export_dir(folder)
    record = ox.read_export(dest)
    if record is None:
        try:
            why = ox.refusal(folder)
        except TransferLabError as exc:
            why = str(exc)
        if why:
            st.info(f"This run cannot be exported to ONNX: {why}.", icon=":material/block:")
            return
        if dest.is_dir() and any(dest.iterdir()):
            st.warning(f"`{dest}` holds files but no finished export. TransferLab never overwrites saved files: "
                       "delete that folder to export again.")
            return
        slot = st.empty()
        if not slot.button("Export to ONNX", key=key, icon=":material/deployed_code:",
                           help="Writes the model after transfer as ONNX (with its preprocessing and labels) into the "
                                "run's export/onnx folder and checks it against PyTorch on the eval items. Takes seconds."):
            return
        slot.empty()
        with st.spinner("Exporting to ONNX and checking it against PyTorch…"):
            try:
                record = ox.export_onnx(folder).parity
            except TransferLabError as exc:
                st.error(str(exc))
                return
    _show(record, folder, dest, key)


def _show(record: dict, folder: Path, dest: Path, key: str) -> None:
    p = record.get("parity") or {}
    tokens = p.get("unit") == "tokens"
    c1, c2, c3 = st.columns(3)
    c1.metric("max |Δ logit| vs PyTorch", f"{p.get('max_abs_diff', float('nan')):.1e}",
              help=f"largest absolute difference between ONNX and PyTorch logits; the export is refused above "
                   f"{p.get('tolerance', float('nan')):.1e} ({p.get('rel_tolerance', 0):g} × the logit scale)")
    c2.metric("argmax agreement", f"{100 * p.get('argmax_agreement', 0):.1f}%",
              help="share of " + ("tokens" if tokens else "items") + " where ONNX and PyTorch pick the same "
                   + ("tag" if tokens else "class"))
    c3.metric("compared", f"{p.get('compared', 0)} {'tokens' if tokens else 'items'}",
              help=str(p.get("inputs", "the run's eval items")))
    st.caption(f"{record.get('exporter', 'torch.onnx.export')}, opset {record.get('opset')}; written to `{dest}`. "
               "preprocessing.json says what to do to raw inputs, labels.json gives the order of the logits.")
    st.download_button("Download ONNX export (.zip)", data=lambda: ox.export_zip(dest),
                       file_name=f"transferlab-{folder.name}-onnx.zip", mime="application/zip",
                       icon=":material/download:", key=f"{key}-zip", on_click="ignore")
    st.code(f"python -m tlcore predict --run {folder} --input PATH_OR_TEXT --onnx", language="bash")
