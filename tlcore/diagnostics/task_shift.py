"""Task-specific shift between a source and a target set: entity types and unseen entities (NER), transcript
vocabulary and length (ASR). Pure functions on tags / transcripts; results serialise to JSON.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from tlcore.diagnostics._common import JsonResult
from tlcore.diagnostics.label_shift import LabelShiftResult, label_shift
from tlcore.diagnostics.properties_text import vocabulary_overlap

# ---------------------------------------------------------------- NER


def entity_mentions(sentences: Sequence[Sequence[str]], tags: Sequence[Sequence[str]]) -> list[tuple[str, str]]:
    """(type, surface) per entity span, in order; surface = the span's words lower-cased and joined by a space.

    Spans follow conlleval (:func:`tlcore.tasks.ner.metrics.extract_spans`): a maximal ``B-X I-X ...`` run.
    Shapes: sentences and tags are lists of n word lists of equal lengths.
    """
    from tlcore.tasks.ner.metrics import extract_spans

    if len(sentences) != len(tags):
        raise ValueError(f"{len(sentences)} sentences but {len(tags)} tag sequences")
    return [(kind, " ".join(words[start:end]).lower())
            for words, seq in zip(sentences, tags) for kind, start, end in extract_spans(seq)]


def entity_type_shift(tags_a: Sequence[Sequence[str]], tags_b: Sequence[Sequence[str]]) -> LabelShiftResult:
    """How differently entity types are distributed in two tagged sets: :func:`label_shift` over one label per
    entity span (its type), so ``counts`` are entity spans per type and the chi-square test compares the
    2×|types| table of span counts (Pearson 1900). Raises ValueError when a set has no entity."""
    from tlcore.tasks.ner.metrics import extract_spans

    types_a = [s[0] for seq in tags_a for s in extract_spans(seq)]
    types_b = [s[0] for seq in tags_b for s in extract_spans(seq)]
    if not types_a or not types_b:
        raise ValueError("entity_type_shift needs at least one entity in each set")
    return label_shift(types_a, types_b)


@dataclass
class UnseenEntities(JsonResult):
    """Outcome of :func:`unseen_entities`.

    ``mention_rate``: unseen target mentions / target mentions. ``surface_rate``: unseen distinct target
    (type, surface) pairs / distinct target pairs. ``per_type``: type -> {"mentions", "unseen", "rate"} over
    target mentions. ``examples``: the most frequent unseen target surfaces as [surface, type, count].
    """

    mention_rate: float
    surface_rate: float
    mentions_a: int
    mentions_b: int
    per_type: dict = field(default_factory=dict)
    examples: list = field(default_factory=list)


def unseen_entities(sentences_a: Sequence[Sequence[str]], tags_a: Sequence[Sequence[str]],
                    sentences_b: Sequence[Sequence[str]], tags_b: Sequence[Sequence[str]], *,
                    k: int = 10) -> UnseenEntities:
    """Out-of-vocabulary entities: how many of B's entity mentions were never seen as entities in A.

    Paper: Augenstein, Derczynski & Bontcheva (2017), "Generalisation in named entity recognition: A
    quantitative analysis", Computer Speech & Language 44 (unseen vs seen entities).

    A mention (type t, surface s) of B is *seen* when (t, s) occurs among A's mentions; surfaces are compared
    lower-cased (a case change is measured by the text properties, not here).
        mention_rate = #{unseen mentions of B} / #{mentions of B}
        surface_rate = |{(t, s) of B} \\ {(t, s) of A}| / |{(t, s) of B}|
    Shapes: sentences/tags of A (n lists) and B (m lists). Deterministic; ValueError when B has no entity.
    """
    seen = set(entity_mentions(sentences_a, tags_a))
    mentions_b = entity_mentions(sentences_b, tags_b)
    if not mentions_b:
        raise ValueError("unseen_entities needs at least one entity in set B")
    unseen = [m for m in mentions_b if m not in seen]
    distinct = set(mentions_b)
    per_type: dict[str, dict] = {}
    for kind in sorted({t for t, _ in mentions_b}):
        total = sum(1 for t, _ in mentions_b if t == kind)
        miss = sum(1 for t, _ in unseen if t == kind)
        per_type[kind] = {"mentions": total, "unseen": miss, "rate": miss / total}
    counts = Counter(unseen)
    examples = [[s, t, c] for (t, s), c in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0][1], kv[0][0]))[:k]]
    return UnseenEntities(
        mention_rate=len(unseen) / len(mentions_b),
        surface_rate=len(distinct - seen) / len(distinct),
        mentions_a=sum(1 for _ in entity_mentions(sentences_a, tags_a)),
        mentions_b=len(mentions_b),
        per_type=per_type,
        examples=examples,
    )


def entity_properties(tags: Sequence[Sequence[str]]) -> dict[str, np.ndarray]:
    """Per-sentence NER properties for :func:`property_drift`: ``entities`` (spans per sentence) and
    ``entity_word_share`` (words inside an entity / words). Shapes: n tag lists -> {name: (n,)}."""
    from tlcore.tasks.ner.metrics import extract_spans

    spans = [extract_spans(seq) for seq in tags]
    return {"entities": np.array([len(s) for s in spans], dtype=np.float64),
            "entity_word_share": np.array([sum(e - b for _, b, e in s) / max(len(seq), 1)
                                           for s, seq in zip(spans, tags)], dtype=np.float64)}


# ---------------------------------------------------------------- ASR


def transcript_properties(texts: Sequence[str], seconds: Optional[Sequence[float]] = None) -> dict[str, np.ndarray]:
    """Per-clip transcript properties for :func:`property_drift`: ``words_per_clip`` (words of the transcript
    normalised as for WER scoring, :func:`tlcore.tasks.asr.metrics.normalize_text`) and, with the clips'
    durations, ``words_per_second`` (speaking rate). Shapes: texts (n,), seconds (n,) -> {name: (n,)}."""
    from tlcore.tasks.asr.metrics import normalize_text

    n_words = np.array([len(normalize_text(t).split()) for t in texts], dtype=np.float64)
    props = {"words_per_clip": n_words}
    if seconds is not None:
        if len(seconds) != len(texts):
            raise ValueError(f"{len(texts)} transcripts but {len(seconds)} durations")
        props["words_per_second"] = n_words / np.maximum(np.asarray(seconds, dtype=np.float64), 1e-3)
    return props


@dataclass
class TranscriptVocabulary(JsonResult):
    """Outcome of :func:`transcript_vocabulary`: ``oov_rate`` (running words of B unseen in A),
    ``oov_type_rate`` (distinct words of B unseen in A), ``jaccard``, ``vocab_a``, ``vocab_b`` and the most
    frequent unseen words of B as [word, count]."""

    oov_rate: float
    oov_type_rate: float
    jaccard: float
    vocab_a: int
    vocab_b: int
    unseen_words: list = field(default_factory=list)


def transcript_vocabulary(texts_a: Sequence[str], texts_b: Sequence[str], *, k: int = 15) -> TranscriptVocabulary:
    """Word out-of-vocabulary rate of B's transcripts with respect to A's vocabulary.

    Both sides are normalised as for WER scoring (:func:`tlcore.tasks.asr.metrics.normalize_text`: lower case,
    numbers as words, no punctuation), then compared with :func:`vocabulary_overlap`:
        oov_rate = Σ_{w ∉ V_a} c_b(w) / Σ_w c_b(w),   oov_type_rate = |V_b \\ V_a| / |V_b|.
    Shapes: texts_a (n,), texts_b (m,). Deterministic.
    """
    from tlcore.tasks.asr.metrics import normalize_text

    norm_a = [normalize_text(t) for t in texts_a]
    norm_b = [normalize_text(t) for t in texts_b]
    overlap = vocabulary_overlap(norm_a, norm_b)
    vocab_a = {w for t in norm_a for w in t.split()}
    unseen = Counter(w for t in norm_b for w in t.split() if w not in vocab_a)
    return TranscriptVocabulary(
        oov_rate=overlap["oov_rate_b_given_a"], oov_type_rate=overlap["oov_type_rate_b_given_a"],
        jaccard=overlap["jaccard"], vocab_a=int(overlap["vocab_a"]), vocab_b=int(overlap["vocab_b"]),
        unseen_words=[[w, c] for w, c in sorted(unseen.items(), key=lambda kv: (-kv[1], kv[0]))[:k]],
    )
