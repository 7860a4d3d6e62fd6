"""Diagnostics: how different the target is from the source, and which backbone will transfer best.

Pure, seeded functions on feature arrays or per-item measurements; results are dataclasses with
``to_dict()``. Nothing here loads a model.
"""

from tlcore.diagnostics.drift import DriftReport, PropertyDrift, property_drift
from tlcore.diagnostics.mismatch import (
    DEFINITIONS,
    LabelShiftResult,
    MapResult,
    MismatchReport,
    MMDResult,
    PADResult,
    compare_embeddings,
    coral_distance,
    embedding_map,
    frechet_distance,
    frechet_distance_from_stats,
    label_shift,
    mmd_rbf,
    proxy_a_distance,
)
from tlcore.diagnostics.properties_audio import audio_properties
from tlcore.diagnostics.properties_image import image_properties
from tlcore.diagnostics.properties_text import separating_words, text_properties, vocabulary_overlap
from tlcore.diagnostics.transferability import (
    FEATURE_SCORES,
    bootstrap_score,
    h_score,
    kendall_tau,
    knn_cv_accuracy,
    leep,
    logme,
    nce,
    rank_backbones,
)
from tlcore.diagnostics.verdict import Verdict, mismatch_verdict

__all__ = [
    "DEFINITIONS", "DriftReport", "FEATURE_SCORES", "LabelShiftResult", "MMDResult", "MapResult",
    "MismatchReport", "PADResult", "PropertyDrift", "Verdict",
    "audio_properties", "bootstrap_score", "compare_embeddings", "coral_distance", "embedding_map",
    "frechet_distance", "frechet_distance_from_stats", "h_score", "image_properties", "kendall_tau",
    "knn_cv_accuracy", "label_shift", "leep", "logme", "mismatch_verdict", "mmd_rbf", "nce",
    "property_drift", "proxy_a_distance", "rank_backbones", "separating_words", "text_properties",
    "vocabulary_overlap",
]
