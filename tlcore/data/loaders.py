"""Load the data set formats of DESIGN.md into a :class:`Dataset`, with validation and clear messages.

* image: ``<label>/<name>.{png,jpg,jpeg,bmp,webp}``; a folder of images with no label folders is unlabeled.
* text: ``.csv`` / ``.tsv`` / ``.jsonl`` with a ``text`` column and an optional ``label`` column
  (a folder holding exactly one such file works too).
* audio: ``<label>/<name>.{wav,flac,ogg,mp3}`` or a ``.csv`` with ``path,label`` (paths relative to the csv).
Any of these may be a ``.zip`` of the folder.
"""

from __future__ import annotations

import json
import os
import unicodedata
from pathlib import Path
from typing import Optional

from tlcore.data.archive import extract_zip
from tlcore.data.confine import check_folder_links, confined_path
from tlcore.data.dataset import Dataset, Problem, skip_or_refuse
from tlcore.data.tables import read_csv, read_jsonl, read_text
from tlcore.errors import DataError

IMAGE_EXT = {".png", ".jpg", ".jpeg", ".bmp", ".webp"}
AUDIO_EXT = {".wav", ".flac", ".ogg", ".mp3"}
TEXT_EXT = {".csv", ".tsv", ".jsonl"}
MEDIA_EXT = {"image": IMAGE_EXT, "audio": AUDIO_EXT}
SKIP_NAMES = {".complete", "demo.json", ".DS_Store", "Thumbs.db", "README.md", "README.txt", "LICENSE", "groups.csv"}
#: In a folder of media files: which group each file belongs to (columns ``file,group``; ``file`` relative to the
#: folder, as the run shows it, e.g. ``cat/IMG_1.jpg``). Tables declare groups in a ``group`` column instead.
GROUPS_FILE = "groups.csv"


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
    elif modality == "audio" and (path.suffix.lower() == ".csv" or (path.is_dir() and _is_audio_table(path))):
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


def _printed_form(label: str) -> str:
    """How a label looks: NFC, without invisible format characters (zero-width space, joiners, BOM) and without
    white space at its ends (a folder named "cat " beside "cat")."""
    nfc = unicodedata.normalize("NFC", label)
    return "".join(c for c in nfc if unicodedata.category(c) != "Cf").strip()


def check_lookalike_labels(labels: list[str], where: str) -> None:
    """Refuse two labels that print the same but are different strings: another Unicode normalisation ("café"
    typed as é or as e + ◌́), an invisible character or a space at an end. They would train as two classes that
    look like one; TransferLab does not merge them silently."""
    by_form: dict[str, set[str]] = {}
    for label in set(labels):
        by_form.setdefault(_printed_form(label), set()).add(label)
    clash = next((sorted(forms) for forms in by_form.values() if len(forms) > 1), None)
    if clash:
        codes = " vs ".join(" ".join(f"U+{ord(c):04X}" for c in form) for form in clash[:2])
        raise DataError(f"{where}: the labels {clash[0]!r} and {clash[1]!r} look the same but are written with different "
                        f"characters ({codes}: another Unicode form, an invisible character or a space at an end); "
                        "write them the same way so they are one class")


def case_only_labels(labels: list[str]) -> list[list[str]]:
    """Groups of labels that differ only in letter case ("Cat", "cat"): two classes on this machine, one folder on
    macOS and Windows. They may be meant (upper- and lower-case letters), so a run says so and goes on."""
    by_fold: dict[str, set[str]] = {}
    for label in set(labels):
        by_fold.setdefault(label.casefold(), set()).add(label)
    return sorted(sorted(group) for group in by_fold.values() if len(group) > 1)


def check_trainable(ds: Dataset) -> None:
    if ds.labels is None:
        raise DataError(f"{ds.origin}: no labels found; labeled data needs label folders (<label>/<file>) or a 'label' column")
    if len(ds.classes) < 2:
        raise DataError(f"{ds.origin}: only one class ({ds.classes[0]!r}); a classifier needs at least two classes")


def _tables(folder: Path, exts: set[str]) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in exts)


def _is_audio_table(folder: Path) -> bool:
    """A folder is an audio table set when it holds one .csv whose header names a ``path`` column (the clips may lie
    beside it), or .csv files and no audio at all (then loading it explains what is missing)."""
    tables = _tables(folder, {".csv"})
    if len(tables) == 1:
        with open(tables[0], "rb") as f:
            head = f.read(4096).decode("utf-8", "replace").lstrip("\ufeff").splitlines()[:1]
        if head and "path" in [c.strip().strip('"').lower() for c in head[0].split(",")]:
            return True
    return bool(tables) and not _media_files(folder, AUDIO_EXT)


def _media_files(folder: Path, exts: set[str]) -> list[Path]:
    return [p for p in _walk_files(folder, folder) if p.suffix.lower() in exts]


def _single_table(path: Path, exts: set[str]) -> Path:
    if path.is_file():
        if path.suffix.lower() not in exts:
            raise DataError(f"{path.name}: unsupported file type {path.suffix!r}; use one of {', '.join(sorted(exts))}")
        return path
    tables = _tables(path, exts)
    if len(tables) != 1:
        found = ", ".join(p.name for p in tables) or "none"
        hint = ""
        if not tables:
            kinds = {m for m, e in MEDIA_EXT.items() for p in _walk_files(path, path)[:200] if p.suffix.lower() in e}
            hint = f"; the folder holds {' and '.join(sorted(kinds))} files: choose that modality" if kinds else ""
        raise DataError(f"{path}: expected exactly one {'/'.join(sorted(exts))} file in the folder, found {found}{hint}")
    check_folder_links(path, tables)
    return tables[0]


def read_utf8(path: Path) -> str:
    """The file's text (UTF-8, or UTF-16/32 with a BOM); a DataError naming the encoding problem and its line."""
    return read_text(path)


def _load_table(path: Path, modality: str, on_error: str) -> Dataset:
    text = read_text(path)
    if path.suffix.lower() == ".jsonl":
        rows = list(read_jsonl(text, path.name))
        columns = sorted({k for _, r in rows for k in r})
        if not rows:
            raise DataError(f"{path.name} is empty; it needs one JSON object per line like "
                            '{"text": "...", "label": "..."}')
    else:
        columns, rows = read_csv(text, path.name, "\t" if path.suffix.lower() == ".tsv" else ",")
    key = "text" if modality == "text" else "path"
    if key not in columns:
        want = "a 'text' column and an optional 'label' column" if modality == "text" else "columns 'path,label'"
        hint = ""
        if modality == "text" and "path" in columns:
            hint = "; it looks like an audio table (path,label): choose the audio modality"
        raise DataError(f"{path.name}: no {key!r} column (found: {', '.join(columns) or 'none'}); the file needs {want}{hint}")
    if not rows:
        raise DataError(f"{path.name} has a header but no rows; add one row per example")
    has_label, has_group = "label" in columns, "group" in columns
    line_word = "line" if path.suffix.lower() == ".jsonl" else "row"
    items, labels, names, groups, problems = [], [], [], [], []
    for n, row in rows:
        where = f"{path.name} {line_word} {n}"
        value = row.get(key)
        label = row.get("label") if has_label else None
        group = row.get("group") if has_group else None
        for col, v in ((key, value), ("label", label), ("group", group)):
            if isinstance(v, (list, dict)):
                raise DataError(f"{where}: {col!r} must be a string, not a JSON {type(v).__name__} ({json.dumps(v)[:60]}); "
                                "fix the line")
        reason = None
        if value is None or str(value).strip() == "":
            reason = f"empty {key}"
        elif has_label and (label is None or str(label).strip() == ""):
            reason = "empty label"
        elif has_group and (group is None or str(group).strip() == ""):
            reason = "empty group (give every row its group, or remove the 'group' column)"
        elif modality == "audio":
            file = confined_path(path.parent, str(value), where)   # raises before the disk is looked at
            reason = _check_media(file, "audio")
            value = str(file)
        if reason:
            skip_or_refuse(where, reason, on_error, problems)
            continue
        items.append(str(value))
        names.append(f"row {n}" if modality == "text" else str(row.get(key)))
        if has_label:
            labels.append(str(label).strip())
        if has_group:
            groups.append(str(group).strip())
    if has_label:
        check_lookalike_labels(labels, path.name)
    if not items:
        raise DataError(f"{path.name}: no usable rows ({len(problems)} skipped: {problems[0] if problems else ''})")
    return Dataset(modality, items, labels if has_label else None, problems=problems, names=names,
                   groups=groups if has_group else None)


def _check_media(file: Path, modality: str) -> Optional[str]:
    """Return why the file cannot be used, or None: extension, non-zero length, a header decode (audio: duration
    cap) and, for images, a cheap decode with the pixel cap."""
    if not file.is_file():
        return "file not found"
    if file.suffix.lower() not in MEDIA_EXT[modality]:
        return f"unsupported extension {file.suffix!r} (use {', '.join(sorted(MEDIA_EXT[modality]))})"
    if file.stat().st_size == 0:
        return "empty file"
    if modality == "image":
        from tlcore.data.images import image_problem

        return image_problem(file)
    from tlcore.data.audio import audio_problem

    return audio_problem(file)


def _walk_files(folder: Path, root: Path) -> list[Path]:
    """Regular, non-hidden files under ``folder``, sorted; symbolic links are not followed into other folders, and
    one that leads outside ``root`` (file or folder) is refused before anything behind it is read."""
    out = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        check_folder_links(root, [here / d for d in dirnames if (here / d).is_symlink()])
        files = [here / f for f in filenames if not f.startswith(".") and f not in SKIP_NAMES]
        check_folder_links(root, [f for f in files if f.is_symlink()])
        out += [f for f in files if f.is_file()]
    return sorted(out)


def _holds_media(folder: Path, exts: set[str], *, look_at: int = 2000) -> bool:
    """Does the hidden ``folder`` hold a regular file of ``exts`` among its first ``look_at`` entries? Only to say it
    was skipped: nothing in it is read, no link is followed (a hidden folder is never used, so never refused)."""
    seen = 0
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        for f in filenames:
            path = Path(dirpath) / f
            if Path(f).suffix.lower() in exts and not path.is_symlink():
                return True
        seen += len(filenames) + len(dirnames)
        if seen >= look_at:
            return False
    return False


def _load_media_folder(root: Path, modality: str, on_error: str) -> Dataset:
    if not root.is_dir():
        raise DataError(f"{root}: expected a folder (or .zip) of {modality} files, got a {root.suffix or 'file'}")
    root = Path(os.path.realpath(root))
    exts = MEDIA_EXT[modality]
    entries = [p for p in root.iterdir() if not p.name.startswith(".")]
    hidden = sorted(p for p in root.iterdir() if p.name.startswith(".") and p.is_dir() and not p.is_symlink()
                    and _holds_media(p, MEDIA_EXT[modality]))
    check_folder_links(root, [p for p in entries if p.is_symlink()])
    subdirs = sorted(p for p in entries if p.is_dir())
    top_files = sorted(p for p in entries if p.is_file() and p.name not in SKIP_NAMES)
    items, labels, names, problems = [], [], [], []

    def take(file: Path, label: Optional[str]) -> None:
        reason = _check_media(file, modality)
        rel = str(file.relative_to(root))
        if reason:
            skip_or_refuse(rel, reason, on_error, problems,
                           fix="remove or replace the file (or choose to skip bad files)")
            return
        items.append(str(file))
        names.append(rel)
        if label is not None:
            labels.append(label)

    if subdirs:
        files = {d: _walk_files(d, root) for d in subdirs}
        empty = [d.name for d in subdirs if not files[d]]
        if empty:
            raise DataError(f"{root}: label folder(s) {', '.join(empty)} are empty; add files or remove the folder(s)")
        for f in top_files:
            problems.append(Problem(f.name, "file outside any label folder (ignored)"))
        for d in hidden:     # .ipynb_checkpoints and the like are skipped, but never without a word
            problems.append(Problem(f"{d.name}/", f"hidden folder of {modality} files: not used as a label (rename "
                                                  "it without the leading dot to use it)"))
        for d in subdirs:
            for f in files[d]:
                take(f, d.name)
        result_labels: Optional[list[str]] = labels
    else:
        for f in top_files:
            take(f, None)
        result_labels = None
    if result_labels is not None:
        check_lookalike_labels(result_labels, str(root))
    if not items:
        kinds = ", ".join(sorted(exts))
        detail = f" ({len(problems)} unusable, e.g. {problems[0]})" if problems else ""
        raise DataError(f"{root}: no usable {modality} files ({kinds}) found{detail}")
    return Dataset(modality, items, result_labels, problems=problems, names=names, groups=_folder_groups(root, names))


def _folder_groups(root: Path, names: list[str]) -> Optional[list[str]]:
    """The group of each file named in ``names`` from the folder's ``groups.csv`` (:data:`GROUPS_FILE`); None without
    one. Every file must be listed: a file without a group would make a split that holds groups out meaningless."""
    table = root / GROUPS_FILE
    if not table.is_file():
        return None
    columns, rows = read_csv(read_text(table), GROUPS_FILE, ",")
    if "file" not in columns or "group" not in columns:
        raise DataError(f"{table}: needs the columns 'file,group' (found: {', '.join(columns) or 'none'}); one row per "
                        "file, its path relative to the folder, e.g. cat/IMG_1.jpg,tabby-1")
    of: dict[str, str] = {}
    for n, row in rows:
        file, group = str(row.get("file") or "").strip().replace("\\", "/"), str(row.get("group") or "").strip()
        if not file or not group:
            raise DataError(f"{GROUPS_FILE} row {n}: empty {'file' if not file else 'group'}; give each file its group")
        if of.setdefault(file, group) != group:
            raise DataError(f"{GROUPS_FILE}: {file} is listed with two groups ({of[file]!r} and {group!r}); keep one")
    missing = [name for name in names if name.replace(os.sep, "/") not in of]
    if missing:
        raise DataError(f"{table}: {len(missing)} of {len(names)} files have no group (e.g. {missing[0]}); list every "
                        f"file, or remove {GROUPS_FILE} to split and score by single items")
    return [of[name.replace(os.sep, "/")] for name in names]
