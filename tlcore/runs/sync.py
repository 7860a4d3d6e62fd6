"""What a worker copies to and from the artifact store (:mod:`tlcore.artifacts`) around a job.

The engine always works in a local folder, ``store.artifact_dir(run_id)`` on the worker's own disk (fast, atomic
renames). Around it the worker:

* before the job: points ``out`` at that folder, fetches the run's data sets by content hash into its cache
  (``home()/cache/sets``), and on a resume fetches the newest checkpoint snapshot into the staging folder the
  run writer resumes from (a fresh attempt drops older snapshots instead);
* while the job runs: uploads each new complete checkpoint (:class:`CheckpointSync`), so a run whose host dies
  resumes on another host from its last checkpoint;
* after the job: uploads the finished run folder; only then is the run marked done.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any, Optional

from tlcore import storage
from tlcore.artifacts import ArtifactStore
from tlcore.paths import cache_dir
from tlcore.runs.models import completed_run
from tlcore.runs.queue import Claim
from tlcore.runs.store import DATA_KEYS, RunStore

log = logging.getLogger(__name__)


def staging_checkpoints(out: Path) -> Path:
    """``checkpoints/`` of this process's staging folder for run folder ``out`` (see ``RunWriter``)."""
    out = Path(os.path.abspath(out))
    return out.parent / f".{out.name}.partial-{os.getpid()}" / "checkpoints"


def job_checkpoints(out: Path, since: float = 0.0) -> Path:
    """Where the job's checkpoints are now: this process's staging folder, or that of a process it started (rank 0
    of a multi-process run takes the folder over under its own pid; once it has exited, its folder changed since
    ``since``, the job's start) - the newest one that exists."""
    import psutil

    from tlcore.reporting.writer import RunWriter

    try:
        mine = {os.getpid()} | {c.pid for c in psutil.Process().children(recursive=True)}
    except psutil.Error:
        mine = {os.getpid()}
    found = []
    for folder, pid in RunWriter(out, {}).partials():
        ckpt = folder / "checkpoints"
        try:
            if not ckpt.is_dir():
                continue
            written = max((f.stat().st_mtime for f in ckpt.rglob("*") if f.is_file()), default=0.0)
            if pid in mine or (not psutil.pid_exists(pid) and written >= since):
                found.append((written, str(ckpt)))
        except OSError:
            continue                                    # renamed or removed while we looked
    return Path(max(found)[1]) if found else staging_checkpoints(out)


def fetch_inputs(artifacts: ArtifactStore, config: dict, inputs: Optional[dict]) -> dict:
    """``config`` with each data set of ``inputs`` replaced by its local copy (downloaded on first use)."""
    config = dict(config)
    for key, ref in (inputs or {}).items():
        config[key] = str(artifacts.get_set(ref, cache_dir("sets")))
    return config


def prepare(store: RunStore, claim: Claim) -> dict:
    """Before the job (module docstring): the config the job runs with on this host."""
    artifacts = store.artifacts
    assert artifacts is not None
    out = store.artifact_dir(claim.run_id)
    config = fetch_inputs(artifacts, {**claim.config, "out": str(out)}, claim.inputs)
    if completed_run(config):                        # a follow-up completes a finished run: bring it here
        config["parent_out"] = str(fetch_parent(store, completed_run(config)))
    if not claim.resume:
        artifacts.delete_checkpoints(claim.run_id)   # a fresh attempt never resumes an older one's snapshot
    elif not (out / "report.json").is_file():
        ckpt = staging_checkpoints(out)
        if artifacts.get_checkpoints(claim.run_id, ckpt):
            prefix = f".{out.name}.partial-"         # the store's snapshot is the newest: other local ones go
            for p in out.parent.glob(prefix + "*"):
                if p != ckpt.parent:
                    shutil.rmtree(p, ignore_errors=True)
            log.info("run %s: resuming from the checkpoint in %s", claim.run_id, artifacts.url)
    return config


def fetch_parent(store: RunStore, parent_id: str) -> Path:
    """A finished run's folder on this host, with the data paths in its config.json pointing at local copies."""
    artifacts = store.artifacts
    assert artifacts is not None
    parent = store.get(parent_id)
    folder = store.artifact_dir(parent_id)
    storage.lease(folder)                            # amended here before it is uploaded again: never evicted meanwhile
    storage.stored_stamp(folder).unlink(missing_ok=True)
    artifacts.get_run(parent_id, folder)             # always fresh: another follow-up may have amended it
    config_file = folder / "config.json"
    if parent.inputs and config_file.is_file():
        saved = json.loads(config_file.read_text(encoding="utf-8"))
        local = fetch_inputs(artifacts, saved, {k: v for k, v in parent.inputs.items() if k in DATA_KEYS})
        config_file.write_text(json.dumps(local, indent=2), encoding="utf-8")
    return folder


def publish(store: RunStore, claim: Claim, config: dict) -> None:
    """After the job: upload the run folder (and an amended parent's); then drop the run's checkpoints."""
    artifacts = store.artifacts
    assert artifacts is not None
    artifacts.put_run(claim.run_id, Path(config["out"]))
    store.mark_stored(claim.run_id)
    if completed_run(config) and config.get("parent_out"):
        artifacts.put_run(completed_run(config), Path(config["parent_out"]))
        store.mark_stored(completed_run(config))
    storage.evict_after_write(keep=Path(config["out"]))
    try:
        artifacts.delete_checkpoints(claim.run_id)
    except Exception:  # leftovers cost space, not correctness: a done run is never resumed
        log.warning("run %s: could not delete its checkpoints from %s", claim.run_id, artifacts.url, exc_info=True)


class CheckpointSync:
    """A daemon thread that uploads each new complete checkpoint of run folder ``out`` every ``interval_s``
    (and once more when the job ends, so a run that yielded or was stopped resumes from its newest one)."""

    def __init__(self, artifacts: Optional[ArtifactStore], run_id: str, out: Path, interval_s: float):
        self.artifacts, self.run_id, self.interval_s = artifacts, run_id, interval_s
        self.out, self.started = Path(out), time.time()
        self.uploads = 0
        self._signature: Optional[tuple] = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"ckpt-sync-{run_id[:8]}", daemon=True)

    def __enter__(self) -> CheckpointSync:
        if self.artifacts is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.artifacts is None:
            return
        self._done.set()
        self._thread.join(timeout=60)
        self.sync()

    def sync(self) -> None:
        """Upload the checkpoints if a new complete set is there; errors are logged and retried next time."""
        folder = job_checkpoints(self.out, self.started)
        if self.artifacts is None or not folder.is_dir():
            return
        try:
            signature = self.artifacts.put_checkpoints(self.run_id, folder, signature=self._signature)
        except Exception:
            log.warning("run %s: checkpoint upload failed; will retry", self.run_id, exc_info=True)
            return
        if signature is not None and signature != self._signature:
            self._signature = signature
            self.uploads += 1

    def _loop(self) -> None:
        while not self._done.wait(self.interval_s):
            self.sync()
