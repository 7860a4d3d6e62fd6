"""Predictions for the Try-it page: the run's model ('after') and a training-free pretrained reference ('before')."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import numpy as np
import streamlit as st

from tlcore.runs.records import Run


@st.cache_resource(show_spinner="Loading the model…", max_entries=4)
def load_model(folder: str, mtime: float):
    from tlcore.models.transfer_model import TransferModel

    return TransferModel.from_pretrained(folder)


def after_model(run: Run):
    folder = run.out / "model"
    return load_model(str(folder), (folder / "model.safetensors").stat().st_mtime)


@st.cache_resource(show_spinner="Preparing the pretrained reference…", max_entries=4)
def _reference(run_id: str, modality: str, backbone: str, target: str, eval_path: Optional[str], fraction: float,
               classes: tuple) -> tuple[Any, np.ndarray]:
    """The pretrained backbone and its class means on the run's training data (features come from the disk cache)."""
    from tlcore.data.loaders import load_dataset
    from tlcore.data.split import eval_split
    from tlcore.models.features import extract_features
    from tlcore.models.registry import build_backbone

    ds = load_dataset(target, modality)
    train = ds if eval_path else eval_split(ds, fraction)[0]
    bb = build_backbone(backbone, modality, pretrained=True)
    feats = extract_features(bb, train)
    labels = np.array(train.labels)
    means = np.stack([feats[labels == c].mean(0) for c in classes])
    means /= np.linalg.norm(means, axis=1, keepdims=True) + 1e-8
    return bb, means


def reference_proba(run: Run, report: dict, item: Any) -> Optional[np.ndarray]:
    """Softmax over cosine similarities to the class means of pretrained features; None if unavailable."""
    import torch

    cfg = run.config
    if not cfg.get("target"):
        return None
    bb, means = _reference(run.id, report["modality"], report["backbone"], cfg["target"], cfg.get("eval"),
                           float(cfg.get("eval_fraction", 0.3)), tuple(report["data"]["classes"]))
    with torch.no_grad():
        f = bb(**bb.preprocess([item])).float().numpy()[0]
    sims = means @ (f / (np.linalg.norm(f) + 1e-8))
    e = np.exp((sims - sims.max()) * 20.0)  # temperature 0.05: cosine gaps are small
    return e / e.sum()


def top_k(classes: list[str], proba: np.ndarray, k: int = 5) -> list[tuple[str, float]]:
    order = np.argsort(proba)[::-1][:k]
    return [(classes[i], float(proba[i])) for i in order]


def as_path(path: Optional[Path]) -> Optional[str]:
    return None if path is None else str(path)
