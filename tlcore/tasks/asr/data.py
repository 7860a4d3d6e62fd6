"""Speech recognition data: an audio folder with one ``.csv`` (``metadata.csv`` preferred) that lists
``file_name,transcription`` (also spelled ``path`` / ``text``) and optional ``speaker`` / ``accent`` columns.

    clips/metadata.csv          file_name,transcription,speaker,accent
    clips/a_0001.wav            paths are relative to the csv (sub-folders allowed)

The whole folder may also be a ``.zip``, or the path may name the csv itself. Rows with a missing, empty,
corrupt or zero-length audio file, or an empty transcription, are skipped and listed (``on_bad_file="skip"``)
or refused with a message naming the row (``"refuse"``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

from tlcore.data.audio import audio_problem
from tlcore.data.confine import check_folder_links, confined_path
from tlcore.data.dataset import Problem, skip_or_refuse
from tlcore.data.loaders import read_utf8, resolve_data_path
from tlcore.data.tables import read_csv
from tlcore.errors import DataError

AUDIO_EXT = {".wav", ".flac", ".ogg", ".mp3"}
FILE_COLUMNS = ("file_name", "path")
TEXT_COLUMNS = ("transcription", "text")
GROUP_COLUMNS = ("speaker", "accent")


@dataclass
class AsrData:
    """Utterances: audio paths, transcripts, optional per-utterance groups (``{"speaker": [...], "accent": [...]}``)."""

    paths: list[str]
    texts: list[str]
    groups: dict[str, list[str]] = field(default_factory=dict)
    names: list[str] = field(default_factory=list)
    origin: str = ""
    problems: list[Problem] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.paths)

    def subset(self, idx: Sequence[int]) -> "AsrData":
        idx = list(idx)
        return AsrData([self.paths[i] for i in idx], [self.texts[i] for i in idx],
                       {k: [v[i] for i in idx] for k, v in self.groups.items()}, [self.names[i] for i in idx],
                       self.origin, list(self.problems))

    def content_hash(self) -> str:
        h = hashlib.sha256()
        for name, text in zip(self.names, self.texts):
            h.update(f"{name}\t{text}\n".encode())
        return h.hexdigest()[:16]


def _find_csv(path: Path) -> Path:
    if path.is_file():
        if path.suffix.lower() != ".csv":
            raise DataError(f"{path.name}: expected a folder (or .zip) with a metadata.csv, or the .csv itself")
        return path
    if (path / "metadata.csv").is_file():
        check_folder_links(path, [path / "metadata.csv"])
        return path / "metadata.csv"
    tables = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() == ".csv")
    check_folder_links(path, tables)
    if len(tables) != 1:
        found = ", ".join(p.name for p in tables) or "none"
        raise DataError(f"{path}: speech recognition data needs one metadata.csv (columns file_name,transcription) "
                        f"beside the audio files; found {found}")
    return tables[0]


def _pick(columns: Sequence[str], names: Sequence[str], what: str, table: Path) -> str:
    lowered = {c.strip().lower(): c for c in columns}
    for name in names:
        if name in lowered:
            return lowered[name]
    raise DataError(f"{table.name}: no {what} column; found columns {list(columns)}, expected one of "
                    f"{', '.join(names)} (e.g. a header line 'file_name,transcription')")


def _audio_problem(file: Path) -> Optional[str]:
    """Why the clip cannot be used, or None (header checks only: length zero, duration cap, corrupt)."""
    if not file.is_file():
        return "audio file not found"
    if file.suffix.lower() not in AUDIO_EXT:
        return f"unsupported audio type {file.suffix!r} (use {', '.join(sorted(AUDIO_EXT))})"
    return audio_problem(file)


def load_asr_dataset(path: str | Path, *, on_bad_file: str = "skip") -> AsrData:
    """Read a speech recognition set (see the module docstring). Raises DataError with what is wrong and how to fix it."""
    if on_bad_file not in ("skip", "refuse"):
        raise DataError(f"on_bad_file must be 'skip' or 'refuse', not {on_bad_file!r}")
    origin = str(Path(path).expanduser())
    table = _find_csv(resolve_data_path(path))
    columns, rows = read_csv(read_utf8(table), table.name)
    file_col = _pick(columns, FILE_COLUMNS, "audio file", table)
    text_col = _pick(columns, TEXT_COLUMNS, "transcription", table)
    lowered = {c.strip().lower(): c for c in columns}
    group_cols = {g: lowered[g] for g in GROUP_COLUMNS if g in lowered}
    data = AsrData([], [], {g: [] for g in group_cols}, [], origin)
    if not rows:
        raise DataError(f"{table.name} has a header but no rows; add one row per clip (file_name,transcription)")
    for n, row in rows:
        name = (row.get(file_col) or "").strip()
        transcript = " ".join((row.get(text_col) or "").split())
        where = f"{table.name} line {n}" + (f" ({name})" if name else "")
        if not name:
            reason = f"no audio file name in column {file_col!r}"
        elif not transcript:
            reason = f"empty transcription in column {text_col!r}"
        else:
            file = confined_path(table.parent, name, f"{table.name} line {n}")   # before any disk access: no leak
            reason = _audio_problem(file)
        if reason:
            skip_or_refuse(where, reason, on_bad_file, data.problems,
                           fix="fix or remove the row, or use on_bad_file='skip'")
            continue
        data.paths.append(str(file))
        data.texts.append(transcript)
        data.names.append(name)
        for g, col in group_cols.items():
            data.groups[g].append((row.get(col) or "").strip() or "unknown")
    if not data.paths:
        detail = f" ({len(data.problems)} skipped; first: {data.problems[0]})" if data.problems else ""
        raise DataError(f"{table.name}: no usable rows{detail}")
    return data
