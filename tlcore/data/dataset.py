"""The in-memory data set: items (paths or texts), optional labels, and the problems found while loading."""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

from tlcore.errors import DataError


@dataclass
class Problem:
    """One file or row that could not be used, and why."""

    where: str
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


def skip_or_refuse(where: str, reason: str, on_error: str, problems: list["Problem"], *,
                   fix: str = "fix or remove the row (or choose to skip bad rows)") -> None:
    """An item that cannot be used: with ``on_error="refuse"`` a DataError naming it and how to ``fix`` it; with
    ``"skip"`` it is listed in ``problems`` (the report shows them) and the caller leaves it out."""
    if on_error == "refuse":
        raise DataError(f"{where}: {reason}; {fix}")
    problems.append(Problem(where, reason))


@dataclass
class Dataset:
    """A loaded data set. ``items`` are image/audio file paths (str) or texts; ``labels`` is None when unlabeled."""

    modality: str
    items: list
    labels: Optional[list[str]] = None
    origin: str = ""
    problems: list[Problem] = field(default_factory=list)
    names: list[str] = field(default_factory=list)   # display name per item (relative path or row number)
    # The group of each item (the object photographed, the speaker, the glyph drawn), None when the data declares
    # none: splits then hold out whole groups and intervals resample groups (tlcore.data.split, evaluation.metrics).
    groups: Optional[list[str]] = None
    _hash: Optional[str] = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.items)

    @property
    def labeled(self) -> bool:
        return self.labels is not None

    @property
    def classes(self) -> list[str]:
        return sorted(set(self.labels or []))

    def class_counts(self) -> dict[str, int]:
        return dict(sorted(Counter(self.labels or []).items()))

    def content_hash(self) -> str:
        """SHA-256 over item contents (file bytes or text) and labels, in order: the cache key of this data."""
        if self._hash is None:
            h = hashlib.sha256(self.modality.encode())
            for i, item in enumerate(self.items):
                if self.modality == "text":
                    h.update(b"T" + str(item).encode("utf-8"))
                else:
                    h.update(b"F" + Path(item).read_bytes())
                h.update(b"L" + (self.labels[i] if self.labels else "\0").encode("utf-8"))
                if self.groups is not None:      # data without groups keeps the hash (and stored split) it had
                    h.update(b"G" + self.groups[i].encode("utf-8"))
            self._hash = h.hexdigest()[:16]
        return self._hash

    def subset(self, indices: Sequence[int]) -> "Dataset":
        return Dataset(
            modality=self.modality,
            items=[self.items[i] for i in indices],
            labels=[self.labels[i] for i in indices] if self.labels is not None else None,
            origin=self.origin,
            problems=[],
            names=[self.names[i] for i in indices] if self.names else [],
            groups=[self.groups[i] for i in indices] if self.groups is not None else None,
        )

    @staticmethod
    def concat(parts: Sequence["Dataset"]) -> "Dataset":
        first = parts[0]
        labeled = all(p.labels is not None for p in parts)
        return Dataset(
            modality=first.modality,
            items=[x for p in parts for x in p.items],
            labels=[y for p in parts for y in p.labels] if labeled else None,  # type: ignore[union-attr]
            origin="+".join(p.origin for p in parts),
            problems=[x for p in parts for x in p.problems],
            names=[n for p in parts for n in (p.names or [""] * len(p))],
            groups=[g for p in parts for g in p.groups] if all(p.groups is not None for p in parts) else None,  # type: ignore[union-attr]
        )
