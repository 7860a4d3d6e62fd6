"""NER error analysis: every entity error of a tagger on the eval sentences, by kind, with its sentence.

The kinds follow the partial-match scheme of SemEval-2013 Task 9.1 (Segura-Bedmar, Martínez & Herrero Zazo, 2013),
built on the MUC evaluation categories (Chinchor & Sundheim, "MUC-5 Evaluation Metrics", 1993) and implemented by
``nervaluate``. Spans are conlleval entities (:func:`~tlcore.tasks.ner.metrics.extract_spans`); a predicted span
that equals a gold span in type and both boundaries is correct. Every other predicted span ``p`` is one error,
judged against the gold spans it overlaps (shares at least one word with):

* ``wrong_type`` — a gold span has exactly ``p``'s boundaries but another type (nervaluate: "incorrect");
* ``wrong_boundary`` — else, ``p`` overlaps a gold span of its own type with other boundaries (nervaluate: "partial");
* ``wrong_type_and_boundary`` — else, ``p`` overlaps only gold spans of other types, with other boundaries
  (SemEval's scenario VI: counted wrong in type and in extent);
* ``spurious`` — ``p`` overlaps no gold span (MUC "SPU": a false alarm).

A gold span that no predicted span matches exactly and none overlaps is ``missed`` (MUC "MIS"). A gold span only
overlapped by wrong predictions is not counted again as missed: its error is the overlapping prediction's (as in
nervaluate), so each error is counted once. Correct spans are not errors. When ``p`` overlaps several gold spans, the
first in the order above names the kind, and the leftmost such gold span is reported with it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Optional, Sequence

from tlcore.errors import DataError
from tlcore.tasks.ner.metrics import Span, extract_spans

KINDS = ("missed", "spurious", "wrong_type", "wrong_boundary", "wrong_type_and_boundary")
KIND_TEXT = {"missed": "missed (a gold entity nothing was predicted on)",
             "spurious": "spurious (predicted where there is no gold entity)",
             "wrong_type": "wrong type (right words, wrong type)",
             "wrong_boundary": "wrong boundary (right type, overlapping words, not the same ones)",
             "wrong_type_and_boundary": "wrong type and boundary (overlaps a gold entity of another type)"}


@dataclass
class EntityError:
    """One entity error in sentence ``sentence``: its ``kind`` (one of :data:`KINDS`), the gold span involved (None
    for spurious) and the predicted span (None for missed), as (type, start word, end word exclusive)."""

    sentence: int
    kind: str
    gold: Optional[Span]
    predicted: Optional[Span]


def _overlaps(a: Span, b: Span) -> bool:
    return a[1] < b[2] and b[1] < a[2]


def sentence_errors(gold_tags: Sequence[str], pred_tags: Sequence[str], sentence: int = 0) -> list[EntityError]:
    """The entity errors of one sentence (module docstring), predicted spans' errors first in word order, then the
    missed gold spans in word order."""
    gold, pred = extract_spans(gold_tags), extract_spans(pred_tags)
    exact = set(gold) & set(pred)
    out: list[EntityError] = []
    for p in pred:
        if p in exact:
            continue
        near = [g for g in gold if _overlaps(g, p)]
        same_words = [g for g in near if g[1:] == p[1:]]
        same_type = [g for g in near if g[0] == p[0]]
        if same_words:
            out.append(EntityError(sentence, "wrong_type", same_words[0], p))
        elif same_type:
            out.append(EntityError(sentence, "wrong_boundary", same_type[0], p))
        elif near:
            out.append(EntityError(sentence, "wrong_type_and_boundary", near[0], p))
        else:
            out.append(EntityError(sentence, "spurious", None, p))
    for g in gold:
        if g not in exact and not any(_overlaps(g, p) for p in pred):
            out.append(EntityError(sentence, "missed", g, None))
    return out


def entity_errors(gold_seqs: Sequence[Sequence[str]], pred_seqs: Sequence[Sequence[str]]) -> list[EntityError]:
    """Every entity error over the sentences (``gold_seqs[i]`` vs ``pred_seqs[i]``), in sentence order."""
    return [e for i, (g, p) in enumerate(zip(gold_seqs, pred_seqs)) for e in sentence_errors(g, p, i)]


def count_kinds(errors: Sequence[EntityError]) -> dict[str, int]:
    """``{kind: count}`` over :data:`KINDS` (zeros included)."""
    counts = Counter(e.kind for e in errors)
    return {k: int(counts.get(k, 0)) for k in KINDS}


@dataclass
class NerErrors:
    """The error analysis of one NER report: the eval sentences, their gold tags and each model's predicted tags,
    and each model's entity errors (``"before"``, ``"after"``) with their counts by kind."""

    tokens: list[list[str]]
    gold: list[list[str]]
    predicted: dict[str, list[list[str]]]
    errors: dict[str, list[EntityError]]
    counts: dict[str, dict[str, int]]


def error_analysis(report: dict) -> NerErrors:
    """:class:`NerErrors` from a NER report's ``eval_predictions`` (``tokens``, ``gold``, ``before``, ``after``);
    DataError (one line) when the report holds none (saved by an older version)."""
    preds = report.get("eval_predictions") or {}
    if not all(isinstance(preds.get(k), list) for k in ("tokens", "gold", "before", "after")):
        raise DataError("this run's report has no per-sentence predictions (it was saved by an older version of "
                        "TransferLab): run it again to see its entity errors")
    n = len(preds["gold"])
    if any(len(preds[k]) != n for k in ("tokens", "before", "after")):
        raise DataError("this run's report has per-sentence predictions of different lengths: it is damaged")
    errors = {m: entity_errors(preds["gold"], preds[m]) for m in ("before", "after")}
    return NerErrors(preds["tokens"], preds["gold"], {m: preds[m] for m in ("before", "after")}, errors,
                     {m: count_kinds(e) for m, e in errors.items()})
