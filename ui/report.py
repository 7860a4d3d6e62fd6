"""One run's results: headline numbers, plots, flipped examples, baselines; used by Compare and share links.

Reports differ by task (``report["task"]``: classify, ner, asr) and setting (``"transductive"`` for domain
adaptation with unlabeled target data); :class:`TaskView` says which number leads and how to read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import streamlit as st

from tlcore import plots
from ui.media import show_item


@dataclass(frozen=True)
class TaskView:
    """How one task's report is read: its headline metric, a second metric, and which direction is better."""

    metric: str               # key in report["before"/"after"], e.g. accuracy, entity_f1, wer
    label: str                # "Accuracy", "Entity F1", "WER"
    second: str               # a second number shown next to it
    second_label: str
    lower_is_better: bool = False
    percent: bool = True      # shown as a percentage (accuracy, WER) or as 0.xxx (F1)
    unit: str = "items"       # what the eval split counts
    second_percent: bool = False

    def fmt_second(self, x: Optional[float]) -> str:
        if x is None:
            return "–"
        return f"{100 * x:.1f}%" if self.second_percent else f"{x:.3f}"

    def delta_second(self, before: Optional[float], after: Optional[float]) -> Optional[str]:
        if before is None or after is None:
            return None
        return f"{100 * (after - before):+.1f} points" if self.second_percent else f"{after - before:+.3f}"

    @property
    def ci(self) -> str:
        return f"{self.metric}_ci95"

    def fmt(self, x: Optional[float]) -> str:
        if x is None:
            return "–"
        return f"{100 * x:.1f}%" if self.percent else f"{x:.3f}"

    def delta(self, before: Optional[float], after: Optional[float]) -> Optional[str]:
        if before is None or after is None:
            return None
        return f"{100 * (after - before):+.1f} points" if self.percent else f"{after - before:+.3f}"

    def improved(self, difference: float) -> bool:
        return difference < 0 if self.lower_is_better else difference > 0


TASK_VIEWS = {
    "classify": TaskView("accuracy", "Accuracy", "macro_f1", "Macro-F1"),
    "ner": TaskView("entity_f1", "Entity F1", "token_accuracy", "Token accuracy", percent=False, unit="sentences"),
    "asr": TaskView("wer", "WER", "cer", "CER", lower_is_better=True, unit="clips", second_percent=True),
}


def task_of(report: dict) -> str:
    task = report.get("task") or "classify"
    return task if task in TASK_VIEWS else "classify"


def view_of(report: dict) -> TaskView:
    return TASK_VIEWS[task_of(report)]


def phase_names(report: dict) -> tuple[str, str]:
    """What 'before' and 'after' mean here: transductive adaptation compares source-only with adapted."""
    return ("source-only", "adapted") if report.get("setting") == "transductive" else ("before", "after")


def _value(block: Optional[dict], key: str) -> Optional[float]:
    v = (block or {}).get(key)
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _ci_text(view: TaskView, block: dict) -> str:
    lo, hi = (block.get(view.ci) or (None, None))[:2] if block.get(view.ci) else (None, None)
    return "" if lo is None else f"95% CI {view.fmt(lo)} – {view.fmt(hi)}"


def headline(report: dict) -> None:
    view = view_of(report)
    before, after = report.get("before") or {}, report.get("after") or {}
    b_name, a_name = phase_names(report)
    b, a = _value(before, view.metric), _value(after, view.metric)
    c1, c2, c3, c4 = st.columns(4)
    c1.metric(f"{view.label} {b_name}", view.fmt(b), help=before.get("kind"))
    c1.caption(_ci_text(view, before))
    c2.metric(f"{view.label} {a_name}", view.fmt(a), delta=view.delta(b, a),
              delta_color="inverse" if view.lower_is_better else "normal")
    c2.caption(_ci_text(view, after) + (" · lower is better" if view.lower_is_better else ""))
    b2, a2 = _value(before, view.second), _value(after, view.second)
    c3.metric(f"{view.second_label} {b_name}", view.fmt_second(b2))
    c4.metric(f"{view.second_label} {a_name}", view.fmt_second(a2), delta=view.delta_second(b2, a2),
              delta_color="inverse" if view.lower_is_better else "normal")
    data = report.get("data") or {}
    st.caption(f"Both on the same eval split of {data.get('eval', '?')} {view.unit}. "
               f"**{b_name.capitalize()}** = {before.get('kind', 'the model before transfer')}; **{a_name}** = "
               f"{report.get('strategy')} on {report.get('backbone')}.")


def metric_entries(report: dict) -> list[dict]:
    view = view_of(report)
    b_name, a_name = phase_names(report)
    entries = []
    for name, phase, color in ((b_name, "before", plots.BEFORE_COLOR), (a_name, "after", plots.AFTER_COLOR)):
        value = _value(report.get(phase), view.metric)
        if value is not None:
            entries.append({"name": name, "value": value, "ci": (report.get(phase) or {}).get(view.ci), "color": color})
    for name, block in (report.get("baselines") or {}).items():
        value = _value(block if isinstance(block, dict) else None, view.metric)
        if value is not None:
            label = {"scratch": "scratch (random init)", "knn": f"k-NN (k={block.get('k', 5)})"}.get(name, name)
            entries.append({"name": label, "value": value, "ci": block.get(view.ci), "color": plots.BASELINE_COLOR})
    return entries


# ------------------------------------------------------------------ flipped / changed examples

def flipped(report: dict, key: str) -> None:
    flips = report.get("flipped") or {}
    modality = report["modality"]
    b_name, a_name = phase_names(report)
    n_fixed = flips.get("n_fixed", len(flips.get("fixed", [])))
    n_broken = flips.get("n_broken", len(flips.get("broken", [])))
    st.subheader("Flipped examples")
    st.caption(f"Eval items whose prediction changed correctness: **fixed** were wrong {b_name} and right {a_name}; "
               f"**broken** were right {b_name} and wrong {a_name}.")
    tabs = st.tabs([f"Fixed ({n_fixed})", f"Broken ({n_broken})"])
    for tab, kind in zip(tabs, ("fixed", "broken")):
        with tab:
            rows = (flips.get(kind) or [])[:12]
            if not rows:
                st.caption("None.")
                continue
            cols = st.columns(4 if modality == "image" else 2 if modality == "audio" else 1)
            for i, row in enumerate(rows):
                with cols[i % len(cols)]:
                    show_item(modality, row["item"],
                              f"true **{row['true']}** · {b_name} {row['before']} → {a_name} {row['after']}")


def flipped_sentences(report: dict, key: str) -> None:
    """NER: the eval sentences whose entities changed, gold vs predicted spans highlighted."""
    from ui.spans import legend_html, sentence_html

    flips = report.get("flipped") or {}
    rows = flips.get("sentences") or []
    st.subheader("Sentences whose entities changed")
    st.caption(f"{flips.get('n_changed', len(rows))} eval sentence(s) changed: {flips.get('n_fixed', 0)} gained correct "
               f"entities, {flips.get('n_broken', 0)} lost some. Each shows the gold spans, then the spans predicted "
               "before and after; a predicted span with a green outline matches a gold span exactly (type and "
               "boundaries), a red dashed one does not.")
    if not rows:
        st.caption("None.")
        return
    st.markdown(legend_html(report.get("data", {}).get("entity_types") or []), unsafe_allow_html=True)
    groups = [("Fixed", [r for r in rows if r.get("gain", 0) > 0]), ("Broken", [r for r in rows if r.get("gain", 0) < 0]),
              ("Changed, same score", [r for r in rows if r.get("gain", 0) == 0])]
    groups.sort(key=lambda g: not g[1])  # a non-empty tab opens first
    tabs = st.tabs([f"{name} ({len(g)})" for name, g in groups])
    for tab, (_, group) in zip(tabs, groups):
        with tab:
            if not group:
                st.caption("None.")
            for row in group[:12]:
                st.markdown(sentence_html(row), unsafe_allow_html=True)


def _audio_path(report: dict, row: dict) -> Optional[str]:
    """The clip of a changed utterance: its own path, or its name under the eval (else target) folder."""
    from pathlib import Path

    if row.get("path") and Path(row["path"]).exists():
        return str(row["path"])
    name = row.get("name")
    data = report.get("data") or {}
    if not name:
        return None
    for folder in (data.get("eval_path"), data.get("target")):
        if not folder:
            continue
        base = Path(folder)
        for candidate in (base / name, base.parent / name):
            if candidate.is_file():
                return str(candidate)
        hits = list(base.rglob(Path(name).name)) if base.is_dir() else []
        if hits:
            return str(hits[0])
    return None


def changed_transcripts(report: dict, key: str) -> None:
    """ASR: the utterances whose transcript changed most, with the clip, reference and both transcripts."""
    rows = report.get("changed") or (report.get("flipped") or {}).get("changed") or []
    st.subheader("Transcripts that changed")
    st.caption("Eval clips whose transcript changed most between before and after (largest change in WER first).")
    if not rows:
        st.caption("None.")
        return
    for row in rows[:12]:
        with st.container(border=True):
            left, right = st.columns([1, 2])
            with left:
                path = _audio_path(report, row)
                if path:
                    st.audio(path)
                else:
                    st.caption("(clip not available)")
                st.caption(str(row.get("name") or ""))
            with right:
                wb, wa = row.get("wer_before"), row.get("wer_after")
                st.markdown(f"**reference**: {row.get('reference', '')}  \n"
                            f"**before**{'' if wb is None else f' (WER {100 * wb:.0f}%)'}: {row.get('before', '')}  \n"
                            f"**after**{'' if wa is None else f' (WER {100 * wa:.0f}%)'}: {row.get('after', '')}")


# ------------------------------------------------------------------ training curves

def report_history(report: dict) -> list[dict]:
    """Per-epoch rows of every trained stage (the transfer run, the source stage, the scratch baseline)."""
    out: list[dict] = []
    training = report.get("training") or {}
    for row in training.get("history") or []:
        if isinstance(row, dict):
            out.append({"stage": row.get("stage") or "after", **{k: v for k, v in row.items() if k != "stage"}})
    for stage, block in training.items():  # NER: one block per trained stage (source, after, ...)
        if isinstance(block, dict) and isinstance(block.get("history"), list) and block["history"] and \
                isinstance(block["history"][0], dict) and "epoch" in block["history"][0]:
            out += [{**row, "stage": stage} for row in block["history"]]
    scratch = ((report.get("baselines") or {}).get("scratch") or {}).get("training") or {}
    out += [{**row, "stage": "scratch"} for row in scratch.get("history") or [] if isinstance(row, dict)]
    return out


# ------------------------------------------------------------------ per task sections

def _per_class_section(report: dict, key: str) -> None:
    b_name, a_name = phase_names(report)
    metric = st.radio("Per-class metric", ["f1", "recall", "precision"], horizontal=True, key=f"{key}-pcm")
    st.plotly_chart(plots.per_class_bars(report["before"].get("per_class") or {}, report["after"].get("per_class") or {},
                                         metric, title=f"Per-class {metric}", names=(b_name, a_name)),
                    key=f"{key}-pc", width="stretch")


def _per_type_section(report: dict, key: str) -> None:
    metric = st.radio("Per-type metric", ["f1", "recall", "precision"], horizontal=True, key=f"{key}-ptm")
    st.plotly_chart(plots.per_class_bars(report["before"].get("per_type") or {}, report["after"].get("per_type") or {},
                                         metric, title=f"Per entity type: {metric}"), key=f"{key}-pt", width="stretch")


def _per_group_section(report: dict, key: str) -> None:
    before_groups = report["before"].get("per_group") or {}
    after_groups = report["after"].get("per_group") or {}
    columns = [c for c in after_groups if after_groups.get(c)]
    if not columns:
        st.caption("No speaker or accent column in the eval data, so no per-group error rates.")
        return
    c1, c2 = st.columns(2)
    column = c1.selectbox("Group by", columns, key=f"{key}-pgc") if len(columns) > 1 else columns[0]
    metric = c2.radio("Error rate", ["wer", "cer"], horizontal=True, key=f"{key}-pgm")
    st.plotly_chart(plots.per_class_bars(before_groups.get(column) or {}, after_groups[column], metric,
                                         title=f"{metric.upper()} per {column} (lower is better)", y_max=None),
                    key=f"{key}-pg", width="stretch")


def _source_eval_section(report: dict, key: str) -> None:
    s = report.get("source_eval") or {}
    if not s.get("before") or not s.get("after"):
        return
    st.subheader("On the source accent: did adaptation forget?")
    view = view_of(report)
    rows = [{"model": phase, "WER": view.fmt(_value(s[phase], "wer")), "CER": view.fmt(_value(s[phase], "cer")),
             "clips": s[phase].get("n")} for phase in ("before", "after")]
    st.dataframe(rows, hide_index=True, width="stretch")
    comp = s.get("comparison") or {}
    if comp.get("ci95"):
        st.caption(f"WER change on the source set: {100 * comp['difference']:+.1f} points (95% CI "
                   f"{100 * comp['ci95'][0]:.1f} to {100 * comp['ci95'][1]:.1f}); positive means worse.")


def _caption_line(report: dict) -> str:
    data = report.get("data") or {}
    task = task_of(report)
    view = view_of(report)
    bits = [report.get("modality", ""), {"classify": "classification", "ner": "named entities",
                                          "asr": "speech recognition"}[task]]
    if report.get("setting") == "transductive":
        bits.append("transductive (labeled source + unlabeled target)")
    bits += [f"backbone **{report.get('backbone')}**", f"strategy **{report.get('strategy')}**",
             f"{data.get('train', '?')} train / {data.get('eval', '?')} eval {view.unit}"]
    if task == "classify" and data.get("classes"):
        bits.append(f"{len(data['classes'])} classes")
    if task == "ner" and data.get("entity_types"):
        bits.append(f"entity types {', '.join(data['entity_types'])}")
    if data.get("source"):
        bits.append(f"{data['source']} source {view.unit}")
    if data.get("unlabeled"):
        bits.append(f"{data['unlabeled']} unlabeled")
    return " · ".join(b for b in bits if b)


def baselines_skipped(report: dict) -> dict[str, str]:
    """{baseline: why it was not computed}; reports written before ``baselines_skipped`` existed say it their way."""
    if "baselines_skipped" in report:
        return dict(report["baselines_skipped"])
    if report.get("baselines_note"):
        return {"scratch": report["baselines_note"]}
    if task_of(report) == "classify" and report.get("setting") != "transductive":
        return {b: "not computed (report from an older version)" for b in ("scratch", "knn")
                if b not in (report.get("baselines") or {})}
    return {}


def scratch_claim(report: dict) -> None:
    """The core claim of transfer in one line, once the scratch baseline is in: pretrained vs the same network
    trained from random weights on the same labels, with the paired 95% interval of the difference."""
    view = view_of(report)
    scratch = (report.get("baselines") or {}).get("scratch")
    comp = (report.get("comparisons") or {}).get("scratch")
    if not scratch or not comp or view.lower_is_better:
        return
    a, s_ = _value(report.get("after"), view.metric), _value(scratch, view.metric)
    if a is None or s_ is None:
        return
    lo, hi = (100 * x for x in comp["ci95"])
    labels = (report.get("data") or {}).get("train")
    text = (f"**Pretrained vs scratch: {view.fmt(a)} vs {view.fmt(s_)}**"
            + (f" with {labels} labeled {view.unit}" if labels else "")
            + f" — {100 * comp['difference']:+.1f} points (95% CI {lo:+.1f} to {hi:+.1f}).")
    if lo > 0:
        st.success(text + " Transfer beats training from scratch beyond noise.", icon=":material/trending_up:")
    elif hi < 0:
        st.error(text + " Training from scratch is better here: negative transfer.", icon=":material/trending_down:")
    else:
        st.info(text + " Not beyond noise: this much data may not need a pretrained model.")


def render_report(report: dict, *, key: str, title: str | None = None,
                  below_headline: Optional[Callable[[], None]] = None) -> None:
    """The full before/after comparison of one run (read-only: safe for share links). ``below_headline`` draws
    something right under the headline numbers (the Compare page's follow-up progress)."""
    if title:
        st.subheader(title)
    task = task_of(report)
    view = view_of(report)
    b_name, a_name = phase_names(report)
    data = report.get("data") or {}
    st.caption(_caption_line(report))
    for w in report.get("warnings") or []:
        if w.startswith("negative transfer:"):
            st.error(w, icon=":material/trending_down:")
        else:
            st.warning(w)
    headline(report)
    scratch_claim(report)
    if below_headline is not None:
        below_headline()
    skipped = baselines_skipped(report)
    if skipped:
        st.caption("Baselines not computed for this run: " + "; ".join(f"**{k}** — {v}" for k, v in skipped.items()) + ".")
    for note in report.get("notes") or []:
        st.caption(f"Note: {note}")
    left, right = st.columns(2)
    with left:
        title_bits = f"{view.label} with 95% CI: {b_name}, {a_name}" + (", baselines" if report.get("baselines") else "")
        st.plotly_chart(plots.metric_bars(metric_entries(report), metric=view.metric,
                                          title=title_bits + (" (lower is better)" if view.lower_is_better else ""),
                                          y_max=None if view.lower_is_better else 1.12),
                        key=f"{key}-bars", width="stretch")
    with right:
        {"classify": _per_class_section, "ner": _per_type_section, "asr": _per_group_section}[task](report, key)
    if task == "classify" and report["before"].get("confusion") and report["after"].get("confusion"):
        classes = data["classes"]
        left, right = st.columns(2)
        with left:
            st.plotly_chart(plots.confusion_matrix_figure(report["before"]["confusion"], classes, f"Confusion {b_name}"),
                            key=f"{key}-cm-b", width="stretch")
        with right:
            st.plotly_chart(plots.confusion_matrix_figure(report["after"]["confusion"], classes, f"Confusion {a_name}"),
                            key=f"{key}-cm-a", width="stretch")
    if task == "asr":
        _source_eval_section(report, key)
    history = report_history(report)
    if history:
        st.plotly_chart(plots.training_curves(history, "Training curves"), key=f"{key}-curves", width="stretch")
    if task == "ner":
        flipped_sentences(report, key)
    elif task == "asr":
        changed_transcripts(report, key)
    else:
        flipped(report, key)
    comps = report.get("comparisons") or {}
    if comps:
        st.subheader("Is the change real?" if view.lower_is_better else "Is the gain real?")
        unit = "points" if view.percent else "F1 points"
        rows = []
        for ref, c in comps.items():
            lo, hi = c["ci95"]
            beyond = (hi < 0) if view.lower_is_better else (lo > 0)
            rows.append({f"{a_name} vs": b_name if ref in ("before", "source-only") else ref,
                         f"difference ({unit})": round(100 * c["difference"], 1),
                         "95% CI": f"{100 * lo:.1f} to {100 * hi:.1f}", "beyond noise": "yes" if beyond else "no"})
        st.dataframe(rows, hide_index=True, width="stretch")
        if view.lower_is_better:
            st.caption("Difference = WER after − WER before: negative means fewer errors after adaptation.")
    problems = data.get("problems") or []
    if problems:
        with st.expander(f"{len(problems)} data problem(s) skipped"):
            st.write("\n".join(f"- {p}" for p in problems[:200]))


def ladder_rows(runs_reports: list[tuple[str, dict]]) -> list[dict]:
    """Strategy-ladder rows in the headline metric of the (first) report's task."""
    rows = []
    for label, rep in runs_reports:
        view = view_of(rep)
        rows.append({"label": label, "before": _value(rep.get("before"), view.metric),
                     "after": _value(rep.get("after"), view.metric) or 0.0,
                     "after_ci": (rep.get("after") or {}).get(view.ci),
                     "baselines": {k: v[view.metric] for k, v in (rep.get("baselines") or {}).items()
                                   if isinstance(v, dict) and _value(v, view.metric) is not None}})
    return rows


def headline_numbers(task: str, metrics: dict) -> tuple[str, Optional[float], Optional[float], Optional[float]]:
    """(metric label, before, after, improvement) from a run's stored headline metrics; improvement is
    positive when the run got better (for WER: before − after)."""
    view = TASK_VIEWS.get(task or "classify", TASK_VIEWS["classify"])
    b, a = metrics.get(f"before_{view.metric}"), metrics.get(f"after_{view.metric}")
    gain = None if b is None or a is None else (b - a if view.lower_is_better else a - b)
    return view.label, b, a, gain
