"""What the worker hands a job: a throttled progress writer, a cached cancel check, a heartbeat
thread, and headline metrics from its report (the job itself is found by :mod:`tlcore.runs.job_paths`)."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tlcore.progress import Progress
from tlcore.runs import queue
from tlcore.runs.queue import Claim
from tlcore.runs.store import RunStore

log = logging.getLogger(__name__)


class ProgressWriter:
    """A ``ProgressFn`` that stores events at most once per ``min_interval_s``.

    Events in between are buffered, not lost: per-epoch metrics all reach the history and the
    newest event becomes ``progress['last']`` at the next write or at ``flush()``.
    """

    def __init__(self, store: RunStore, run_id: str, min_interval_s: float = 0.5):
        self.store, self.run_id, self.min_interval_s = store, run_id, min_interval_s
        self.writes = 0
        self._pending: list[dict] = []
        self._last_write = float("-inf")
        self._lock = threading.Lock()

    def __call__(self, event: Progress) -> None:
        ev = event.to_dict() if isinstance(event, Progress) else dict(event)
        with self._lock:
            # Only epoch events matter for the history; an older plain event is superseded by this one.
            if self._pending and "epoch" not in (self._pending[-1].get("metrics") or {}):
                self._pending.pop()
            self._pending.append(ev)
            due = time.monotonic() - self._last_write >= self.min_interval_s or ev.get("stage") == "done"
        if due:
            self.flush()

    def flush(self) -> None:
        """Write whatever is buffered now (the worker calls this when the job ends)."""
        with self._lock:
            pending, self._pending = self._pending, []
            self._last_write = time.monotonic()
        if not pending:
            return
        try:
            self.store.update_progress(self.run_id, *pending)
            self.writes += 1
        except Exception:  # a busy database must not kill a training run; retry with the next event
            log.warning("run %s: could not store progress; will retry", self.run_id, exc_info=True)
            with self._lock:
                self._pending = (pending + self._pending)[-1000:]


class CancelCheck:
    """A ``CancelFn`` that asks the database at most once per ``min_interval_s`` and then stays True."""

    def __init__(self, store: RunStore, claim: Claim, min_interval_s: float = 1.0):
        self.store, self.claim, self.min_interval_s = store, claim, min_interval_s
        self._stop = False
        self.yielded = False  # stopped to let a run a user waits for go first (follow-ups only)
        self._checked = float("-inf")

    def force(self) -> None:
        """Make the job stop at its next check (e.g. the run was taken over by another worker)."""
        self._stop = True

    def __call__(self) -> bool:
        if not self._stop and time.monotonic() - self._checked >= self.min_interval_s:
            self._checked = time.monotonic()
            try:
                self._stop = queue.should_stop(self.store, self.claim)
                if not self._stop and queue.should_yield(self.store, self.claim):
                    self._stop = self.yielded = True
            except Exception:
                log.warning("run %s: cancel check failed; will retry", self.claim.run_id, exc_info=True)
        return self._stop


class Heartbeat:
    """A daemon thread that refreshes the claim's heartbeat every ``interval_s`` while the job runs."""

    def __init__(self, store: RunStore, claim: Claim, interval_s: float, on_lost: Callable[[], None]):
        self.store, self.claim, self.interval_s, self.on_lost = store, claim, interval_s, on_lost
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"heartbeat-{claim.run_id[:8]}", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._done.set()
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._done.wait(self.interval_s):
            try:
                if not queue.heartbeat(self.store, self.claim):
                    log.warning("run %s is no longer ours (finished, deleted or taken over)", self.claim.run_id)
                    self.on_lost()
                    return
            except Exception:
                log.warning("run %s: heartbeat failed; will retry", self.claim.run_id, exc_info=True)


def headline_metrics(report: dict | None) -> dict:
    """Numbers for the runs table: ``before_<m>``/``after_<m>`` for every numeric metric, the accuracy
    gain, and ``<baseline>_accuracy``."""
    report = report or {}
    out: dict = {}
    for phase in ("before", "after"):
        for key, value in (report.get(phase) or {}).items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                out[f"{phase}_{key}"] = float(value)
    if "before_accuracy" in out and "after_accuracy" in out:
        out["accuracy_gain"] = out["after_accuracy"] - out["before_accuracy"]
    for name, values in (report.get("baselines") or {}).items():
        if isinstance(values, dict) and isinstance(values.get("accuracy"), (int, float)):
            out[f"{name}_accuracy"] = float(values["accuracy"])
    return {**out, **analysis_metrics(report)}


def analysis_metrics(report: dict) -> dict:
    """An analysis's headline, so a runs list needs no report: clustering NMI of raw inputs and of pretrained
    features (``cluster_scored`` 0 without labels); the curve's last (largest) point, scratch and pretrained; the
    sweep's best strategy and strongest baseline without pretrained weights."""
    if report.get("kind") == "cluster":
        pre, raw = report.get("pretrained") or {}, report.get("raw") or {}
        if "nmi" in pre and "nmi" in raw:
            return {"cluster_scored": 1.0, "raw_nmi": float(raw["nmi"]), "pretrained_nmi": float(pre["nmi"])}
        return {"cluster_scored": 0.0}
    if report.get("kind") == "curve" and report.get("points"):
        last = report["points"][-1]
        out = {"curve_shots": float(last["shots"]), "curve_all": float(bool(last.get("all"))),
               "curve_pretrained_accuracy": float(last["pretrained"]["mean"])}
        if (last.get("scratch") or {}).get("mean") is not None:
            out["curve_scratch_accuracy"] = float(last["scratch"]["mean"])
        return out
    if report.get("kind") == "sweep" and report.get("strategies"):
        key = report["metric"]
        best = next(r for r in report["strategies"] if r["strategy"] == report["best"])
        plain = [b[key] for b in (report.get("baselines") or {}).values() if b.get("no_pretraining")]
        return {"sweep_best": float(best[key]), **({"sweep_no_pretraining": float(max(plain))} if plain else {})}
    return {}


def read_report(out: Path) -> dict | None:
    """``out/report.json`` if the job wrote one and it is readable."""
    try:
        return json.loads((out / "report.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
