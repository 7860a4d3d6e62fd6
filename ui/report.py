"""One run's results: headline numbers, plots, flipped examples, baselines; used by Compare and share links.

Reports differ by task (``report["task"]``, read through :func:`tlcore.tasks.task_of`: its spec says which number
leads, how to read it, and which detail views the report has) and by setting (``"transductive"`` for domain
adaptation with unlabeled target data).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

import streamlit as st

from tlcore import plots
from tlcore.evaluation.policy import NEGATIVE_TRANSFER, baseline_label, report_alerts, strongest_no_pretraining
from tlcore.tasks import Metric, task_of
from ui.calibration import calibration_section
from ui.media import show_item


def ci_key(metric: Metric) -> str:
    """Where a report block keeps the 95% interval of ``metric``."""
    return f"{metric.key}_ci95"


def delta_color(metric: Metric) -> str:
    return "normal" if metric.higher_is_better else "inverse"


def phase_names(report: dict) -> tuple[str, str]:
    """What 'before' and 'after' mean here: transductive adaptation compares source-only with adapted."""
    return ("source-only", "adapted") if report.get("setting") == "transductive" else ("before", "after")


def _value(block: Optional[dict], key: str) -> Optional[float]:
    v = (block or {}).get(key)
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _ci_text(metric: Metric, block: dict) -> str:
    lo, hi = (block.get(ci_key(metric)) or (None, None))[:2] if block.get(ci_key(metric)) else (None, None)
    return "" if lo is None else f"95% CI {metric.fmt(lo)} – {metric.fmt(hi)}"


def headline(report: dict) -> None:
    spec = task_of(report)
    m, m2 = spec.metric, spec.second
    before, after = report.get("before") or {}, report.get("after") or {}
    b_name, a_name = phase_names(report)
    b, a = _value(before, m.key), _value(after, m.key)
    c1, c2, c3, c4 = st.columns(4)
    c1.metric(f"{m.label} {b_name}", m.fmt(b), help=before.get("kind"))
    c1.caption(_ci_text(m, before))
    c2.metric(f"{m.label} {a_name}", m.fmt(a), delta=m.delta(b, a), delta_color=delta_color(m))
    c2.caption(_ci_text(m, after) + ("" if m.higher_is_better else " · lower is better"))
    b2, a2 = _value(before, m2.key), _value(after, m2.key)
    c3.metric(f"{m2.label} {b_name}", m2.fmt(b2))
    c4.metric(f"{m2.label} {a_name}", m2.fmt(a2), delta=m2.delta(b2, a2), delta_color=delta_color(m2))
    data = report.get("data") or {}
    st.caption(f"Both on the same eval split of {data.get('eval', '?')} {spec.unit}. "
               f"**{b_name.capitalize()}** = {before.get('kind', 'the model before transfer')}; **{a_name}** = "
               f"{report.get('strategy')} on {report.get('backbone')}.")


def metric_entries(report: dict) -> list[dict]:
    m = task_of(report).metric
    b_name, a_name = phase_names(report)
    entries = []
    for name, phase, color in ((b_name, "before", plots.BEFORE_COLOR), (a_name, "after", plots.AFTER_COLOR)):
        value = _value(report.get(phase), m.key)
        if value is not None:
            entries.append({"name": name, "value": value, "ci": (report.get(phase) or {}).get(ci_key(m)),
                            "color": color})
    for name, block in (report.get("baselines") or {}).items():
        value = _value(block if isinstance(block, dict) else None, m.key)
        if value is not None:
            label = {"scratch": "scratch (random init)", "knn": f"k-NN (k={block.get('k', 5)})"}.get(name, name)
            entries.append({"name": label, "value": value, "ci": block.get(ci_key(m)), "color": plots.BASELINE_COLOR})
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


# ------------------------------------------------------------------ detail views (spec.report_sections)

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
    spec = task_of(report)
    before_groups = report["before"].get("per_group") or {}
    after_groups = report["after"].get("per_group") or {}
    columns = [c for c in after_groups if after_groups.get(c)]
    if not columns:
        st.caption("No speaker or accent column in the eval data, so no per-group error rates.")
        return
    c1, c2 = st.columns(2)
    column = c1.selectbox("Group by", columns, key=f"{key}-pgc") if len(columns) > 1 else columns[0]
    metric = spec.metric_named(c2.radio("Error rate", [m.key for m in spec.metrics], horizontal=True, key=f"{key}-pgm"))
    better = "higher" if metric.higher_is_better else "lower"
    st.plotly_chart(plots.per_class_bars(before_groups.get(column) or {}, after_groups[column], metric.key,
                                         title=f"{metric.label} per {column} ({better} is better)", y_max=None),
                    key=f"{key}-pg", width="stretch")


def _confusion_section(report: dict, key: str) -> None:
    if report["after"].get("confusion_omitted"):
        st.caption(f"Confusion matrices: {report['after']['confusion_omitted']}.")
    if not report["before"].get("confusion") or not report["after"].get("confusion"):
        return
    b_name, a_name = phase_names(report)
    classes = (report.get("data") or {})[task_of(report).labels_key]
    left, right = st.columns(2)
    with left:
        st.plotly_chart(plots.confusion_matrix_figure(report["before"]["confusion"], classes, f"Confusion {b_name}"),
                        key=f"{key}-cm-b", width="stretch")
    with right:
        st.plotly_chart(plots.confusion_matrix_figure(report["after"]["confusion"], classes, f"Confusion {a_name}"),
                        key=f"{key}-cm-a", width="stretch")


def _source_eval_section(report: dict, key: str) -> None:
    s = report.get("source_eval") or {}
    if not s.get("before") or not s.get("after"):
        return
    spec = task_of(report)
    m = spec.metric
    st.subheader("On the source accent: did adaptation forget?")
    rows = [{"model": phase, **{x.label: x.fmt(_value(s[phase], x.key)) for x in (m, spec.second)},
             spec.unit: s[phase].get("n")} for phase in ("before", "after")]
    st.dataframe(rows, hide_index=True, width="stretch")
    comp = s.get("comparison") or {}
    if comp.get("ci95"):
        st.caption(f"{m.label} change on the source set: {100 * comp['difference']:+.1f} points (95% CI "
                   f"{100 * comp['ci95'][0]:.1f} to {100 * comp['ci95'][1]:.1f}); "
                   f"{'negative' if m.higher_is_better else 'positive'} means worse.")


# Each kind of detail view a report can have (TaskSpec.report_sections), by where it goes on the page: next to the
# headline metric's bars, below them (before the training curves), or last (the examples that changed).
SIDE_VIEWS: dict[str, Callable[[dict, str], None]] = {
    "per_class": _per_class_section, "per_type": _per_type_section, "per_group": _per_group_section}
BODY_VIEWS: dict[str, Callable[[dict, str], None]] = {
    "confusion": _confusion_section, "source_eval": _source_eval_section}
EXAMPLE_VIEWS: dict[str, Callable[[dict, str], None]] = {
    "flipped": flipped, "flipped_sentences": flipped_sentences, "changed_transcripts": changed_transcripts}


def _views(report: dict, kinds: dict[str, Callable[[dict, str], None]]) -> list[Callable[[dict, str], None]]:
    return [kinds[s] for s in task_of(report).report_sections if s in kinds]


def _caption_line(report: dict) -> str:
    data = report.get("data") or {}
    spec = task_of(report)
    bits = [report.get("modality", ""), spec.noun]
    if report.get("setting") == "transductive":
        bits.append("transductive (labeled source + unlabeled target)")
    bits += [f"backbone **{report.get('backbone')}**", f"strategy **{report.get('strategy')}**",
             f"{data.get('train', '?')} train / {data.get('eval', '?')} eval {spec.unit}"]
    labels = data.get(spec.labels_key) if spec.labels_key else None
    if labels:
        shown = ", ".join(map(str, labels[:8])) + (", …" if len(labels) > 8 else "")
        bits.append(f"{len(labels)} {spec.label_noun}: {shown}")
    if data.get("source"):
        bits.append(f"{data['source']} source {spec.unit}")
    if data.get("unlabeled"):
        bits.append(f"{data['unlabeled']} unlabeled")
    return " · ".join(b for b in bits if b)


def baselines_skipped(report: dict) -> dict[str, str]:
    """{baseline: why it was not computed}; reports written before ``baselines_skipped`` existed say it their way."""
    if "baselines_skipped" in report:
        return dict(report["baselines_skipped"])
    if report.get("baselines_note"):
        return {"scratch": report["baselines_note"]}
    if report.get("setting") != "transductive":
        return {b: "not computed (report from an older version)" for b in task_of(report).baselines
                if b not in (report.get("baselines") or {})}
    return {}


#: What each claim says about its baseline: (name shown, beyond noise, worse beyond noise, within noise).
_CLAIMS = {
    "scratch": ("scratch", " Transfer beats training from scratch beyond noise.",
                " Training from scratch is better here: negative transfer.",
                " Not beyond noise: on this data the pretrained model has not shown it beats the same network trained "
                "from scratch."),
    "strongest": (None, " Transfer beats it beyond noise.", " The model without pretrained weights is better here.",
                  " Not beyond noise: on this data the pretrained model has not shown it is better."),
}


def _claim(report: dict, baseline: str, kind: str, suffix: str = "") -> None:
    """One line: pretrained vs ``baseline`` with the paired 95% interval of the difference, coloured by verdict."""
    spec = task_of(report)
    m = spec.metric
    block = (report.get("baselines") or {}).get(baseline)
    comp = (report.get("comparisons") or {}).get(baseline)
    if not block or not comp or not m.higher_is_better:
        return
    a, b = _value(report.get("after"), m.key), _value(block, m.key)
    if a is None or b is None:
        return
    name, better, worse, within = _CLAIMS[kind]
    lo, hi = (100 * x for x in comp["ci95"])
    labels = (report.get("data") or {}).get("train")
    text = (f"**Pretrained vs {name or baseline_label(report, baseline)}: {m.fmt(a)} vs {m.fmt(b)}**"
            + (f" with {labels} labeled {spec.unit}" if labels else "")
            + f" — {100 * comp['difference']:+.1f} points (95% CI {lo:+.1f} to {hi:+.1f}){suffix}.")
    if lo > 0:
        st.success(text + better, icon=":material/trending_up:")
    elif hi < 0:
        st.error(text + worse, icon=":material/trending_down:")
    else:
        st.info(text + within)


def scratch_claim(report: dict) -> None:
    """The core claim of transfer in one line, once the scratch baseline is in: pretrained vs the same network
    trained from random weights on the same labels, with the paired 95% interval of the difference."""
    _claim(report, "scratch", "scratch")


def no_pretraining_claim(report: dict) -> None:
    """The gain over the strongest baseline that uses no pretrained weights, named, when that is the classical
    model (the scratch twin has its own line above): "Pretrained vs TF-IDF + logistic regression: 79% vs 68%"."""
    m = task_of(report).metric
    best = strongest_no_pretraining(report, m.key, higher_is_better=m.higher_is_better)
    if best is not None and best != "scratch":
        _claim(report, best, "strongest", ", against the strongest baseline that uses no pretrained weights")


def _gain_table(report: dict) -> None:
    """Is the change beyond noise: each paired comparison's difference and 95% interval."""
    comps = report.get("comparisons") or {}
    if not comps:
        return
    m = task_of(report).metric
    b_name, a_name = phase_names(report)
    st.subheader("Is the gain real?" if m.higher_is_better else "Is the change real?")
    unit = "points" if m.percent else f"{m.label} points"
    rows = []
    for ref, c in comps.items():
        lo, hi = c["ci95"]
        rows.append({f"{a_name} vs": b_name if ref in ("before", "source-only") else ref,
                     f"difference ({unit})": round(100 * c["difference"], 1),
                     "95% CI": f"{100 * lo:.1f} to {100 * hi:.1f}",
                     "beyond noise": "yes" if m.improved(hi) and m.improved(lo) else "no"})
    st.dataframe(rows, hide_index=True, width="stretch")
    methods = sorted({c["ci_method"] for c in comps.values() if c.get("ci_method")})
    if methods:
        st.caption("Intervals: " + "; ".join(methods) + ".")
    if not m.higher_is_better:
        st.caption(f"Difference = {m.label} after − {m.label} before: negative means fewer errors after adaptation.")


def seed_rows(report: dict) -> list[dict]:
    """One row per model of a ``--seeds`` run: its headline metric for every training seed, mean and spread."""
    seeds = report.get("seeds") or {}
    m = task_of(report).metric
    b_name, a_name = phase_names(report)
    names = {"before": b_name, "after": a_name}
    return [{"model": names.get(model, baseline_label(report, model)),
             **{f"seed {s}": m.fmt(v) for s, v in zip(seeds["seeds"], values)},
             "mean": m.fmt(seeds["mean"][model]), "std": m.fmt(seeds["std"][model])}
            for model, values in (seeds.get("scores") or {}).items()]


def _seeds_section(report: dict) -> None:
    rows = seed_rows(report)
    if not rows:
        return
    st.subheader(f"Over {len(report['seeds']['seeds'])} training seeds")
    st.dataframe(rows, hide_index=True, width="stretch")
    st.caption("The saved model and the numbers above are the first seed's; the comparisons below (and the verdict) "
               "average every seed, their intervals covering seed and eval-sample noise. Models that are not trained "
               "(before, k-NN) are scored once.")


def render_report(report: dict, *, key: str, title: str | None = None,
                  below_headline: Optional[Callable[[], None]] = None) -> None:
    """The full before/after comparison of one run (read-only: safe for share links). ``below_headline`` draws
    something right under the headline numbers (the Compare page's follow-up progress)."""
    if title:
        st.subheader(title)
    m = task_of(report).metric
    b_name, a_name = phase_names(report)
    data = report.get("data") or {}
    st.caption(_caption_line(report))
    for w in report_alerts(report):        # by kind: a warning's text is for people, not for code
        if w["kind"] == NEGATIVE_TRANSFER:
            st.error(w["text"], icon=":material/trending_down:")
        else:
            st.warning(w["text"])
    headline(report)
    scratch_claim(report)
    no_pretraining_claim(report)
    if below_headline is not None:
        below_headline()
    skipped = baselines_skipped(report)
    if skipped:
        st.caption("Baselines not computed for this run: " + "; ".join(f"**{k}** — {v}" for k, v in skipped.items()) + ".")
    for note in report.get("notes") or []:
        st.caption(f"Note: {note}")
    left, right = st.columns(2)
    with left:
        title_bits = f"{m.label} with 95% CI: {b_name}, {a_name}" + (", baselines" if report.get("baselines") else "")
        st.plotly_chart(plots.metric_bars(metric_entries(report), metric=m.key,
                                          title=title_bits + ("" if m.higher_is_better else " (lower is better)"),
                                          y_max=1.12 if m.higher_is_better else None),
                        key=f"{key}-bars", width="stretch")
    with right:
        for view in _views(report, SIDE_VIEWS):
            view(report, key)
    for view in _views(report, BODY_VIEWS):
        view(report, key)
    calibration_section(report, key)     # only when the report has the block
    history = report_history(report)
    if history:
        st.plotly_chart(plots.training_curves(history, "Training curves"), key=f"{key}-curves", width="stretch")
    for view in _views(report, EXAMPLE_VIEWS):
        view(report, key)
    _seeds_section(report)
    _gain_table(report)
    problems = data.get("problems") or []
    if problems:
        with st.expander(f"{len(problems)} data problem(s) skipped"):
            st.write("\n".join(f"- {p}" for p in problems[:200]))


def ladder_rows(runs_reports: list[tuple[str, dict]]) -> list[dict]:
    """Strategy-ladder rows in each report's headline metric (the ladder holds reports of one task)."""
    rows = []
    for label, rep in runs_reports:
        m = task_of(rep).metric
        rows.append({"label": label, "before": _value(rep.get("before"), m.key),
                     "after": _value(rep.get("after"), m.key) or 0.0,
                     "after_ci": (rep.get("after") or {}).get(ci_key(m)),
                     "baselines": {k: v[m.key] for k, v in (rep.get("baselines") or {}).items()
                                   if isinstance(v, dict) and _value(v, m.key) is not None}})
    return rows


def headline_numbers(task: Optional[str], metrics: dict) -> tuple[str, Optional[float], Optional[float], Optional[float]]:
    """(metric label, before, after, improvement) from a run's stored headline metrics; improvement is
    positive when the run got better (for WER: before − after)."""
    m = task_of({"task": task}).metric
    b, a = metrics.get(f"before_{m.key}"), metrics.get(f"after_{m.key}")
    gain = None if b is None or a is None else (a - b if m.higher_is_better else b - a)
    return m.label, b, a, gain
