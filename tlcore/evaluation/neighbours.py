"""k nearest neighbours by cosine similarity in bounded memory: the training features are compared with a block of
queries at a time, as many as keep the block at about ``BLOCK`` similarities (queries × training rows), so memory
stays flat as the eval split and the training set grow, where a full (n_eval × n_train) distance matrix grows with
both. (A fixed 1,024 queries per block still grew with the training set: with argpartition's int64 indices 16 bytes
per similarity, 570 MB at 35,000 training items.)"""

from __future__ import annotations

from typing import Optional

import numpy as np

#: Similarities per block: 2**22 float32 (16 MB); with the negated copy and argpartition's indices about 64 MB.
BLOCK = 2**22


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / (np.linalg.norm(x, axis=1, keepdims=True) + 1e-12)


def nearest(train: np.ndarray, query: np.ndarray, k: int, *, chunk: Optional[int] = None) -> np.ndarray:
    """(n_query, k) indices of each query's k most cosine-similar training rows, most similar first (ties: the
    lower index first); ``chunk``: queries per block (default: as many as ``BLOCK`` similarities hold)."""
    a, k = _unit(train), int(min(k, len(train)))
    chunk = chunk or max(1, BLOCK // max(len(a), 1))
    out = np.empty((len(query), k), dtype=np.int64)
    for start in range(0, len(query), chunk):
        sim = _unit(query[start:start + chunk]) @ a.T
        top = np.argpartition(-sim, k - 1, axis=1)[:, :k] if k < sim.shape[1] else np.tile(np.arange(k), (len(sim), 1))
        order = np.lexsort((top, -np.take_along_axis(sim, top, 1)), axis=1)
        out[start:start + len(sim)] = np.take_along_axis(top, order, 1)
    return out


def knn_vote(train: np.ndarray, train_y: np.ndarray, query: np.ndarray, k: int, n_classes: int) -> np.ndarray:
    """The class most of the k nearest training items carry (uniform votes; a tie goes to the lowest class index,
    as scikit-learn's ``KNeighborsClassifier`` does)."""
    idx = nearest(train, query, k)
    votes = np.zeros((len(query), n_classes), dtype=np.int64)
    np.add.at(votes, (np.repeat(np.arange(len(query)), idx.shape[1]), np.asarray(train_y)[idx].ravel()), 1)
    return votes.argmax(1)


def knn_shares(train: np.ndarray, train_y: np.ndarray, query: np.ndarray, k: int) -> np.ndarray:
    """(n_query, L) share of the k nearest training items carrying each label of the 0/1 matrix ``train_y``."""
    return np.asarray(train_y, dtype=np.float64)[nearest(train, query, k)].mean(1)
