"""Speech-recognition data on disk: recognising a transcribed audio set, and loading one split.

An audio set is for speech recognition when its table (``metadata.csv``, or the folder's only ``.csv``) has a
transcription column next to the file column. Detection reads only the table's header."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from tlcore.tasks.asr.data import FILE_COLUMNS, TEXT_COLUMNS, AsrData, load_asr_dataset


def detect(path: Path, modality: str) -> bool:
    """Is the (resolved, existing) ``path`` an audio set with transcripts?"""
    if modality != "audio":
        return False
    if path.is_file():
        table = path if path.suffix.lower() == ".csv" else None
    elif (path / "metadata.csv").is_file():
        table = path / "metadata.csv"
    else:
        tables = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() == ".csv")
        table = tables[0] if len(tables) == 1 else None
    if table is None:
        return False
    with open(table, encoding="utf-8-sig", errors="replace") as f:
        header = next(csv.reader(io.StringIO(f.readline())), [])
    columns = {c.strip().lower() for c in header}
    return bool(columns & set(TEXT_COLUMNS)) and bool(columns & set(FILE_COLUMNS))


def load(path: str | Path, *, on_bad_file: str = "skip", require_labels: bool = False) -> AsrData:
    """One split of transcribed clips (``AsrData``; every row has a transcription). Raises DataError."""
    return load_asr_dataset(path, on_bad_file=on_bad_file)
