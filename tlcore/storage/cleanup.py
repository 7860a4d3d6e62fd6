"""``python -m tlcore gc``: remove the leftovers of interrupted writes, then evict the caches past the cap."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

import psutil

from tlcore.paths import home
from tlcore.storage.disk_usage import cache_max_bytes, runs_dir, usage, usage_bytes
from tlcore.storage.eviction import Removed, cache_folders, evict
from tlcore.storage.leases import LEASES

log = logging.getLogger(__name__)

STALE_S = 3600           # temporary leftovers older than this are removed by gc
LAUNCH_PREFIX = "tlcore-launch-"  # + "<launcher pid>-": a multi-process launch's scratch in the system temp folder
CLASSICAL_PREFIX = "tlcore-classical-"  # + "<pid>-": an out-of-core classical fit's descriptor chunks (same folder)
#: Scratch folders in the system temp folder named "<prefix><owner pid>-...": gc removes those whose owner is gone.
SCRATCH_PREFIXES = (LAUNCH_PREFIX, CLASSICAL_PREFIX)


def stale_temporaries(now: Optional[float] = None) -> list[Path]:
    """Leftovers of interrupted writes older than ``STALE_S``: ``.part`` uploads, ``.<hash>-*`` extraction folders,
    partial feature files and split files, half-downloaded or half-evicted run copies, and the scratch folders of
    multi-process launches and out-of-core classical fits whose process died."""
    now = time.time() if now is None else now
    root = home()
    found: list[Path] = []
    candidates: list[Path] = []
    for part in ("unzipped", "features", "splits", "sets"):
        for folder in cache_folders(part):
            candidates += [p for p in folder.iterdir() if (p.name.startswith(".") or ".tmp" in p.name)
                           and p.name != LEASES]
            if part == "sets":            # a set's downloads go one level down: sets/<sha256>/.<name>.download-<pid>
                candidates += [p for d in folder.iterdir() if d.is_dir() and not d.name.startswith(".")
                               and d.name != "users" for p in d.iterdir() if p.name.startswith(".")]
    uploads = root / "uploads"
    if uploads.is_dir():
        candidates += [p for p in uploads.rglob(".*.part")]
    if runs_dir().is_dir():             # interrupted downloads and evictions of run copies (never .<id>.partial-*)
        candidates += [p for p in runs_dir().iterdir() if p.name.startswith(".")
                       and ("-evicted-" in p.name or ".download-" in p.name)]
    candidates += orphan_scratch_folders()
    for p in candidates:
        try:
            if not p.is_symlink() and now - p.lstat().st_mtime > STALE_S:
                found.append(p)
        except OSError:
            continue
    return sorted(found)


def owned_scratch_prefix(prefix: str) -> str:
    """The name prefix (``prefix`` from ``SCRATCH_PREFIXES`` + this process's pid + "-") of a scratch folder this
    process makes in the temp folder: :func:`orphan_scratch_folders` reads the pid back once the process is gone."""
    return f"{prefix}{os.getpid()}-"


def orphan_scratch_folders() -> list[Path]:
    """Scratch folders in this machine's temp folder (``SCRATCH_PREFIXES``: multi-process launches, out-of-core
    classical fits) whose owning process is gone: each removes its own, but a process killed with SIGKILL leaves it
    (a launch's logs and the other ranks' scratch; a classical fit's descriptor chunks, ~7 KB per training image)."""
    found = []
    for prefix in SCRATCH_PREFIXES:
        for p in Path(tempfile.gettempdir()).glob(f"{prefix}*"):
            pid = p.name[len(prefix):].split("-", 1)[0]
            if p.is_dir() and pid.isdigit() and not psutil.pid_exists(int(pid)):
                found.append(p)
    return sorted(found)


@dataclass
class GcReport:
    removed: list[Removed] = field(default_factory=list)
    freed_bytes: int = 0
    dry_run: bool = False
    cap_bytes: int = 0
    usage_before: dict = field(default_factory=dict)
    usage_after: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def gc(*, dry_run: bool = False, max_gb: Optional[float] = None, now: Optional[float] = None) -> GcReport:
    """Remove stale temporaries and evict the caches past the cap (``max_gb`` or ``TRANSFERLAB_CACHE_MAX_GB``).
    ``dry_run`` lists what would go and removes nothing."""
    cap = cache_max_bytes(max_gb)
    report = GcReport(dry_run=dry_run, cap_bytes=cap, usage_before=usage())
    for p in stale_temporaries(now):
        size = usage_bytes(p)
        if not dry_run:
            try:
                parent = p.parent.stat()
                shutil.rmtree(p) if p.is_dir() else p.unlink()
                os.utime(p.parent, ns=(parent.st_atime_ns, parent.st_mtime_ns))   # the entry's LRU clock stays
            except OSError as exc:
                log.warning("could not remove %s: %s", p, exc)
                continue
        report.removed.append(Removed(str(p), size, "temporary leftover of an interrupted write"))
    report.removed += evict(cap, dry_run=dry_run, now=now)
    report.freed_bytes = sum(r.bytes for r in report.removed)
    report.usage_after = report.usage_before if dry_run else usage()
    return report
