"""Multi-label's error analysis (the Compare page's "Errors" section): per label the items where it was missed or
spurious, top losses (mean binary cross-entropy), per-label errors; the functions and definitions are
:mod:`tlcore.evaluation.errors`."""

from __future__ import annotations

from tlcore.evaluation.errors import ClassificationErrors, classification_errors


def error_analysis(report: dict) -> ClassificationErrors:
    """The report's :class:`~tlcore.evaluation.errors.ClassificationErrors` (a set of labels per item)."""
    return classification_errors(report, multi_label=True)
