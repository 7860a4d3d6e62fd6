"""The run store as the app sees it: one store per data folder, starting runs, the selected run."""

from __future__ import annotations

import io
import json
import logging
import os
import zipfile
from pathlib import Path
from typing import Any, Optional

import streamlit as st

from tlcore import paths
from tlcore.config import FinetuneConfig
from tlcore.runs import RunNotFound, RunStore, ensure_worker
from tlcore.runs.errors import DatabaseUnavailable
from tlcore.runs.job_paths import config_class
from tlcore.runs.models import DEFAULT_JOB, FOLLOWUP_JOBS, completed_run
from tlcore.runs.records import Run
from ui.auth import can_see, current_user, is_admin, login_configured

WORKER_IDLE_EXIT_S = 600.0  # a worker the app started exits after 10 idle minutes; the app starts another when needed


@st.cache_resource(show_spinner=False)
def _store(home: str, db_url: str, artifacts_url: str = "") -> RunStore:
    return RunStore.open(db_url or None)  # the artifact store comes from the same environment (key only)


def get_store() -> RunStore:
    """The run store of the current data folder (``TRANSFERLAB_HOME``) or ``TRANSFERLAB_DB_URL``."""
    return _store(str(paths.home()), os.environ.get("TRANSFERLAB_DB_URL", ""),
                  os.environ.get("TRANSFERLAB_ARTIFACTS_URL", ""))


def require_store() -> None:
    """Stop the page with the one-line reason when the run database cannot be used (e.g. PostgreSQL is down);
    the next rerun tries again (``st.cache_resource`` does not keep a failed open)."""
    try:
        get_store()
    except DatabaseUnavailable as exc:
        st.error(f"{exc}", icon=":material/database:")
        st.stop()


def start_worker(store: RunStore) -> None:
    """Make sure a background worker serves the queue (cheap when one is alive); a new one makes the Home demos'
    data while it waits, so that a first click finds it made."""
    from tlcore.data.demos import DEFAULT_DEMOS  # here: the demo generators are not imported before a worker starts

    ensure_worker(store, idle_exit_s=WORKER_IDLE_EXIT_S, warm_demos=tuple(DEFAULT_DEMOS.values()))


def start_run(cfg: FinetuneConfig, *, name: str = "", dataset: Optional[str] = None) -> Run:
    """Store a run, queue it and make sure a worker will pick it up. Never trains in this thread. Settings are
    checked first by the same :meth:`FinetuneConfig.validate` the CLI uses (the run folder is assigned here)."""
    cfg.validate(need_out=False)
    store = get_store()
    run = store.create_run(cfg, name=name, owner=current_user(), dataset=dataset)
    store.enqueue(run.id)
    start_worker(store)
    return store.get(run.id)


# ------------------------------------------------------------------ run kinds: fine-tuning and the analyses
CLUSTER_JOB = "tlcore.api:cluster_job"
CURVE_JOB = "tlcore.api:curve_job"
SWEEP_JOB = "tlcore.api:sweep_job"
LEGACY_FINETUNE_JOBS = ("tlcore.settings.inductive:run_finetune",)   # runs queued before 0.2
KIND_LABELS = {"finetune": "fine-tune", "cluster": "clustering", "curve": "data-efficiency curve",
               "sweep": "strategy sweep", "followup": "follow-up", "other": "other job"}
ANALYSIS_JOBS = {CLUSTER_JOB: "cluster", CURVE_JOB: "curve", SWEEP_JOB: "sweep"}
ANALYSIS_KINDS = tuple(ANALYSIS_JOBS.values())    # shown on the Analyze page (and in share links) by report kind


def run_kind(run: Run) -> str:
    """``finetune``, ``cluster``, ``curve``, ``sweep``, ``followup`` (completes another run, e.g. its scratch
    baseline) or ``other``, from the job the run was queued with."""
    job = run.job or DEFAULT_JOB
    if job in ANALYSIS_JOBS:
        return ANALYSIS_JOBS[job]
    if job in FOLLOWUP_JOBS:
        return "followup"
    if job == DEFAULT_JOB or job in LEGACY_FINETUNE_JOBS:
        return "finetune"
    return "finetune" if config_class(job) is FinetuneConfig else "other"


def is_finetune_run(run: Run) -> bool:
    """True for fine-tuning / adaptation runs (a model before and after: what Compare and Try it show); False for
    the analyses (clustering, data-efficiency curve) and other jobs."""
    return run_kind(run) == "finetune"


def run_page(run: Run) -> tuple[str, str]:
    """(page, run id) that shows this run: Analyze for the analyses, Compare with the completed run for a follow-up,
    Compare for everything else."""
    kind = run_kind(run)
    if kind in ANALYSIS_KINDS:
        return "pages/analyze.py", run.id
    if kind == "followup" and completed_run(run.config):
        return "pages/compare.py", str(completed_run(run.config))
    return "pages/compare.py", run.id


def start_analysis(cfg: Any, *, job: str, name: str = "", dataset: Optional[str] = None) -> Run:
    """Like :func:`start_run` for an analysis (``ClusterConfig`` with ``CLUSTER_JOB``, ``CurveConfig`` with
    ``CURVE_JOB``): checked by the config's own ``validate``, stored, queued, and a worker made sure of."""
    cfg.validate(need_out=False)
    store = get_store()
    run = store.create_run(cfg.to_dict(), name=name, owner=current_user(), dataset=dataset, job=job)
    store.enqueue(run.id)
    start_worker(store)
    return store.get(run.id)


def visible_runs(status: Optional[str] = None) -> list[Run]:
    """The runs this user may see (:func:`ui.auth.may_see`): all of them in local mode and for admins, else only
    the user's own (never the ownerless runs made before login was enabled)."""
    store = get_store()
    if not login_configured() or is_admin():
        runs = store.list_runs(status=status)
    else:
        user = current_user()
        if user is None:
            return []
        runs = store.list_runs(owner=user, status=status)
    return runs   # no folders fetched here: with an artifact store a page fetches the one run it shows (local_folder)


def local_folder(run: Run) -> Path:
    """The run's folder on this machine: with a shared artifact store (``TRANSFERLAB_ARTIFACTS_URL``) a finished
    run's folder is downloaded on first open; without one it is ``run.out``. A store that cannot be reached
    leaves the folder missing (the page then says the report cannot be read)."""
    try:
        return get_store().run_folder(run)
    except Exception:  # noqa: BLE001 - a page shows "no readable report" rather than a traceback
        logging.getLogger(__name__).warning("could not fetch run %s from the artifact store", run.id, exc_info=True)
        return run.out


def get_run(run_id: Optional[str]) -> Optional[Run]:
    """The run if it exists and this user may see it, else None (another user's run reads as "not found")."""
    if not run_id:
        return None
    try:
        run = get_store().get(run_id)
    except RunNotFound:
        return None
    if not can_see(run.owner):
        return None
    local_folder(run)
    return run


def selected_run_id() -> Optional[str]:
    return st.query_params.get("run")


def select_run(run_id: Optional[str]) -> None:
    if run_id:
        st.query_params["run"] = run_id
    elif "run" in st.query_params:
        del st.query_params["run"]


def read_report(run: Run) -> Optional[dict]:
    try:
        return json.loads((local_folder(run) / "report.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def run_label(run: Run) -> str:
    # No status or scores here: a selectbox keeps its first labels while a run changes state.
    kind = run_kind(run)
    prefix = f"[{KIND_LABELS[kind]}] " if kind in ANALYSIS_KINDS else ""
    return f"{prefix}{run.name} · {run.created_at:%Y-%m-%d %H:%M} · {run.id[:6]}"


def run_picker(label: str, runs: list[Run], key: str) -> Optional[Run]:
    """A selectbox over ``runs`` that follows and sets ``?run=`` so reloads keep the choice."""
    if not runs:
        return None
    ids = [r.id for r in runs]
    current = selected_run_id()
    index = ids.index(current) if current in ids else 0
    chosen = st.selectbox(label, ids, index=index, format_func=lambda i: run_label(runs[ids.index(i)]), key=key)
    if chosen != current:
        select_run(chosen)
    return runs[ids.index(chosen)]


def model_zip(folder: Path) -> bytes:
    """The exported model folder as zip bytes (for the download button)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(folder.rglob("*")):
            if f.is_file():
                zf.write(f, f"model/{f.relative_to(folder)}")
        for extra in ("report.json", "README.md", "config.json"):
            if (folder.parent / extra).exists():
                zf.write(folder.parent / extra, extra)
    return buf.getvalue()
