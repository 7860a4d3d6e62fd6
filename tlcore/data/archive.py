"""Safe extraction of uploaded .zip archives: no path traversal, no links, bounded size (zip-bomb guard)."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from tlcore.errors import DataError
from tlcore.paths import cache_dir

MAX_TOTAL_BYTES = 2 * 1024**3      # uncompressed size limit of one archive
MAX_FILES = 100_000
MAX_RATIO = 200                    # uncompressed / compressed for one member: beyond this it is a bomb
IGNORED = ("__MACOSX/", ".DS_Store", "Thumbs.db")


def check_members(zf: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    """Validate every member; return the regular files to extract. Raises DataError naming the bad member."""
    infos = zf.infolist()
    if len(infos) > MAX_FILES:
        raise DataError(f"archive has {len(infos)} entries; the limit is {MAX_FILES}")
    total = 0
    keep = []
    for info in infos:
        name = info.filename
        path = PurePosixPath(name.replace("\\", "/"))
        if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
            raise DataError(f"archive member {name!r} points outside the archive (path traversal); refusing the archive")
        if (info.external_attr >> 16) & 0o170000 == 0o120000:
            raise DataError(f"archive member {name!r} is a symbolic link; archives may only hold regular files")
        if info.is_dir() or any(name.startswith(p) or path.name == p for p in IGNORED) or path.name.startswith("._"):
            continue
        total += info.file_size
        if total > MAX_TOTAL_BYTES:
            raise DataError(f"archive expands to more than {MAX_TOTAL_BYTES // 1024**2} MiB; split it or upload less")
        if info.compress_size and info.file_size / info.compress_size > MAX_RATIO and info.file_size > 10 * 1024**2:
            raise DataError(f"archive member {name!r} expands {info.file_size // info.compress_size}x (a zip bomb?); refusing")
        keep.append(info)
    return keep


def extract_zip(path: str | Path) -> Path:
    """Extract a zip into a cache folder keyed by its content hash (re-used on the next call); return the data root.

    When the archive holds one top folder, that folder is the root.
    """
    path = Path(path)
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        with zipfile.ZipFile(path) as zf:
            members = check_members(zf)
            dest = cache_dir("unzipped") / digest
            if not (dest / ".complete").exists():
                tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{digest}-"))
                written = 0
                for info in members:
                    target = tmp / PurePosixPath(info.filename.replace("\\", "/"))
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with zf.open(info) as src, open(target, "wb") as out:
                        while chunk := src.read(1 << 20):
                            written += len(chunk)
                            if written > MAX_TOTAL_BYTES:   # sizes in the header can lie
                                shutil.rmtree(tmp, ignore_errors=True)
                                raise DataError("archive expands beyond its declared size; refusing")
                            out.write(chunk)
                (tmp / ".complete").touch()
                try:
                    os.replace(tmp, dest)
                except OSError:          # another process finished first
                    shutil.rmtree(tmp, ignore_errors=True)
    except zipfile.BadZipFile as exc:
        raise DataError(f"{path.name} is not a readable .zip archive ({exc}); re-create it with a zip tool") from None
    entries = [p for p in dest.iterdir() if p.name != ".complete"]
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    return dest
