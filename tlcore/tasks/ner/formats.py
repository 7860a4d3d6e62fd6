"""NER data on disk: recognising a token-tagged text set, and loading one split.

A text set is token-tagged when its file is CoNLL text (``.conll`` / ``.txt``) or a ``.jsonl`` whose first object
has a ``tokens`` list (and no ``text``); a ``.csv`` / ``.tsv`` table is a text/label table (classification).
Detection reads only file names and the first row of a table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

from tlcore.data.loaders import TEXT_EXT
from tlcore.tasks.ner.data import NerData, load_ner

NER_ONLY_EXT = {".conll", ".txt"}


def _first_json_row(path: Path) -> Optional[dict]:
    with open(path, encoding="utf-8-sig", errors="replace") as f:
        for line in f:
            if line.strip():
                try:
                    row = json.loads(line)
                except ValueError:
                    return None
                return row if isinstance(row, dict) else None
    return None


def detect(path: Path, modality: str) -> bool:
    """Is the (resolved, existing) ``path`` a token-tagged text set?"""
    if modality != "text":
        return False
    files = [path] if path.is_file() else sorted(p for p in path.iterdir() if p.is_file())
    tables = [p for p in files if p.suffix.lower() in TEXT_EXT | NER_ONLY_EXT]
    if any(p.suffix.lower() in (".csv", ".tsv") for p in tables):
        return False  # a text/label table: classification (the classification loader reads it)
    jsonl = [p for p in tables if p.suffix.lower() == ".jsonl"]
    if jsonl:
        row = _first_json_row(jsonl[0])
        return bool(row) and "tokens" in row and "text" not in row
    return any(p.suffix.lower() in NER_ONLY_EXT for p in tables)


def load(path: str | Path, *, on_bad_file: str = "skip", require_labels: bool = False) -> NerData:
    """One split of NER data (``NerData``); ``require_labels``: refuse untagged sentences. Raises DataError."""
    return load_ner(path, require_tags=require_labels)
