"""What may be evicted (feature files, unzipped copies, fetched sets, and local copies of runs the artifact store
keeps), least recently used first, past the cache cap; never an entry in use (:mod:`tlcore.storage.leases`)."""

from __future__ import annotations

import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from tlcore.paths import home
from tlcore.storage.disk_usage import cache_max_bytes, runs_dir, usage_bytes
from tlcore.storage.leases import exclusive, lock_path

log = logging.getLogger(__name__)

IN_USE_S = 3600          # an entry used this recently is never evicted (a run may still read its files)
EVICTABLE = ("features", "unzipped", "sets")


@dataclass
class Entry:
    path: Path
    size: int
    used: float          # last use (mtime)


@dataclass
class Removed:
    path: str
    bytes: int
    why: str


def _entry_size(path: Path) -> int:
    """Size of one cache entry; an unzipped copy records its byte count in ``.complete`` (cheap), else a walk."""
    marker = path / ".complete"
    if marker.is_file():
        try:
            return int(marker.read_text().strip())
        except (OSError, ValueError):
            pass
    return usage_bytes(path)


def cache_folders(part: str) -> list[Path]:
    """``cache/<part>`` and each user's ``cache/<part>/users/<key>`` (``paths.owned_cache_dir``)."""
    folder = home() / "cache" / part
    if not folder.is_dir():
        return []
    users = folder / "users"
    return [folder] + (sorted(p for p in users.iterdir() if p.is_dir() and not p.is_symlink()) if users.is_dir() else [])


def cache_entries() -> list[Entry]:
    """Evictable entries (feature files, unzipped copies and fetched sets, every user's; stored runs' local copies),
    least recently used first."""
    out = []
    for part in EVICTABLE:
        for folder in cache_folders(part):
            out += _entries(folder)
    out += run_copies()
    return sorted(out, key=lambda e: e.used)


def stored_stamp(folder: Path) -> Path:
    """The file beside a run folder that says the artifact store holds it (its content: the stored report's version)."""
    return folder.parent / f".{folder.name}.version"


def run_copies() -> list[Entry]:
    """Run folders here that are copies of what the artifact store holds (:func:`stored_stamp` present)."""
    root = runs_dir()
    if not root.is_dir():
        return []
    out = []
    for p in root.iterdir():
        if p.name.startswith(".") or p.is_symlink() or not p.is_dir():
            continue
        try:
            if stored_stamp(p).is_file() and (p / "report.json").is_file():
                out.append(Entry(p, usage_bytes(p), p.stat().st_mtime))
        except OSError:
            continue
    return out


def _entries(folder: Path) -> list[Entry]:
    out = []
    for p in folder.iterdir():
        if p.name.startswith(".") or p.is_symlink() or (p.name == "users" and p.parent.parent.name == "cache"):
            continue                # temporary (in progress), not ours, or the per-user folders
        try:
            out.append(Entry(p, _entry_size(p), p.stat().st_mtime))
        except OSError:
            continue
    return out


def _take_away(path: Path) -> Optional[Path]:
    """Remove the entry ``path`` from its cache at once: a file is unlinked, a folder renamed to a hidden name
    (a reader never sees a half-deleted copy; a crash leaves a name gc knows is temporary) that is returned for
    the caller to delete - after releasing the entry's lock, so a lease waiting on it is not held up by that."""
    if path.is_dir() and not path.is_symlink():
        doomed = path.with_name(f".{path.name}-evicted-{os.getpid()}")
        os.replace(path, doomed)
        return doomed
    path.unlink(missing_ok=True)
    return None


def evict(max_bytes: Optional[int] = None, *, dry_run: bool = False, keep: Optional[Path] = None,
          now: Optional[float] = None) -> list[Removed]:
    """Remove least recently used cache entries until the evictable caches fit ``max_bytes`` (default: the cap).
    Entries used in the last ``IN_USE_S`` seconds and ``keep`` are never removed."""
    cap = cache_max_bytes() if max_bytes is None else max_bytes
    now = time.time() if now is None else now
    runs = runs_dir()
    entries = cache_entries()
    total = sum(e.size for e in entries)
    removed: list[Removed] = []
    for e in entries:
        if total <= cap:
            break
        if now - e.used < IN_USE_S or (keep is not None and e.path == keep):
            continue
        doomed = None
        with exclusive(e.path, create=not dry_run) as free:
            if not free:
                continue                  # a running job holds a lease on it
            if not dry_run:
                try:
                    doomed = _take_away(e.path)
                except OSError as exc:
                    log.warning("could not evict %s: %s", e.path, exc)
                    continue
                lock_path(e.path).unlink(missing_ok=True)   # a waiting lease sees it gone and locks a new file
                if e.path.parent == runs:
                    stored_stamp(e.path).unlink(missing_ok=True)  # the next open downloads it again
        if doomed is not None:
            shutil.rmtree(doomed, ignore_errors=True)
        total -= e.size
        why = f"least recently used (last use {_ago(now - e.used)} ago)"
        removed.append(Removed(str(e.path), e.size, why + ("; a copy of a run the artifact store keeps"
                                                           if e.path.parent == runs else "")))
    return removed


def evict_after_write(keep: Optional[Path] = None) -> list[Removed]:
    """Called after a new cache entry is written: evict past the cap. Never raises (a full cache must not fail a run)."""
    try:
        removed = evict(keep=keep)
    except Exception as exc:  # noqa: BLE001 - housekeeping must not break the work that triggered it
        log.warning("cache eviction failed: %s", exc)
        return []
    for r in removed:
        log.info("evicted %s (%d bytes): %s", r.path, r.bytes, r.why)
    return removed


def _ago(seconds: float) -> str:
    return f"{seconds / 86400:.1f} days" if seconds >= 86400 else f"{seconds / 3600:.1f} h"
