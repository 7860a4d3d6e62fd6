"""Training items left out of a run on purpose: the audit's CSV (``python -m tlcore audit --csv``, the Data page's
download) written and read back, and applied to a run's *training* split only (``FinetuneConfig.exclude``).

The file is a CSV with a ``name`` column (the item's name in its set: a file's path inside the folder, or ``row N``
of a table) and optionally ``set`` (only ``target`` rows apply; ``source`` and ``eval`` rows are ignored), ``issue``
and ``reason`` (recorded in the run's report). The eval split is never changed: a listed item that the run holds out
for evaluation stays there, and the report counts it.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Sequence

from tlcore.data.dataset import Dataset
from tlcore.errors import ConfigError

#: The audit CSV's columns, in order.
CSV_COLUMNS = ("set", "name", "issue", "score", "label", "suggested", "reason", "other", "item")


def issues_csv(rows: Sequence[dict]) -> str:
    """The audit's issue rows (dicts with :data:`CSV_COLUMNS` keys) as CSV text, one row per (item, issue)."""
    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for row in rows:
        w.writerow({k: "" if row.get(k) is None else row.get(k) for k in CSV_COLUMNS})
    return out.getvalue()


def read_exclusions(path: str | Path) -> dict[str, list[str]]:
    """{item name: [its reasons]} of the ``target`` rows of an exclusion CSV; ConfigError saying what is wrong."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise ConfigError(f"exclude {path}: no such file; give the CSV the audit wrote (--csv), with a 'name' column")
    try:
        rows = list(csv.DictReader(io.StringIO(p.read_text(encoding="utf-8-sig"))))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ConfigError(f"exclude {path}: not a readable CSV ({exc}); give the CSV the audit wrote (--csv)") from None
    if rows and "name" not in rows[0]:
        raise ConfigError(f"exclude {path}: no 'name' column; give the CSV the audit wrote (--csv)")
    out: dict[str, list[str]] = {}
    for row in rows:
        if (row.get("set") or "target") != "target" or not row.get("name"):
            continue
        why = row.get("reason") or row.get("issue") or "listed in the exclusion file"
        if row.get("issue") and row.get("reason"):
            why = f"{row['issue']}: {row['reason']}"
        out.setdefault(row["name"], []).append(why)
    return out


def exclude_training_items(train: Dataset, path: str | Path, *,
                           held_out: Sequence[str] = ()) -> tuple[Dataset, dict]:
    """(``train`` without the items the file lists, the report's record: the file, what was removed and why, and how
    many listed items were held out for evaluation from the same set (``held_out``: their names; kept there) or
    found in neither split)."""
    listed = read_exclusions(path)
    names = train.names or [f"#{i}" for i in range(len(train))]
    drop = [i for i, name in enumerate(names) if name in listed]
    keep = [i for i in range(len(train)) if i not in set(drop)]
    in_eval = set(held_out) & set(listed)
    removed = [{"name": names[i], "label": train.labels[i] if train.labels else None, "reasons": listed[names[i]]}
               for i in drop]
    record = {"file": str(path), "listed": len(listed), "removed": len(drop), "items": removed,
              "kept_in_eval": len(in_eval),
              "not_found": len(set(listed) - {names[i] for i in drop} - in_eval),
              "rule": "only training items are removed; the eval split is never changed"}
    return train.subset(keep), record
