"""Unsupervised transfer: no target labels at all. Cluster the target on pretrained features and compare with
clustering the raw inputs (pixels / TF-IDF / MFCC); labels, when the folder has them, are used only to score.

* :func:`run_clustering` — the report (what ``python -m tlcore cluster`` and ``tlcore.cluster`` return).
* :func:`cluster_dataset` — the same work, keeping the per-item assignments and features.
* :func:`write_clustering_run` — a run folder for the app: ``report.json``, ``clusters.json`` (the 2-D maps and the
  cluster browser's data) and ``examples/`` (thumbnails / clips of the most central items of every cluster).
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
from PIL import Image
from sklearn.decomposition import PCA

from tlcore.config import check_option
from tlcore.data.dataset import Dataset
from tlcore.data.loaders import load_dataset
from tlcore.data.overlap import content_keys, item_kind
from tlcore.diagnostics.clustering import cluster_features, cluster_scores, raw_features
from tlcore.errors import Cancelled, DataError
from tlcore.models.features import extract_features
from tlcore.models.registry import build_backbone
from tlcore.progress import CancelFn, Progress, ProgressFn, never_cancel, no_progress
from tlcore.reporting.files import write_text
from tlcore.reporting.writer import RunWriter

RAW_FEATURES = {"image": "grayscale 32x32 pixels", "text": "TF-IDF + SVD(100)", "audio": "MFCC mean+std"}
SIDES = ("pretrained", "raw")
#: Items shown per cluster in the browser (the ones closest to the cluster's centre).
EXAMPLES_PER_CLUSTER = {"image": 8, "text": 6, "audio": 4}
THUMBNAIL_PX = 160
MAX_AUDIO_BYTES = 5_000_000   # longer clips are listed by name, not copied into the run folder
SNIPPET_CHARS = 300


@dataclass
class ClusteringOutcome:
    """What :func:`cluster_dataset` computed: the report plus the per-item data behind it.

    ``features`` / ``raw``: (n, d) pretrained and raw-input features; ``assignments``: side -> (n,) cluster index.
    """

    report: dict
    dataset: Dataset
    features: np.ndarray
    raw: np.ndarray
    assignments: dict = field(default_factory=dict)


def _cancel_check(should_cancel: CancelFn, where: str) -> None:
    if should_cancel():
        raise Cancelled(f"cancelled {where}")


def _sample(ds: Dataset, max_items: Optional[int], seed: int) -> Dataset:
    if not max_items or len(ds) <= max_items:
        return ds
    idx = np.sort(np.random.default_rng(seed).choice(len(ds), size=max_items, replace=False))
    return ds.subset(idx.tolist())


def cluster_dataset(modality: str, data: str, *, backbone: Optional[str] = None, k: Optional[int] = None, seed: int = 0,
                    max_items: Optional[int] = None, on_bad_file: str = "skip", progress: ProgressFn = no_progress,
                    should_cancel: CancelFn = never_cancel) -> ClusteringOutcome:
    """Load ``data``, cluster it on the backbone's features and on raw inputs; checks ``should_cancel`` between steps.

    ``max_items`` clusters a seeded random sample of larger sets (the report says so). Raises ``DataError`` when the
    data cannot be clustered (too few items for ``k``), ``Cancelled`` when cancelled."""
    check_option("k", k)      # 2..50 before any loading; the data's size is checked below
    check_option("seed", seed)
    check_option("max_items", max_items)
    progress(Progress("data", 0, 1, "loading data"))
    full = load_dataset(data, modality, on_error=on_bad_file)
    ds = _sample(full, max_items, seed)
    if k is not None and k > len(ds):
        raise DataError(f"k = {k} clusters needs at least {k} items; the data has {len(ds)}: pick a smaller k"
                        if len(ds) >= 2 else f"clustering needs at least 2 items; the data has {len(ds)}")
    if k is None and len(ds) < 3:
        raise DataError(f"choosing k needs at least 3 items; the data has {len(ds)}")
    distinct = len(content_keys(ds.items, item_kind(modality)))
    if distinct < max(2, k or 2):
        raise DataError(f"the data holds {distinct} distinct item(s) among {len(ds)} (the rest are exact copies): "
                        + ("nothing to cluster; add different items" if distinct < 2 else
                           f"k = {k} needs {k} different items; pick a smaller k or add different items"))
    progress(Progress("data", 1, 1, f"{len(ds)} items" + (f" (a sample of {len(full)})" if len(ds) < len(full) else "")))
    _cancel_check(should_cancel, "before feature extraction")
    bb = build_backbone(backbone, modality)
    feats = extract_features(bb, ds, progress=progress, should_cancel=should_cancel)
    _cancel_check(should_cancel, "after feature extraction")
    progress(Progress("cluster", 0, 2, "raw-input features and k-means"))
    raw = raw_features(ds.items, modality, seed=seed)
    labels = ds.labels
    result: dict = {}
    assignments: dict = {}
    for step, (side, f) in enumerate((("pretrained", feats), ("raw", raw))):
        _cancel_check(should_cancel, f"before clustering the {side} features")
        progress(Progress("cluster", step, 2, f"k-means on {'pretrained features' if side == 'pretrained' else 'raw inputs'}"))
        clusters = cluster_features(f, k=k, seed=seed)
        row = clusters.to_dict()
        row.pop("labels", None)
        if labels is not None:
            row.update(cluster_scores(labels, clusters.labels))
        result[side] = row
        assignments[side] = np.asarray(clusters.labels)
    data_block = {"path": data, "n": len(ds), "labeled_for_scoring": labels is not None,
                  "true_classes": ds.classes if labels else None}
    if len(ds) < len(full):
        data_block["n_total"] = len(full)
    if full.problems:
        data_block["skipped"] = len(full.problems)
    report = {"setting": "unsupervised", "modality": modality, "backbone": bb.backbone_name,  # type: ignore[attr-defined]
              "data": data_block, "raw_features": RAW_FEATURES[modality], **result}
    return ClusteringOutcome(report, ds, feats, raw, assignments)


def run_clustering(modality: str, data: str, *, backbone: Optional[str] = None, k: Optional[int] = None, seed: int = 0,
                   max_items: Optional[int] = None, on_bad_file: str = "skip", progress: ProgressFn = no_progress,
                   should_cancel: CancelFn = never_cancel) -> dict:
    """The clustering report of ``data`` (pretrained vs raw; NMI/ARI against labels when there are any)."""
    report = cluster_dataset(modality, data, backbone=backbone, k=k, seed=seed, max_items=max_items,
                             on_bad_file=on_bad_file, progress=progress, should_cancel=should_cancel).report
    progress(Progress("done", 1, 1, "clustering finished"))
    return report


# ----------------------------------------------------------------------------------------- the run folder (app)

def _unit_rows(x: np.ndarray) -> np.ndarray:
    """Centred, L2-normalised rows (the geometry k-means ran in, before its PCA)."""
    x = np.asarray(x, dtype=np.float64)
    x = x - x.mean(axis=0, keepdims=True)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def map_2d(features: np.ndarray, seed: int = 0) -> tuple[np.ndarray, list[float]]:
    """(n, 2) PCA coordinates of the centred, L2-normalised features and the variance share of each axis."""
    x = _unit_rows(features)
    n_comp = int(min(2, x.shape[0], x.shape[1]))
    if n_comp == 0:
        return np.zeros((x.shape[0], 2)), [0.0, 0.0]
    pca = PCA(n_components=n_comp, random_state=seed)
    coords = pca.fit_transform(x)
    if coords.shape[1] < 2:
        coords = np.concatenate([coords, np.zeros((coords.shape[0], 2 - coords.shape[1]))], axis=1)
    return coords, [float(v) for v in pca.explained_variance_ratio_] + [0.0] * (2 - n_comp)


def central_items(features: np.ndarray, assignment: np.ndarray, per_cluster: int) -> dict[int, list[int]]:
    """Cluster -> indices of its ``per_cluster`` items most similar (cosine) to the cluster's mean direction."""
    x = _unit_rows(features)
    out = {}
    for c in sorted(set(int(v) for v in assignment)):
        idx = np.flatnonzero(assignment == c)
        centre = x[idx].mean(axis=0)
        order = np.argsort(-(x[idx] @ centre), kind="stable")
        out[c] = [int(i) for i in idx[order[:per_cluster]]]
    return out


def _save_example(item: str, modality: str, dest: Path) -> Optional[str]:
    """Copy one item into the run folder (images as thumbnails); its file name, or None if it cannot be read."""
    src = Path(item)
    try:
        if modality == "image":
            with Image.open(src) as im:
                im = im.convert("RGB")
                im.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX))
                im.save(dest.with_suffix(".png"))
            return dest.with_suffix(".png").name
        if src.stat().st_size > MAX_AUDIO_BYTES:
            return None
        shutil.copyfile(src, dest.with_suffix(src.suffix.lower()))
        return dest.with_suffix(src.suffix.lower()).name
    except (OSError, ValueError):
        return None


def _cluster_cards(outcome: ClusteringOutcome, side: str, examples: Optional[Path]) -> list[dict]:
    """Per cluster: size, label make-up (when labeled) and its most central examples (written under ``examples``)."""
    ds, modality = outcome.dataset, outcome.dataset.modality
    assignment = outcome.assignments[side]
    feats = outcome.features if side == "pretrained" else outcome.raw
    central = central_items(feats, assignment, EXAMPLES_PER_CLUSTER[modality])
    cards = []
    for c, members in central.items():
        size = int((assignment == c).sum())
        card: dict = {"id": c, "size": size, "examples": []}
        if ds.labels is not None:
            counts: dict[str, int] = {}
            for i in np.flatnonzero(assignment == c):
                counts[ds.labels[i]] = counts.get(ds.labels[i], 0) + 1
            top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
            card["top_labels"] = [[name, n] for name, n in top[:5]]
            card["purity"] = top[0][1] / size
        for rank, i in enumerate(members):
            ex: dict = {"index": i, "name": ds.names[i] if ds.names else str(i),
                        "label": ds.labels[i] if ds.labels is not None else None}
            if modality == "text":
                ex["text"] = str(ds.items[i])[:SNIPPET_CHARS]
            elif examples is not None:
                name = _save_example(ds.items[i], modality, examples / side / f"c{c}_{rank}")
                ex["file"] = f"examples/{side}/{name}" if name else None
            card["examples"].append(ex)
        cards.append(card)
    return cards


def _write_json(path: Path, data: dict) -> None:
    write_text(path, json.dumps(data, default=float))


def write_clustering_run(config: dict, *, progress: ProgressFn = no_progress,
                         should_cancel: CancelFn = never_cancel) -> dict:
    """Cluster ``config['data']`` and write the run folder ``config['out']``; return report.json's content.

    ``config`` is a ``ClusterConfig.to_dict()`` (already validated). The folder is written as a hidden staging folder
    and renamed into place with report.json last (:class:`~tlcore.reporting.writer.RunWriter`), so a folder with a
    report is complete, and a folder that has one is never overwritten."""
    writer = RunWriter(config["out"], config)
    out = writer.start()
    t0 = time.time()
    outcome = cluster_dataset(config["modality"], config["data"], backbone=config.get("backbone"), k=config.get("k"),
                              seed=config.get("seed", 0), max_items=config.get("max_items"),
                              on_bad_file=config.get("on_bad_file", "skip"), progress=progress,
                              should_cancel=should_cancel)
    t_cluster = time.time() - t0
    _cancel_check(should_cancel, "before writing the results")
    progress(Progress("save", 0, 1, "maps and cluster examples"))
    ds = outcome.dataset
    sides: dict = {}
    for side in SIDES:
        coords, explained = map_2d(outcome.features if side == "pretrained" else outcome.raw, seed=config.get("seed", 0))
        sides[side] = {"cluster": [int(v) for v in outcome.assignments[side]],
                       "x": [round(float(v), 5) for v in coords[:, 0]], "y": [round(float(v), 5) for v in coords[:, 1]],
                       "explained_variance": explained}

    def fill(folder: Path) -> None:
        for side in SIDES:
            (folder / side).mkdir(parents=True, exist_ok=True)
            sides[side]["clusters"] = _cluster_cards(outcome, side, folder)

    if ds.modality == "text":   # text examples live in clusters.json itself
        for side in SIDES:
            sides[side]["clusters"] = _cluster_cards(outcome, side, None)
    else:
        writer.save_folder("examples", fill)
    items = {"name": ds.names if ds.names else [str(i) for i in range(len(ds))], "label": ds.labels}
    if ds.modality == "text":
        items["snippet"] = [str(t)[:120] for t in ds.items]
    _write_json(out / "clusters.json", {"modality": ds.modality, "items": items, "sides": sides})
    # the staging folder becomes config["out"] only now, with everything in it
    report = writer.finish_analysis({**outcome.report, "files": {"clusters": "clusters.json"},
                                     "timings_s": {"cluster": t_cluster, "save": time.time() - t0 - t_cluster}},
                                    kind="cluster", setting="unsupervised")
    progress(Progress("done", 1, 1, "clustering finished"))
    return report
