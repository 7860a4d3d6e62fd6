"""Local folders as the artifact store sees them: which files count, their content hash, and when a checkpoint
folder holds a complete set."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Optional


def data_files(folder: Path) -> list[Path]:
    """Every regular file under ``folder`` except temporary ones (``*.tmp``, ``.*.tmp<pid>``), sorted."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and not re.search(r"\.tmp\d*$", p.name))


def content_hash(path: Path) -> str:
    """sha256 of a file's bytes, or of a folder's (relative path, file hash) list: the same data, the same hash."""
    path = Path(path)
    if path.is_file():
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        return h.hexdigest()
    lines = [f"{f.relative_to(path).as_posix()}\t{content_hash(f)}" for f in data_files(path)]
    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()


def checkpoint_signature(folder: Path) -> Optional[tuple]:
    """(relative path, size, mtime) of a complete checkpoint set under ``folder`` (``<stage>/state.json`` and
    what it was written with), or None while a save is under way.

    ``save_checkpoint`` writes weights and optimizer state first and state.json last, each by rename: a stage is
    complete when no file in it is newer than its state.json. Stages without a state.json are not saved yet."""
    sig = []
    for state in sorted(folder.rglob("state.json")):
        stage = state.parent
        files = [p for p in data_files(stage) if p.parent == stage]
        stats = {p: p.stat() for p in files}
        if any(s.st_mtime_ns > stats[state].st_mtime_ns for s in stats.values()):
            return None
        sig += [(p.relative_to(folder).as_posix(), s.st_size, s.st_mtime_ns) for p, s in stats.items()]
    return tuple(sig)
