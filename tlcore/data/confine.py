"""Keep every file a data set names inside the data set's own folder.

A table (an audio ``path`` column, an ASR ``metadata.csv`` ``file_name``) or a folder set may name files; an
uploaded table must never make the app read, play back or even probe a file elsewhere on the server. So a
path is checked *before* anything looks at the disk for it: absolute paths and ``..`` parts are refused from the
text alone, then the path is resolved (following every symbolic link) and must still lie under the data set's
folder. Messages never say whether an outside path exists.

    file = confined_path(table.parent, row["path"], "data.csv row 7")   # Path inside the folder, or DataError
"""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePosixPath

from tlcore.errors import DataError

_DRIVE = re.compile(r"^[A-Za-z]:")


def is_inside(root: Path, path: Path) -> bool:
    """Does ``path``, with every symbolic link followed, lie under ``root`` (also resolved)?"""
    return Path(os.path.realpath(path)).is_relative_to(os.path.realpath(root))


def confined_path(root: Path, value: str, where: str) -> Path:
    """The file ``value`` (relative to ``root``) names, resolved; a DataError naming ``where`` and the value when it
    is absolute, climbs out with ``..`` or is a link that leads out of ``root``."""
    raw = str(value).strip()
    how = "paths in the table must be relative to the table's folder (e.g. clips/a.wav); copy the file into the data set"
    if raw.startswith(("/", "\\", "~")) or _DRIVE.match(raw) or os.path.isabs(raw):
        raise DataError(f"{where}: path {raw!r} is absolute; {how}")
    if ".." in PurePosixPath(raw.replace("\\", "/")).parts:
        raise DataError(f"{where}: path {raw!r} uses '..' to leave the data set folder; {how}")
    if "\0" in raw or len(raw) > 1024 or any(len(p.encode()) > 255 for p in PurePosixPath(raw.replace("\\", "/")).parts):
        raise DataError(f"{where}: path {raw[:80]!r} is not a usable file name (too long or holds a NUL byte); "
                        "rename the file")
    real_root = Path(os.path.realpath(root))
    target = Path(os.path.realpath(real_root / raw))
    if not target.is_relative_to(real_root):
        raise DataError(f"{where}: path {raw!r} is a symbolic link (or passes through one) that leads outside the data "
                        f"set folder; {how}")
    return target


def check_folder_links(root: Path, paths) -> None:
    """Refuse a folder data set any of whose ``paths`` (files or label folders) resolves outside ``root``."""
    for p in paths:
        if not is_inside(root, p):
            rel = os.path.relpath(p, root)
            raise DataError(f"{rel!r} in {root.name or root} is a symbolic link that leads outside the data set folder; "
                            "copy the files into the folder instead of linking to them")
