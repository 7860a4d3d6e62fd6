"""Where TransferLab keeps caches and data (overridable with TRANSFERLAB_HOME)."""

from __future__ import annotations

import hashlib
import os
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Iterator, Optional

#: Whose work runs in this context (a run's owner in the worker, the signed-in user in the app); None = local mode.
_OWNER: ContextVar[Optional[str]] = ContextVar("transferlab_owner", default=None)


def home() -> Path:
    return Path(os.environ.get("TRANSFERLAB_HOME", Path.home() / ".cache" / "transferlab"))


def cache_dir(*parts: str) -> Path:
    path = home().joinpath("cache", *parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def owner_scope(owner: Optional[str]) -> Iterator[None]:
    """Work done inside belongs to ``owner``: caches derived from their data go to their own folders."""
    token = _OWNER.set(owner or None)
    try:
        yield
    finally:
        _OWNER.reset(token)


def owner_key(owner: str) -> str:
    """A fixed-length folder name for an owner id (no user text in paths)."""
    return hashlib.sha256(owner.encode("utf-8")).hexdigest()[:24]


def owned_cache_dir(part: str) -> Path:
    """``cache_dir(part)`` for local mode; ``cache_dir(part, "users", <owner key>)`` inside ``owner_scope(owner)``,
    so one user's cached features or unzipped uploads are never found, timed or used by another."""
    owner = _OWNER.get()
    return cache_dir(part) if owner is None else cache_dir(part, "users", owner_key(owner))
