"""The Diagnose page's task-specific part: a diagnosis report keeps its task's own measures under the task's name
(``report[spec.name]``); each kind of measure found there (entity spans, transcripts) has its section here."""

from __future__ import annotations

from typing import Callable

import streamlit as st

from tlcore.tasks import task_of


def _entities_section(part: dict, result: dict) -> None:
    """Tagged text: the entity-type shift and the target entities never seen in the source."""
    st.subheader("Entities: source vs target")
    if part.get("note"):
        st.info(part["note"])
    shift, unseen = part.get("entity_shift") or {}, part.get("unseen_entities") or {}
    if shift:
        st.caption(f"Entity-type shift: total variation **{shift.get('total_variation', 0):.2f}** between the "
                   f"proportions of entity spans per type (chi-square p = {shift.get('chi2_p_value', 1):.3g}).")
        counts, props = shift.get("counts") or {}, shift.get("proportions") or {}
        st.dataframe([{"entity type": t, "spans (source)": c.get("a"), "spans (target)": c.get("b"),
                       "share (source)": round(props.get(t, {}).get("a", 0), 3),
                       "share (target)": round(props.get(t, {}).get("b", 0), 3)} for t, c in counts.items()],
                     hide_index=True, width="stretch", key="dx-entity-shift")
    if unseen:
        c1, c2 = st.columns(2)
        c1.metric("target entity mentions unseen in the source", f"{100 * unseen.get('mention_rate', 0):.0f}%",
                  help=(result.get("definitions") or {}).get("unseen_entities"))
        c2.metric("distinct target entities unseen", f"{100 * unseen.get('surface_rate', 0):.0f}%")
        st.dataframe([{"entity type": t, "target mentions": v.get("mentions"), "unseen in source": v.get("unseen"),
                       "unseen share": round(v.get("rate", 0), 3)} for t, v in (unseen.get("per_type") or {}).items()],
                     hide_index=True, width="stretch", key="dx-unseen")
        if unseen.get("examples"):
            st.caption("Most frequent unseen target entities: "
                       + ", ".join(f"{s} ({t})" for s, t, _ in unseen["examples"]))


def _transcripts_section(part: dict, result: dict) -> None:
    """Transcribed clips: the target words the source transcripts never have, and the speaking rate."""
    if not part:
        return
    st.subheader("Transcripts: source vs target")
    voc = part.get("vocabulary") or {}
    length = part.get("utterance_length") or {}
    cols = st.columns(4)
    cols[0].metric("target word OOV rate", f"{100 * voc.get('oov_rate', 0):.0f}%",
                   help=(result.get("definitions") or {}).get("oov_words"))
    cols[1].metric("distinct target words unseen", f"{100 * voc.get('oov_type_rate', 0):.0f}%")
    for col, (name, label) in zip(cols[2:], (("words_per_clip", "words per clip"), ("words_per_second", "words per second"))):
        if name in length:
            col.metric(f"{label} (source → target)", f"{length[name]['source']:.1f} → {length[name]['target']:.1f}")
    if voc.get("unseen_words"):
        st.caption("Most frequent target words never in the source transcripts: "
                   + ", ".join(f"{w} ({c})" for w, c in voc["unseen_words"]))


# The kinds of task measures, by the keys that hold them, and their sections.
SECTIONS: tuple[tuple[tuple[str, ...], Callable[[dict, dict], None]], ...] = (
    (("entity_shift", "unseen_entities"), _entities_section),
    (("vocabulary", "utterance_length"), _transcripts_section),
)


def task_sections(result: dict) -> None:
    """The sections of the task's own measures in a diagnosis report (none for a task without any)."""
    part = result.get(task_of(result).name)
    if not isinstance(part, dict):
        return
    for keys, section in SECTIONS:
        if any(k in part for k in keys):
            section(part, result)
