"""Which cache entries are in use: a job's lease is a shared ``flock`` on ``<folder>/.leases/<name>.lock``, held
until its :func:`leases_held` scope ends (or its process dies); eviction takes the lock exclusively without waiting
and skips the entry when it cannot. An entry's mtime is its LRU clock (:func:`touch`)."""

from __future__ import annotations

import contextvars
import fcntl
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

LEASES = ".leases"       # the lock files of a cache folder's entries (see lease)

_HELD: contextvars.ContextVar[Optional[list[int]]] = contextvars.ContextVar("tlcore_leases", default=None)


def touch(path: Path) -> None:
    """Record a use of a cache entry (its mtime is the LRU clock)."""
    try:
        os.utime(path)
    except OSError:
        pass     # evicted meanwhile, or read-only: the entry is still usable


def lock_path(entry: Path) -> Path:
    return entry.parent / LEASES / f"{entry.name}.lock"


def _open_lock(entry: Path) -> int:
    """An open descriptor of ``entry``'s lock file, the one at its path now (created if need be)."""
    path = lock_path(entry)
    for _ in range(5):
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            return os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        except FileNotFoundError:
            continue                      # the folder went between the two calls: make it again
    return os.open(path, os.O_RDWR | os.O_CREAT, 0o600)


@contextmanager
def leases_held() -> Iterator[None]:
    """Leases taken inside (:func:`lease`) are held until the block ends: wrap one job or one CLI command."""
    token = _HELD.set([])
    try:
        yield
    finally:
        for fd in _HELD.get() or []:
            os.close(fd)                  # closing the descriptor releases its flock
        _HELD.reset(token)


def lease(entry: Path) -> None:
    """Mark the cache entry ``entry`` in use until the current :func:`leases_held` scope ends (and record the use).
    Call it *before* looking at the entry: a concurrent eviction of it finishes first, then the caller sees it
    gone and builds it again. Outside a scope this only records the use (the ``IN_USE_S`` rule protects it)."""
    held = _HELD.get()
    if held is not None:
        for _ in range(5):
            try:
                fd = _open_lock(entry)
            except OSError:
                break                     # a read-only cache: nothing can evict it either
            fcntl.flock(fd, fcntl.LOCK_SH)          # waits only while an eviction of this entry is under way
            try:
                same = os.fstat(fd).st_ino == os.stat(lock_path(entry)).st_ino
            except OSError:
                same = False
            if same:
                held.append(fd)
                break
            os.close(fd)                  # gc removed that lock file meanwhile: lock the current one
    touch(entry)


@contextmanager
def exclusive(entry: Path, *, create: bool = True) -> Iterator[bool]:
    """Yields True while this process holds ``entry``'s lock exclusively (no job has a lease on it), else False.
    ``create=False`` only looks (a dry run, a check): no lock file means no lease, and none is made."""
    try:
        fd = _open_lock(entry) if create else os.open(lock_path(entry), os.O_RDWR)
    except OSError:
        yield True                        # no lock file (can exist), so no lease either
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def in_use(entry: Path) -> bool:
    """True while some job holds a lease on ``entry``."""
    with exclusive(entry, create=False) as free:
        return not free
