"""Train/eval overlap: identical items (by content hash) in the eval split and in any data a model learned from.

An eval item that also sits in the training data is scored on something the model has seen, so the "after"
number looks better than it is. Items are compared by content: the bytes of an image/audio file, the text of a
row (surrounding white space and the Unicode normalisation ignored), the token list of an NER sentence. The
target's training part sharing items with a user-given eval set is refused; when the eval split was held out from
the target by TransferLab, duplicates of eval items are dropped from the training part (and counted); overlaps with
the source or the unlabeled data are counted and warned about, since a source may legitimately share a few items.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from pathlib import Path
from typing import Any, Optional, Sequence

from tlcore.errors import DataError


def content_key(item: Any, kind: str) -> str:
    """SHA-256 of one item's content; ``kind``: "file" (a path: its bytes), "text" or "tokens" (a word list)."""
    if kind == "file":
        data = b"F" + Path(item).read_bytes()
    elif kind == "tokens":
        data = b"W" + json.dumps(list(item)).encode("utf-8")
    else:   # one text typed two ways (é, or e + ◌́) is one text: compared in NFC
        data = b"T" + unicodedata.normalize("NFC", str(item).strip()).encode("utf-8")
    return hashlib.sha256(data).hexdigest()


def item_kind(modality: str) -> str:
    return "text" if modality == "text" else "file"


def content_keys(items: Sequence[Any], kind: str) -> set[str]:
    """The content keys of a set's items (each file read once)."""
    return {content_key(x, kind) for x in items}


def _matching(keys: set[str], items: Sequence[Any], kind: str, item_keys: Optional[Sequence[str]] = None) -> list[int]:
    """Indices of ``items`` whose content key is in ``keys`` (``item_keys``: their keys, already computed)."""
    if item_keys is None:
        item_keys = [content_key(x, kind) for x in items]
    return [i for i, key in enumerate(item_keys) if key in keys]


def overlapping(eval_items: Sequence[Any], items: Sequence[Any], kind: str) -> list[int]:
    """Indices into ``items`` of those identical to some eval item."""
    return _matching(content_keys(eval_items, kind), items, kind)


def check_target_overlap(eval_keys: set[str], train_items: Sequence[Any], train_names: Sequence[str], *,
                         kind: str, eval_given: bool, train_keys: Optional[Sequence[str]] = None) -> list[int]:
    """The training indices to keep. A user-given eval set sharing items with the target's training data is
    refused (a clear error naming a few); with a held-out split, the duplicates are dropped from training."""
    shared = _matching(eval_keys, train_items, kind, train_keys)
    if shared and eval_given:
        names = ", ".join(str(train_names[i]) if i < len(train_names) else f"#{i}" for i in shared[:3])
        raise DataError(f"{len(shared)} item(s) of the target training data also appear in the eval data (e.g. {names}); "
                        "an eval set must be held out: remove them from --target or from --eval (or leave out --eval "
                        "and let TransferLab hold out a split)")
    drop = set(shared)
    return [i for i in range(len(train_items)) if i not in drop]


def other_overlaps(eval_keys: set[str], sets: dict[str, Sequence[Any] | None], kind: str) -> dict[str, int]:
    """{set name: number of its items identical to an eval item} for the source / unlabeled sets given."""
    return {name: len(_matching(eval_keys, items, kind)) for name, items in sets.items() if items}


def split_overlaps(eval_items: Sequence[Any], train_items: Sequence[Any], train_names: Sequence[str], *, kind: str,
                   eval_given: bool, others: dict[str, Sequence[Any] | None],
                   train_keys: Optional[Sequence[str]] = None) -> tuple[list[int], dict[str, int]]:
    """Both checks at once: (training indices to keep, {"target": duplicates dropped, "source": n, ...});
    ``train_keys``: the training items' content keys when the caller has them (each file is then read once)."""
    keys = content_keys(eval_items, kind)
    keep = check_target_overlap(keys, train_items, train_names, kind=kind, eval_given=eval_given,
                                train_keys=train_keys)
    return keep, {"target": len(train_items) - len(keep), **other_overlaps(keys, others, kind)}


def overlap_warnings(counts: dict[str, int], n_eval: int) -> list[str]:
    out = []
    for name, n in counts.items():
        if name == "target" and n:
            out.append(f"{n} target training item(s) identical to eval items were left out of training "
                       "(duplicates in the target set)")
        elif n:
            out.append(f"train/eval overlap: {n} {name} item(s) are identical to eval items (of {n_eval}); the eval "
                       f"numbers may be optimistic — remove the duplicates from the {name} data")
    return out


def conflicting_labels(items: Sequence[Any], labels: Sequence[str], keys: Sequence[str], *,
                       examples: int = 3) -> Optional[dict]:
    """Identical items (the same content ``keys``) that carry different labels in one labeled set: ``{"items": n,
    "rows": m, "examples": [(item, [labels])...]}``, or None when there are none. They train as contradictions; the
    run goes on and says so (a user may have meant it: ambiguous items), with the counts in the report."""
    by_key: dict[str, list[int]] = {}
    for i, key in enumerate(keys):
        by_key.setdefault(key, []).append(i)
    clashes = [idx for idx in by_key.values() if len({labels[i] for i in idx}) > 1]
    if not clashes:
        return None
    return {"items": len(clashes), "rows": sum(len(idx) for idx in clashes),
            "examples": [(str(items[idx[0]])[:80], sorted({labels[i] for i in idx})) for idx in clashes[:examples]]}
