"""Pooled feature extraction in batches, cached on disk by backbone + data content hash."""

from __future__ import annotations

import hashlib
import logging
import os
import time
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch

from tlcore import storage
from tlcore.data.dataset import Dataset
from tlcore.device import Runtime
from tlcore.device import current as current_runtime
from tlcore.models.base import Backbone
from tlcore.paths import cache_dir, owned_cache_dir
from tlcore.progress import CancelFn, Progress, ProgressFn, never_cancel, no_progress
from tlcore.training.loading import mapped_loader

log = logging.getLogger(__name__)


def _shared(path: Path, fetch: bool) -> bool:
    """With an artifact store (``TRANSFERLAB_ARTIFACTS_URL``), hosts share the feature cache: ``fetch`` a missing
    file from it (True when it came), or publish a new one. Store trouble is logged and never fails the work."""
    from tlcore.artifacts import ArtifactStore

    try:
        store = ArtifactStore.from_env()
        if store is None:
            return False
        rel = path.relative_to(cache_dir("features")).as_posix()
        if fetch:
            return store.get_features(rel, path)
        store.put_features(rel, path)
    except Exception as exc:  # noqa: BLE001 - the local cache works without the store
        log.warning("feature cache in the artifact store: %s %s failed: %s", "fetching" if fetch else "storing",
                    path.name, exc)
    return False


def weights_fingerprint(backbone: Backbone) -> str:
    """A short hash of the backbone's parameters and buffers (computed once per backbone object): two folders or
    hub revisions with one display name, or weights changed in place, never share cached features."""
    cached = getattr(backbone, "_tl_weights_fingerprint", None)
    if cached is None:
        h = hashlib.sha256()
        for name, tensor in sorted(backbone.state_dict().items()):
            h.update(name.encode())
            h.update(tensor.detach().to("cpu").contiguous().view(-1).view(torch.uint8).numpy().tobytes())
        cached = h.hexdigest()[:12]
        backbone._tl_weights_fingerprint = cached  # type: ignore[attr-defined]
    return cached


def _cache_key(backbone: Backbone, ds: Dataset, rt: Runtime) -> Optional[str]:
    """Backbone name, its weights, the data's content, and the device type and precision the features are computed
    at (bf16 features differ from fp32 ones: a run must never read another precision's features)."""
    name = getattr(backbone, "backbone_name", None)
    if not name or not getattr(backbone, "pretrained", False):
        return None   # only cache known, unmodified pretrained weights
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    return f"{safe}-{weights_fingerprint(backbone)}-{ds.content_hash()}-{rt.device.type}-{rt.precision}"


def length_order(backbone: Backbone, items: Sequence[Any]) -> np.ndarray:
    """Item indices by increasing :meth:`~tlcore.models.base.Backbone.input_length` (stable), or in their order when
    the backbone's inputs all have one size."""
    lengths = [backbone.input_length(item) for item in items] if len(items) else []
    if not lengths or lengths[0] is None:
        return np.arange(len(items))
    return np.argsort(np.asarray(lengths), kind="stable")


@torch.no_grad()
def extract_features(backbone: Backbone, ds: Dataset, *, batch_size: int = 32, stage: str = "features",
                     progress: ProgressFn = no_progress, should_cancel: CancelFn = never_cancel,
                     use_cache: bool = True) -> np.ndarray:
    """(n, feature_dim) float32 pooled features of ``ds``; cached when the backbone is a named pretrained one."""
    rt = current_runtime()
    key = _cache_key(backbone, ds, rt) if use_cache else None
    path = owned_cache_dir("features") / f"{key}.npy" if key else None
    shared = path is not None and not path.exists() and _shared(path, fetch=True)   # another host extracted them
    if path is not None and path.exists():
        progress(Progress(stage, len(ds), len(ds), "features from the shared cache" if shared else "features from cache"))
        try:
            feats = np.load(path)
        except (OSError, ValueError):
            feats = None             # evicted meanwhile or damaged: extract again
        if feats is not None and feats.shape[0] == len(ds):
            storage.touch(path)      # the LRU clock of the cache's eviction
            return feats
    was_training = backbone.training
    backbone.eval()
    backbone.to(rt.device)
    feats: Optional[np.ndarray] = None   # filled in place: peak memory is one copy of the features
    start_t = time.time()
    # Decoding and resizing run in the DataLoader's workers, a few batches ahead of the model (same batches, same
    # padding as preprocessing them here; see tlcore/training/loading.py). Inputs padded per batch (texts) go in
    # order of length, so a batch pads to about its own items' length; the features go back to the items' order.
    order = length_order(backbone, ds.items)
    chunks = [[ds.items[j] for j in order[start:start + batch_size]] for start in range(0, len(ds), batch_size)]
    for i, batch in enumerate(mapped_loader(backbone.preprocess, chunks, rt)):
        if should_cancel():
            from tlcore.errors import Cancelled

            raise Cancelled("cancelled during feature extraction")
        with rt.autocast():
            f = backbone(**rt.to_device(batch)).float().cpu().numpy()
        if feats is None:
            feats = np.empty((len(ds), f.shape[1]), np.float32)
        feats[order[i * batch_size:i * batch_size + len(f)]] = f
        done = min((i + 1) * batch_size, len(ds))
        rate = done / max(time.time() - start_t, 1e-6)
        progress(Progress(stage, done, len(ds), "extracting features", eta_s=(len(ds) - done) / rate))
    backbone.train(was_training)
    if feats is None:
        feats = np.zeros((0, backbone.feature_dim), np.float32)
    if path is not None:
        tmp = path.with_name(f".{path.stem}.{os.getpid()}.npy")
        np.save(tmp, feats)
        os.replace(tmp, path)
        _shared(path, fetch=False)
        storage.evict_after_write(keep=path)
    return feats
