"""Compare: before vs after on the same eval split; several runs of one data set = the strategy ladder."""

from ui.entry import via_app

via_app()

import streamlit as st

from tlcore import plots
from tlcore.reporting.envelope import comparison_key
from tlcore.runs.models import SEEDS_JOB
from tlcore.tasks import task_of
from ui.demos import followups_of
from ui.errors import error_section
from ui.progress import finished_note, followup_progress, live_progress
from ui.report import _value, ladder_rows, phase_names, render_report
from ui.runs import get_run, is_finetune_run, read_report, run_picker, selected_run_id, visible_runs

st.title("Compare")
everything = visible_runs()
runs = [r for r in everything if is_finetune_run(r)]  # follow-ups show inside the run they complete; analyses on Analyze
if not runs:
    st.info("No runs yet. Start one from **Home** (one-click demos) or **Fine-tune**.")
    st.stop()

selected = get_run(selected_run_id())
if selected is not None and not is_finetune_run(selected):
    selected = None  # e.g. a clustering run's id: Compare shows fine-tuning runs only
run = run_picker("Run", runs if selected is None or selected.id in {r.id for r in runs} else [selected, *runs], key="cmp-run")
assert run is not None
if not run.is_finished:
    st.subheader(f"{run.name}: in progress")
    st.caption("Training runs in the background: you can reload or close this tab, the run goes on.")
    live_progress(run.id)
    st.stop()
report = read_report(run) if run.status == "done" else None
if report is None:
    finished_note(run)
    if run.status == "done":
        st.error("This run has no readable report.json in its folder.")
    st.stop()

followups = followups_of(run, everything)
scratch_pending = [f for f in followups if f.job != SEEDS_JOB and not f.is_finished
                   and "scratch" not in (report.get("baselines") or {})]
if scratch_pending:
    # Not "skipped": it is on its way.
    report = {**report, "baselines_skipped": {k: v for k, v in (report.get("baselines_skipped") or {}).items()
                                              if k != "scratch"}}
seeds_pending = [f for f in followups if f.job == SEEDS_JOB and not f.is_finished]
pending = [(f, "Scratch baseline (the same network trained from random weights on the same labels)")
           for f in scratch_pending]
pending += [(f, f"More training seeds ({f.config.get('seeds')} in all: the spread shows as each one arrives)")
            for f in seeds_pending]
render_report(report, key="cmp", title=run.name, below_headline=(lambda: [
    followup_progress(f.id, what, watch=run.out / "report.json") for f, what in pending]) if pending else None)
for f in followups:
    if f.status in ("failed", "cancelled") and (f.job == SEEDS_JOB or "scratch" not in (report.get("baselines") or {})):
        what = "seeds" if f.job == SEEDS_JOB else "scratch-baseline"
        st.warning(f"The {what} follow-up {f.status}" + (f": {f.error}" if f.error else "."))
st.divider()
error_section(report, key="cmp")

if run.dataset and task_of(report).seeds and report.get("setting", "inductive") == "inductive":
    st.page_link("pages/analyze.py", label="Which strategy? Compare every strategy and baseline on this data set",
                 query_params={"tab": "sweep", "data": run.dataset}, icon=":material/leaderboard:")

same_data = [r for r in runs if r.status == "done" and r.dataset and r.dataset == run.dataset
             and task_of(r.config) == task_of(report)]
if len(same_data) > 1:
    st.divider()
    st.subheader("Strategy ladder: the comparable finished runs on this data set")
    others = st.multiselect("Runs", [r.id for r in same_data], default=[r.id for r in same_data][:8],
                            format_func=lambda i: next(r.name for r in same_data if r.id == i), key="cmp-ladder")
    key = comparison_key(report)      # the same task, setting, eval items and truth: else not comparable
    read = [(r.name, rep) for r in same_data if r.id in others and (rep := read_report(r)) is not None]
    pairs = [(n, rep) for n, rep in read if comparison_key(rep) == key]
    left_out = [n for n, rep in read if comparison_key(rep) != key]
    if left_out:
        st.caption(f"Not in the ladder (scored on other eval items, or another task or setting, so not comparable "
                   f"with this run): {', '.join(left_out)}.")
    if pairs:
        spec = task_of(report)
        m = spec.metric
        better = "95% CI" if m.higher_is_better else "lower is better"
        st.plotly_chart(plots.strategy_ladder(ladder_rows(pairs), metric=m.key,
                                              title=f"{m.label} after transfer (bars, {better}), before (line) and "
                                                    "baselines", y_max=1.05 if m.higher_is_better else None),
                        key="cmp-ladder-fig", width="stretch")

        def _r(x):
            return None if x is None else round(x, 3)

        st.dataframe([{"run": n, "strategy": rep.get("strategy"), "backbone": rep.get("backbone"),
                       "setting": rep.get("setting", "inductive"),
                       f"{m.label} {phase_names(rep)[0]}": _r(_value(rep.get("before"), m.key)),
                       f"{m.label} {phase_names(rep)[1]}": _r(_value(rep.get("after"), m.key)),
                       f"{spec.second.label} after": _r(_value(rep.get("after"), spec.second.key)),
                       **{k: _r(_value(v, m.key)) for k, v in (rep.get("baselines") or {}).items()
                          if isinstance(v, dict)}}
                      for n, rep in pairs], hide_index=True, width="stretch")
