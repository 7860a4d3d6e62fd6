"""Notices about the labels a run trains on, shared by the tasks: label names that differ only in letter case, and
identical items carrying different labels. The run goes on (either may be meant) and says so, as a structured
warning (:func:`tlcore.evaluation.policy.alert`)."""

from __future__ import annotations

from typing import Optional, Sequence

from tlcore.data.loaders import case_only_labels
from tlcore.evaluation.policy import alert


def case_only_warnings(labels: Sequence[str], what: str = "classes", *, folders: bool = False) -> list[dict]:
    """One warning per group of ``labels`` that differ only in letter case ("Cat", "cat"); ``what`` names them;
    ``folders``: they may be class folders (one folder on case-insensitive file systems)."""
    where = ", but are one folder on macOS and Windows" if folders else ""
    return [alert("case_only_labels", f"the {what} {', '.join(map(repr, group))} differ only in letter case: they are "
                  f"trained as separate {what} here{where}; rename them if they are one")
            for group in case_only_labels(list(labels))]


def conflict_warnings(clash: Optional[dict], what: str = "labels") -> list[dict]:
    """The warning for :func:`tlcore.data.overlap.conflicting_labels`' result (none when it found none)."""
    if not clash:
        return []
    shown = "; ".join(f"{item!r}: {', '.join(labs)}" for item, labs in clash["examples"])
    return [alert("conflicting_labels", f"{clash['items']} target item(s) appear under two or more {what} "
                  f"({clash['rows']} rows, e.g. {shown}); they train as contradictions — relabel or remove them if "
                  "they are mistakes")]
