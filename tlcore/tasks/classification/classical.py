"""The classical baseline: what a person would build on the same labels without any pretrained weights — hand-made
features of the raw input and a logistic regression, its L2 strength chosen by stratified cross-validation on the
*training* items only (the grid of the linear probe, :data:`C_GRID`), then refitted on all of them.

* text — TF-IDF of word 1-2-grams and character 2-5-grams within word boundaries (sublinear term frequency), the
  usual strong text baseline (Wang & Manning, "Baselines and Bigrams", ACL 2012);
* image — a histogram of oriented gradients of the grey image at 64 × 64 (Dalal & Triggs, CVPR 2005; scikit-image's
  ``hog``, 8 × 8-pixel cells, 2 × 2-cell blocks, 9 orientations), an 8-bin histogram, the mean and the standard
  deviation of each colour channel;
* audio — mean and standard deviation over time of 20 MFCCs and their deltas at 16 kHz (torchaudio's ``MFCC``),
  the classic clip-level descriptor (Davis & Mermelstein 1980).

Nothing here touches the eval split: the features are fitted (TF-IDF vocabulary, scaling) on the training items.

Above :data:`STREAM_ABOVE` training items the same model is fitted **out of core**, so memory stays flat as the data
grows (issue 21): the descriptors are written to disk chunk by chunk, C is chosen by the same cross-validation on a
stratified subsample of :data:`STREAM_ABOVE` training items, and the multinomial logistic regression is then fitted
on *every* training item with the same objective and optimiser as scikit-learn's (mean cross-entropy + ‖W‖²/(2·C·n),
L-BFGS from scipy, gradient tolerance 1e-4), each function evaluation streaming the chunks from disk. Text then uses
hashed n-gram counts (2^20 buckets per analyser, only the buckets that occur are kept) with the same sublinear TF,
smoothed IDF and per-analyser L2 norm, instead of a vocabulary held in memory. Eval items are described and scored
chunk by chunk on both paths.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import scipy.optimize
import scipy.sparse
import torch
import torchaudio
from PIL import Image
from skimage.feature import hog
from sklearn.feature_extraction.text import HashingVectorizer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import FeatureUnion, make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler, normalize

from tlcore.data.audio import clip_mfcc
from tlcore.data.images import load_rgb
from tlcore.data.split import holdout_split
from tlcore.device import small_problem_threads
from tlcore.storage import CLASSICAL_PREFIX, owned_scratch_prefix
from tlcore.strategies.linear_probe import C_GRID

#: L2 strengths for TF-IDF rows and the image descriptor (unit-scale features: weaker regularisation is usual, Wang &
#: Manning 2012); the standardized audio descriptor uses the linear probe's grid.
C_GRID_TEXT = (0.1, 1.0, 10.0, 100.0)
IMAGE_SIDE = 64
#: More training items than this: the out-of-core fit (C cross-validated on a stratified subsample of this many).
STREAM_ABOVE = 5000
#: Items described, written and read back at a time (the out-of-core fit; scoring eval items on both paths).
CHUNK = 2000
HASH_BUCKETS = 2 ** 20
#: What each modality's classical model is, in words for the report, the model card and Compare.
NAMES = {"text": "TF-IDF + logistic regression", "image": "HOG + colour histograms + logistic regression",
         "audio": "MFCC statistics + logistic regression"}


def _image_descriptor(items: Sequence[Any]) -> np.ndarray:
    rows = []
    for item in items:
        rgb = load_rgb(item).resize((IMAGE_SIDE, IMAGE_SIDE), Image.BILINEAR)
        pixels = np.asarray(rgb, dtype=np.float32) / 255.0
        gradients = hog(pixels.mean(2), orientations=9, pixels_per_cell=(8, 8), cells_per_block=(2, 2),
                        feature_vector=True)
        colours = np.concatenate([np.histogram(pixels[..., c], bins=8, range=(0, 1))[0] / pixels[..., c].size
                                  for c in range(3)])
        moments = np.concatenate([pixels.mean((0, 1)), pixels.std((0, 1))])
        rows.append(np.concatenate([gradients, colours, moments]))
    return np.asarray(rows, dtype=np.float32)


def _audio_descriptor(items: Sequence[Any]) -> np.ndarray:
    rows = []
    for item in items:
        mfcc = clip_mfcc(item)                                  # (20, frames)
        delta = torchaudio.functional.compute_deltas(mfcc[None])[0]
        rows.append(torch.cat([mfcc.mean(1), mfcc.std(1), delta.mean(1), delta.std(1)]).numpy())
    return np.nan_to_num(np.asarray(rows, dtype=np.float32))


def _descriptor(modality: str):
    """The feature step of ``modality``'s classical model (a scikit-learn transformer)."""
    if modality == "text":
        return FeatureUnion([
            ("words", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1)),
            ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=1)),
        ])
    if modality == "image":
        # no standardisation: HOG blocks and the histograms are normalised already, and unit variance would blow
        # the gradients of flat, noisy regions up to the weight of the informative features
        return FunctionTransformer(lambda items: _image_descriptor(list(items)))
    return make_pipeline(FunctionTransformer(lambda items: _audio_descriptor(list(items))), StandardScaler())


def _choose_c(x, y: np.ndarray, modality: str, seed: int, on: str) -> tuple[float, dict]:
    """C by stratified k-fold cross-validation of ``x`` (the grid of the modality); (C, what the report records)."""
    counts = np.bincount(y)
    folds = int(min(5, counts[counts > 0].min()))
    grid = C_GRID if modality == "audio" else C_GRID_TEXT
    if folds < 2 or len(set(y.tolist())) < 2:
        return 1.0, {"C": 1.0, "tuned": "C = 1 (too few items per class to cross-validate)"}
    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    with small_problem_threads(x):
        scores = {c: float(cross_val_score(LogisticRegression(C=c, max_iter=5000), x, y, cv=cv).mean()) for c in grid}
    best_c = max(grid, key=lambda c: (scores[c], -abs(np.log10(c))))   # ties: the middle of the grid (C = 1)
    return best_c, {"C": best_c, "tuned": f"C from {list(grid)} by {folds}-fold cross-validation on {on}",
                    "cv_accuracy": scores[best_c]}


def fit_classical(modality: str, items: Sequence[Any], y: np.ndarray, *, seed: int = 0):
    """(fitted model with ``predict(items)``, info) on the training ``items`` and their class indices ``y``: a
    scikit-learn pipeline, or above :data:`STREAM_ABOVE` items the same model fitted out of core."""
    info = {"model": NAMES[modality], "train_size": len(items), "val_size": 0, "epochs_run": 0}
    if len(items) > STREAM_ABOVE:
        model, more = _fit_out_of_core(modality, list(items), np.asarray(y), seed=seed)
        return model, {**info, **more}
    features = _descriptor(modality)
    # the descriptor is fitted and computed once, for the cross-validation over C and the final fit alike (its
    # vocabulary / scaling refit per fold would be exact but costs the descriptor once per fold)
    x = features.fit_transform(list(items), y)
    best_c, tuned = _choose_c(x, y, modality, seed, "the training items")
    info.update(tuned)
    with small_problem_threads(x):
        regression = LogisticRegression(C=best_c, max_iter=5000).fit(x, y)
    pipeline = make_pipeline(features, regression)     # both steps fitted: it describes and scores new items
    return pipeline, info


def classical_predictions(modality: str, train_items: Sequence[Any], y: np.ndarray, eval_items: Sequence[Any], *,
                          seed: int = 0) -> tuple[np.ndarray, dict]:
    """Class indices predicted for ``eval_items`` by the classical model fitted on the training items (described and
    scored :data:`CHUNK` items at a time: every descriptor is per item, so this is the one-batch prediction)."""
    model, info = fit_classical(modality, train_items, y, seed=seed)
    items = list(eval_items)
    parts = [np.asarray(model.predict(items[s:s + CHUNK])) for s in range(0, len(items), CHUNK)]
    return (np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)), info


# ---- the out-of-core fit -------------------------------------------------------------------------------------------

class _Descriptors:
    """The training items' descriptors, written to ``folder`` :data:`CHUNK` items at a time, and the statistics that
    turn a raw chunk into the model's features: the audio standardisation; text's document frequencies (IDF) and the
    hashed columns that occur."""

    def __init__(self, modality: str, items: list, folder: Path):
        self.modality, self.folder, self.n = modality, folder, len(items)
        self.starts = list(range(0, len(items), CHUNK))
        total: Any = 0.0
        squares: Any = 0.0
        df = np.zeros(2 * HASH_BUCKETS, dtype=np.int64) if modality == "text" else None
        for k, s in enumerate(self.starts):
            raw = self.raw(items[s:s + CHUNK])
            self._save(k, raw)
            if df is not None:
                df += np.bincount(raw.indices, minlength=df.size)
            else:
                total, squares = total + raw.sum(0, dtype=np.float64), squares + (raw.astype(np.float64) ** 2).sum(0)
            self.width = raw.shape[1]
        if df is not None:
            self.columns = np.flatnonzero(df)
            self.width = self.columns.size
            self.column_of = np.full(df.size, -1, dtype=np.int64)
            self.column_of[self.columns] = np.arange(self.columns.size)
            self.idf = (np.log((1.0 + self.n) / (1.0 + df[self.columns])) + 1.0).astype(np.float32)   # smooth_idf
            self.words = int(np.searchsorted(self.columns, HASH_BUCKETS))   # compact columns < this: the word block
        elif modality == "audio":
            self.mean = total / self.n
            self.scale = np.sqrt(np.maximum(squares / self.n - self.mean ** 2, 0.0))
            self.scale[self.scale == 0] = 1.0                               # StandardScaler's rule for constant columns
        if modality != "image":          # written again as the model's features: each pass of the fit only reads them
            for k in range(len(self.starts)):
                self._save(k, self.features(self.chunk(k)))

    def _path(self, k: int) -> Path:
        return self.folder / (f"{k:05d}.npz" if self.modality == "text" else f"{k:05d}.npy")

    def raw(self, items: list):
        if self.modality == "text":
            texts = [str(t) for t in items]
            counts = [HashingVectorizer(n_features=HASH_BUCKETS, alternate_sign=False, norm=None, **kw).transform(texts)
                      for kw in ({"ngram_range": (1, 2)}, {"analyzer": "char_wb", "ngram_range": (2, 5)})]
            return scipy.sparse.hstack(counts, format="csr", dtype=np.float32)
        return _image_descriptor(items) if self.modality == "image" else _audio_descriptor(items)

    def features(self, raw):
        """The model's features of a raw chunk (training chunks and new items alike)."""
        if self.modality == "image":
            return raw
        if self.modality == "audio":
            return ((raw - self.mean) / self.scale).astype(np.float32)
        raw = raw.tocoo()
        keep = self.column_of[raw.col] >= 0                       # buckets no training item has: weight 0 anyway
        x = scipy.sparse.csr_matrix(((1.0 + np.log(raw.data[keep])) * self.idf[self.column_of[raw.col[keep]]],
                                     (raw.row[keep], self.column_of[raw.col[keep]])),
                                    shape=(raw.shape[0], self.columns.size), dtype=np.float32)
        return scipy.sparse.hstack([normalize(x[:, :self.words]), normalize(x[:, self.words:])], format="csr")

    def _save(self, k: int, x) -> None:
        if self.modality == "text":
            scipy.sparse.save_npz(self._path(k), x, compressed=False)
        else:
            np.save(self._path(k), x)

    def chunk(self, k: int):
        """The ``k``-th chunk of training items as stored: the model's features once the constructor is done."""
        path = self._path(k)
        return scipy.sparse.load_npz(path) if self.modality == "text" else np.load(path)

    def rows(self, index: np.ndarray):
        """The features of the training items ``index`` (sorted), read chunk by chunk."""
        parts = []
        for k, s in enumerate(self.starts):
            local = index[(index >= s) & (index < s + CHUNK)] - s
            if len(local):
                parts.append(self.chunk(k)[local])
        return scipy.sparse.vstack(parts, format="csr") if self.modality == "text" else np.concatenate(parts)


class OutOfCoreLogistic:
    """A multinomial logistic regression on the descriptors of :class:`_Descriptors`: ``predict(items)`` describes
    the items and returns class indices."""

    def __init__(self, describe: Callable, coef: np.ndarray, intercept: np.ndarray, classes: np.ndarray):
        self.describe, self.coef, self.intercept, self.classes = describe, coef, intercept, classes

    def predict(self, items: Sequence[Any]) -> np.ndarray:
        if not len(items):
            return np.zeros(0, dtype=np.int64)
        scores = np.asarray(self.describe(list(items)) @ self.coef.T) + self.intercept
        return self.classes[np.argmax(scores, axis=1)]


def _objective(store: _Descriptors, y: np.ndarray, n_classes: int, c: float):
    """(loss, gradient) of mean cross-entropy + ‖W‖² / (2 C n) at the flat parameters (W, b), streamed over the
    chunks on disk (scikit-learn's multinomial objective, rescaled by 1/n)."""
    def fun(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w = theta[:-n_classes].reshape(n_classes, -1)
        b = theta[-n_classes:]
        loss, gw, gb = 0.0, np.zeros_like(w), np.zeros_like(b)
        for k, s in enumerate(store.starts):
            x = store.chunk(k)
            z = np.asarray(x @ w.T, dtype=np.float64) + b
            z -= z.max(1, keepdims=True)
            p = np.exp(z)
            norm = p.sum(1, keepdims=True)
            target = y[s:s + x.shape[0]]
            rows = np.arange(x.shape[0])
            loss -= float((z[rows, target] - np.log(norm[:, 0])).sum())
            g = p / norm
            g[rows, target] -= 1.0
            gw += np.asarray(x.T @ g).T
            gb += g.sum(0)
        n = store.n
        loss = loss / n + float((w ** 2).sum()) / (2 * c * n)
        return loss, np.concatenate([(gw / n + w / (c * n)).ravel(), gb / n])
    return fun


def _fit_out_of_core(modality: str, items: list, y: np.ndarray, *, seed: int) -> tuple[OutOfCoreLogistic, dict]:
    classes, y_index = np.unique(y, return_inverse=True)
    with tempfile.TemporaryDirectory(prefix=owned_scratch_prefix(CLASSICAL_PREFIX)) as folder:   # gc: if killed
        store = _Descriptors(modality, items, Path(folder))
        # C on a stratified subsample (the descriptors of every item would not fit in memory at this size)
        _, sample = holdout_split([str(v) for v in y_index], None, STREAM_ABOVE / len(items), seed=seed)
        sample = np.asarray(sample, dtype=np.int64)
        if len(sample) > STREAM_ABOVE:          # the per-class rounding can overshoot by an item or two
            sample = np.random.default_rng(seed).choice(sample, STREAM_ABOVE, replace=False)
        sample = np.sort(sample)
        x_sample = store.rows(sample)
        best_c, tuned = _choose_c(x_sample, y_index[sample], modality, seed,
                                  f"a stratified subsample of {len(sample)} of the {len(items)} training items")
        # start from the subsample's fit at that C, then fit every item
        with small_problem_threads(x_sample):
            start = LogisticRegression(C=best_c, max_iter=5000).fit(x_sample, y_index[sample])
        del x_sample
        k = len(classes)
        coef = np.zeros((k, store.width))
        intercept = np.zeros(k)
        if k == 2:                  # scikit-learn keeps one row for two classes: the same decision function
            coef[1], intercept[1] = start.coef_[0], start.intercept_[0]
        else:
            coef[start.classes_], intercept[start.classes_] = start.coef_, start.intercept_
        result = scipy.optimize.minimize(_objective(store, y_index, k, best_c), np.concatenate([coef.ravel(), intercept]),
                                         jac=True, method="L-BFGS-B", options={"maxiter": 1000, "gtol": 1e-4})
        theta = result.x
        describe = lambda batch: store.features(store.raw(batch))   # noqa: E731  (statistics only, no files)
        model = OutOfCoreLogistic(describe, theta[:-k].reshape(k, -1), theta[-k:], classes)
        fit = (f"out of core: descriptors of all {len(items)} training items on disk in chunks of {CHUNK}, "
               f"multinomial logistic regression by L-BFGS over the chunks ({result.nit} iterations, "
               f"{'converged' if result.success else 'stopped: ' + str(result.message)})")
    return model, {**tuned, "fit": fit}
