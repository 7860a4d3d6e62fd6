"""Multi-label data: each item (a text, or an image) carries a *set* of labels, possibly empty.

Formats (DESIGN.md):

* text — a ``.csv`` / ``.tsv`` / ``.jsonl`` table with a ``text`` column and a ``labels`` column;
* images — a ``.csv`` table with ``path`` (relative to the table, inside its folder) and ``labels`` columns.

``labels`` is ``|``-separated text (``"price|delivery"``) or a JSON list (``["price", "delivery"]``, also as the
text of a CSV field); an empty value is an item with no labels. Labels are stripped and normalised to Unicode NFC
(``café`` typed two ways is one label); a label repeated within one item counts once. An optional ``group`` column
(the same object, author or source document) is kept for the split.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from tlcore.data.confine import confined_path
from tlcore.data.dataset import Dataset, Problem, skip_or_refuse
from tlcore.data.images import image_problem
from tlcore.data.loaders import resolve_data_path
from tlcore.data.split import stored_split
from tlcore.data.tables import read_csv, read_jsonl, read_text
from tlcore.errors import DataError

TABLE_EXT = (".csv", ".tsv", ".jsonl")
ITEM_COLUMNS = {"text": "text", "path": "image"}     # the item column and the modality it means


@dataclass
class MultiLabelData:
    """Items with their label sets (``label_sets`` is None for an unlabeled set)."""

    modality: str
    items: list
    label_sets: Optional[list[tuple[str, ...]]]
    names: list[str]
    origin: str = ""
    problems: list[Problem] = field(default_factory=list)
    groups: Optional[list[str]] = None

    def __len__(self) -> int:
        return len(self.items)

    def vocabulary(self) -> list[str]:
        """Every label that occurs, sorted."""
        return sorted({y for ys in self.label_sets or [] for y in ys})

    def label_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for ys in self.label_sets or []:
            for y in ys:
                counts[y] = counts.get(y, 0) + 1
        return dict(sorted(counts.items()))

    def multi_hot(self, vocabulary: Sequence[str]) -> np.ndarray:
        """(n, labels) 0/1 matrix over ``vocabulary``; labels outside it are ignored."""
        pos = {y: j for j, y in enumerate(vocabulary)}
        out = np.zeros((len(self), len(vocabulary)), dtype=np.float32)
        for i, ys in enumerate(self.label_sets or []):
            for y in ys:
                if y in pos:
                    out[i, pos[y]] = 1.0
        return out

    def subset(self, idx: Sequence[int]) -> "MultiLabelData":
        return MultiLabelData(self.modality, [self.items[i] for i in idx],
                              None if self.label_sets is None else [self.label_sets[i] for i in idx],
                              [self.names[i] for i in idx], self.origin, [],
                              None if self.groups is None else [self.groups[i] for i in idx])

    def dataset(self) -> Dataset:
        """The items as a :class:`Dataset` (no labels): what backbones embed and the feature cache keys on."""
        return Dataset(self.modality, list(self.items), None, origin=self.origin, names=list(self.names))

    def content_hash(self) -> str:
        """The items' hash plus the label sets: the key of this data's stored eval split."""
        h = hashlib.sha256(self.dataset().content_hash().encode())
        for ys in self.label_sets or []:
            h.update(("\x1f".join(ys) + "\x1e").encode("utf-8"))
        return h.hexdigest()[:16]


def parse_labels(value: Any, where: str) -> tuple[str, ...]:
    """One row's label set from a JSON list or ``|``-separated text; refuses anything else with the row named."""
    if value is None:
        return ()
    if isinstance(value, str) and value.strip().startswith("["):
        try:
            value = json.loads(value)
        except ValueError:
            raise DataError(f"{where}: labels {value[:60]!r} start like a JSON list but are not valid JSON; write "
                            'them as ["a", "b"] or as a|b') from None
    if isinstance(value, list):
        bad = [v for v in value if not isinstance(v, str)]
        if bad:
            raise DataError(f"{where}: labels must be strings; got {json.dumps(bad[0])[:40]} in the list")
        parts = value
    elif isinstance(value, str):
        parts = value.split("|")
    else:
        raise DataError(f"{where}: labels must be a|b text or a JSON list of strings, not {type(value).__name__}")
    out: list[str] = []
    for part in parts:
        label = unicodedata.normalize("NFC", part.strip())
        if label and label not in out:
            out.append(label)
    return tuple(out)


def find_table(path: Path) -> Path:
    """The one table of a set: the file itself, or the single ``.csv``/``.tsv``/``.jsonl`` in the folder."""
    if path.is_file():
        if path.suffix.lower() not in TABLE_EXT:
            raise DataError(f"{path.name}: a multi-label set is a .csv, .tsv or .jsonl table with a 'labels' column")
        return path
    tables = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in TABLE_EXT)
    if len(tables) != 1:
        raise DataError(f"{path}: expected exactly one .csv/.tsv/.jsonl table with a 'labels' column, found "
                        f"{', '.join(p.name for p in tables) or 'none'}")
    return tables[0]


def read_rows(table: Path) -> tuple[list[str], list[tuple[int, dict]], str]:
    """(columns, (line, row) pairs, the word for a line) of a table."""
    text = read_text(table)
    if table.suffix.lower() == ".jsonl":
        rows = list(read_jsonl(text, table.name))
        return sorted({k for _, r in rows for k in r}), rows, "line"
    columns, rows = read_csv(text, table.name, "\t" if table.suffix.lower() == ".tsv" else ",")
    return columns, rows, "row"


def load_multilabel(path: str | Path, *, on_bad_file: str = "skip", require_labels: bool = False) -> MultiLabelData:
    """Load one multi-label set (module docstring). Unusable rows (empty text, unreadable image) are skipped and
    listed in ``problems`` (``on_bad_file="refuse"``: the first one is an error); a malformed labels cell is an
    error, since guessing would train on labels nobody gave."""
    origin = str(Path(path).expanduser())
    table = find_table(resolve_data_path(path))
    columns, rows, line_word = read_rows(table)
    item_col = next((c for c in ITEM_COLUMNS if c in columns), None)
    if item_col is None:
        raise DataError(f"{table.name}: no 'text' or 'path' column (found: {', '.join(columns) or 'none'}); a multi-label "
                        "table needs text,labels (texts) or path,labels (images)")
    if "labels" not in columns and require_labels:
        raise DataError(f"{table.name}: no 'labels' column; give each row its labels as a|b or a JSON list")
    if not rows:
        raise DataError(f"{table.name} has no rows; add one row per example")
    modality, labeled = ITEM_COLUMNS[item_col], "labels" in columns
    items, label_sets, names, groups, problems = [], [], [], [], []
    for n, row in rows:
        where = f"{table.name} {line_word} {n}"
        value = row.get(item_col)
        if isinstance(value, (list, dict)):
            raise DataError(f"{where}: {item_col!r} must be a string, not a JSON {type(value).__name__}; fix the line")
        reason = None
        if value is None or str(value).strip() == "":
            reason = f"empty {item_col}"
        elif modality == "image":
            file = confined_path(table.parent, str(value), where)   # refused before the disk is looked at
            reason = image_problem(file) if file.is_file() else "file not found"
            value = str(file)
        if reason:
            skip_or_refuse(where, reason, on_bad_file, problems)
            continue
        if labeled:
            label_sets.append(parse_labels(row.get("labels"), where))
        items.append(str(value))
        names.append(f"row {n}" if modality == "text" else str(row.get(item_col)))
        groups.append(str(row.get("group") or ""))
    if not items:
        raise DataError(f"{table.name}: no usable rows ({len(problems)} skipped: {problems[0] if problems else ''})")
    data = MultiLabelData(modality, items, label_sets if labeled else None, names, origin, problems,
                          groups if "group" in columns else None)
    if require_labels:
        check_trainable(data)
    return data


def check_trainable(data: MultiLabelData) -> None:
    """A labeled set with at least two labels, each on some items and off others (else there is nothing to learn)."""
    if data.label_sets is None:
        raise DataError(f"{data.origin}: no 'labels' column; labeled multi-label data needs one")
    counts = data.label_counts()
    if len(counts) < 2:
        raise DataError(f"{data.origin}: {len(counts)} label(s) in all; multi-label classification needs at least two "
                        "different labels")
    always = [y for y, c in counts.items() if c == len(data)]
    if always:
        raise DataError(f"{data.origin}: label {always[0]!r} is on every item, so there is nothing to learn about it; "
                        "remove it or add items without it")


def eval_split(data: MultiLabelData, fraction: float) -> tuple[MultiLabelData, MultiLabelData, Path]:
    """Hold out ``fraction`` of a labeled set for evaluation, once (stored by content hash, reused by every run).

    Stratified on each item's rarest label (a common approximation of iterative stratification: rare labels get
    their share of eval items), whole groups kept on one side when the set has a ``group`` column."""
    if data.label_sets is None:
        raise DataError("the target set has no labels, so no eval split can be held out; give --eval or labeled data")
    counts = data.label_counts()
    units = data.groups if data.groups is not None else [str(i) for i in range(len(data))]
    by_unit: dict[str, list[int]] = {}
    for i, u in enumerate(units):
        by_unit.setdefault(u, []).append(i)

    def make() -> tuple[list[int], list[int]]:
        rng = np.random.default_rng(0)
        strata: dict[str, list[str]] = {}
        for u, idx in by_unit.items():
            labels = {y for i in idx for y in data.label_sets[i]}  # type: ignore[index]
            key = min(labels, key=lambda y: (counts[y], y)) if labels else ""
            strata.setdefault(key, []).append(u)
        held_units: list[str] = []
        for key in sorted(strata):
            us = list(strata[key])
            rng.shuffle(us)
            n_held = min(len(us) - 1, int(round(fraction * len(us)))) if len(us) > 1 else int(rng.random() < fraction)
            held_units += us[:n_held]
        held = sorted(i for u in held_units for i in by_unit[u])
        keep = sorted(set(range(len(data))) - set(held))
        if not held or not keep:
            raise DataError(f"the target set ({len(data)} items) is too small to hold {fraction:.0%} out for evaluation; "
                            "give an --eval set or add items")
        return keep, held

    keep, held, path = stored_split("ml-" + data.content_hash(), fraction, make)
    return data.subset(keep), data.subset(held), path
