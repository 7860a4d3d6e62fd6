"""Classification before training: the mismatch report of two labeled (or unlabeled) sets, and backbones ranked
on the labeled target by transferability scores (see :mod:`tlcore.diagnostics.diagnose` and
:mod:`tlcore.diagnostics.rank`, which call this task part)."""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from tlcore.data.dataset import Dataset
from tlcore.data.loaders import load_dataset
from tlcore.diagnostics import (
    DEFINITIONS,
    bootstrap_score,
    compare_embeddings,
    leep,
    mismatch_verdict,
    nce,
    property_drift,
    rank_backbones,
)
from tlcore.diagnostics.diagnose import embed_pair, item_properties, report_head, require_items, text_section
from tlcore.diagnostics.rank import SUBSAMPLE, feature_scores
from tlcore.errors import DataError
from tlcore.models.features import extract_features
from tlcore.models.registry import build_backbone
from tlcore.progress import Progress, ProgressFn
from tlcore.tasks.classification import SPEC


def _load_set(path: str, modality: str, role: str) -> Dataset:
    """One of the two sets; its errors say which (both are often a folder holding a data.csv)."""
    try:
        return load_dataset(path, modality)
    except DataError as exc:
        raise DataError(f"{role} data: {exc}") from None


def diagnose(modality: str, source: str, target: str, *, backbone: Optional[str], seed: int, n_permutations: int,
             progress: ProgressFn, map_method: str = "pca") -> dict:
    """The shared mismatch report; text sets also get vocabulary overlap and separating words."""
    a, b = _load_set(source, modality, "source"), _load_set(target, modality, "target")
    require_items(len(a), "source", "items")
    require_items(len(b), "target", "items")
    bb, fa, fb = embed_pair(modality, a, b, backbone, progress)
    progress(Progress("mismatch", 0, 1, "MMD, domain classifier, Fréchet, CORAL"))
    mismatch = compare_embeddings(fa, fb, seed=seed, labels_a=a.labels, labels_b=b.labels, n_permutations=n_permutations,
                                  map_method=map_method)
    progress(Progress("drift", 0, 1, "per-property two-sample tests"))
    tokenizer = getattr(bb, "tokenizer", None)
    drift = property_drift(item_properties(a, tokenizer, seed), item_properties(b, tokenizer, seed))
    verdict = mismatch_verdict(mismatch, drift, n_target_labels=len(b) if b.labels is not None else None)
    report = {
        **report_head(modality, SPEC.name, bb, seed),
        "data": {"source": len(a), "target": len(b), "source_path": source, "target_path": target,
                 "source_classes": a.classes, "target_classes": b.classes},
        "verdict": verdict.to_dict(),
        "mismatch": mismatch.to_dict(),
        "drift": drift.to_dict(),
        "definitions": DEFINITIONS,
    }
    if modality == "text":
        report["text"] = text_section(a, b)
    return report


def _source_probs(bb, ds: Dataset) -> Optional[np.ndarray]:
    """Softmax of the backbone's own pretrained classifier (ImageNet head), when it has one."""
    net = getattr(bb, "net", None)
    if bb.modality != "image" or not hasattr(net, "forward_features") or not getattr(bb, "pretrained", False):
        return None
    out = []
    with torch.no_grad():
        for i in range(0, len(ds), 32):
            logits = net(bb.preprocess(ds.items[i:i + 32])["pixel_values"])
            out.append(torch.softmax(logits, -1).numpy())
    return np.concatenate(out)


def rank(modality: str, target: str, names: list[str], *, seed: int, n_boot: int,
         progress: ProgressFn) -> tuple[dict, dict]:
    """LogME, H-score and k-NN CV accuracy on pooled features (LEEP and NCE where the backbone has a pretrained
    classifier), each with a subsampling interval."""
    ds = load_dataset(target, modality, require_labels=True)
    classes = ds.classes
    if max(ds.class_counts().values()) < 2:    # the k-NN score predicts an example from the others of its class
        raise DataError(f"{target}: every class has a single example ({len(classes)} classes); ranking compares the "
                        "examples of a class with each other: give at least 2 examples per class")
    y = np.array([classes.index(c) for c in ds.labels])  # type: ignore[union-attr]
    scores: dict[str, dict[str, tuple[float, float, float]]] = {}
    for i, name in enumerate(names):
        progress(Progress("rank", i, len(names), f"scoring {name}"))
        bb = build_backbone(name, modality)
        f = extract_features(bb, ds, stage=f"features: {name}", progress=progress)
        per = feature_scores(f, y, seed=seed, n_boot=n_boot)
        probs = _source_probs(bb, ds)
        if probs is not None:
            sub = dict(n_boot=n_boot, seed=seed, **SUBSAMPLE)
            per["leep"] = bootstrap_score(leep, probs, y, **sub)
            per["nce"] = bootstrap_score(lambda p, t: nce(p.argmax(1), t), probs, y, **sub)
        scores[name] = per
    return {"modality": modality, "task": SPEC.name, "target": target, "n": len(ds), "classes": classes,
            "ranking": rank_backbones(scores)}, scores
