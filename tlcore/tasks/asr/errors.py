"""Speech recognition error analysis: the worst utterances by word error rate, and which words a model gets wrong
and how (the most frequent substitutions, deletions and insertions).

Words are aligned by the Levenshtein alignment behind WER (Levenshtein 1966; NIST sclite's ``-o dtl`` report):
the minimum-cost sequence of matches, substitutions, deletions and insertions (each edit costs 1) that turns the
reference into the hypothesis, on the scoring form of both texts (:func:`~tlcore.tasks.asr.metrics.normalize_text`),
so the alignment's edit count equals the utterance's word edits in WER. Among equally cheap alignments the backtrace
(from the last words back) prefers a match or substitution, then a deletion, then an insertion, so "the cat sat" ->
"a cat" reads as ``the -> a`` substituted and ``sat`` deleted. (jiwer or rapidfuzz would align the same way; neither
is a dependency here, and the alignment is a few lines.)
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from tlcore.errors import DataError
from tlcore.tasks.asr.metrics import normalize_text, utterance_errors

Op = tuple[str, str, str]     # (kind, reference word, hypothesis word): kind "=", "sub", "del" or "ins"


def align_words(ref: Sequence[str], hyp: Sequence[str]) -> list[Op]:
    """The Levenshtein alignment of word lists ``ref`` and ``hyp`` (module docstring), in order: ``("=", w, w)``,
    ``("sub", r, h)``, ``("del", r, "")``, ``("ins", "", h)``."""
    n, m = len(ref), len(hyp)
    d = np.zeros((n + 1, m + 1), dtype=np.int64)
    d[:, 0], d[0, :] = np.arange(n + 1), np.arange(m + 1)
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            d[i, j] = min(d[i - 1, j - 1] + (ref[i - 1] != hyp[j - 1]), d[i - 1, j] + 1, d[i, j - 1] + 1)
    ops: list[Op] = []
    i, j = n, m
    while i or j:
        if i and j and d[i, j] == d[i - 1, j - 1] + (ref[i - 1] != hyp[j - 1]):
            ops.append(("=" if ref[i - 1] == hyp[j - 1] else "sub", ref[i - 1], hyp[j - 1]))
            i, j = i - 1, j - 1
        elif i and d[i, j] == d[i - 1, j] + 1:
            ops.append(("del", ref[i - 1], ""))
            i -= 1
        else:
            ops.append(("ins", "", hyp[j - 1]))
            j -= 1
    return ops[::-1]


@dataclass
class WordErrors:
    """Word edits summed over utterances: ``substitutions[(reference word, hypothesis word)]``, ``deletions[word]``
    (reference words left out), ``insertions[word]`` (hypothesis words with no reference word)."""

    substitutions: Counter
    deletions: Counter
    insertions: Counter

    def most_common(self, k: int = 20) -> list[tuple[str, str, str, int]]:
        """The ``k`` most frequent edits of any kind as (kind, reference word, hypothesis word, count), most frequent
        first (ties: substitutions, deletions, insertions, then alphabetical)."""
        rows = ([("sub", r, h, c) for (r, h), c in self.substitutions.items()]
                + [("del", r, "", c) for r, c in self.deletions.items()]
                + [("ins", "", h, c) for h, c in self.insertions.items()])
        order = {"sub": 0, "del": 1, "ins": 2}
        return sorted(rows, key=lambda r: (-r[3], order[r[0]], r[1], r[2]))[:k]


def word_errors(refs: Sequence[str], hyps: Sequence[str]) -> WordErrors:
    """The word edits of every utterance (``refs[i]`` vs ``hyps[i]``, normalised as WER scores them), counted."""
    subs: Counter = Counter()
    dels: Counter = Counter()
    ins: Counter = Counter()
    for ref, hyp in zip(refs, hyps):
        for kind, r, h in align_words(normalize_text(ref).split(), normalize_text(hyp).split()):
            if kind == "sub":
                subs[(r, h)] += 1
            elif kind == "del":
                dels[r] += 1
            elif kind == "ins":
                ins[h] += 1
    return WordErrors(subs, dels, ins)


def worst_utterances(refs: Sequence[str], hyps: Sequence[str], k: int = 20) -> list[int]:
    """Indices of the ``k`` utterances with the highest WER (word edits / reference words), worst first; ties by more
    word edits, then by index. Utterances with no error are left out."""
    e = utterance_errors(refs, hyps)
    rate = e.utterance_wer()
    order = np.lexsort((np.arange(len(rate)), -e.word_edits, -rate))
    return [int(i) for i in order[:k] if e.word_edits[i] > 0]


@dataclass
class TranscriptErrors:
    """The error analysis of one speech recognition report: per utterance its name, reference and each model's
    transcript and WER; per model (``"before"``, ``"after"``) the worst utterances and the word edits."""

    names: list[str]
    references: list[str]
    transcripts: dict[str, list[str]]
    wer: dict[str, list[float]]
    worst: dict[str, list[int]]
    words: dict[str, WordErrors]


def error_analysis(report: dict, *, k: int = 20) -> TranscriptErrors:
    """:class:`TranscriptErrors` from an ASR report's ``eval_predictions`` (``names``, ``reference``, ``before``,
    ``after``); DataError (one line) when the report holds none (saved by an older version)."""
    preds = report.get("eval_predictions") or {}
    if not all(isinstance(preds.get(key), list) for key in ("reference", "before", "after")):
        raise DataError("this run's report has no per-utterance transcripts (it was saved by an older version of "
                        "TransferLab): run it again to see its worst utterances and word errors")
    refs = [str(r) for r in preds["reference"]]
    if any(len(preds[key]) != len(refs) for key in ("before", "after")):
        raise DataError("this run's report has per-utterance transcripts of different lengths: it is damaged")
    names = [str(x) for x in preds.get("names") or []] or [str(i) for i in range(len(refs))]
    hyps = {m: [str(h) for h in preds[m]] for m in ("before", "after")}
    return TranscriptErrors(names, refs, hyps,
                            {m: utterance_errors(refs, h).utterance_wer().tolist() for m, h in hyps.items()},
                            {m: worst_utterances(refs, h, k) for m, h in hyps.items()},
                            {m: word_errors(refs, h) for m, h in hyps.items()})
