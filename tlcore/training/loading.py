"""Batches prepared in ``torch.utils.data.DataLoader`` workers, and gradient averaging across processes.

Preprocessing (decoding, resizing, augmenting) is CPU work that can run beside the model: a DataLoader whose
items are whole *batches* (``batch_size=None``) runs a callable on each batch in ``num_workers`` processes, a few
batches ahead, in order. Batches are the same ones the in-process path makes (same composition, same padding), and
anything random in them is seeded from (run seed, optimizer step), never from which worker made them, so a run
gives the same result with 0 or N workers. The loader gets its own seeded generator: it never draws from torch's
global generator (which would shift dropout and initialisation against a run without it).
"""

from __future__ import annotations

import random
from typing import Any, Callable, Iterator, Optional, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader
from torch.utils.data import Dataset as TorchDataset

from tlcore.device import Runtime


def seed_worker(worker_id: int) -> None:
    """Seed Python's and numpy's generators in a worker from the seed torch gave it (torch's own is seeded)."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


class _Mapped(TorchDataset):
    def __init__(self, fn: Callable[[Any], Any], jobs: Sequence[Any]):
        self.fn, self.jobs = fn, list(jobs)

    def __len__(self) -> int:
        return len(self.jobs)

    def __getitem__(self, i: int) -> Any:
        return self.fn(self.jobs[i])


def mapped_loader(fn: Callable[[Any], Any], jobs: Sequence[Any], runtime: Runtime, *, seed: int = 0) -> DataLoader:
    """A DataLoader that yields ``fn(job)`` for each job in order, computed in ``runtime.num_workers`` processes
    (in this one when 0), in pinned memory on CUDA."""
    workers = min(runtime.num_workers, len(jobs))
    return DataLoader(_Mapped(fn, jobs), batch_size=None, shuffle=False, num_workers=workers,
                      pin_memory=runtime.pin_memory, worker_init_fn=seed_worker if workers else None,
                      generator=torch.Generator().manual_seed(int(seed)),
                      prefetch_factor=2 if workers else None)


def batches(task: Any, plan: Sequence[tuple[int, list[int]]], runtime: Runtime, seed: int,
            epoch: int) -> Iterator[tuple[int, list[int], Optional[dict]]]:
    """``(step, idx, inputs)`` for each planned batch of an epoch. A task with ``batch(idx, step)`` has its inputs
    prepared in the DataLoader (decode, augment); a task without one builds them itself (``inputs`` None)."""
    prepare = getattr(task, "batch", None)
    if prepare is None:
        for step, idx in plan:
            yield step, idx, None
        return
    loader = mapped_loader(lambda job: (job[0], job[1], prepare(job[1], job[0])), plan, runtime,
                           seed=int(np.random.SeedSequence([int(seed), int(epoch)]).generate_state(1)[0]))
    for step, idx, inputs in loader:
        yield int(step), [int(i) for i in idx], inputs


def sync_gradients(params: Sequence[torch.nn.Parameter]) -> None:
    """Average the gradients of ``params`` over all processes (what DistributedDataParallel does after backward),
    in one all-reduce of a flat buffer through Accelerate; a parameter without a gradient on a rank counts as 0."""
    from accelerate.utils import reduce

    params = [p for p in params if p.requires_grad]
    if not params:
        return
    flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in params])
    flat = reduce(flat, reduction="mean")
    offset = 0
    for p in params:
        n = p.numel()
        p.grad = flat[offset:offset + n].view_as(p).clone()
        offset += n
