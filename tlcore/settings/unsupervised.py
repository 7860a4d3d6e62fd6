"""Unsupervised transfer: no target labels at all. Cluster the target on pretrained features and compare with
clustering the raw inputs (pixels / TF-IDF / MFCC); labels, when the folder has them, are used only to score."""

from __future__ import annotations

from typing import Optional

from tlcore.data.loaders import load_dataset
from tlcore.diagnostics.clustering import compare_clustering, raw_features
from tlcore.models.features import extract_features
from tlcore.models.registry import build_backbone
from tlcore.progress import Progress, ProgressFn, no_progress


def run_clustering(modality: str, data: str, *, backbone: Optional[str] = None, k: Optional[int] = None, seed: int = 0,
                   progress: ProgressFn = no_progress) -> dict:
    ds = load_dataset(data, modality)
    bb = build_backbone(backbone, modality)
    feats = extract_features(bb, ds, progress=progress)
    progress(Progress("cluster", 0, 1, "raw-input features and k-means"))
    raw = raw_features(ds.items, modality, seed=seed)
    labels = ds.labels
    result = compare_clustering(feats, raw, labels, k=k, seed=seed)
    for side in ("pretrained", "raw"):
        result[side].pop("labels", None) if isinstance(result[side], dict) else None
    report = {"setting": "unsupervised", "modality": modality, "backbone": bb.backbone_name,  # type: ignore[attr-defined]
              "data": {"path": data, "n": len(ds), "labeled_for_scoring": labels is not None,
                       "true_classes": ds.classes if labels else None},
              "raw_features": {"image": "grayscale 32x32 pixels", "text": "TF-IDF + SVD(100)", "audio": "MFCC mean+std"}[modality],
              **result}
    progress(Progress("done", 1, 1, "clustering finished"))
    return report
