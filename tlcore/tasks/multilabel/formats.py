"""Multi-label data on disk: recognising a multi-label set, and loading one split.

A set is multi-label when its table has a ``labels`` column (and no ``label`` column) next to ``text`` (texts) or
``path`` (images). Detection reads only the table's header, or the first line of a ``.jsonl``."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from tlcore.tasks.multilabel.data import ITEM_COLUMNS, TABLE_EXT, MultiLabelData, load_multilabel


def _columns(table: Path) -> set[str]:
    with open(table, encoding="utf-8-sig", errors="replace") as f:
        first = f.readline()
    if table.suffix.lower() == ".jsonl":
        try:
            row = json.loads(first)
        except ValueError:
            return set()
        return set(row) if isinstance(row, dict) else set()
    delimiter = "\t" if table.suffix.lower() == ".tsv" else ","
    return {c.strip().lower() for c in next(csv.reader(io.StringIO(first), delimiter=delimiter), [])}


def detect(path: Path, modality: str) -> bool:
    """Is the (resolved, existing) ``path`` a multi-label table of ``modality`` items?"""
    if path.is_file():
        tables = [path] if path.suffix.lower() in TABLE_EXT else []
    else:
        tables = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in TABLE_EXT)
    if len(tables) != 1:
        return False
    columns = _columns(tables[0])
    item = next((column for column, kind in ITEM_COLUMNS.items() if kind == modality), None)
    return item is not None and item in columns and "labels" in columns and "label" not in columns


def load(path: str | Path, *, on_bad_file: str = "skip", require_labels: bool = False) -> MultiLabelData:
    """One split of multi-label data (:class:`MultiLabelData`). Raises DataError."""
    return load_multilabel(path, on_bad_file=on_bad_file, require_labels=require_labels)
