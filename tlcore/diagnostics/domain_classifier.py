"""Proxy A-distance: how well a linear domain classifier tells the two feature sets apart.

Ben-David, Blitzer, Crammer & Pereira (2007), "Analysis of Representations for Domain Adaptation", NIPS;
Ben-David et al. (2010), "A theory of learning from different domains", Machine Learning 79.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from tlcore.diagnostics._common import JsonResult, check_pair, subsample_rows


@dataclass
class PADResult(JsonResult):
    """Outcome of :func:`proxy_a_distance`.

    ``pad``: proxy A-distance in [0, 2] (0: indistinguishable, 2: perfectly separable).
    ``auc``: cross-validated ROC AUC of the domain classifier (0.5: chance).
    ``error``: cross-validated classification error ε of the domain classifier.
    ``n_per_domain``: items per domain actually used (balanced subsample).
    """

    pad: float
    auc: float
    error: float
    n_per_domain: int = 0
    folds: int = 0


def proxy_a_distance(
    features_a: np.ndarray,
    features_b: np.ndarray,
    *,
    seed: int = 0,
    folds: int = 5,
    max_n: int | None = 5000,
    c: float = 1.0,
    blas_threads: int | None = 1,
) -> PADResult:
    """Proxy A-distance from a cross-validated logistic-regression domain classifier.

    Paper: Ben-David et al. (2007), "Analysis of Representations for Domain Adaptation" (Section 4);
    the estimator follows Ganin et al. (2016, JMLR 17, "Domain-Adversarial Training of Neural Networks").

    Formula: label items of A as 0 and B as 1, take a balanced subsample of k = min(n, m, max_n) items per
    domain, train a logistic regression (L2, inverse strength ``c``) on standardized features with
    stratified ``folds``-fold cross-validation and measure its out-of-fold error ε; then

        PAD = 2 (1 − 2ε), clipped to [0, 2]

    (ε ≥ 0.5, a classifier no better than chance, gives 0). The out-of-fold probabilities also give the ROC
    AUC. A balanced subsample keeps ε comparable across set sizes (chance error is always 0.5).

    Args:
        features_a: array (n, d); features_b: array (m, d); each needs at least 2 items.
        seed: seeds the balanced subsample and the fold split.
        folds: number of cross-validation folds (capped by the items per domain).
        max_n: cap on items per domain (keeps the cost bounded for large sets); None uses all.
        c: inverse L2 regularisation strength of the logistic regression.
        blas_threads: BLAS threads during the fits (None: leave as is). lbfgs on these small problems
            does many tiny matrix-vector products; with several BLAS threads on a busy machine they spin
            and wait, measured 5–20× slower than one thread, so one is the default.
    """
    a, b = check_pair(features_a, features_b, min_rows=2)
    rng = np.random.default_rng(seed)
    k = min(a.shape[0], b.shape[0])
    if max_n is not None:
        k = min(k, max_n)
    a = subsample_rows(a, k, rng)
    b = subsample_rows(b, k, rng)
    x = np.concatenate([a, b], axis=0)
    y = np.concatenate([np.zeros(k, dtype=int), np.ones(k, dtype=int)])
    n_folds = int(max(2, min(folds, k)))
    cv = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=500))
    with warnings.catch_warnings(), threadpool_limits(limits=blas_threads, user_api="blas"):
        # Perfectly separable domains make lbfgs hit max_iter; the predictions are still right.
        warnings.simplefilter("ignore", ConvergenceWarning)
        proba = cross_val_predict(model, x, y, cv=cv, method="predict_proba")[:, 1]
    error = float(np.mean((proba >= 0.5).astype(int) != y))
    auc = float(roc_auc_score(y, proba))
    pad = float(np.clip(2.0 * (1.0 - 2.0 * error), 0.0, 2.0))
    return PADResult(pad=pad, auc=auc, error=error, n_per_domain=int(k), folds=n_folds)
