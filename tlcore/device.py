"""Where a run's networks execute: the device, the numeric precision, DataLoader workers and the process group.

One :class:`Runtime` per run, set by the entry point (:func:`use_runtime`, from the run's config via
:func:`runtime_for`) and read by every path that runs a network (:func:`current`): feature extraction, the one
trainer, evaluation and predict. Without one, everything runs as it always did: CPU, fp32, in-process.

Multi-process training goes through Hugging Face Accelerate: a process started by ``accelerate launch`` /
``torchrun`` (``WORLD_SIZE`` > 1 in its environment) joins the process group through Accelerate's
``PartialState`` (gloo on CPU, NCCL on CUDA); :func:`rank` / :func:`world_size` / :func:`is_main_process` read it.
"""

from __future__ import annotations

import atexit
import contextvars
import functools
import os
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any, Iterator, Optional, Sequence

import torch
from threadpoolctl import threadpool_limits

DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def cpu_cores() -> int:
    """The CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


#: Matrices below this many entries (e.g. 15,000 items x 1,280 features) are worked on with one thread.
SMALL_PROBLEM_ENTRIES = 20_000_000


@contextmanager
def small_problem_threads(x: Any = None) -> Iterator[None]:
    """One BLAS thread and one torch thread for small work: numpy / scipy / scikit-learn / torch on the (n, d) matrix
    ``x`` (or its shape) when it is small (:data:`SMALL_PROBLEM_ENTRIES`), or on small inputs when ``x`` is None
    (lbfgs fits, eigendecompositions of covariances, a temperature, augmenting one image). Such work makes many
    small calls; several threads spin and wait on each, and on a 2-core machine with other work on it (the app's
    worker, a second test process) that was 4-80x slower than one thread (the probe's and the classical baseline's
    fits, the diagnosis's Fréchet distance, the temperature fit: 4.3 s vs 0.06 s). Results are the same."""
    shape = x if isinstance(x, tuple) else getattr(x, "shape", None)
    if shape is not None and len(shape) == 2 and int(shape[0]) * int(shape[1]) >= SMALL_PROBLEM_ENTRIES:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1, user_api="blas"):
            yield
    finally:
        torch.set_num_threads(before)


def default_num_workers() -> int:
    """DataLoader workers when none are asked for: none on a machine of at most 2 cores (a worker there only takes
    the core the model runs on; measured in docs/benchmarks.md, P7), else up to 4, leaving one core to the model."""
    cores = cpu_cores()
    return 0 if cores <= 2 else min(4, cores - 1)


def num_workers_notice(asked: Optional[int]) -> Optional[str]:
    """What a run says when it was asked for more DataLoader workers than the machine has cores (it uses one per
    core: :func:`runtime_for`), else None."""
    cores = cpu_cores()
    if asked is None or asked <= cores:
        return None
    return (f"--num-workers {asked} is more than this machine's {cores} CPU cores: {cores} DataLoader workers were used "
            "(a worker process beyond the cores adds memory, not speed)")


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def resolve_device(name: str = "auto") -> torch.device:
    """``auto``: CUDA when torch sees a GPU, then Apple MPS, else the CPU. An explicit device that this machine
    lacks is refused with a :class:`ConfigError` that says so. Under a multi-process launch on CUDA each process
    takes the GPU of its ``LOCAL_RANK``."""
    from tlcore.errors import ConfigError

    if name not in DEVICES:
        raise ConfigError(f"--device must be one of {', '.join(DEVICES)}; got {name!r}")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "mps" if _mps_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError("CUDA is not available on this machine (torch sees no GPU): use --device auto or cpu")
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)) % torch.cuda.device_count())
    if name == "mps" and not _mps_available():
        raise ConfigError("Apple MPS is not available on this machine: use --device auto or cpu")
    return torch.device(name)


def resolve_precision(name: str, device: torch.device) -> str:
    """The precision a run computes in: ``fp32``, ``bf16`` or ``fp16``.

    ``auto``: bf16 on a CUDA GPU that supports it (Ampere and newer), else fp16 on CUDA (with a gradient scaler),
    fp32 on the CPU and MPS. bf16 may be asked for on the CPU (autocast runs matmuls in bf16); fp16 needs CUDA."""
    from tlcore.errors import ConfigError

    if name not in PRECISIONS:
        raise ConfigError(f"--precision must be one of {', '.join(PRECISIONS)}; got {name!r}")
    if name == "auto":
        if device.type != "cuda":
            return "fp32"
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if name == "fp16" and device.type != "cuda":
        raise ConfigError(f"--precision fp16 needs a CUDA GPU (this run is on {device.type}): use bf16 or fp32")
    if name == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ConfigError("this GPU does not support bf16: use --precision fp16 or auto")
    return name


@dataclass(frozen=True)
class Runtime:
    """The resolved device, precision and DataLoader workers of one run."""

    device: torch.device = torch.device("cpu")
    precision: str = "fp32"
    num_workers: int = 0

    @property
    def pin_memory(self) -> bool:
        return self.device.type == "cuda"

    def autocast(self):
        """Mixed precision for a forward pass (and its loss); nothing at fp32, so CPU runs compute as before."""
        if self.precision == "fp32":
            return nullcontext()
        return torch.autocast(self.device.type, dtype=_DTYPES[self.precision])

    def grad_scaler(self) -> Optional[torch.amp.GradScaler]:
        """fp16 gradients underflow without loss scaling; bf16 and fp32 need none."""
        return torch.amp.GradScaler(self.device.type) if self.precision == "fp16" else None

    def to_device(self, batch: Any) -> Any:
        return to_device(batch, self.device)

    def describe(self) -> dict:
        return {"device": str(self.device.type), "precision": self.precision, "num_workers": self.num_workers,
                "num_processes": world_size()}


_CURRENT: contextvars.ContextVar[Optional[Runtime]] = contextvars.ContextVar("tlcore_runtime", default=None)
CPU = Runtime()


def current() -> Runtime:
    """The runtime of the run in progress (CPU, fp32, no workers outside one)."""
    return _CURRENT.get() or CPU


@contextmanager
def use_runtime(runtime: Runtime) -> Iterator[Runtime]:
    """Run the block on ``runtime`` (peak accelerator memory is counted from here)."""
    token = _CURRENT.set(runtime)
    if runtime.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(runtime.device)
    try:
        yield runtime
    finally:
        _CURRENT.reset(token)


def runtime_for(cfg: Any) -> Runtime:
    """The :class:`Runtime` of a config with ``device``, ``precision`` and ``num_workers`` fields (unset: defaults)."""
    device = resolve_device(getattr(cfg, "device", "auto") or "auto")
    precision = resolve_precision(getattr(cfg, "precision", "auto") or "auto", device)
    workers = getattr(cfg, "num_workers", None)     # at most one per core (num_workers_notice says so)
    return Runtime(device, precision, default_num_workers() if workers is None else min(int(workers), cpu_cores()))


def peak_memory_bytes(runtime: Optional[Runtime] = None) -> Optional[int]:
    """Peak accelerator memory allocated by torch since the run began; None on the CPU (nothing to count)."""
    rt = runtime or current()
    if rt.device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(rt.device))
    if rt.device.type == "mps" and hasattr(torch, "mps"):
        return int(torch.mps.driver_allocated_memory())
    return None


def to_device(batch: Any, device: torch.device) -> Any:
    """Tensors of ``batch`` (a tensor, dict, list or tuple of them) on ``device``; a no-op on the CPU."""
    if device.type == "cpu":
        return batch
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


def module_device(module: torch.nn.Module) -> torch.device:
    """The device of a module's first parameter (CPU for one without parameters)."""
    p = next(iter(module.parameters()), None)
    return p.device if p is not None else torch.device("cpu")


def autocast_for(module: torch.nn.Module):
    """The current runtime's autocast when ``module`` lives on its device (else none: a model kept on the CPU
    computes in fp32)."""
    rt = current()
    return rt.autocast() if module_device(module).type == rt.device.type else nullcontext()


# ---------------------------------------------------------------- processes (Accelerate)

def _launched() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def distributed_state():
    """Accelerate's ``PartialState`` of a multi-process launch (joins the process group on first use), else None."""
    if not _launched():
        return None
    from accelerate import PartialState

    cpu = not torch.cuda.is_available() or os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true", "yes")
    state = PartialState(cpu=cpu)
    _leave_group_at_exit()
    return state


@functools.cache
def _leave_group_at_exit() -> None:
    """Leave the process group when this process exits (once per process). Left to the interpreter's shutdown, the
    gloo group's threads were sometimes destroyed while running: "terminate called without an active exception",
    SIGABRT, and a finished run's rank reported as failed by the launcher."""

    def leave() -> None:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()

    atexit.register(leave)


def world_size() -> int:
    state = distributed_state()
    return state.num_processes if state is not None else 1


def rank() -> int:
    state = distributed_state()
    return state.process_index if state is not None else 0


def is_main_process() -> bool:
    return rank() == 0


def my_batch_starts(n: int, batch_size: int) -> range:
    """Where this process's batches of ``n`` items start: every ``world_size()``-th batch (all of them in one
    process), so the processes of a run share an evaluation instead of each repeating it."""
    return range(rank() * batch_size, n, world_size() * batch_size)


def sum_over_processes(values: Sequence[float], device: Optional[torch.device] = None) -> list[float]:
    """Each of ``values`` summed over every process (float64; ``values`` itself in one process). Every process
    must call it at the same point."""
    if world_size() == 1:
        return [float(v) for v in values]
    from accelerate.utils import reduce

    return reduce(torch.tensor(list(values), dtype=torch.float64, device=device), reduction="sum").tolist()


def broadcast_object(obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank (``obj`` itself in one process)."""
    if world_size() == 1:
        return obj
    from accelerate.utils import broadcast_object_list

    return broadcast_object_list([obj], from_process=0)[0]
