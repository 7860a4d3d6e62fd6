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
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
import torchaudio
from PIL import Image
from skimage.feature import hog
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import FeatureUnion, make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from tlcore.data.audio import clip_mfcc
from tlcore.data.images import load_rgb
from tlcore.device import small_problem_threads
from tlcore.strategies.linear_probe import C_GRID

#: L2 strengths for TF-IDF rows and the image descriptor (unit-scale features: weaker regularisation is usual, Wang &
#: Manning 2012); the standardized audio descriptor uses the linear probe's grid.
C_GRID_TEXT = (0.1, 1.0, 10.0, 100.0)
IMAGE_SIDE = 64
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


def fit_classical(modality: str, items: Sequence[Any], y: np.ndarray, *, seed: int = 0):
    """(fitted scikit-learn pipeline, info) on the training ``items`` and their class indices ``y``."""
    features = _descriptor(modality)
    counts = np.bincount(y)
    folds = int(min(5, counts[counts > 0].min()))
    info = {"model": NAMES[modality], "train_size": len(items), "val_size": 0, "epochs_run": 0}
    grid = C_GRID if modality == "audio" else C_GRID_TEXT
    # the descriptor is fitted and computed once, for the cross-validation over C and the final fit alike (its
    # vocabulary / scaling refit per fold would be exact but costs the descriptor once per fold)
    x = features.fit_transform(list(items), y)
    best_c = 1.0
    with small_problem_threads(x):
        if folds >= 2 and len(set(y.tolist())) > 1:
            cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
            scores = {c: float(cross_val_score(LogisticRegression(C=c, max_iter=5000), x, y, cv=cv).mean())
                      for c in grid}
            best_c = max(grid, key=lambda c: (scores[c], -abs(np.log10(c))))   # ties: the middle of the grid (C = 1)
            info.update(C=best_c, tuned=f"C from {list(grid)} by {folds}-fold cross-validation on the training items",
                        cv_accuracy=scores[best_c])
        else:
            info.update(C=1.0, tuned="C = 1 (too few items per class to cross-validate)")
        regression = LogisticRegression(C=best_c, max_iter=5000).fit(x, y)
    pipeline = make_pipeline(features, regression)     # both steps fitted: it describes and scores new items
    return pipeline, info


def classical_predictions(modality: str, train_items: Sequence[Any], y: np.ndarray, eval_items: Sequence[Any], *,
                          seed: int = 0) -> tuple[np.ndarray, dict]:
    """Class indices predicted for ``eval_items`` by the classical model fitted on the training items."""
    model, info = fit_classical(modality, train_items, y, seed=seed)
    return np.asarray(model.predict(list(eval_items))), info
