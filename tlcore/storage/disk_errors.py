"""A write that failed because of the disk (full, read-only, not writable, a name too long), said in one line the user
can act on."""

from __future__ import annotations

import errno
import shutil
from pathlib import Path
from typing import Optional

from tlcore.storage.disk_usage import human


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except OSError:         # a name too long to look up does not exist
        return False


def _existing(path: Path) -> Path:
    path = Path(path).absolute()
    while not _exists(path) and path != path.parent:
        path = path.parent
    return path


def storage_problem(exc: BaseException, where: str | Path) -> Optional[str]:
    """A one-line reason when ``exc`` (raised while writing under ``where``) comes from the disk: full, read-only or
    not writable; None for anything else. Some writers (torch.save's zip writer) report a full disk only as a
    generic RuntimeError, so the free space at ``where`` decides too."""
    place = _existing(Path(where))
    code = getattr(exc, "errno", None)
    if isinstance(exc, OSError) and code == errno.EROFS:
        return f"cannot write to {where}: the file system is read-only; choose a folder on a writable disk"
    if isinstance(exc, OSError) and code in (errno.EACCES, errno.EPERM):
        return f"cannot write to {where}: permission denied; choose a folder you can write to"
    if isinstance(exc, OSError) and code == errno.ENAMETOOLONG:
        longest = max(Path(where).parts, key=len)
        shown = str(where) if len(str(where)) <= 80 else str(where)[:80] + "..."
        return (f"cannot write to {shown}: a name in the path is too long for the file system "
                f"({len(longest.encode())} bytes; most allow 255); choose a shorter name")
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
