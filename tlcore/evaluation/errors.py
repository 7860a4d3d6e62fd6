"""Error analysis of a classification run on its eval split: which items sit in each cell of the confusion matrix,
which items the model after transfer finds hardest, which ones transfer made worse, and each class's errors.

Per-item loss (what fastai's ``plot_top_losses`` ranks by), computed by the run from the model's eval scores and
stored in the report's ``eval_losses`` (one number per item and model, whatever the number of classes):

* single-label: the cross-entropy of the item, ``-ln p(true class)``, with ``p`` the softmax of the model's
  (uncalibrated) logits, clipped at ``EPS`` so a confident mistake costs at most ``-ln EPS`` (about 27.6);
* multi-label: the mean over the L labels of the binary cross-entropy,
  ``-(1/L) Σ_l [y_l ln p_l + (1 - y_l) ln(1 - p_l)]``, ``p_l`` the sigmoid of label l's logit (clipped the same way).

A model whose scores are not probabilities (the training-free nearest-class-mean reference: cosine similarities)
has no loss; the block says why, and "loss rose most" is then not available.

Arrays: ``proba`` (n items, C classes) probabilities; ``y`` (n,) class indices, or (n, L) 0/1 for multi-label.
Confusion cells and per-class errors are read from the report's ``eval_predictions`` (the truth and each model's
predictions per item), so they also work for runs saved before ``eval_losses`` existed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np

from tlcore.errors import DataError

EPS = 1e-12
LOSS_DIGITS = 4          # losses are stored rounded: 4 decimals tell every ranking the page shows apart
CE_DEFINITION = "cross-entropy -ln p(true class) of the softmax of the model's logits (uncalibrated)"
BCE_DEFINITION = "binary cross-entropy averaged over the labels, of the sigmoid of each label's logit"
MISSED, SPURIOUS = "missed", "spurious"


# ------------------------------------------------------------------ per-item losses (computed by the run)

def cross_entropy(proba: np.ndarray, y: Sequence[int]) -> np.ndarray:
    """(n,) ``-ln p[i, y_i]`` of (n, C) probabilities ``proba`` (clipped at ``EPS``)."""
    p = np.asarray(proba, dtype=np.float64)
    yi = np.asarray(y, dtype=np.int64)
    return -np.log(np.clip(p[np.arange(len(yi)), yi], EPS, 1.0))


def binary_cross_entropy(proba: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(n,) mean over labels of the binary cross-entropy of (n, L) probabilities against (n, L) 0/1 truth."""
    p = np.clip(np.asarray(proba, dtype=np.float64), EPS, 1 - EPS)
    t = np.asarray(y, dtype=np.float64)
    return -(t * np.log(p) + (1 - t) * np.log(1 - p)).mean(1)


def loss_block(definition: str, after: np.ndarray, before: Optional[np.ndarray] = None,
               before_skipped: str = "") -> dict:
    """The report's ``eval_losses``: ``{"definition", "after": [n], "before": [n] | None, "before_skipped"}`` (losses
    rounded to ``LOSS_DIGITS``, in ``eval_predictions``' item order)."""
    def rounded(x: np.ndarray) -> list[float]:
        return [round(float(v), LOSS_DIGITS) for v in x]

    out: dict = {"definition": definition, "after": rounded(after), "before": None if before is None else rounded(before)}
    if before is None:
        out["before_skipped"] = before_skipped or "the before model has no probabilities"
    return out


# ------------------------------------------------------------------ cells, rankings, per-class errors (pure)

@dataclass
class Cell:
    """One cell of a confusion matrix (single-label: true -> predicted) or of a label's errors (multi-label: the
    label ``missed`` or ``spurious``), with the eval item indices in it."""

    true: str
    predicted: str
    items: list[int]
    error: bool

    @property
    def count(self) -> int:
        return len(self.items)

    @property
    def title(self) -> str:
        return f"{self.true} → {self.predicted}"


@dataclass
class ClassErrors:
    """One class's errors: ``missed`` items of the class predicted as something else (false negatives) and
    ``spurious`` items of other classes predicted as it (false positives)."""

    name: str
    missed: list[int]
    spurious: list[int]


def confusion_cells(y_true: Sequence[int], y_pred: Sequence[int], classes: Sequence[str]) -> list[Cell]:
    """Every non-empty cell of the confusion matrix of ``y_true`` vs ``y_pred`` (class indices): the errors first,
    largest first (ties in class order), then the correct (diagonal) cells, largest first. O(n log n): items are
    grouped by sorting, never by one pass per cell (thousands of classes make thousands of cells)."""
    yt, yp = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    codes = yt * len(classes) + yp
    order = np.argsort(codes, kind="stable")              # stable: each cell's items stay in eval order
    values, starts, counts = np.unique(codes[order], return_index=True, return_counts=True)
    cells = [Cell(classes[v // len(classes)], classes[v % len(classes)], order[s:s + c].tolist(),
                  v // len(classes) != v % len(classes)) for v, s, c in zip(values.tolist(), starts, counts)]
    return sorted(cells, key=lambda c: (not c.error, -c.count))


def label_cells(y_true: Sequence[Sequence[int]], y_pred: Sequence[Sequence[int]], labels: Sequence[str]) -> list[Cell]:
    """Multi-label (each item a list of label indices): per label, the items where it was ``missed`` (in the truth,
    not predicted) and where it was ``spurious`` (predicted, not in the truth); non-empty cells only, largest first
    (ties in label order, missed before spurious)."""
    found: dict[tuple[int, int], list[int]] = {}
    for i, (t, p) in enumerate(zip(y_true, y_pred)):
        t, p = set(t), set(p)
        for j in t - p:
            found.setdefault((j, 0), []).append(i)
        for j in p - t:
            found.setdefault((j, 1), []).append(i)
    cells = [Cell(labels[j], (MISSED, SPURIOUS)[kind], items, True) for (j, kind), items in sorted(found.items())]
    return sorted(cells, key=lambda c: -c.count)


def per_class_errors(cells: Sequence[Cell], classes: Sequence[str], *, multi_label: bool = False) -> list[ClassErrors]:
    """Each class's missed and spurious items, gathered from the error ``cells`` of :func:`confusion_cells` (an item
    of class a predicted b is missed by a and spurious for b) or, ``multi_label``, of :func:`label_cells`."""
    missed: dict[str, list[int]] = {c: [] for c in classes}
    spurious: dict[str, list[int]] = {c: [] for c in classes}
    for cell in cells:
        if not cell.error:
            continue
        if multi_label:
            (missed if cell.predicted == MISSED else spurious)[cell.true] += cell.items
        else:
            missed[cell.true] += cell.items
            spurious[cell.predicted] += cell.items
    return [ClassErrors(c, sorted(missed[c]), sorted(spurious[c])) for c in classes]


def top_losses(loss: Sequence[float], k: int) -> list[int]:
    """Indices of the ``k`` largest losses, largest first (ties: lower index first)."""
    x = np.asarray(loss, dtype=np.float64)
    return np.lexsort((np.arange(len(x)), -x))[:k].tolist()


def largest_increases(before: Sequence[float], after: Sequence[float], k: int) -> list[int]:
    """Indices of the ``k`` items whose loss rose most from ``before`` to ``after`` (only items whose loss rose),
    largest rise first (ties: lower index first)."""
    rise = np.asarray(after, dtype=np.float64) - np.asarray(before, dtype=np.float64)
    order = np.lexsort((np.arange(len(rise)), -rise))
    return [int(i) for i in order[:k] if rise[i] > 0]


# ------------------------------------------------------------------ a run's error analysis (from its report)

@dataclass
class ClassificationErrors:
    """The error analysis of one classification report: per item its truth and each model's prediction as text, the
    confusion cells and per-class errors of each model (``"before"``, ``"after"``), the per-item losses (None with
    ``loss_note`` when the report has none) and the two loss rankings."""

    multi_label: bool
    classes: list[str]
    items: list[str]
    names: list[str]
    truth: list[str]
    predicted: dict[str, list[str]]
    cells: dict[str, list[Cell]]
    per_class: dict[str, list[ClassErrors]]
    loss: dict[str, Optional[list[float]]] = field(default_factory=dict)
    loss_definition: str = ""
    loss_note: str = ""
    top_losses: list[int] = field(default_factory=list)
    loss_rose: list[int] = field(default_factory=list)
    rose_note: str = ""


NO_ITEMS = ("this run's report has no per-item predictions (it was saved by an older version of TransferLab): "
            "run it again to see its errors item by item")


def classification_errors(report: dict, *, multi_label: bool = False, k: int = 24) -> ClassificationErrors:
    """:class:`ClassificationErrors` of a classification (``multi_label``: multi-label) report, from its
    ``eval_predictions`` (``true``, ``before``, ``after`` per item: class indices, or label-index lists when
    ``multi_label``; ``items``, ``names``) and ``eval_losses``; ``k`` items per loss ranking. DataError (one line) when
    the report holds no per-item predictions."""
    preds = report.get("eval_predictions") or {}
    classes = list((report.get("data") or {}).get("classes") or [])
    if not classes or not all(isinstance(preds.get(key), list) for key in ("true", "before", "after")):
        raise DataError(NO_ITEMS)
    n = len(preds["true"])
    if any(len(preds[key]) != n for key in ("before", "after")):
        raise DataError("this run's report has per-item predictions of different lengths: it is damaged")
    items = [str(x) for x in preds.get("items") or [""] * n]
    names = [str(x) for x in preds.get("names") or []] or [str(i) for i in range(n)]
    if multi_label:
        def text(row: list) -> str:
            return ", ".join(classes[j] for j in sorted(row)) or "(none)"

        cells = {m: label_cells(preds["true"], preds[m], classes) for m in ("before", "after")}
        truth = [text(r) for r in preds["true"]]
        predicted = {m: [text(r) for r in preds[m]] for m in ("before", "after")}
    else:
        cells = {m: confusion_cells(preds["true"], preds[m], classes) for m in ("before", "after")}
        truth = [classes[i] for i in preds["true"]]
        predicted = {m: [classes[i] for i in preds[m]] for m in ("before", "after")}
    out = ClassificationErrors(multi_label, classes, items, names, truth, predicted, cells,
                               {m: per_class_errors(cells[m], classes, multi_label=multi_label)
                                for m in ("before", "after")})
    _add_losses(out, report.get("eval_losses"), n, k)
    return out


def _add_losses(out: ClassificationErrors, block: Optional[dict], n: int, k: int) -> None:
    if not block or not isinstance(block.get("after"), list) or len(block["after"]) != n:
        out.loss_note = ("no per-item losses in this report (saved by an older version, or by a setting that does not "
                         "store them): the confusion cells and per-class errors below still show every item")
        return
    out.loss = {"after": block["after"], "before": block.get("before")}
    out.loss_definition = str(block.get("definition") or "")
    out.top_losses = top_losses(block["after"], k)
    before = block.get("before")
    if isinstance(before, list) and len(before) == n:
        out.loss_rose = largest_increases(before, block["after"], k)
        if not out.loss_rose:
            out.rose_note = "no eval item's loss rose"
    else:
        out.loss["before"] = None
        out.rose_note = f"not available: {block.get('before_skipped') or 'the before model has no per-item loss'}"
