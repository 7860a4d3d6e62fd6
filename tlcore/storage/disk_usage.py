"""How many bytes each part of ``home()`` holds, and the caps the evictable caches are held under."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from tlcore.errors import ConfigError
from tlcore.paths import home

DEFAULT_CACHE_MAX_GB = 20.0
DEFAULT_STORE_FEATURES_MAX_GB = 100.0
CACHE_PARTS = ("features", "unzipped", "sets", "splits", "demos")


def usage_bytes(path: str | Path) -> int:
    """Bytes of the regular files under ``path`` (or of the file itself); symbolic links are not followed."""
    path = Path(path)
    try:
        st = path.lstat()
    except OSError:
        return 0
    if not path.is_dir() or path.is_symlink():
        return st.st_size if path.is_file() and not path.is_symlink() else 0
    total = 0
    for dirpath, _dirs, files in os.walk(path, followlinks=False):
        for name in files:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except OSError:
                continue            # removed while we walked
            if not os.path.islink(os.path.join(dirpath, name)):
                total += st.st_size
    return total


def runs_dir() -> Path:
    """Where this machine keeps run folders (the run store's default ``artifacts_root``)."""
    return home() / "app" / "runs"


def usage() -> dict[str, int]:
    """Bytes used per part of ``home()``: the cache parts, uploads and run folders."""
    root = home()
    out = {part: usage_bytes(root / "cache" / part) for part in CACHE_PARTS}
    out["uploads"] = usage_bytes(root / "uploads")
    out["runs"] = usage_bytes(runs_dir())
    return out


def cache_max_bytes(max_gb: Optional[float] = None) -> int:
    """The cap of the evictable caches: ``max_gb`` or ``TRANSFERLAB_CACHE_MAX_GB`` (default 20 GB)."""
    return _cap_bytes(max_gb, "TRANSFERLAB_CACHE_MAX_GB", DEFAULT_CACHE_MAX_GB, "the cache cap")


def store_features_max_bytes(max_gb: Optional[float] = None) -> int:
    """The cap of the artifact store's shared feature files: ``max_gb`` or ``TRANSFERLAB_STORE_FEATURES_MAX_GB``
    (default 100 GB)."""
    return _cap_bytes(max_gb, "TRANSFERLAB_STORE_FEATURES_MAX_GB", DEFAULT_STORE_FEATURES_MAX_GB,
                      "the store's feature cap")


def _cap_bytes(max_gb: Optional[float], env: str, default: float, what: str) -> int:
    if max_gb is None:
        raw = os.environ.get(env, "")
        try:
            max_gb = float(raw) if raw.strip() else default
        except ValueError:
            raise ConfigError(f"{env}={raw!r} is not a number; set it to a size in GB such as {default:g}") from None
    if not (max_gb >= 0) or max_gb == float("inf"):
        raise ConfigError(f"{what} must be a size in GB >= 0, not {max_gb!r}")
    return int(max_gb * 1e9)


def human(n: float) -> str:
    """Bytes as B / kB / MB / GB (decimal)."""
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"
