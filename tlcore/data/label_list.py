"""Labels a person added to a "what to label next" list, folded into a new version of the data set.

The list is the CSV that :func:`tlcore.experiments.label_next.ranked_csv` writes (``rank,item,name,...,label``) with
some ``label`` cells filled in. :func:`read_label_list` matches its rows to the pool (by ``item``, the text or the
file's path, else by ``name``); :func:`labeled_version` writes the new target (the old labeled items plus the newly
labeled ones) and the rest of the pool as new files. The caller stores them as a *new* set: the old one is never
changed, so runs made on it stay reproducible.
"""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path, PurePosixPath
from typing import Optional

from tlcore.data.dataset import Dataset
from tlcore.data.loaders import GROUPS_FILE
from tlcore.errors import DataError


def read_label_list(text: str, pool: Dataset) -> tuple[list[int], list[str]]:
    """(pool indices, labels) of the list's rows whose ``label`` is filled in. Raises ``DataError`` for a table without
    ``item``/``label`` columns, a row that names no pool item, an item labeled twice, or no label at all."""
    rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
    columns = set(rows[0]) if rows else set()
    if not {"item", "label"} <= columns:
        raise DataError("the list needs the columns 'item' and 'label' (as downloaded, with labels filled in); found: "
                        + (", ".join(sorted(c for c in columns if c)) or "none"))
    by_item = {str(x): i for i, x in enumerate(pool.items)}
    by_name = {n: i for i, n in enumerate(pool.names)} if pool.names else {}
    picked: dict[int, str] = {}
    for n, row in enumerate(rows, 2):
        label = (row.get("label") or "").strip()
        if not label:
            continue
        i = by_item.get(row.get("item") or "", by_name.get((row.get("name") or "").strip()))
        if i is None:
            raise DataError(f"list row {n}: {row.get('name') or row.get('item')!r} is not in the pool; use the list "
                            "made for this data set")
        if picked.setdefault(i, label) != label:
            raise DataError(f"list row {n}: {row.get('name')!r} is labeled twice ({picked[i]!r} and {label!r}); keep one")
    if not picked:
        raise DataError("no label filled in: write each item's class in the 'label' column, then upload the list")
    return list(picked), list(picked.values())


def unique_name(name: str, used: set[str]) -> str:
    """``name``, or ``<stem>-<k><suffix>`` in the same folder when ``used`` holds it already; adds it to ``used``."""
    stem, suffix, k = PurePosixPath(name).stem, PurePosixPath(name).suffix, 1
    out = name
    while out in used:
        k += 1
        out = str(PurePosixPath(name).with_name(f"{stem}-{k}{suffix}"))   # in the same folder
    used.add(out)
    return out


def _text_table(items: list, labels: list | None, groups: list | None) -> bytes:
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["text"] + (["label"] if labels is not None else []) + (["group"] if groups is not None else []))
    for i, x in enumerate(items):
        w.writerow([x] + ([labels[i]] if labels is not None else []) + ([groups[i]] if groups is not None else []))
    return out.getvalue().encode("utf-8")


def _media_zip(items: list, labels: list | None, groups: list | None) -> bytes:
    buf = io.BytesIO()
    used: set[str] = set()
    rows = []
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for i, path in enumerate(items):
            name = Path(path).name
            rel = unique_name(f"{labels[i]}/{name}" if labels is not None else name, used)
            z.write(path, rel)
            rows.append((rel, groups[i] if groups is not None else ""))
        if groups is not None:
            z.writestr(GROUPS_FILE, "file,group\n" + "".join(f"{r},{g}\n" for r, g in rows))
    return buf.getvalue()


def labeled_version(target: Dataset, pool: Dataset, picked: list[int], labels: list[str], *,
                    eval: Optional[Dataset] = None) -> dict[str, tuple[str, bytes]]:
    """The new version's files: ``{"target": (file name, bytes), "unlabeled": ..., "eval": ...}`` — the target's
    labeled items plus the pool items ``picked`` with their ``labels``; the pool's other items (no ``"unlabeled"``
    when none is left); and ``eval`` when given (a set whose eval items were held out of its target passes them here,
    so the new version is scored on the very same items instead of a new split that could hold the new labels).
    Texts become a CSV (``text,label``), images and audio a .zip of ``<label>/<file>`` folders. A target that declares
    groups keeps them; each newly labeled item is its own group."""
    if target.labels is None:
        raise DataError("the target has no labels; the new version adds labels to a labeled target")
    chosen = set(picked)
    items = list(target.items) + [pool.items[i] for i in picked]
    all_labels = list(target.labels) + list(labels)
    groups = None if target.groups is None else list(target.groups) + [f"new-{pool.names[i] if pool.names else i}"
                                                                      for i in picked]
    rest = [x for i, x in enumerate(pool.items) if i not in chosen]
    write, ext = (_text_table, "csv") if target.modality == "text" else (_media_zip, "zip")
    out = {"target": (f"target.{ext}", write(items, all_labels, groups))}
    if rest:
        out["unlabeled"] = (f"unlabeled.{ext}", write(rest, None, None))
    if eval is not None:
        out["eval"] = (f"eval.{ext}", write(list(eval.items), eval.labels, eval.groups))
    return out
