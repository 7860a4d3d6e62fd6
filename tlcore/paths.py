"""Where TransferLab keeps caches and data (overridable with TRANSFERLAB_HOME)."""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    return Path(os.environ.get("TRANSFERLAB_HOME", Path.home() / ".cache" / "transferlab"))


def cache_dir(*parts: str) -> Path:
    path = home().joinpath("cache", *parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
