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

from tlcore.data.dataset import Dataset
from tlcore.diagnostics import (
    audio_properties,
    image_properties,
    separating_words,
    text_properties,
    vocabulary_overlap,
)
from tlcore.diagnostics.embedding_map import MAP_METHODS
from tlcore.diagnostics.rank import candidate_backbones, run_rank
from tlcore.errors import ConfigError, DataError
from tlcore.models.features import extract_features
from tlcore.models.registry import build_backbone
from tlcore.progress import Progress, ProgressFn, no_progress
from tlcore.tasks import get_task
from tlcore.tasks.detect import resolve_task

__all__ = ["candidate_backbones", "run_diagnose", "run_rank"]

MAX_PROPERTY_ITEMS = 1000


def _sample(ds: Dataset, n: int, seed: int) -> list:
    if len(ds) <= n:
        return list(ds.items)
    idx = np.sort(np.random.default_rng(seed).choice(len(ds), n, replace=False))
    return [ds.items[i] for i in idx]


def item_properties(ds: Dataset, tokenizer, seed: int) -> dict[str, np.ndarray]:
    """Per-item raw properties (size, brightness, length, loudness...) of a sample of ``ds``, for drift tests."""
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


def text_section(a: Dataset, b: Dataset) -> dict:
    return {"vocabulary": vocabulary_overlap(a.items, b.items), "separating_words": separating_words(a.items, b.items, k=15)}


def require_items(n: int, role: str, unit: str, minimum: int = 2) -> None:
    """DataError when a set is too small to compare distributions or compute an interval."""
    if n < minimum:
        raise DataError(f"the {role} set has too few {unit} ({n}); at least {minimum} are needed to compare "
                        f"distributions and compute intervals: add more {unit}")



def run_diagnose(modality: str, source: str, target: str, *, backbone: Optional[str] = None, seed: int = 0,
                 n_permutations: int = 200, task: Optional[str] = None, progress: ProgressFn = no_progress,
                 map_method: str = "pca") -> dict:
    """The diagnose report (JSON-ready): verdict first, then scores with definitions, drift, map, and the task's
    own section (``report["ner"]`` / ``report["asr"]``). ``task``: classify, ner, asr or None (detect).
    ``map_method``: the 2-D map's projection, "pca" or "umap" (see :func:`embedding_map`)."""
    if map_method not in MAP_METHODS:
        raise ConfigError(f"unknown map method {map_method!r}; choose one of {', '.join(MAP_METHODS)}")
    t0 = time.time()
    task = resolve_task(task, modality, ("source", source), ("target", target))
    progress(Progress("data", 0, 2, "loading data"))
    report = get_task(task).part("diagnosis").diagnose(modality, source, target, backbone=backbone, seed=seed,
                                                       n_permutations=n_permutations, progress=progress,
                                                       map_method=map_method)
    report["timings_s"] = {"total": round(time.time() - t0, 3)}
    progress(Progress("done", 1, 1, report["verdict"]["summary"]))
    return report


def embed_pair(modality: str, a: Dataset, b: Dataset, backbone: Optional[str], progress: ProgressFn):
    progress(Progress("features", 0, 2, "embedding both sets"))
    bb = build_backbone(backbone, modality)
    fa = extract_features(bb, a, stage="features: source", progress=progress)
    fb = extract_features(bb, b, stage="features: target", progress=progress)
    return bb, fa, fb


def report_head(modality: str, task: str, bb, seed: int) -> dict:
    return {"modality": modality, "task": task, "backbone": bb.backbone_name, "seed": seed}  # type: ignore[attr-defined]


