"""Entity-level NER scores with conlleval semantics (Tjong Kim Sang & De Meulder, CoNLL-2003; seqeval's default).

An entity is a maximal run ``B-X I-X I-X ...``; an ``I-X`` that follows ``O`` or a different type starts a new
entity (conlleval's lenient reading of IOB1). A predicted entity counts only when its type *and* both span
ends match a gold entity exactly:

    precision = correct / predicted,  recall = correct / gold,  F1 = 2 PR / (P + R) = 2 correct / (predicted + gold)

Micro scores pool all entities; per-type scores pool one type. Confidence intervals resample *sentences*.
"""

from __future__ import annotations

from collections import Counter
from typing import Sequence

import numpy as np

Span = tuple[str, int, int]     # (type, start word, end word exclusive)
N_BOOT = 1000


def extract_spans(tags: Sequence[str]) -> list[Span]:
    """Entities in a BIO tag sequence, conlleval style: ``["B-PER", "I-PER", "O", "I-LOC"]`` ->
    ``[("PER", 0, 2), ("LOC", 3, 4)]``.

    Same spans as seqeval's default (non-strict) ``get_entities`` for ``O`` / ``B-X`` / ``I-X`` tags: ``I-X``
    after ``O``, at the start or after another type starts an entity; ``B-X`` always starts one. Differences:
    IOBES ``E-X`` / ``S-X`` tags are not supported (they end the current entity and are otherwise ignored;
    seqeval reads them as IOBES; the data loaders accept only BIO), and a bare ``B`` / ``I`` has type ``""``
    here and ``"_"`` in seqeval. seqeval's end offsets are inclusive; these are exclusive."""
    spans: list[Span] = []
    current, start = None, 0
    for i, tag in enumerate(list(tags) + ["O"]):
        prefix, kind = ("O", None) if tag == "O" else (tag[0], tag[2:])
        if current is not None and (prefix != "I" or kind != current):
            spans.append((current, start, i))
            current = None
        if prefix == "B" or (prefix == "I" and current is None):
            current, start = kind, i
    return spans


def _f1(correct: float, predicted: float, gold: float) -> tuple[float, float, float]:
    p = correct / predicted if predicted else 0.0
    r = correct / gold if gold else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def sentence_counts(gold_seqs: Sequence[Sequence[str]], pred_seqs: Sequence[Sequence[str]]) -> np.ndarray:
    """(n_sentences, 3) array of (correct, predicted, gold) entity counts: what the bootstrap resamples."""
    rows = []
    for gold, pred in zip(gold_seqs, pred_seqs):
        g, p = set(extract_spans(gold)), set(extract_spans(pred))
        rows.append((len(g & p), len(p), len(g)))
    return np.array(rows, dtype=np.float64).reshape(-1, 3)


def entity_scores(gold_seqs: Sequence[Sequence[str]], pred_seqs: Sequence[Sequence[str]]) -> dict:
    """Micro precision / recall / F1 over exact-match entities, and the same per entity type (with gold support)."""
    if len(gold_seqs) != len(pred_seqs):
        raise ValueError(f"{len(gold_seqs)} gold sentences but {len(pred_seqs)} predicted ones")
    correct: Counter = Counter()
    predicted: Counter = Counter()
    gold: Counter = Counter()
    for g_tags, p_tags in zip(gold_seqs, pred_seqs):
        if len(g_tags) != len(p_tags):
            raise ValueError(f"sentence lengths differ: {len(g_tags)} gold tags, {len(p_tags)} predicted")
        g, p = set(extract_spans(g_tags)), set(extract_spans(p_tags))
        gold.update(s[0] for s in g)
        predicted.update(s[0] for s in p)
        correct.update(s[0] for s in g & p)
    per_type = {}
    for kind in sorted(set(gold) | set(predicted)):
        pr, rc, f = _f1(correct[kind], predicted[kind], gold[kind])
        per_type[kind] = {"precision": pr, "recall": rc, "f1": f, "support": int(gold[kind])}
    pr, rc, f = _f1(sum(correct.values()), sum(predicted.values()), sum(gold.values()))
    return {"precision": pr, "recall": rc, "f1": f, "per_type": per_type, "n_correct": int(sum(correct.values())),
            "n_predicted": int(sum(predicted.values())), "n_gold": int(sum(gold.values()))}


def _boot_f1(counts: np.ndarray, idx: np.ndarray) -> np.ndarray:
    c, p, g = (counts[idx, k].sum(1) for k in range(3))
    denom = p + g
    return np.where(denom > 0, 2 * c / np.maximum(denom, 1e-12), 0.0)


def f1_ci(counts: np.ndarray, *, seed: int = 0, n_boot: int = N_BOOT) -> list[float]:
    """Percentile 95% interval of micro F1, resampling sentences (``counts`` from :func:`sentence_counts`)."""
    if len(counts) == 0:
        return [0.0, 0.0]
    idx = np.random.default_rng(seed).integers(0, len(counts), size=(n_boot, len(counts)))
    f = _boot_f1(counts, idx)
    return [float(np.quantile(f, 0.025)), float(np.quantile(f, 0.975))]


def paired_f1_difference(counts_a: np.ndarray, counts_b: np.ndarray, *, seed: int = 0, n_boot: int = N_BOOT) -> dict:
    """Micro F1 of A minus micro F1 of B on the same sentences, with a paired bootstrap 95% interval."""
    if len(counts_a) == 0:
        return {"difference": 0.0, "ci95": [0.0, 0.0]}
    full = np.arange(len(counts_a))[None]
    diff = float((_boot_f1(counts_a, full) - _boot_f1(counts_b, full))[0])
    idx = np.random.default_rng(seed).integers(0, len(counts_a), size=(n_boot, len(counts_a)))
    d = _boot_f1(counts_a, idx) - _boot_f1(counts_b, idx)
    return {"difference": diff, "ci95": [float(np.quantile(d, 0.025)), float(np.quantile(d, 0.975))]}


def token_accuracy(gold_seqs: Sequence[Sequence[str]], pred_seqs: Sequence[Sequence[str]]) -> float:
    pairs = [(g, p) for gs, ps in zip(gold_seqs, pred_seqs) for g, p in zip(gs, ps)]
    return sum(g == p for g, p in pairs) / len(pairs) if pairs else 0.0


def ner_metrics(gold_seqs: Sequence[Sequence[str]], pred_seqs: Sequence[Sequence[str]], *, seed: int = 0) -> dict:
    """The report's metric block for NER: entity_f1 / precision / recall, entity_f1_ci95, macro_f1, per_type,
    token_accuracy.

    ``macro_f1`` is the unweighted mean of the per-type F1 over the union of gold and predicted entity types,
    as seqeval's ``classification_report`` "macro avg": a type that is only predicted (never in gold) has
    F1 0 and counts. 0 when there are no entities at all.
    """
    s = entity_scores(gold_seqs, pred_seqs)
    per_type = s["per_type"]     # keyed by the union of gold and predicted types
    return {
        "entity_f1": s["f1"], "entity_precision": s["precision"], "entity_recall": s["recall"],
        "entity_f1_ci95": f1_ci(sentence_counts(gold_seqs, pred_seqs), seed=seed),
        "macro_f1": float(np.mean([m["f1"] for m in per_type.values()])) if per_type else 0.0,
        "per_type": per_type, "token_accuracy": token_accuracy(gold_seqs, pred_seqs),
        "entities": {"gold": s["n_gold"], "predicted": s["n_predicted"], "correct": s["n_correct"]},
    }


def flipped_sentences(sentences: Sequence[Sequence[str]], gold: Sequence[Sequence[str]], before: Sequence[Sequence[str]],
                      after: Sequence[Sequence[str]], *, limit: int = 20) -> dict:
    """Eval sentences whose entity predictions changed most between before and after (most changed spans first).

    ``gain`` = correct entities after minus before (positive: the fine-tuning fixed entities in this sentence).
    """
    rows = []
    for i, (words, g, b, a) in enumerate(zip(sentences, gold, before, after)):
        gs, bs, as_ = set(extract_spans(g)), set(extract_spans(b)), set(extract_spans(a))
        changed = len(bs ^ as_)
        if changed:
            rows.append({"index": i, "changed_entities": changed, "gain": len(as_ & gs) - len(bs & gs),
                         "tokens": list(words), "gold": list(g), "before": list(b), "after": list(a)})
    rows.sort(key=lambda r: (-r["changed_entities"], -abs(r["gain"]), r["index"]))
    return {"sentences": rows[:limit], "n_changed": len(rows), "n_fixed": sum(r["gain"] > 0 for r in rows),
            "n_broken": sum(r["gain"] < 0 for r in rows)}
