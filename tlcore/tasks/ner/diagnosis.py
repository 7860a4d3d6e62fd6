"""NER before training: the mismatch report of two sentence sets (entity-type shift, unseen entities), and text
backbones ranked on the tagged target by scores on word features."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from tlcore.data.dataset import Dataset
from tlcore.diagnostics import DEFINITIONS as SHARED_DEFINITIONS
from tlcore.diagnostics import compare_embeddings, mismatch_verdict, property_drift, rank_backbones
from tlcore.diagnostics.diagnose import embed_pair, item_properties, report_head, require_items, text_section
from tlcore.diagnostics.rank import feature_scores
from tlcore.diagnostics.task_shift import entity_properties, entity_type_shift, unseen_entities
from tlcore.diagnostics.task_verdict import recommend_ner, task_verdict
from tlcore.errors import DataError
from tlcore.models.registry import build_backbone
from tlcore.progress import Progress, ProgressFn
from tlcore.tasks.ner import SPEC
from tlcore.tasks.ner.data import encode, load_ner, tag_vocabulary
from tlcore.tasks.ner.model import TokenTagger

#: One-line definitions of NER's own measures, shown next to the numbers like ``DEFINITIONS``.
DEFINITIONS_NER = {
    "entity_shift": "Total variation ½Σ|p_a − p_b| between the entity-type proportions of the two sets "
    "(one count per entity span, conlleval spans), with a chi-square test of homogeneity.",
    "unseen_entities": "Share of the target's entity mentions whose surface form (lower-cased words) never "
    "occurs as an entity of the same type in the source (Augenstein et al. 2017: unseen entities are the main "
    "cause of NER errors under domain shift).",
}


def load_ner_set(path: str, role: str, *, require_tags: bool = False):
    """``NerData`` of one set; a tagged set without a single entity is refused (nothing to compare or score)."""
    try:
        data = load_ner(path, require_tags=require_tags)
    except DataError as exc:
        raise DataError(f"{role} data: {exc}") from None
    if data.tags is not None and not data.entity_counts():
        raise DataError(f"{role} data ({Path(data.origin).name}): no entities, every one of the {len(data)} sentences "
                        "is tagged O only; tag the entities with BIO tags (B-TYPE on the first word, I-TYPE on the "
                        "rest), or remove the 'tags' to use the sentences as untagged text")
    require_items(len(data), role, "sentences")
    return data


def joined_sentences(sentences: Sequence[Sequence[str]]) -> list[str]:
    """Each sentence's words joined by single spaces: the text a sentence encoder embeds."""
    return [" ".join(words) for words in sentences]


def diagnose(modality: str, source: str, target: str, *, backbone: Optional[str], seed: int, n_permutations: int,
             progress: ProgressFn, map_method: str = "pca") -> dict:
    """Sentences (words joined by spaces) embedded like classification text; instead of class label shift, the
    entity-type shift and the share of unseen target entity mentions; entities per sentence drift too."""
    na, nb = load_ner_set(source, "source"), load_ner_set(target, "target")
    a = Dataset("text", joined_sentences(na.sentences), origin=na.origin)
    b = Dataset("text", joined_sentences(nb.sentences), origin=nb.origin)
    bb, fa, fb = embed_pair("text", a, b, backbone, progress)
    progress(Progress("mismatch", 0, 1, "MMD, domain classifier, Fréchet, CORAL"))
    mismatch = compare_embeddings(fa, fb, seed=seed, n_permutations=n_permutations, map_method=map_method)
    progress(Progress("drift", 0, 1, "per-property two-sample tests"))
    tokenizer = getattr(bb, "tokenizer", None)
    props_a, props_b = item_properties(a, tokenizer, seed), item_properties(b, tokenizer, seed)
    tagged = na.tags is not None and nb.tags is not None
    if tagged:
        props_a.update(entity_properties(na.tags))  # type: ignore[arg-type]
        props_b.update(entity_properties(nb.tags))  # type: ignore[arg-type]
    drift = property_drift(props_a, props_b)
    shift = entity_type_shift(na.tags, nb.tags) if tagged else None  # type: ignore[arg-type]
    unseen = unseen_entities(na.sentences, na.tags, nb.sentences, nb.tags) if tagged else None  # type: ignore[arg-type]
    n_labels = len(nb) if nb.tags is not None else None
    verdict = task_verdict(mismatch_verdict(mismatch, drift, n_target_labels=n_labels), recommend_ner,
                           n_target_labels=n_labels, entity_shift=shift, unseen=unseen)
    return {
        **report_head("text", SPEC.name, bb, seed),
        "data": {"source": len(na), "target": len(nb), "source_path": source, "target_path": target,
                 "source_classes": na.entity_types(), "target_classes": nb.entity_types(),
                 "source_entities": na.entity_counts(), "target_entities": nb.entity_counts(), "unit": "sentences"},
        "verdict": verdict.to_dict(),
        "mismatch": mismatch.to_dict(),
        "drift": drift.to_dict(),
        "definitions": {**SHARED_DEFINITIONS, **DEFINITIONS_NER},
        "text": text_section(a, b),
        "ner": {"entity_shift": shift.to_dict() if shift else None, "unseen_entities": unseen.to_dict() if unseen else None,
                "note": None if tagged else "entity shift and unseen entities need tags in both sets; "
                                            "one of them is untagged"},
    }


def rank(modality: str, target: str, names: list[str], *, seed: int, n_boot: int, progress: ProgressFn) -> tuple[dict, dict]:
    """The classification scores on word features (hidden state at each word's first sub-token) with the word's
    BIO tag as the label; intervals subsample whole sentences (words of one sentence are not independent)."""
    data = load_ner_set(target, "target", require_tags=True)
    tags = data.tags
    assert tags is not None
    scores: dict[str, dict[str, tuple[float, float, float]]] = {}
    words = truncated = 0
    for i, name in enumerate(names):
        progress(Progress("rank", i, len(names), f"scoring {name}"))
        tagger = TokenTagger(build_backbone(name, "text"), tag_vocabulary(data.entity_types()), backbone_name=name)
        enc = encode(tagger.tokenizer, data.sentences, tagger.max_length)
        x, where = tagger.word_features(enc)
        y = np.array([tags[s][w] for s, w in where])
        groups = [np.flatnonzero(where[:, 0] == s) for s in range(len(data))]
        scores[name] = feature_scores(x, y, seed=seed, n_boot=n_boot, groups=[g for g in groups if g.size])
        words, truncated = len(y), enc.truncated
    return {"modality": "text", "task": SPEC.name, "target": target, "n": len(data), "n_words": words,
            "truncated_sentences": truncated, "classes": sorted({t for seq in tags for t in seq}),
            "entity_types": data.entity_types(), "entities": data.entity_counts(), "unit": "word",
            "ranking": rank_backbones(scores)}, scores
