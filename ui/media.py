"""Showing data items: image grids, text tables, audio players, and a data set preview."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import streamlit as st

from tlcore import plots
from tlcore.data.dataset import Dataset


def show_item(modality: str, item: str, caption: str = "") -> None:
    """One item: an image, a text quote or an audio player (missing files are named, not crashed on)."""
    if modality == "text":
        st.markdown(f"> {item}")
        if caption:
            st.caption(caption)
        return
    if not Path(item).exists():
        st.caption(f"{caption} (file no longer available)")
        return
    if modality == "image":
        st.image(item, caption=caption or None, width=120)
    else:
        st.audio(item)
        if caption:
            st.caption(caption)


def item_grid(modality: str, items: Sequence[str], captions: Sequence[str], columns: int = 6) -> None:
    if modality == "text":
        st.dataframe({"text": list(items), "label": list(captions)}, hide_index=True, width="stretch")
        return
    cols = st.columns(columns if modality == "image" else 3)
    for i, (item, cap) in enumerate(zip(items, captions)):
        with cols[i % len(cols)]:
            show_item(modality, item, cap)


def sample_indices(ds: Dataset, n: int) -> list[int]:
    """Up to ``n`` items spread over the classes (round robin), so every class shows up."""
    if ds.labels is None:
        return list(range(min(n, len(ds))))
    by_class: dict[str, list[int]] = {}
    for i, y in enumerate(ds.labels):
        by_class.setdefault(y, []).append(i)
    out: list[int] = []
    while len(out) < min(n, len(ds)):
        for idx in by_class.values():
            if idx and len(out) < n:
                out.append(idx.pop(0))
    return out


def dataset_preview(ds: Dataset, split: str, key: str) -> None:
    """Counts, class bar chart, problems per file and a sample of items."""
    counts = ds.class_counts()
    head = f"**{split}**: {len(ds)} items"
    head += f", {len(counts)} classes" if ds.labeled else " (unlabeled)"
    if ds.problems:
        head += f", {len(ds.problems)} unusable file(s)/row(s) skipped"
    st.markdown(head)
    if ds.labeled:
        st.plotly_chart(plots.class_counts_bar(counts), key=f"{key}-counts", width="stretch")
    if ds.problems:
        with st.expander(f"{len(ds.problems)} problem(s) found", expanded=True):
            st.dataframe({"file / row": [p.where for p in ds.problems], "problem": [p.reason for p in ds.problems]},
                         hide_index=True, width="stretch")
    n = 20 if ds.modality == "text" else 12 if ds.modality == "image" else 6
    idx = sample_indices(ds, n)
    captions = [(ds.labels[i] if ds.labels else "") + (f" · {ds.names[i]}" if ds.names and ds.modality != "text" else "")
                for i in idx]
    if ds.modality == "text":
        captions = [ds.labels[i] if ds.labels else "" for i in idx]
    item_grid(ds.modality, [ds.items[i] for i in idx], captions)


def ner_preview(data, split: str, key: str) -> None:
    """NER split: sentence and entity counts per type, and a few sentences with their spans marked."""
    from ui.spans import tagged_html

    head = f"**{split}**: {len(data)} sentences"
    if data.tags is not None:
        counts = data.entity_counts()
        head += f", {sum(counts.values())} entities of {len(counts)} types"
        st.markdown(head)
        st.plotly_chart(plots.class_counts_bar(counts, "entities per type"), key=f"{key}-counts", width="stretch")
        st.markdown(types_legend_html(sorted(counts)), unsafe_allow_html=True)
    else:
        st.markdown(head + " (untagged)")
    for i in range(min(6, len(data))):
        tags = data.tags[i] if data.tags is not None else ["O"] * len(data.sentences[i])
        st.markdown(f'<div style="line-height:1.9">{tagged_html(data.sentences[i], tags)}</div>', unsafe_allow_html=True)


def types_legend_html(types: Sequence[str]) -> str:
    """The entity types in their span colors (a data legend: no predicted-vs-gold outlines here)."""
    from html import escape

    from ui.spans import type_color

    marks = " ".join(f'<mark style="background:{type_color(t)};border-radius:4px;padding:1px 6px">{escape(t)}</mark>'
                     for t in types)
    return f'<div style="font-size:0.85em;line-height:2">Entity types: {marks}</div>'


def asr_preview(data, split: str, key: str) -> None:
    """ASR split: clip count, groups (speaker/accent), problems, and a few clips with their transcripts."""
    head = f"**{split}**: {len(data)} transcribed clips"
    if data.groups:
        head += " · " + ", ".join(f"{len(set(v))} {k}(s)" for k, v in data.groups.items())
    if data.problems:
        head += f", {len(data.problems)} unusable row(s) skipped"
    st.markdown(head)
    if data.problems:
        with st.expander(f"{len(data.problems)} problem(s) found", expanded=True):
            st.dataframe({"file / row": [p.where for p in data.problems], "problem": [p.reason for p in data.problems]},
                         hide_index=True, width="stretch")
    cols = st.columns(3)
    for i in range(min(6, len(data))):
        with cols[i % 3]:
            show_item("audio", data.paths[i], f"“{data.texts[i]}”")


def preview(data, split: str, key: str) -> None:
    """The preview of one loaded split, by what the data holds: tagged sentences (``sentences``, ``tags``),
    transcribed clips (``paths``, ``texts``) or a classification :class:`Dataset` (items and labels)."""
    if isinstance(data, Dataset):
        dataset_preview(data, split, key)
    elif hasattr(data, "sentences") and hasattr(data, "tags"):
        ner_preview(data, split, key)
    elif hasattr(data, "paths") and hasattr(data, "texts"):
        asr_preview(data, split, key)
    else:
        st.markdown(f"**{split}**: {len(data)} items")
