"""Before any training: how far is the target from the source (diagnose), and which backbone will transfer (rank).

``run_diagnose`` embeds both sets with a backbone, measures the mismatch (MMD + permutation test, proxy
A-distance, Fréchet, CORAL, label shift, a 2-D map), tests per-property drift of the raw inputs, and writes a
plain-language verdict. Per task (``task=None`` detects it from the data):

* classify: class label shift; text sets also get vocabulary overlap and separating words.
* ner: sentences (words joined by spaces) are embedded like classification text; instead of class label shift,
  the entity-type shift (entity spans per type, chi-square test) and the share of target entity mentions never
  seen in the source; text properties plus entities per sentence drift.
* asr: clips are embedded like classification audio; audio properties plus words per clip and speaking rate
  drift; the word out-of-vocabulary rate of the target transcripts w.r.t. the source transcripts.

``run_rank`` (in :mod:`tlcore.diagnostics.rank`, importable from here) scores candidate backbones on the
labeled target without fine-tuning.
"""

from __future__ import annotations

import time
from typing import Optional

import numpy as np
import soundfile as sf

from tlcore.data.audio import clip_seconds
from tlcore.data.dataset import Dataset
from tlcore.data.loaders import load_dataset
from tlcore.diagnostics import (
    DEFINITIONS,
    audio_properties,
    compare_embeddings,
    embedding_map,
    image_properties,
    mismatch_verdict,
    property_drift,
    separating_words,
    text_properties,
    vocabulary_overlap,
)
from tlcore.diagnostics.embedding_map import MAP_METHODS
from tlcore.diagnostics.rank import candidate_backbones, run_rank, validate_ranking
from tlcore.diagnostics.task_data import joined_sentences, load_asr_set, load_ner_set, require_items, resolve_task
from tlcore.diagnostics.task_shift import (
    TASK_DEFINITIONS,
    entity_properties,
    entity_type_shift,
    transcript_properties,
    transcript_vocabulary,
    unseen_entities,
)
from tlcore.diagnostics.task_verdict import task_verdict
from tlcore.models.features import extract_features
from tlcore.models.registry import build_backbone
from tlcore.progress import Progress, ProgressFn, no_progress

__all__ = ["candidate_backbones", "run_diagnose", "run_rank", "validate_ranking"]

MAX_PROPERTY_ITEMS = 1000


def _sample(ds: Dataset, n: int, seed: int) -> list:
    if len(ds) <= n:
        return list(ds.items)
    idx = np.sort(np.random.default_rng(seed).choice(len(ds), n, replace=False))
    return [ds.items[i] for i in idx]


def _properties(ds: Dataset, tokenizer, seed: int) -> dict[str, np.ndarray]:
    items = _sample(ds, MAX_PROPERTY_ITEMS, seed)
    if ds.modality == "image":
        return image_properties(items)
    if ds.modality == "text":
        return text_properties(items, tokenizer=tokenizer)
    waves = []
    for path in items:
        data, sr = sf.read(path, dtype="float32", always_2d=True)
        waves.append((data, sr))
    return audio_properties(waves)


def _text_section(a: Dataset, b: Dataset) -> dict:
    return {"vocabulary": vocabulary_overlap(a.items, b.items), "separating_words": separating_words(a.items, b.items, k=15)}


def run_diagnose(modality: str, source: str, target: str, *, backbone: Optional[str] = None, seed: int = 0,
                 n_permutations: int = 200, task: Optional[str] = None, progress: ProgressFn = no_progress,
                 map_method: str = "pca") -> dict:
    """The diagnose report (JSON-ready): verdict first, then scores with definitions, drift, map, and the task's
    own section (``report["ner"]`` / ``report["asr"]``). ``task``: classify, ner, asr or None (detect).
    ``map_method``: the 2-D map's projection, "pca" or "umap" (see :func:`embedding_map`)."""
    if map_method not in MAP_METHODS:
        from tlcore.errors import ConfigError

        raise ConfigError(f"unknown map method {map_method!r}; choose one of {', '.join(MAP_METHODS)}")
    t0 = time.time()
    task = resolve_task(task, modality, ("source", source), ("target", target))
    progress(Progress("data", 0, 2, "loading data"))
    if task == "ner":
        report = _diagnose_ner(source, target, backbone=backbone, seed=seed, n_permutations=n_permutations,
                               progress=progress, map_method=map_method)
    elif task == "asr":
        report = _diagnose_asr(source, target, backbone=backbone, seed=seed, n_permutations=n_permutations,
                               progress=progress, map_method=map_method)
    else:
        report = _diagnose_classify(modality, source, target, backbone=backbone, seed=seed,
                                    n_permutations=n_permutations, progress=progress, map_method=map_method)
    report["timings_s"] = {"total": round(time.time() - t0, 3)}
    progress(Progress("done", 1, 1, report["verdict"]["summary"]))
    return report


def _embed(modality: str, a: Dataset, b: Dataset, backbone: Optional[str], progress: ProgressFn):
    progress(Progress("features", 0, 2, "embedding both sets"))
    bb = build_backbone(backbone, modality)
    fa = extract_features(bb, a, stage="features: source", progress=progress)
    fb = extract_features(bb, b, stage="features: target", progress=progress)
    return bb, fa, fb


def _head(modality: str, task: str, bb, seed: int) -> dict:
    return {"modality": modality, "task": task, "backbone": bb.backbone_name, "seed": seed}  # type: ignore[attr-defined]


def _diagnose_classify(modality: str, source: str, target: str, *, backbone: Optional[str], seed: int,
                       n_permutations: int, progress: ProgressFn, map_method: str = "pca") -> dict:
    a = load_dataset(source, modality)
    b = load_dataset(target, modality)
    require_items(len(a), "source", "items")
    require_items(len(b), "target", "items")
    bb, fa, fb = _embed(modality, a, b, backbone, progress)
    progress(Progress("mismatch", 0, 1, "MMD, domain classifier, Fréchet, CORAL"))
    mismatch = compare_embeddings(fa, fb, seed=seed, labels_a=a.labels, labels_b=b.labels, n_permutations=n_permutations,
                                  map_method=map_method)
    progress(Progress("drift", 0, 1, "per-property two-sample tests"))
    tokenizer = getattr(bb, "tokenizer", None)
    drift = property_drift(_properties(a, tokenizer, seed), _properties(b, tokenizer, seed))
    verdict = mismatch_verdict(mismatch, drift, n_target_labels=len(b) if b.labels is not None else None)
    report = {
        **_head(modality, "classify", bb, seed),
        "data": {"source": len(a), "target": len(b), "source_path": source, "target_path": target,
                 "source_classes": a.classes, "target_classes": b.classes},
        "verdict": verdict.to_dict(),
        "mismatch": mismatch.to_dict(),
        "drift": drift.to_dict(),
        "definitions": DEFINITIONS,
    }
    if modality == "text":
        report["text"] = _text_section(a, b)
    return report


def _diagnose_ner(source: str, target: str, *, backbone: Optional[str], seed: int, n_permutations: int,
                  progress: ProgressFn, map_method: str = "pca") -> dict:
    na, nb = load_ner_set(source, "source"), load_ner_set(target, "target")
    a = Dataset("text", joined_sentences(na.sentences), origin=na.origin)
    b = Dataset("text", joined_sentences(nb.sentences), origin=nb.origin)
    bb, fa, fb = _embed("text", a, b, backbone, progress)
    progress(Progress("mismatch", 0, 1, "MMD, domain classifier, Fréchet, CORAL"))
    mismatch = compare_embeddings(fa, fb, seed=seed, n_permutations=n_permutations, map_method=map_method)
    progress(Progress("drift", 0, 1, "per-property two-sample tests"))
    tokenizer = getattr(bb, "tokenizer", None)
    props_a, props_b = _properties(a, tokenizer, seed), _properties(b, tokenizer, seed)
    tagged = na.tags is not None and nb.tags is not None
    if tagged:
        props_a.update(entity_properties(na.tags))  # type: ignore[arg-type]
        props_b.update(entity_properties(nb.tags))  # type: ignore[arg-type]
    drift = property_drift(props_a, props_b)
    shift = entity_type_shift(na.tags, nb.tags) if tagged else None  # type: ignore[arg-type]
    unseen = unseen_entities(na.sentences, na.tags, nb.sentences, nb.tags) if tagged else None  # type: ignore[arg-type]
    n_labels = len(nb) if nb.tags is not None else None
    verdict = task_verdict(mismatch_verdict(mismatch, drift, n_target_labels=n_labels), "ner",
                           n_target_labels=n_labels, entity_shift=shift, unseen=unseen)
    return {
        **_head("text", "ner", bb, seed),
        "data": {"source": len(na), "target": len(nb), "source_path": source, "target_path": target,
                 "source_classes": na.entity_types(), "target_classes": nb.entity_types(),
                 "source_entities": na.entity_counts(), "target_entities": nb.entity_counts(), "unit": "sentences"},
        "verdict": verdict.to_dict(),
        "mismatch": mismatch.to_dict(),
        "drift": drift.to_dict(),
        "definitions": {**DEFINITIONS, **TASK_DEFINITIONS["ner"]},
        "text": _text_section(a, b),
        "ner": {"entity_shift": shift.to_dict() if shift else None, "unseen_entities": unseen.to_dict() if unseen else None,
                "note": None if tagged else "entity shift and unseen entities need tags in both sets; "
                                            "one of them is untagged"},
    }


def _diagnose_asr(source: str, target: str, *, backbone: Optional[str], seed: int, n_permutations: int,
                  progress: ProgressFn, map_method: str = "pca") -> dict:
    sa, sb = load_asr_set(source, "source"), load_asr_set(target, "target")
    a = Dataset("audio", list(sa.paths), origin=sa.origin, names=list(sa.names))
    b = Dataset("audio", list(sb.paths), origin=sb.origin, names=list(sb.names))
    bb, fa, fb = _embed("audio", a, b, backbone, progress)
    progress(Progress("mismatch", 0, 1, "MMD, domain classifier, Fréchet, CORAL"))
    mismatch = compare_embeddings(fa, fb, seed=seed, n_permutations=n_permutations, include_map=False)
    group = next((g for g in ("accent", "speaker") if g in sa.groups and g in sb.groups), None)
    mismatch.map = embedding_map(fa, fb, labels_a=sa.groups.get(group) if group else None,
                                 labels_b=sb.groups.get(group) if group else None, seed=seed, method=map_method)
    progress(Progress("drift", 0, 1, "per-property two-sample tests"))
    length_a = transcript_properties(sa.texts, clip_seconds(sa.paths))
    length_b = transcript_properties(sb.texts, clip_seconds(sb.paths))
    drift = property_drift({**_properties(a, None, seed), **length_a}, {**_properties(b, None, seed), **length_b})
    vocabulary = transcript_vocabulary(sa.texts, sb.texts)
    verdict = task_verdict(mismatch_verdict(mismatch, drift, n_target_labels=len(sb)), "asr",
                           n_target_labels=len(sb), vocabulary=vocabulary)
    return {
        **_head("audio", "asr", bb, seed),
        "data": {"source": len(sa), "target": len(sb), "source_path": source, "target_path": target,
                 "source_classes": [], "target_classes": [], "map_label": group, "unit": "clips",
                 "source_groups": {g: sorted(set(v)) for g, v in sa.groups.items()},
                 "target_groups": {g: sorted(set(v)) for g, v in sb.groups.items()},
                 "problems": [str(p) for p in sa.problems + sb.problems]},
        "verdict": verdict.to_dict(),
        "mismatch": mismatch.to_dict(),
        "drift": drift.to_dict(),
        "definitions": {**DEFINITIONS, **TASK_DEFINITIONS["asr"]},
        "asr": {"vocabulary": vocabulary.to_dict(),
                "utterance_length": {name: {"source": float(np.mean(length_a[name])), "target": float(np.mean(length_b[name]))}
                                     for name in length_a}},
    }
