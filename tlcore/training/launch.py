"""Start a run on N processes on this machine: ``python -m torch.distributed.run`` (the launcher under
``accelerate launch``) runs the CLI once per process; each joins the process group through Accelerate
(:mod:`tlcore.device`: gloo on the CPU, NCCL on CUDA) and the one trainer averages gradients across them.
Rank 0 writes the run folder; this process reads its report.

On several machines, start the processes with ``accelerate launch`` yourself (see docs/deploy.md): a run started
under a launcher takes the launcher's process count and launches nothing.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

CHILD_ENV = "TLCORE_LAUNCHED_CHILD"     # set in the processes this module starts: they leave reporting to it


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


def launch_finetune(cfg, *, num_processes: int, resume: bool = False, overwrite: bool = False) -> dict:
    """Run ``cfg`` on ``num_processes`` local processes and return the report rank 0 wrote."""
    from tlcore.errors import TransferLabError

    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={num_processes}",
           "-m", "tlcore", "finetune", *config_argv(cfg), "--num-processes", str(num_processes)]
    cmd += ["--resume"] * resume + ["--overwrite"] * overwrite
    env = {**os.environ, CHILD_ENV: "1", "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    done = subprocess.run(cmd, env=env, stdout=sys.stderr, stderr=None)
    report = Path(cfg.out) / "report.json"
    if done.returncode != 0 or not report.exists():
        raise TransferLabError(f"the {num_processes}-process run failed (exit status {done.returncode}); its "
                               "processes' messages are above")
    return json.loads(report.read_text())
