"""Load the data set formats of DESIGN.md into a :class:`Dataset`, with validation and clear messages.

* image: ``<label>/<name>.{png,jpg,jpeg,bmp,webp}``; a folder of images with no label folders is unlabeled.
* text: ``.csv`` / ``.tsv`` / ``.jsonl`` with a ``text`` column and an optional ``label`` column
  (a folder holding exactly one such file works too).
* audio: ``<label>/<name>.{wav,flac,ogg,mp3}`` or a ``.csv`` with ``path,label`` (paths relative to the csv).
Any of these may be a ``.zip`` of the folder.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Optional

from tlcore.data.archive import extract_zip
from tlcore.data.dataset import Dataset, Problem
from tlcore.errors import DataError

IMAGE_EXT = {".png", ".jpg", ".jpeg", ".bmp", ".webp"}
AUDIO_EXT = {".wav", ".flac", ".ogg", ".mp3"}
TEXT_EXT = {".csv", ".tsv", ".jsonl"}
MEDIA_EXT = {"image": IMAGE_EXT, "audio": AUDIO_EXT}
SKIP_NAMES = {".complete", "demo.json", ".DS_Store", "Thumbs.db", "README.md", "README.txt", "LICENSE"}


def load_dataset(path: str | Path, modality: str, *, on_error: str = "skip", require_labels: bool = False) -> Dataset:
    """Load ``path`` as a data set of ``modality``.

    ``on_error="skip"`` drops unreadable files and lists them in ``Dataset.problems``; ``"refuse"`` raises on the first.
    ``require_labels`` refuses unlabeled data and data with fewer than two classes.
    """
    if modality not in ("image", "text", "audio"):
        raise DataError(f"unknown modality {modality!r}; use image, text or audio")
    if on_error not in ("skip", "refuse"):
        raise DataError(f"on_error must be 'skip' or 'refuse', not {on_error!r}")
    origin = str(Path(path).expanduser())
    path = resolve_data_path(path)
    if modality == "text":
        ds = _load_table(_single_table(path, TEXT_EXT), "text", on_error)
    elif modality == "audio" and (path.suffix.lower() == ".csv" or (path.is_dir() and _tables(path, {".csv"}) and not _media_files(path, AUDIO_EXT))):
        ds = _load_table(_single_table(path, {".csv"}), "audio", on_error)
    else:
        ds = _load_media_folder(path, modality, on_error)
    ds.origin = origin
    if require_labels:
        check_trainable(ds)
    return ds


def resolve_data_path(path: str | Path) -> Path:
    """The folder or file to read: refuses a missing path; a .zip is safely extracted (cached by content)."""
    path = Path(path).expanduser()
    if not path.exists():
        raise DataError(f"data path {str(path)!r} does not exist; check the spelling")
    return extract_zip(path) if path.suffix.lower() == ".zip" else path


def check_trainable(ds: Dataset) -> None:
    if ds.labels is None:
        raise DataError(f"{ds.origin}: no labels found; labeled data needs label folders (<label>/<file>) or a 'label' column")
    if len(ds.classes) < 2:
        raise DataError(f"{ds.origin}: only one class ({ds.classes[0]!r}); a classifier needs at least two classes")


def _tables(folder: Path, exts: set[str]) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in exts)


def _media_files(folder: Path, exts: set[str]) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in exts]


def _single_table(path: Path, exts: set[str]) -> Path:
    if path.is_file():
        if path.suffix.lower() not in exts:
            raise DataError(f"{path.name}: unsupported file type {path.suffix!r}; use one of {', '.join(sorted(exts))}")
        return path
    tables = _tables(path, exts)
    if len(tables) != 1:
        found = ", ".join(p.name for p in tables) or "none"
        raise DataError(f"{path}: expected exactly one {'/'.join(sorted(exts))} file in the folder, found {found}")
    return tables[0]


def read_utf8(path: Path) -> str:
    """The file's text; a DataError naming the line of the first non-UTF-8 byte otherwise."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError(f"{path.name} is not UTF-8 text (bad byte at line {line}); re-save it as UTF-8") from None


def _load_table(path: Path, modality: str, on_error: str) -> Dataset:
    text = read_utf8(path)
    rows: list[dict] = []
    if path.suffix.lower() == ".jsonl":
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path.name} line {n}: not valid JSON ({exc.msg}); each line must be one JSON object") from None
            if not isinstance(row, dict):
                raise DataError(f"{path.name} line {n}: expected a JSON object like {{\"text\": ..., \"label\": ...}}")
            rows.append(row)
        columns = sorted({k for r in rows for k in r})
    else:
        delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
        reader = csv.DictReader(io.StringIO(text), delimiter=delimiter)
        columns = [c.strip() for c in (reader.fieldnames or [])]
        rows = [{(k or "").strip(): v for k, v in r.items()} for r in reader]
    key = "text" if modality == "text" else "path"
    if key not in columns:
        want = "a 'text' column and an optional 'label' column" if modality == "text" else "columns 'path,label'"
        raise DataError(f"{path.name}: no {key!r} column (found: {', '.join(columns) or 'none'}); the file needs {want}")
    if not rows:
        raise DataError(f"{path.name} has a header but no rows")
    has_label = "label" in columns
    items, labels, names, problems = [], [], [], []
    for n, row in enumerate(rows, 2 if path.suffix.lower() != ".jsonl" else 1):
        value = row.get(key)
        label = row.get("label") if has_label else None
        where = f"{path.name} row {n}"
        reason = None
        if value is None or str(value).strip() == "":
            reason = f"empty {key}"
        elif has_label and (label is None or str(label).strip() == ""):
            reason = "empty label"
        elif modality == "audio":
            file = (path.parent / str(value)).resolve()
            reason = _check_media(file, "audio")
            value = str(file)
        if reason:
            if on_error == "refuse":
                raise DataError(f"{where}: {reason}; fix or remove the row (or choose to skip bad rows)")
            problems.append(Problem(where, reason))
            continue
        items.append(str(value))
        names.append(f"row {n}" if modality == "text" else str(row.get(key)))
        if has_label:
            labels.append(str(label).strip())
    if not items:
        raise DataError(f"{path.name}: no usable rows ({len(problems)} skipped: {problems[0] if problems else ''})")
    return Dataset(modality, items, labels if has_label else None, problems=problems, names=names)


def _check_media(file: Path, modality: str) -> Optional[str]:
    """Return why the file cannot be used, or None. Cheap checks: header decode, non-zero length."""
    if not file.exists():
        return "file not found"
    if file.suffix.lower() not in MEDIA_EXT[modality]:
        return f"unsupported extension {file.suffix!r} (use {', '.join(sorted(MEDIA_EXT[modality]))})"
    if file.stat().st_size == 0:
        return "empty file"
    try:
        if modality == "image":
            from PIL import Image

            with Image.open(file) as im:
                im.verify()
        else:
            import soundfile as sf

            info = sf.info(str(file))
            if info.frames == 0:
                return "audio of length zero"
    except Exception as exc:  # any decoder error means the file is unusable; the message names it
        return f"unreadable or corrupt ({type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else 'no detail'})"
    return None


def _load_media_folder(root: Path, modality: str, on_error: str) -> Dataset:
    if not root.is_dir():
        raise DataError(f"{root}: expected a folder (or .zip) of {modality} files, got a {root.suffix or 'file'}")
    exts = MEDIA_EXT[modality]
    subdirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    top_files = sorted(p for p in root.iterdir() if p.is_file() and p.name not in SKIP_NAMES and not p.name.startswith("."))
    items, labels, names, problems = [], [], [], []

    def take(file: Path, label: Optional[str]) -> None:
        reason = _check_media(file, modality)
        rel = str(file.relative_to(root))
        if reason:
            if on_error == "refuse":
                raise DataError(f"{rel}: {reason}; remove or replace the file (or choose to skip bad files)")
            problems.append(Problem(rel, reason))
            return
        items.append(str(file))
        names.append(rel)
        if label is not None:
            labels.append(label)

    if subdirs:
        empty = [d.name for d in subdirs if not any(f.is_file() and not f.name.startswith(".") for f in d.rglob("*"))]
        if empty:
            raise DataError(f"{root}: label folder(s) {', '.join(empty)} are empty; add files or remove the folder(s)")
        for f in top_files:
            problems.append(Problem(f.name, "file outside any label folder (ignored)"))
        for d in subdirs:
            for f in sorted(p for p in d.rglob("*") if p.is_file() and not p.name.startswith(".")):
                take(f, d.name)
        result_labels: Optional[list[str]] = labels
    else:
        for f in top_files:
            take(f, None)
        result_labels = None
    if not items:
        kinds = ", ".join(sorted(exts))
        detail = f" ({len(problems)} unusable, e.g. {problems[0]})" if problems else ""
        raise DataError(f"{root}: no usable {modality} files ({kinds}) found{detail}")
    return Dataset(modality, items, result_labels, problems=problems, names=names)
