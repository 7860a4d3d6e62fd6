"""Speech recognition scores: word and character error rates, the text normalisation used for scoring,
bootstrap confidence intervals over utterances and per-group breakdowns. Pure functions, no model code.

Error rate (Levenshtein 1966; the usual ASR definition, e.g. NIST sclite): for each utterance the minimum
number of substitutions S, deletions D and insertions I that turn the reference into the hypothesis;
corpus level ``WER = sum(S + D + I) / sum(N)`` with N the reference word count (so long utterances weigh
more, and WER can exceed 1 when the model adds words). CER is the same over characters of the normalised
text (spaces between words count as characters).

Normalisation for scoring (both reference and hypothesis): lower case; digits spelled out as English words
("20" -> "twenty", "7th" -> "seventh", "3.5" -> "three point five", "1,000" -> "one thousand", "%" ->
"percent"); apostrophes removed ("don't" -> "dont"); every other non-alphanumeric character (punctuation,
hyphens) becomes a space; runs of spaces collapse to one. So "Turn it off at 7!" and "turn it off at seven"
score as identical: Whisper writes numbers as digits, our transcripts may spell them out.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

N_BOOT = 1000

_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
         "seventeen eighteen nineteen").split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_SCALES = ((10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (1000, "thousand"))
_ORDINAL_WORDS = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
                  "nine": "ninth", "twelve": "twelfth"}


def number_to_words(n: int) -> str:
    """Cardinal English words for a non-negative integer: 0 -> "zero", 1905 -> "one thousand nine hundred five"."""
    if n < 0:
        return "minus " + number_to_words(-n)
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    if n < 1000:
        return _ONES[n // 100] + " hundred" + ("" if n % 100 == 0 else " " + number_to_words(n % 100))
    for scale, name in _SCALES:
        if n >= scale:
            rest = n % scale
            return number_to_words(n // scale) + " " + name + ("" if rest == 0 else " " + number_to_words(rest))
    raise AssertionError("unreachable")


def _ordinal(words: str) -> str:
    head, _, last = words.rpartition(" ")
    if last in _ORDINAL_WORDS:
        last = _ORDINAL_WORDS[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last += "th"
    return f"{head} {last}".strip()


def _spell_number(match: re.Match) -> str:
    whole, frac, suffix = match.group(1).replace(",", ""), match.group(2), (match.group(3) or "").lower()
    if len(whole) > 15:  # an identifier, not a quantity: read digit by digit
        return " " + " ".join(_ONES[int(d)] for d in whole) + " "
    words = number_to_words(int(whole))
    if frac:
        words += " point " + " ".join(_ONES[int(d)] for d in frac)
    if suffix in ("st", "nd", "rd", "th") and not frac:
        words = _ordinal(words)
    elif suffix == "%":
        words += " percent"
    elif suffix:
        words += " " + suffix
    return f" {words} "


_NUMBER = re.compile(r"(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?(st|nd|rd|th|%|[a-z]+)?", re.IGNORECASE)


def normalize_text(text: str) -> str:
    """The scoring form of a transcript (see the module docstring): lower case, numbers as words, no
    punctuation, single spaces. ``normalize_text("Set a timer for 20 minutes.") == "set a timer for twenty minutes"``."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = re.sub(r"[’'`´]", "", text)
    text = _NUMBER.sub(_spell_number, text)
    text = re.sub(r"[^\w\s]|_", " ", text)
    return " ".join(text.split())


def edit_distance(ref: Sequence, hyp: Sequence) -> int:
    """Levenshtein distance (substitutions, deletions, insertions all cost 1) between two sequences."""
    if len(ref) < len(hyp):
        ref, hyp = hyp, ref
    previous = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        current = [i]
        for j, h in enumerate(hyp, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (r != h)))
        previous = current
    return previous[-1]


@dataclass(frozen=True)
class UtteranceErrors:
    """Per-utterance edit counts over normalised text: word edits / reference words, char edits / reference chars."""

    word_edits: np.ndarray  # (n,) int
    words: np.ndarray       # (n,) int
    char_edits: np.ndarray
    chars: np.ndarray

    def wer(self) -> float:
        return _ratio(self.word_edits.sum(), self.words.sum())

    def cer(self) -> float:
        return _ratio(self.char_edits.sum(), self.chars.sum())

    def utterance_wer(self) -> np.ndarray:
        return self.word_edits / np.maximum(self.words, 1)


def _ratio(edits: float, total: float) -> float:
    return float(edits / total) if total else (0.0 if edits == 0 else 1.0)


def utterance_errors(refs: Sequence[str], hyps: Sequence[str], *, normalize: bool = True) -> UtteranceErrors:
    """Edit counts per utterance (``refs[i]`` vs ``hyps[i]``), on :func:`normalize_text` forms unless ``normalize=False``."""
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")
    norm = normalize_text if normalize else (lambda s: " ".join(s.split()))
    rows = []
    for ref, hyp in zip(refs, hyps):
        r, h = norm(ref), norm(hyp)
        rw, hw = r.split(), h.split()
        rows.append((edit_distance(rw, hw), len(rw), edit_distance(r, h), len(r)))
    arr = np.array(rows, dtype=np.int64).reshape(-1, 4)
    return UtteranceErrors(arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3])


def wer(refs: Sequence[str], hyps: Sequence[str], *, normalize: bool = True) -> float:
    """Corpus word error rate: total word edits / total reference words (0.0 for no edits; 1.0 when all
    references are empty but something was hypothesised)."""
    return utterance_errors(refs, hyps, normalize=normalize).wer()


def cer(refs: Sequence[str], hyps: Sequence[str], *, normalize: bool = True) -> float:
    """Corpus character error rate: total character edits / total reference characters (normalised text)."""
    return utterance_errors(refs, hyps, normalize=normalize).cer()


def _resamples(n: int, seed: int, n_boot: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n, size=(n_boot, n))


def ratio_ci(edits: np.ndarray, totals: np.ndarray, *, seed: int = 0, n_boot: int = N_BOOT) -> list[float]:
    """Percentile 95% interval of ``sum(edits) / sum(totals)``, resampling utterances with replacement."""
    if len(edits) == 0:
        return [0.0, 0.0]
    ix = _resamples(len(edits), seed, n_boot)
    rates = edits[ix].sum(1) / np.maximum(totals[ix].sum(1), 1)
    return [float(np.quantile(rates, 0.025)), float(np.quantile(rates, 0.975))]


def paired_wer_difference(before: UtteranceErrors, after: UtteranceErrors, *, seed: int = 0,
                          n_boot: int = N_BOOT) -> dict:
    """``WER(after) - WER(before)`` on the same utterances, with a paired bootstrap 95% interval (negative = better)."""
    diff = after.wer() - before.wer()
    if len(before.words) == 0:
        return {"difference": 0.0, "ci95": [0.0, 0.0]}
    ix = _resamples(len(before.words), seed, n_boot)
    words = np.maximum(before.words[ix].sum(1), 1)
    boot = (after.word_edits[ix].sum(1) - before.word_edits[ix].sum(1)) / words
    return {"difference": float(diff), "ci95": [float(np.quantile(boot, 0.025)), float(np.quantile(boot, 0.975))]}


def asr_metrics(refs: Sequence[str], hyps: Sequence[str], *, groups: Optional[dict[str, Sequence[str]]] = None,
                seed: int = 0) -> dict:
    """The report's metric block: ``wer``, ``cer``, their bootstrap 95% CIs, ``n``, ``runaway`` (utterances whose
    transcript has more than twice the reference's words plus two: repetition loops, hallucinated text) and
    ``per_group`` (``{column: {value: {wer, cer, n}}}`` for each grouping column given, e.g. speaker or accent)."""
    errors = utterance_errors(refs, hyps)
    runaway = sum(len(normalize_text(h).split()) > 2 * len(normalize_text(r).split()) + 2 for r, h in zip(refs, hyps))
    out = {"wer": errors.wer(), "cer": errors.cer(),
           "wer_ci95": ratio_ci(errors.word_edits, errors.words, seed=seed),
           "cer_ci95": ratio_ci(errors.char_edits, errors.chars, seed=seed),
           "n": len(refs), "runaway": int(runaway), "per_group": {}}
    for column, values in (groups or {}).items():
        table = {}
        for value in sorted(set(values)):
            ix = np.array([i for i, v in enumerate(values) if v == value])
            table[value] = {"wer": _ratio(errors.word_edits[ix].sum(), errors.words[ix].sum()),
                            "cer": _ratio(errors.char_edits[ix].sum(), errors.chars[ix].sum()), "n": int(len(ix))}
        out["per_group"][column] = table
    return out


def changed_utterances(names: Sequence[str], refs: Sequence[str], before: Sequence[str], after: Sequence[str], *,
                       limit: int = 20) -> list[dict]:
    """The utterances whose transcript changed most: sorted by |WER after - WER before| (then by name), at most
    ``limit``; each with reference, both transcripts and both per-utterance WERs."""
    e_before, e_after = utterance_errors(refs, before), utterance_errors(refs, after)
    w_before, w_after = e_before.utterance_wer(), e_after.utterance_wer()
    rows = []
    for i in range(len(refs)):
        if normalize_text(before[i]) == normalize_text(after[i]):
            continue
        rows.append({"name": names[i], "reference": refs[i], "before": before[i], "after": after[i],
                     "wer_before": float(w_before[i]), "wer_after": float(w_after[i])})
    rows.sort(key=lambda r: (-abs(r["wer_after"] - r["wer_before"]), r["name"]))
    return rows[:limit]
