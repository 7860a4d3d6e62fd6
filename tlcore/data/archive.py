"""Safe extraction of uploaded .zip archives: no path traversal, no links, bounded size (zip-bomb guard).

Every member is checked from the central directory before anything is written, and again while it is written:

* names: no absolute paths, ``..`` or drive letters; at most ``MAX_DEPTH`` folders deep; no duplicates; no file
  that is also a folder (``x`` and ``x/...``); no symbolic links; no password-protected (encrypted) members;
* nested archives (``.zip``, ``.tar``, ``.gz`` ... inside the zip) are refused, never unpacked recursively: a
  data set is files, and an archive inside one is almost always a mistake or a bomb's second stage;
* size: at most ``MAX_FILES`` members and ``MAX_TOTAL_BYTES`` unpacked in all; a member of more than
  ``RATIO_MIN_BYTES`` may expand at most ``MAX_RATIO`` times its packed size, and the whole archive (when it
  unpacks to more than ``RATIO_MIN_BYTES``) at most ``MAX_TOTAL_RATIO`` times - small members are exempt so a
  tiny, very compressible CSV is no false alarm, while a hundred 10 MiB runs of zeros are caught;
* extraction is streamed with a running byte budget (headers can lie), into a temporary folder that is removed on
  any failure and renamed into place only when complete.

The upload is hashed in 1 MiB chunks (never read whole into memory); the extracted copy lives under
``cache/unzipped/<hash>`` and is reused (its use recorded for the cache's LRU eviction, see ``tlcore.storage``).
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from tlcore.errors import DataError
from tlcore.paths import owned_cache_dir

MAX_TOTAL_BYTES = 2 * 1024**3      # uncompressed size limit of one archive
MAX_FILES = 100_000
MAX_DEPTH = 16                     # folders above a member
MAX_RATIO = 200                    # uncompressed / compressed for one member: beyond this it is a bomb
MAX_TOTAL_RATIO = 100              # the same for the whole archive
RATIO_MIN_BYTES = 1024**2          # members (and archives) smaller than this are not ratio-checked
IGNORED = ("__MACOSX/", ".DS_Store", "Thumbs.db")
NESTED = (".zip", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".zst", ".7z", ".rar", ".lz4", ".whl", ".jar")


def _clean_name(name: str) -> PurePosixPath:
    path = PurePosixPath(name.replace("\\", "/"))
    return PurePosixPath(*[p for p in path.parts if p not in ("", ".")]) if not path.is_absolute() else path


def check_members(zf: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    """Validate every member and the total; return the regular files to extract. Raises DataError naming the bad
    member and how to fix the archive."""
    infos = zf.infolist()
    if len(infos) > MAX_FILES:
        raise DataError(f"archive has {len(infos):,} entries; the limit is {MAX_FILES:,}; split it into smaller archives")
    total = packed = 0
    keep: list[zipfile.ZipInfo] = []
    files: dict[str, str] = {}           # normalised name -> name as written
    folders: dict[str, str] = {}
    for info in infos:
        name = info.filename
        path = _clean_name(name)
        if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
            raise DataError(f"archive member {name!r} points outside the archive (path traversal); refusing the archive")
        if (info.external_attr >> 16) & 0o170000 == 0o120000:
            raise DataError(f"archive member {name!r} is a symbolic link; archives may only hold regular files")
        if len(path.parts) > MAX_DEPTH + 1:
            raise DataError(f"archive member {name!r} is {len(path.parts) - 1} folders deep; the limit is {MAX_DEPTH}")
        if not path.parts:
            continue
        for depth in range(1, len(path.parts)):
            folders.setdefault(str(PurePosixPath(*path.parts[:depth])), name)
        if info.is_dir():
            folders.setdefault(str(path), name)
            continue
        if any(name.startswith(p) or path.name == p for p in IGNORED) or path.name.startswith("._"):
            continue
        if info.flag_bits & 0x1:
            raise DataError(f"password-protected zip: member {name!r} is encrypted; upload an archive made without a "
                            "password")
        key = str(path)
        if key in files:
            raise DataError(f"archive holds {name!r} twice (also as {files[key]!r}); remove the duplicate and zip again")
        files[key] = name
        if path.suffix.lower() in NESTED:
            raise DataError(f"archive member {name!r} is itself an archive; nested archives are not unpacked - unpack "
                            "it and zip the folder again")
        total += info.file_size
        packed += info.compress_size
        if total > MAX_TOTAL_BYTES:
            raise DataError(f"archive expands to more than {MAX_TOTAL_BYTES // 1024**2:,} MiB; split it or upload less")
        if info.file_size > RATIO_MIN_BYTES and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise DataError(f"archive member {name!r} expands {info.file_size // max(info.compress_size, 1):,}x "
                            f"(over {MAX_RATIO}x: a zip bomb?); refusing the archive")
        keep.append(info)
    clash = sorted(set(files) & set(folders))
    if clash:
        raise DataError(f"archive holds {files[clash[0]]!r} both as a file and as a folder; rename one and zip again")
    if total > RATIO_MIN_BYTES and total > MAX_TOTAL_RATIO * max(packed, 1):
        raise DataError(f"archive expands {total // max(packed, 1):,}x in all ({total // 1024**2:,} MiB from "
                        f"{max(packed, 1) / 1024**2:.1f} MiB; over {MAX_TOTAL_RATIO}x: a zip bomb?); refusing the archive")
    return keep


def file_digest(path: Path) -> str:
    """SHA-256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _extract(zf: zipfile.ZipFile, members: list[zipfile.ZipInfo], tmp: Path) -> None:
    written = 0
    for info in members:
        target = tmp / _clean_name(info.filename)
        target.parent.mkdir(parents=True, exist_ok=True)
        size = 0
        with zf.open(info) as src, open(target, "xb") as out:
            while chunk := src.read(1 << 20):
                size += len(chunk)
                written += len(chunk)
                if size > info.file_size or written > MAX_TOTAL_BYTES:   # sizes in the header can lie
                    raise DataError(f"archive member {info.filename!r} expands beyond its declared size; refusing")
                out.write(chunk)
    (tmp / ".complete").write_text(str(written))     # the copy's size, read by the cache's eviction


def extract_zip(path: str | Path) -> Path:
    """Extract a zip into a cache folder keyed by its content hash (re-used on the next call); return the data root.

    When the archive holds one top folder, that folder is the root.
    """
    path = Path(path)
    from tlcore import storage

    try:
        digest = file_digest(path)[:16]
        dest = owned_cache_dir("unzipped") / digest
        storage.lease(dest)          # before looking: an eviction under way ends first; none starts while held
        if dest.exists() and not (dest / ".complete").exists():
            shutil.rmtree(dest, ignore_errors=True)     # left half-done by a crash (cannot happen with rename)
        if not (dest / ".complete").exists():
            with zipfile.ZipFile(path) as zf:
                members = check_members(zf)
                tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{digest}-"))
                try:
                    _extract(zf, members, tmp)
                    try:
                        os.replace(tmp, dest)
                    except OSError:          # another process finished first
                        shutil.rmtree(tmp, ignore_errors=True)
                except BaseException:
                    shutil.rmtree(tmp, ignore_errors=True)
                    raise
            storage.evict_after_write(keep=dest)
    except zipfile.BadZipFile as exc:
        raise DataError(f"{path.name} is not a readable .zip archive ({exc}); re-create it with a zip tool") from None
    except RuntimeError as exc:      # zipfile: "File ... is encrypted, password required for extraction"
        if "password" in str(exc) or "encrypted" in str(exc):
            raise DataError(f"password-protected zip: {path.name} is encrypted; upload an archive made without a "
                            "password") from None
        raise
    except NotImplementedError as exc:   # e.g. an unsupported compression method
        raise DataError(f"{path.name}: {exc}; re-create the archive with ordinary (deflate) compression") from None
    except (zipfile.LargeZipFile, EOFError, OSError) as exc:
        if isinstance(exc, FileNotFoundError) and not path.exists():
            raise DataError(f"{path.name} does not exist; upload it again") from None
        if getattr(exc, "errno", None) == errno.ENOSPC:
            raise DataError(f"no space left on the disk to unpack {path.name}; free space (python -m tlcore gc) or "
                            "lower TRANSFERLAB_CACHE_MAX_GB") from None
        raise DataError(f"{path.name} could not be unpacked ({type(exc).__name__}: {exc}); re-create the archive") from None
    entries = [p for p in dest.iterdir() if p.name != ".complete"]
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    return dest
