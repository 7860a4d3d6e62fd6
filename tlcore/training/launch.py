"""Start a run on N processes on this machine: ``python -m torch.distributed.run`` (the launcher under
``accelerate launch``) runs the CLI once per process; each joins the process group through Accelerate
(:mod:`tlcore.device`: gloo on the CPU, NCCL on CUDA) and the one trainer averages gradients across them.
Rank 0 writes the run folder; this process reads its report. Rank 0 also appends its progress events, one JSON
line each, to a file this process follows (``PROGRESS_ENV``), so the CLI bar and the app's live stage work as on
one process; a cancel (``should_cancel``) stops every process of the run, leaving rank 0's last checkpoint for ``--resume``.

On several machines, start the processes with ``accelerate launch`` yourself (see docs/deploy.md): a run started
under a launcher takes the launcher's process count and launches nothing.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

from tlcore.progress import CancelFn, Progress, ProgressFn, never_cancel, no_progress
from tlcore.storage import LAUNCH_PREFIX, owned_scratch_prefix

CHILD_ENV = "TLCORE_LAUNCHED_CHILD"     # set in the processes this module starts: they leave reporting to it
PROGRESS_ENV = "TLCORE_PROGRESS_FILE"   # where rank 0 of a launched run appends its progress events (JSON lines)
LAUNCHER_ENV = "TLCORE_LAUNCHER_PID"    # the launching process: its staging folder is the ranks' to take over
SCRATCH_ENV = "TLCORE_LAUNCH_SCRATCH"   # a folder the launcher removes at the end: the other ranks' scratch goes there
POLL_S = 0.25                           # how often the launching process reads progress and asks should_cancel
STOP_GRACE_S = 20.0                     # after SIGTERM, how long the processes get before SIGKILL


def config_argv(cfg) -> list[str]:
    """The ``finetune`` command line that gives back ``cfg`` (every field that differs from its default)."""
    argv = []
    for f in dataclasses.fields(cfg):
        value, default = getattr(cfg, f.name), (f.default if f.default is not dataclasses.MISSING
                                                 else f.default_factory())  # type: ignore[misc]
        if f.name == "num_processes" or value == default:
            continue
        flag = "--" + f.name.replace("_", "-")
        if isinstance(value, bool):
            argv += [flag] if value else []
        elif isinstance(value, (list, tuple)):
            argv += [flag, ",".join(map(str, value))]
        elif value is not None:
            argv += [flag, str(value)]
    if not cfg.baselines:
        argv += ["--baselines", ""]
    return argv


def progress_to_file(path: str, also: ProgressFn = no_progress) -> ProgressFn:
    """A progress function for rank 0 of a launched run: each event is appended to ``path`` (and passed on)."""
    def emit(ev: Progress) -> None:
        also(ev)
        with open(path, "a", encoding="utf-8") as f:         # one short line per event: appends do not interleave
            f.write(json.dumps(ev.to_dict(), default=float) + "\n")
    return emit


class _Follower:
    """Reads the complete lines added to a progress file since the last call."""

    def __init__(self, path: str):
        self.path, self.offset = path, 0

    def events(self) -> list[Progress]:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                chunk = f.read()
        except FileNotFoundError:
            return []
        complete = chunk[:chunk.rfind(b"\n") + 1]
        self.offset += len(complete)
        out = []
        for line in complete.splitlines():
            try:
                out.append(Progress(**json.loads(line)))
            except (ValueError, TypeError):
                continue                                       # progress is advisory: skip a line it cannot read
        return out


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM the launcher and every rank under it, then SIGKILL whatever is left after ``STOP_GRACE_S``.
    (They stay in the caller's process group, so a worker killed as a group - systemd, Ctrl-C - takes them along.)"""
    import psutil

    try:
        tree = [psutil.Process(proc.pid)]
        tree += tree[0].children(recursive=True)
    except psutil.NoSuchProcess:
        proc.wait()
        return
    for p in tree:
        try:
            p.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(tree, timeout=STOP_GRACE_S)
    for p in alive:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=10)
    proc.wait()


def launch_finetune(cfg, *, num_processes: int, resume: bool = False, overwrite: bool = False,
                    progress: Optional[ProgressFn] = None, should_cancel: Optional[CancelFn] = None) -> dict:
    """Run ``cfg`` on ``num_processes`` local processes and return the report rank 0 wrote.

    Rank 0's progress events reach ``progress`` as they happen; once ``should_cancel()`` is true the processes are
    stopped and :class:`~tlcore.errors.Cancelled` is raised (rank 0's checkpoints stay for ``resume``)."""
    from tlcore.errors import Cancelled, TransferLabError

    progress, should_cancel = progress or no_progress, should_cancel or never_cancel
    if should_cancel():
        raise Cancelled("cancelled before training")
    # the launcher's own folder (it would leave an empty torchelastic_* in /tmp per run) and rank 0's event file
    scratch = tempfile.mkdtemp(prefix=owned_scratch_prefix(LAUNCH_PREFIX))  # gc removes it should this process die
    events_file = os.path.join(scratch, "progress.jsonl")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={num_processes}",
           "--log-dir", os.path.join(scratch, "logs"), "-m", "tlcore", "finetune", *config_argv(cfg),
           "--num-processes", str(num_processes)]
    cmd += ["--resume"] * resume + ["--overwrite"] * overwrite
    env = {**os.environ, CHILD_ENV: "1", PROGRESS_ENV: events_file, LAUNCHER_ENV: str(os.getpid()), SCRATCH_ENV: scratch,
           "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    follower = _Follower(events_file)
    try:
        proc = subprocess.Popen(cmd, env=env, stdout=sys.stderr, stderr=None)
        try:
            while proc.poll() is None:
                for ev in follower.events():
                    progress(ev)
                if should_cancel():
                    _stop(proc)
                    raise Cancelled(f"cancelled while running on {num_processes} processes")
                time.sleep(POLL_S)
        except BaseException:
            if proc.poll() is None:                  # KeyboardInterrupt, or an error in a progress callback
                _stop(proc)
            raise
        for ev in follower.events():
            progress(ev)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    report = Path(cfg.out) / "report.json"
    if proc.returncode != 0 or not report.exists():
        raise TransferLabError(f"the {num_processes}-process run failed (exit status {proc.returncode}); its "
                               "processes' messages are above")
    return json.loads(report.read_text())
