"""Experiment tracking (``--track``): a complete run logged to MLflow or written as TensorBoard event files.

:meth:`RunWriter.finish <tlcore.reporting.writer.RunWriter.finish>` calls :func:`track_run` once report.json and the
model card are in the run folder, and writes the report again with what came of it. Both trackers get the same
things, read from the report alone (so a finished run folder can be logged later the same way):

* the run's parameters: its config (``report["config"]``);
* per-epoch curves of "after" and of every trained baseline (the ``history`` rows), one step per epoch, as
  ``curves/<model>/<key>`` (e.g. ``curves/after/train_loss``, ``curves/scratch/val_accuracy``);
* the final metrics of ``before``, ``after`` and ``baseline/<name>`` with the bounds of their 95% intervals
  (``after/accuracy``, ``after/accuracy_ci95_low``, ``after/accuracy_ci95_high``) and the paired comparisons
  (``comparison/<reference>/difference`` with ``..._ci95_low`` / ``..._ci95_high``);
* MLflow: tags ``task``, ``strategy``, ``backbone`` (and modality, setting, version); report.json and README.md as
  artifacts; experiment ``MLFLOW_EXPERIMENT_NAME``, else the data set's name, else "transferlab"; run name = the
  run folder's name; server ``MLFLOW_TRACKING_URI`` (its retry and timeout variables apply as MLflow documents).
  TensorBoard: event files in ``RUN/tensorboard/``, the config and tags as text.

Tracking never fails a run: a failure (server down, a bad URI, the package missing) is one logged warning line and a
structured warning of kind ``tracking`` in the report. The report's ``tracking`` key says where the run went (the
copy of report.json given to MLflow is the one written before, without that key). Only the main process of a
multi-process run logs.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import math
import os
import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping
from urllib.parse import urlsplit, urlunsplit

from tlcore.device import is_main_process
from tlcore.evaluation.policy import TRACKING, alert
from tlcore.registry import Registry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Tracker:
    """One tracking backend: ``log(report, folder, run_name)`` returns where the run went (raises on failure);
    ``where()`` names the destination for a warning."""

    log: Callable[[dict, Path, str], dict]
    where: Callable[[], str]


TRACKERS: Registry[Tracker] = Registry("experiment tracker")
#: Folder names that name a split, not a data set: the data set is the folder above (DIR/target -> DIR).
_SPLIT_NAMES = {"source", "target", "eval", "unlabeled", "train", "test", "val", "validation", "data"}
_NOT_CURVES = {"epoch", "step", "stage"}


def track_run(report: dict, folder: str | Path, *, run_name: str) -> dict:
    """Log the run of ``report`` (its files in ``folder``) to the tracker its config names; return the report with
    ``tracking`` (where it went, or why not) and, on failure, a warning. The report is returned as it is when the
    config asks for no tracking or this is not the main process."""
    backend = (report.get("config") or {}).get("track") or "none"
    if backend == "none" or not is_main_process():
        return report
    printed = io.StringIO()
    try:
        # MLflow prints "View run ... at: URL" to stdout, where the CLI writes its JSON report: kept for the log
        with contextlib.redirect_stdout(printed):
            record = {"backend": backend, "status": "logged", **TRACKERS.get(backend).log(report, Path(folder), run_name)}
    except Exception as exc:    # any failure of the tracker or its server: the run itself is complete and stays so
        reason = _reason(exc, backend)
        text = (f"experiment tracking failed: the run was not logged to {_where(backend)} ({reason}); the run "
                "folder and its report are complete")
        log.warning(text)
        return {**report, "tracking": {"backend": backend, "status": "failed", "error": reason},
                "warnings": [*report.get("warnings", []), text],
                "warnings_detail": [*report.get("warnings_detail", []), {**alert(TRACKING, text), "backend": backend}]}
    if printed.getvalue().strip():
        log.info(printed.getvalue().strip())
    return {**report, "tracking": record}


def _where(backend: str) -> str:
    return TRACKERS.get(backend).where() if backend in TRACKERS else backend


def _reason(exc: Exception, backend: str) -> str:
    """Why tracking failed, in one short clause: a missing package, a server that did not answer (the root cause
    of MLflow's long retry message), or the error's first line."""
    if isinstance(exc, ImportError):
        return f"the {(exc.name or backend).split('.')[0]} package is not installed: pip install -r requirements.txt"
    root, seen = exc, 0
    while (root.__cause__ or root.__context__) is not None and seen < 20:
        root, seen = root.__cause__ or root.__context__, seen + 1
    if isinstance(root, (ConnectionError, TimeoutError, socket.gaierror)):
        return f"no answer from the server: {type(root).__name__}: {root.strerror or root}"
    first = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first[:240]}{'...' if len(first) > 240 else ''}"


# ------------------------------------------------------------------ what is logged, read from the report

def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _block_metrics(prefix: str, block: Mapping) -> Iterator[tuple[str, float]]:
    """The numbers of one metric block: scalars as they are, ``<metric>_ci95`` pairs as ``_low`` / ``_high``."""
    for key, value in block.items():
        if _number(value):
            yield f"{prefix}/{key}", float(value)
        elif key.endswith("ci95") and isinstance(value, (list, tuple)) and len(value) == 2 and all(map(_number, value)):
            yield f"{prefix}/{key}_low", float(value[0])
            yield f"{prefix}/{key}_high", float(value[1])


def final_metrics(report: Mapping) -> dict[str, float]:
    """``before/...``, ``after/...``, ``baseline/<name>/...`` and ``comparison/<reference>/...`` (module docstring)."""
    blocks = [("before", report.get("before")), ("after", report.get("after"))]
    blocks += [(f"baseline/{name}", block) for name, block in (report.get("baselines") or {}).items()]
    blocks += [(f"comparison/{ref}", block) for ref, block in (report.get("comparisons") or {}).items()]
    return {key: value for prefix, block in blocks if isinstance(block, Mapping)
            for key, value in _block_metrics(prefix, block)}


def _histories(report: Mapping) -> Iterator[tuple[str, list]]:
    """(model, history rows) of every trained model: "after" (rows may name their own stage), the per-stage blocks
    of tasks that train in stages (NER: source, after), every baseline with a training history."""
    training = report.get("training") or {}
    yield "after", training.get("history") or []
    for stage, block in training.items():
        if isinstance(block, Mapping) and isinstance(block.get("history"), list):
            yield str(stage), block["history"]
    for name, block in (report.get("baselines") or {}).items():
        info = block.get("training") if isinstance(block, Mapping) else None
        if isinstance(info, Mapping) and isinstance(info.get("history"), list):
            yield str(name), info["history"]


def curves(report: Mapping) -> dict[str, list[tuple[int, dict[str, float]]]]:
    """Model -> [(epoch, {key: value})] from the training histories: one step per epoch (or step) row."""
    out: dict[str, list[tuple[int, dict[str, float]]]] = {}
    for model, rows in _histories(report):
        for i, row in enumerate(r for r in rows if isinstance(r, Mapping)):
            step = row.get("epoch", row.get("step", i + 1))
            values = {k: float(v) for k, v in row.items() if k not in _NOT_CURVES and _number(v)}
            if values and _number(step):
                out.setdefault(str(row.get("stage") or model), []).append((int(step), values))
    return out


def params(report: Mapping) -> dict[str, str]:
    """The config as text parameters: strings as they are, everything else as JSON (lists, numbers, null)."""
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in (report.get("config") or {}).items()}


def run_tags(report: Mapping) -> dict[str, str]:
    keys = ("task", "strategy", "backbone", "modality", "setting", "tlcore_version")
    return {k: str(report[k]) for k in keys if report.get(k) is not None}


def dataset_name(config: Mapping) -> str:
    """The data set a run used, by its folder or file name (DIR/target -> DIR; reviews.csv -> reviews), or ''."""
    path = next((config.get(role) for role in ("target", "source", "unlabeled", "eval") if config.get(role)), None)
    if not path:
        return ""
    p = Path(str(path)).expanduser()
    name = p.stem if p.suffix else p.name
    return p.parent.name if name.lower() in _SPLIT_NAMES and p.parent.name else name


def _safe_uri(uri: str) -> str:
    """The tracking URI without a password (a report is shared; credentials stay out of it)."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{parts.hostname}"
                                            + (f":{parts.port}" if parts.port else "")))


# ------------------------------------------------------------------ the trackers

def log_mlflow(report: dict, folder: Path, run_name: str) -> dict:
    """One MLflow run (module docstring) through ``MlflowClient``: no global active run is touched, so a notebook's
    own MLflow run is left as it is. Returns where the run went."""
    # mlflow is a heavy optional dependency (its client pulls in a few dozen packages): imported when asked for
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    experiment = os.environ.get("MLFLOW_EXPERIMENT_NAME") or dataset_name(report.get("config") or {}) or "transferlab"
    found = client.get_experiment_by_name(experiment)
    experiment_id = found.experiment_id if found is not None else client.create_experiment(experiment)
    run = client.create_run(experiment_id, run_name=run_name, tags=run_tags(report))
    run_id, now = run.info.run_id, int(time.time() * 1000)
    try:
        metrics = [Metric(k, v, now, 0) for k, v in final_metrics(report).items()]
        metrics += [Metric(f"curves/{model}/{k}", v, now, step)
                    for model, rows in curves(report).items() for step, values in rows for k, v in values.items()]
        entries = [Param(k, v) for k, v in params(report).items()]
        for i in range(0, len(entries), 100):        # MLflow takes at most 100 parameters in one batch
            client.log_batch(run_id, params=entries[i:i + 100])
        for i in range(0, len(metrics), 1000):       # ... and at most 1000 metrics
            client.log_batch(run_id, metrics=metrics[i:i + 1000])
        for name in ("report.json", "README.md"):
            if (folder / name).is_file():
                client.log_artifact(run_id, str(folder / name))
    except BaseException:
        try:
            client.set_terminated(run_id, status="FAILED")
        except Exception:        # the server that failed above may fail this too; the first error is the one told
            pass
        raise
    client.set_terminated(run_id, status="FINISHED")
    uri = _safe_uri(str(client.tracking_uri))
    page = f"{uri.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}" if uri.startswith("http") else None
    return {"tracking_uri": uri, "experiment": experiment, "experiment_id": experiment_id, "run_id": run_id,
            "run_name": run_name, **({"run_url": page} if page else {})}


def log_tensorboard(report: dict, folder: Path, run_name: str) -> dict:
    """TensorBoard event files in ``folder/tensorboard`` (module docstring): curves per epoch, final metrics at
    step 0, the config and tags as text. Returns the log folder, relative to the run folder."""
    # tensorboard is a heavy optional dependency (torch's writer imports it on import): imported when asked for
    from torch.utils.tensorboard import SummaryWriter

    logdir = folder / "tensorboard"
    shutil.rmtree(logdir, ignore_errors=True)     # an earlier attempt's events would double every curve
    writer = SummaryWriter(log_dir=str(logdir))
    try:
        for model, rows in curves(report).items():
            for step, values in rows:
                for k, v in values.items():
                    writer.add_scalar(f"curves/{model}/{k}", v, step)
        for k, v in final_metrics(report).items():
            writer.add_scalar(k, v, 0)
        table = "\n".join(f"| {k} | {v} |" for k, v in params(report).items())
        writer.add_text("config", f"| setting | value |\n|---|---|\n{table}")
        writer.add_text("run", ", ".join(f"{k}: {v}" for k, v in {"run": run_name, **run_tags(report)}.items()))
    finally:
        writer.close()
    return {"logdir": "tensorboard"}


TRACKERS.register("mlflow", Tracker(log_mlflow, lambda: "MLflow at " + _safe_uri(os.environ.get("MLFLOW_TRACKING_URI")
                                                                                 or "its default store")))
TRACKERS.register("tensorboard", Tracker(log_tensorboard, lambda: "TensorBoard event files in RUN/tensorboard/"))
