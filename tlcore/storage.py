"""Disk housekeeping: how much each part of ``home()`` uses, LRU eviction of the caches past a size cap, and the
``python -m tlcore gc`` clean-up.

What may be evicted: only *derived* data that is rebuilt on demand - the feature cache (``cache/features/*.npy``),
unzipped copies of uploaded archives (``cache/unzipped/<hash>/``) and a worker's copies of data sets fetched from
the artifact store (``cache/sets/<sha256>/``), and, with an artifact store, a host's copies of finished runs that
the store holds (``app/runs/<id>/`` beside its ``.<id>.version`` stamp, written only once the folder is complete in
the store: a run being written, or whose only copy is here, has none). Uploads, other run folders, stored eval
splits and demos are never evicted (splits are tiny and keep before/after numbers comparable; demos are rebuilt only
by hand). Use is recorded by touching the entry's mtime on every hit; eviction removes the least recently used
entries first until the evictable total is under the cap, and never an entry that is in use:

* a job holds a **lease** on every unzipped copy or fetched set it reads (:func:`lease`, a shared ``flock`` on
  ``<folder>/.leases/<name>.lock``, taken before the entry is looked at and held until the job's
  :func:`leases_held` scope ends, or its process dies); eviction takes the lock exclusively without waiting and
  skips the entry when it cannot, so a run of any length never loses files under it;
* an entry used in the last ``IN_USE_S`` seconds is kept too (readers outside a job, such as the app's pages).

Limits: ``TRANSFERLAB_CACHE_MAX_GB`` (default 20 GB, decimal) caps the evictable caches; temporary leftovers
(``.part`` uploads, ``.<hash>-*`` extraction folders, ``.*.npy`` / ``*.tmp<pid>`` partial writes) older than
``STALE_S`` (1 hour) are removed by ``gc``.

    usage()                      # {"features": bytes, "unzipped": ..., "splits": ..., "demos": ..., "uploads": ..., "runs": ...}
    usage_bytes(folder)          # bytes of regular files under a folder (links not followed): per-user quotas
    gc(dry_run=True)             # GcReport: what would be removed and why
"""

from __future__ import annotations

import contextvars
import fcntl
import logging
import os
import shutil
import tempfile
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator, Optional

import psutil

from tlcore.errors import ConfigError
from tlcore.paths import home

log = logging.getLogger(__name__)

DEFAULT_CACHE_MAX_GB = 20.0
DEFAULT_STORE_FEATURES_MAX_GB = 100.0
IN_USE_S = 3600          # an entry used this recently is never evicted (a run may still read its files)
STALE_S = 3600           # temporary leftovers older than this are removed by gc
EVICTABLE = ("features", "unzipped", "sets")
CACHE_PARTS = ("features", "unzipped", "sets", "splits", "demos")
LEASES = ".leases"       # the lock files of a cache folder's entries (see lease)
LAUNCH_PREFIX = "tlcore-launch-"  # + "<launcher pid>-": a multi-process launch's scratch in the system temp folder


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


def touch(path: Path) -> None:
    """Record a use of a cache entry (its mtime is the LRU clock)."""
    try:
        os.utime(path)
    except OSError:
        pass     # evicted meanwhile, or read-only: the entry is still usable


_HELD: contextvars.ContextVar[Optional[list[int]]] = contextvars.ContextVar("tlcore_leases", default=None)


def _lock_path(entry: Path) -> Path:
    return entry.parent / LEASES / f"{entry.name}.lock"


def _open_lock(entry: Path) -> int:
    """An open descriptor of ``entry``'s lock file, the one at its path now (created if need be)."""
    path = _lock_path(entry)
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
                same = os.fstat(fd).st_ino == os.stat(_lock_path(entry)).st_ino
            except OSError:
                same = False
            if same:
                held.append(fd)
                break
            os.close(fd)                  # gc removed that lock file meanwhile: lock the current one
    touch(entry)


@contextmanager
def _exclusive(entry: Path, *, create: bool = True) -> Iterator[bool]:
    """Yields True while this process holds ``entry``'s lock exclusively (no job has a lease on it), else False.
    ``create=False`` only looks (a dry run, a check): no lock file means no lease, and none is made."""
    try:
        fd = _open_lock(entry) if create else os.open(_lock_path(entry), os.O_RDWR)
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
    with _exclusive(entry, create=False) as free:
        return not free


@dataclass
class Entry:
    path: Path
    size: int
    used: float          # last use (mtime)


def _entry_size(path: Path) -> int:
    """Size of one cache entry; an unzipped copy records its byte count in ``.complete`` (cheap), else a walk."""
    marker = path / ".complete"
    if marker.is_file():
        try:
            return int(marker.read_text().strip())
        except (OSError, ValueError):
            pass
    return usage_bytes(path)


def _cache_folders(part: str) -> list[Path]:
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
        for folder in _cache_folders(part):
            out += _entries(folder)
    out += run_copies()
    return sorted(out, key=lambda e: e.used)


def runs_dir() -> Path:
    """Where this machine keeps run folders (the run store's default ``artifacts_root``)."""
    return home() / "app" / "runs"


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


@dataclass
class Removed:
    path: str
    bytes: int
    why: str


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
        with _exclusive(e.path, create=not dry_run) as free:
            if not free:
                continue                  # a running job holds a lease on it
            if not dry_run:
                try:
                    doomed = _take_away(e.path)
                except OSError as exc:
                    log.warning("could not evict %s: %s", e.path, exc)
                    continue
                _lock_path(e.path).unlink(missing_ok=True)   # a waiting lease sees it gone and locks a new file
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


def stale_temporaries(now: Optional[float] = None) -> list[Path]:
    """Leftovers of interrupted writes older than ``STALE_S``: ``.part`` uploads, ``.<hash>-*`` extraction folders,
    partial feature files and split files, half-downloaded or half-evicted run copies, and the scratch folders of
    multi-process launches whose launcher died."""
    now = time.time() if now is None else now
    root = home()
    found: list[Path] = []
    candidates: list[Path] = []
    for part in ("unzipped", "features", "splits", "sets"):
        for folder in _cache_folders(part):
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
    candidates += _orphan_launch_folders()
    for p in candidates:
        try:
            if not p.is_symlink() and now - p.lstat().st_mtime > STALE_S:
                found.append(p)
        except OSError:
            continue
    return sorted(found)


def _orphan_launch_folders() -> list[Path]:
    """Scratch folders of multi-process launches (this machine's temp folder) whose launching process is gone: a
    launch removes its own, but a host killed with SIGKILL leaves it (logs, the other ranks' scratch)."""
    found = []
    for p in Path(tempfile.gettempdir()).glob(f"{LAUNCH_PREFIX}*"):
        pid = p.name[len(LAUNCH_PREFIX):].split("-", 1)[0]
        if p.is_dir() and pid.isdigit() and not psutil.pid_exists(int(pid)):
            found.append(p)
    return found


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


def human(n: float) -> str:
    """Bytes as B / kB / MB / GB (decimal)."""
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


def _existing(path: Path) -> Path:
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def storage_problem(exc: BaseException, where: str | Path) -> Optional[str]:
    """A one-line reason when ``exc`` (raised while writing under ``where``) comes from the disk: full, read-only or
    not writable; None for anything else. Some writers (torch.save's zip writer) report a full disk only as a
    generic RuntimeError, so the free space at ``where`` decides too."""
    import errno

    place = _existing(Path(where))
    code = getattr(exc, "errno", None)
    if isinstance(exc, OSError) and code == errno.EROFS:
        return f"cannot write to {where}: the file system is read-only; choose a folder on a writable disk"
    if isinstance(exc, OSError) and code in (errno.EACCES, errno.EPERM):
        return f"cannot write to {where}: permission denied; choose a folder you can write to"
    try:
        free = shutil.disk_usage(place).free
    except OSError:
        free = None
    text = str(exc)
    writing = isinstance(exc, (OSError, RuntimeError)) or "I/O error" in text or "os error" in text
    full = (isinstance(exc, OSError) and code in (errno.ENOSPC, errno.EDQUOT)) or "No space left on device" in text \
        or (writing and free is not None and free < 1 << 20)
    if full:
        left = f" ({human(free)} free)" if free is not None else ""
        return (f"the disk holding {place} is full{left} while writing {where}; free some space "
                "(`python -m tlcore gc` clears old caches) or write the run elsewhere")
    return None
