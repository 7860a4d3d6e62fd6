"""Calibration of an NER run (the report's ``calibration`` block, the shape classification's has), at the token level.

The tokens that count are the ones the NER metrics score: every **word** of the eval sentences, its tag read at its
first sub-token (:meth:`~tlcore.tasks.ner.model.TokenTagger.word_logits`; words cut off by the backbone's max length
have no logits and are left out, their number said in the block). A word's event is the probability of its predicted
(top) tag and whether that tag is its gold tag; the expected calibration error pools every such word (equal-mass
bins), and its interval resamples whole **sentences** (the words of a sentence are not independent). Formulas:
:mod:`tlcore.evaluation.calibration`.

The temperature of "after" (``softmax(logits / T)`` over the tags) is fitted on the words of the run's **validation
sentences** — the training sentences held out for model selection (``_val_split`` of the pipeline: the kept epoch or
probe step), never eval — as Guo et al. (ICML 2017) fit T on the validation set used for model selection. Without a
validation split (too few training sentences) no temperature is fitted (T = 1) and the block says why. The model
saves T in ``calibration.json``; ``predict`` and Try it show each word's calibrated tag probability.
"""

from __future__ import annotations

from typing import Optional, Sequence

from tlcore.evaluation.calibration import METHOD, calibration_summary, ece_method, fit_temperature, softmax
from tlcore.tasks.ner.data import encode
from tlcore.tasks.ner.model import TokenTagger, word_targets

EVENTS = ("the top-tag probability of every eval word, read at its first sub-token as the NER metrics read tags "
          "(its outcome: the predicted tag is the gold tag)")
UNITS = "eval sentences, each with all its words"
#: The reliability diagram's axes for these events, and what predict does with T (the Compare page shows both).
AXES = {"x": "mean confidence (top tag of a word)", "y": "share of words tagged right"}
USE = ("Predict and Try it show each word's calibrated tag probability (and a span's, its least confident word's); "
       "the tags are the same at any T.")


def fit_on_validation(model: TokenTagger, sentences: Sequence[Sequence[str]], tags: Sequence[Sequence[str]],
                      why_none: str) -> tuple[Optional[float], dict]:
    """(temperature, where it was fitted) from ``model``'s word logits on the validation ``sentences`` and their gold
    ``tags``, or (None, {"skipped": why}) when there are none (``why_none``: the split rule in words)."""
    if not len(sentences):
        return None, {"skipped": f"no validation split ({why_none}): no held-out training sentences (never eval) to "
                                 "fit a temperature on, so the model keeps T = 1"}
    logits, where = model.word_logits(encode(model.tokenizer, sentences, model.max_length))
    return fit_temperature(logits, word_targets(where, tags, model.tags)), {
        "split": "validation", "items": len(sentences), "words": int(len(where)),
        "how": "the after model's word logits on its validation sentences (training sentences held out for model "
               "selection, never eval)"}


def calibration_block(*, logits: dict, gold: Sequence[Sequence[str]], tags: Sequence[str], n_words: int,
                      temperature: Optional[float], fitted: dict, seed: int = 0) -> dict:
    """The report's ``calibration`` block from ``logits`` = {"before" | "after": ((words, n_tags) eval word logits,
    their (words, 2) (sentence, word) index)} (:meth:`TokenTagger.word_logits`), the eval sentences' ``gold`` tags,
    the tag vocabulary, the number of eval words ``n_words`` and the fitted ``temperature`` (None: ``fitted`` says
    why not)."""
    block: dict = {"method": METHOD, **ece_method(None, events=EVENTS, counted="words", units=UNITS),
                   "events": EVENTS, "axes": AXES, "use": USE}

    def summary(name: str, t: float = 1.0) -> dict:
        z, where = logits[name]
        return calibration_summary(softmax(z, t), word_targets(where, gold, tags), seed=seed,
                                   groups=where[:, 0].astype(str))

    words = len(logits["after"][1])
    block.update(words=words, words_cut_off=int(n_words - words), sentences=len(gold))
    block["before"], block["after"] = summary("before"), summary("after")
    if temperature is None:
        block.update(temperature=None, fitted_on=None, skipped=fitted["skipped"])
        return block
    block.update(temperature=temperature, fitted_on=fitted, after_calibrated=summary("after", temperature))
    return block
