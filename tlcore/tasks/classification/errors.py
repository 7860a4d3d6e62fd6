"""Classification's error analysis (the Compare page's "Errors" section): confusion cells with their items, top losses,
per-class errors; the functions and definitions are :mod:`tlcore.evaluation.errors`."""

from __future__ import annotations

from tlcore.evaluation.errors import ClassificationErrors, classification_errors


def error_analysis(report: dict) -> ClassificationErrors:
    """The report's :class:`~tlcore.evaluation.errors.ClassificationErrors` (one label per item)."""
    return classification_errors(report, multi_label=False)
