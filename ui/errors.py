"""Compare's (and a share link's) "Errors" section: the task's error analysis of one report, drawn.

The numbers and item lists come from the engine (the task's ``errors`` part, :meth:`TaskSpec.part`); this module
only picks what to show: the eval items of one confusion cell before and after side by side, the items with the
highest loss after transfer and those whose loss rose most, each class's errors (classification, multi-label);
entity errors by kind with their sentences (NER); the worst utterances and the most frequent word edits (ASR).
"""

from __future__ import annotations

from html import escape
from typing import Callable, Optional, Sequence

import streamlit as st

from tlcore.errors import TransferLabError
from tlcore.evaluation.errors import ClassificationErrors
from tlcore.tasks import task_of
from tlcore.tasks.asr.errors import TranscriptErrors
from tlcore.tasks.ner.errors import KIND_TEXT, KINDS, EntityError, NerErrors
from ui.media import show_item
from ui.report import _audio_path, phase_names
from ui.spans import tagged_html

SHOWN = 12          # items per list: each is an image, a player or a text
MAX_CELLS = 200     # cells offered in the picker (thousands of classes make thousands of cells)


def error_section(report: dict, key: str) -> None:
    """The "Errors" section of ``report`` (the task's view), or one line saying why there is none."""
    st.subheader("Errors, item by item")
    try:
        analysis = task_of(report).part("errors").error_analysis(report)
    except TransferLabError as exc:
        st.caption(f"No error analysis: {exc}.")
        return
    VIEWS[type(analysis)](report, analysis, key)


def _model_picker(report: dict, key: str, label: str) -> str:
    """'after' or 'before', shown by the report's own names (source-only / adapted for adaptation runs)."""
    names = dict(zip(("before", "after"), phase_names(report)))
    return st.radio(label, ["after", "before"], format_func=names.get, horizontal=True, key=key)


# ------------------------------------------------------------------ classification and multi-label

def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + "."


def _loss_text(a: ClassificationErrors, model: str, i: int) -> str:
    losses = a.loss.get(model)
    return "" if not losses else f" · loss {losses[i]:.2f}"


def _items(report: dict, a: ClassificationErrors, indices: Sequence[int], key: str) -> None:
    """Eval items ``indices`` with their truth and the prediction before and after, side by side."""
    b_name, a_name = phase_names(report)
    shown = list(indices)[:SHOWN]
    if len(indices) > SHOWN:
        st.caption(f"Showing {SHOWN} of {len(indices)} items.")
    if not shown:
        st.caption("None.")
        return
    modality = report.get("modality", "text")
    if modality == "text":
        rows = [{"text": a.items[i], "true": a.truth[i], b_name: a.predicted["before"][i],
                 a_name: a.predicted["after"][i],
                 **({f"loss {b_name}": a.loss["before"][i]} if a.loss.get("before") else {}),
                 **({f"loss {a_name}": a.loss["after"][i]} if a.loss.get("after") else {})} for i in shown]
        st.dataframe(rows, hide_index=True, width="stretch", key=f"{key}-tbl")
        return
    for i in shown:
        with st.container(border=True):
            c_item, c_before, c_after = st.columns([2, 3, 3])
            with c_item:
                show_item(modality, a.items[i], f"{a.names[i]} · true {a.truth[i]}")
            for col, model, name in ((c_before, "before", b_name), (c_after, "after", a_name)):
                pred = a.predicted[model][i]
                mark = ":green[right]" if pred == a.truth[i] else ":red[wrong]"
                col.markdown(f"**{name}** {escape(pred)} · {mark}{_loss_text(a, model, i)}")


def _cell_label(a: ClassificationErrors, cell) -> str:
    if a.multi_label:
        return f"{cell.true}: {cell.predicted} ({cell.count})"
    return f"{cell.title} ({cell.count})" + ("" if cell.error else " · correct")


def classification_view(report: dict, a: ClassificationErrors, key: str) -> None:
    b_name, a_name = phase_names(report)
    model = _model_picker(report, f"{key}-err-model", "Errors of the model")
    tabs = st.tabs(["Confusion cells", f"Highest loss {a_name}", "Loss rose most", "Per class"])
    with tabs[0]:
        cells = a.cells[model]
        if not cells:
            st.caption("No eval items.")
        else:
            what = ("per label, the items where it was **missed** (true, not predicted) or **spurious** (predicted, "
                    "not true)" if a.multi_label else "true class → predicted class, the errors first")
            st.caption(f"Pick a cell of the {dict(zip(('before', 'after'), (b_name, a_name)))[model]} model's "
                       f"confusion matrix ({what}) to see its eval items with the predictions {b_name} and "
                       f"{a_name} side by side.")
            if len(cells) > MAX_CELLS:
                st.caption(f"The {MAX_CELLS} largest of {len(cells)} non-empty cells.")
                cells = cells[:MAX_CELLS]
            pick = st.selectbox("Cell", range(len(cells)), format_func=lambda j: _cell_label(a, cells[j]),
                                key=f"{key}-err-cell-{model}")
            _items(report, a, cells[pick].items, f"{key}-err-cell-items")
    with tabs[1]:
        if a.loss_note:
            st.caption(_sentence(a.loss_note))
        else:
            st.caption(f"The eval items the model {a_name} finds hardest: highest loss ({a.loss_definition}) first.")
            _items(report, a, a.top_losses, f"{key}-err-top")
    with tabs[2]:
        if a.loss_note or a.rose_note:
            st.caption(_sentence(a.loss_note or f"Loss rose most: {a.rose_note}"))
        if a.loss_rose:
            st.caption(f"The eval items whose loss rose most from {b_name} to {a_name}: what transfer made worse.")
            _items(report, a, a.loss_rose, f"{key}-err-rose")
    with tabs[3]:
        per = a.per_class[model]
        counts = {c.name: len(c.missed) + len(c.spurious) for c in per}
        j = st.selectbox("Class", range(len(per)), format_func=lambda x: f"{per[x].name} ({counts[per[x].name]} errors)",
                         index=max(range(len(per)), key=lambda x: counts[per[x].name]) if per else 0,
                         key=f"{key}-err-class-{model}")
        if per:
            c = per[j]
            left, right = st.columns(2)
            with left:
                st.markdown(f"**Missed**: {len(c.missed)} item(s) of **{c.name}** not predicted as {c.name}")
                _items(report, a, c.missed, f"{key}-err-missed")
            with right:
                st.markdown(f"**Spurious**: {len(c.spurious)} item(s) predicted as **{c.name}** that are not")
                _items(report, a, c.spurious, f"{key}-err-spurious")


# ------------------------------------------------------------------ NER

def _span_text(tokens: Sequence[str], span: Optional[tuple]) -> str:
    return "" if span is None else f"{span[0]} “{' '.join(tokens[span[1]:span[2]])}”"


def _error_html(report: dict, a: NerErrors, e: EntityError) -> str:
    b_name, a_name = phase_names(report)
    tokens = a.tokens[e.sentence]
    gold, pred = _span_text(tokens, e.gold), _span_text(tokens, e.predicted)
    what = " · ".join(x for x in (f"gold {escape(gold)}" if gold else "", f"predicted {escape(pred)}" if pred else "")
                      if x)
    lines = [("gold", tagged_html(tokens, a.gold[e.sentence])),
             (b_name, tagged_html(tokens, a.predicted["before"][e.sentence], a.gold[e.sentence])),
             (a_name, tagged_html(tokens, a.predicted["after"][e.sentence], a.gold[e.sentence]))]
    body = "".join(f'<div style="margin:2px 0"><span style="display:inline-block;width:6em;color:#666;'
                   f'font-size:0.85em">{escape(name)}</span>{html}</div>' for name, html in lines)
    return (f'<div style="border:1px solid #e6e9ef;border-radius:8px;padding:8px 12px;margin:6px 0;line-height:1.9">'
            f'<div style="font-size:0.8em;color:#555">sentence {e.sentence + 1} · {what}</div>{body}</div>')


def ner_view(report: dict, a: NerErrors, key: str) -> None:
    b_name, a_name = phase_names(report)
    st.caption("Every entity error, by kind (SemEval-2013 / nervaluate partial-match scheme: a predicted entity with "
               "the right words but another type is a wrong type; one that overlaps a gold entity of its type with "
               "other boundaries, a wrong boundary; a gold entity nothing overlaps is missed; a prediction that "
               "overlaps no gold entity is spurious).")
    st.dataframe([{"kind": KIND_TEXT[k], b_name: a.counts["before"][k], a_name: a.counts["after"][k]} for k in KINDS],
                 hide_index=True, width="stretch", key=f"{key}-err-kinds")
    model = _model_picker(report, f"{key}-err-model", "Errors of the model")
    kinds = [k for k in KINDS if a.counts[model][k]]
    if not kinds:
        st.caption("No entity errors.")
        return
    kind = st.selectbox("Kind of error", kinds, format_func=lambda k: f"{KIND_TEXT[k]} ({a.counts[model][k]})",
                        key=f"{key}-err-kind-{model}")
    errors = [e for e in a.errors[model] if e.kind == kind]
    if len(errors) > SHOWN:
        st.caption(f"Showing {SHOWN} of {len(errors)}.")
    for e in errors[:SHOWN]:
        st.markdown(_error_html(report, a, e), unsafe_allow_html=True)


# ------------------------------------------------------------------ ASR

def asr_view(report: dict, a: TranscriptErrors, key: str) -> None:
    b_name, a_name = phase_names(report)
    model = _model_picker(report, f"{key}-err-model", "Errors of the model")
    other = "before" if model == "after" else "after"
    names = {"before": b_name, "after": a_name}
    st.markdown(f"**Worst utterances {names[model]}** (highest WER first)")
    worst = a.worst[model]
    if not worst:
        st.caption("No utterance has an error.")
    for i in worst[:SHOWN // 2]:
        with st.container(border=True):
            clip, text = st.columns([1, 2])
            path = _audio_path(report, {"name": a.names[i]})
            if path:
                clip.audio(path)
            clip.caption(a.names[i])
            text.markdown(f"**reference**: {escape(a.references[i])}  \n"
                          f"**{b_name}** (WER {100 * a.wer['before'][i]:.0f}%): {escape(a.transcripts['before'][i])}"
                          f"  \n**{a_name}** (WER {100 * a.wer['after'][i]:.0f}%): {escape(a.transcripts['after'][i])}")
    st.markdown(f"**Most frequent word errors {names[model]}**")
    rows = a.words[model].most_common(20)
    if not rows:
        st.caption("No word errors.")
        return
    kinds = {"sub": "substituted", "del": "deleted", "ins": "inserted"}
    counts = a.words[other]
    st.dataframe([{"error": kinds[kind], "reference word": r, "recognised as": h, names[model]: n,
                   names[other]: (counts.substitutions[(r, h)] if kind == "sub" else
                                  counts.deletions[r] if kind == "del" else counts.insertions[h])}
                  for kind, r, h, n in rows], hide_index=True, width="stretch", key=f"{key}-err-words")
    st.caption("Words aligned as WER counts them (Levenshtein alignment of the normalised texts); the last column "
               f"counts the same error {names[other]}.")


VIEWS: dict[type, Callable] = {ClassificationErrors: classification_view, NerErrors: ner_view,
                               TranscriptErrors: asr_view}
