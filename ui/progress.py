"""Live progress of a queued or running run, read from the run store (so reloads and closed tabs change nothing)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Optional

import streamlit as st

from tlcore import plots
from tlcore.runs import RunNotFound
from tlcore.runs.records import Run
from ui.auth import can_see
from ui.runs import get_store, start_worker

POLL_S = 1.0
STAGE_ORDER = ["data", "features: train", "features: eval", "features: source", "before", "train", "eval",
               "scratch", "save", "done"]


def overall_fraction(stage: str, step: int, total: int) -> float:
    """Progress of the current stage (0..1); the stage name is in the bar's label."""
    if stage == "done":
        return 1.0
    return min(1.0, max(0.0, step / total)) if total else 0.0


def _fmt_s(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


def render_status(run: Run) -> None:
    """The progress bar with stage, ETA, elapsed time and the live curves of one unfinished run."""
    last = (run.progress or {}).get("last") or {}
    history = (run.progress or {}).get("history") or []
    if run.status == "queued":
        st.progress(0.0, text="Queued: waiting for the background worker…")
    else:
        stage, step, total = last.get("stage", "starting"), int(last.get("step") or 0), int(last.get("total") or 0)
        counts = f" ({step}/{total})" if total > 1 else ""
        msg = last.get("message") or ""
        st.progress(overall_fraction(stage, step, total), text=f"**{stage}**{counts}: {msg}")
        bits = []
        if run.duration_s is not None:
            bits.append(f"elapsed {_fmt_s(run.duration_s)}")
        if last.get("eta_s") is not None:
            bits.append(f"this stage ≈ {_fmt_s(float(last['eta_s']))} left")
        metrics = last.get("metrics") or {}
        if metrics.get("epoch") is not None:
            bits.append(f"epoch {metrics['epoch']}")
        if run.cancel_requested:
            bits.append("cancel requested: stopping at the next check")
        st.caption(" · ".join(bits) or "starting…")
    curves = _plotted(history)
    if curves:
        st.plotly_chart(_curves(json.dumps(curves, sort_keys=True, default=str)), key=f"curves-{run.id}",
                        width="stretch")
    elif history:
        st.caption("The loss and validation curves appear when the first epoch ends.")


CURVE_KEYS = ("train_loss", *(key for key, _ in plots.VAL_SCORES))


def _plotted(history: list) -> list[dict]:
    """The epoch rows the curves draw, with only what they draw (a row still in its epoch has only a batch loss)."""
    return [{k: r[k] for k in ("stage", "epoch", *CURVE_KEYS) if r.get(k) is not None} for r in history
            if any(r.get(k) is not None for k in CURVE_KEYS)]


@st.cache_resource(max_entries=32, show_spinner=False)
def _curves(rows: str):
    """The live curves, built once per finished epoch and shared by every tab that shows the run: plotly takes
    about 0.1 s to build the figure, and the panel redraws every second."""
    return plots.training_curves(json.loads(rows))


def _poll(run_id: str, draw, *, deleted: str = "") -> None:
    """Every second (``st.fragment(run_every=...)``): read the run, say how it ended and rerun the whole page once it
    finished (it then shows the results), else ``draw(store, run)``. A queued run gets a worker (after a restart the queue survives,
    the worker may not)."""

    @st.fragment(run_every=POLL_S)
    def panel() -> None:
        store = get_store()
        try:
            run = store.get(run_id)
            if not can_see(run.owner):  # never another user's run, whatever id a caller passes
                raise RunNotFound(run_id)
        except RunNotFound:
            if deleted:
                st.warning(deleted)
            return
        if run.is_finished:
            # Say how it ended here first: the whole-page rerun below then shows the results, and should that rerun
            # be slow or lost (a busy server, a dropped connection), the panel still tells the truth.
            if run.status == "done":
                st.success("Finished: loading the results…")
            else:
                finished_note(run)
            st.rerun()
        if run.status == "queued":
            start_worker(store)
        draw(store, run)

    panel()


def live_progress(run_id: str, *, allow_cancel: bool = True) -> None:
    """The live status of one run until it finishes, with a cancel button."""

    def draw(store, run: Run) -> None:
        render_status(run)
        if allow_cancel and not run.cancel_requested:
            if st.button("Cancel run", key=f"cancel-{run_id}", icon=":material/stop_circle:"):
                store.request_cancel(run_id)
                st.toast("Cancel requested")

    _poll(run_id, draw, deleted="This run was deleted.")


def followup_progress(run_id: str, what: str, *, watch: Optional[Path] = None) -> None:
    """A follow-up job (the scratch baseline, more seeds) of the run on screen: what it is doing and its ETA; the page
    reruns (and so shows the amended report) when it finishes, and whenever the file ``watch`` changes (the run's
    report, which the seeds follow-up amends after each seed)."""
    seen = _mtime(watch)

    def draw(store, run: Run) -> None:
        if watch is not None and _mtime(watch) != seen:
            st.rerun()          # the report gained a seed: show it
        with st.container(border=True):
            if run.status == "queued":
                state = ("starts when this run's results are saved" if run.queued_at is None
                         else "queued: starts after the runs ahead of it")
                st.markdown(f":material/hourglass_top: **{what}**: {state}.")
            else:
                st.markdown(f":material/model_training: **{what}** — training in the background; this page fills it "
                            "in when it is done.")
                render_status(run)

    _poll(run_id, draw)


def _mtime(path: Optional[Path]) -> Optional[float]:
    try:
        return path.stat().st_mtime if path is not None else None
    except OSError:
        return None


def finished_note(run: Run) -> None:
    """One line for a finished run that has no results to show."""
    if run.status == "failed":
        st.error(f"This run failed: {run.error or 'unknown error'}")
    elif run.status == "cancelled":
        st.warning("This run was cancelled before it finished.")


def wait_for(run_id: str, timeout_s: float = 5.0) -> None:  # pragma: no cover - used by benchmarks only
    deadline = time.time() + timeout_s
    while time.time() < deadline and not get_store().get(run_id).is_finished:
        time.sleep(0.2)
