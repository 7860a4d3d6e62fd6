"""tlcore.evaluation.metrics against hand-computed values (and sklearn / the exact bootstrap distribution)."""

import numpy as np
import pytest
from scipy.stats import binom
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

from tlcore.evaluation.metrics import bootstrap_ci, classification_metrics, paired_difference

# --- bootstrap_ci ------------------------------------------------------------------------------------


def test_bootstrap_ci_degenerate_cases():
    assert bootstrap_ci(np.ones(25)) == [1.0, 1.0]
    assert bootstrap_ci(np.zeros(25)) == [0.0, 0.0]
    assert bootstrap_ci(np.array([1.0])) == [1.0, 1.0]
    assert bootstrap_ci(np.array([])) == [0.0, 0.0]


def test_bootstrap_ci_of_two_items():
    # Resamples of (0, 1) have mean 0, 1/2, 1 with probability 1/4, 1/2, 1/4: the 2.5% and 97.5%
    # quantiles are 0 and 1.
    assert bootstrap_ci(np.array([0.0, 1.0])) == [0.0, 1.0]


@pytest.mark.parametrize("n, correct", [(100, 70), (40, 30), (200, 50)])
def test_bootstrap_ci_matches_the_exact_bootstrap_distribution(n, correct):
    # The bootstrap mean of a 0/1 vector with k ones is exactly Binomial(n, k/n) / n, so with many
    # replicates the percentile interval tends to the binomial quantiles (up to one step 1/n).
    # 70/100: binom.ppf(0.025) = 61, binom.ppf(0.975) = 79 -> [0.61, 0.79].
    x = np.r_[np.ones(correct), np.zeros(n - correct)]
    lo, hi = bootstrap_ci(x, n_boot=20000)
    exact = binom.ppf([0.025, 0.975], n, correct / n) / n
    assert lo == pytest.approx(exact[0], abs=1 / n + 1e-12)
    assert hi == pytest.approx(exact[1], abs=1 / n + 1e-12)
    if (n, correct) == (100, 70):
        assert list(exact) == pytest.approx([0.61, 0.79])


@pytest.mark.parametrize("n, correct", [(10, 3), (50, 49), (300, 150), (1000, 800)])
def test_bootstrap_ci_contains_the_point_estimate(n, correct):
    x = np.r_[np.ones(correct), np.zeros(n - correct)]
    lo, hi = bootstrap_ci(x, seed=3)
    assert 0.0 <= lo <= correct / n <= hi <= 1.0


def test_bootstrap_ci_is_deterministic_by_seed_and_order_free():
    x = np.random.default_rng(0).integers(0, 2, 60).astype(float)
    assert bootstrap_ci(x, seed=5) == bootstrap_ci(x.copy(), seed=5)
    intervals = {tuple(bootstrap_ci(x, seed=s, n_boot=200)) for s in range(5)}
    assert len(intervals) > 1                        # the seed is used


def test_bootstrap_ci_width_shrinks_like_one_over_root_n():
    widths = {}
    for n in (20, 200, 2000):
        x = np.r_[np.ones(n // 2), np.zeros(n - n // 2)]
        lo, hi = bootstrap_ci(x)
        widths[n] = hi - lo
        # Normal approximation of the width: 2 · 1.96 · sqrt(p (1 − p) / n).
        assert widths[n] == pytest.approx(2 * 1.96 * np.sqrt(0.25 / n), rel=0.2)
    assert widths[20] > widths[200] > widths[2000]


# --- paired_difference -------------------------------------------------------------------------------


def test_paired_difference_of_identical_predictions_is_zero():
    y = [0, 1, 2, 1, 0, 2]
    pred = [0, 1, 1, 1, 2, 2]
    same = paired_difference(y, pred, pred)
    assert same["difference"] == 0.0 and same["ci95"] == [0.0, 0.0]


def test_paired_difference_known_value_and_sign():
    # 10 items of class 0. A is right on items 0–6 (7/10), B on items 0–3 (4/10).
    # difference = accuracy(A) − accuracy(B) = 0.7 − 0.4 = 0.3: the *second* prediction is subtracted.
    # Per item A − B is 1 on items 4–6 and 0 elsewhere, so the bootstrap mean is Binomial(10, 0.3)/10:
    # quantiles 0 and 6 -> [0.0, 0.6].
    y = [0] * 10
    a = [0] * 7 + [1] * 3
    b = [0] * 4 + [1] * 6
    ab = paired_difference(y, a, b)
    assert ab["difference"] == pytest.approx(0.3)
    assert ab["ci95"] == pytest.approx([0.0, 0.6])
    ba = paired_difference(y, b, a)
    assert ba["difference"] == pytest.approx(-0.3)
    assert ba["ci95"] == pytest.approx([-0.6, 0.0])


def test_paired_difference_with_discordance_both_ways():
    # A right / B wrong on 30 items, A wrong / B right on 10, both right on 40, both wrong on 20:
    # difference (30 − 10) / 100 = 0.2; the interval is that of the per-item mean of {+1 ×30, −1 ×10, 0 ×60}.
    y = np.zeros(100, dtype=int)
    a = np.r_[np.zeros(30), np.ones(10), np.zeros(40), np.ones(20)].astype(int)
    b = np.r_[np.ones(30), np.zeros(10), np.zeros(40), np.ones(20)].astype(int)
    d = paired_difference(y, a, b, seed=4)
    assert d["difference"] == pytest.approx(0.2)
    per_item = np.r_[np.ones(30), -np.ones(10), np.zeros(60)]
    assert d["ci95"] == bootstrap_ci(per_item, seed=4)
    lo, hi = d["ci95"]
    assert 0.0 < lo < 0.2 < hi < 0.4                 # A is better beyond the interval here


# --- classification_metrics --------------------------------------------------------------------------

# Classes a, b, c, d. "b" is never predicted; "d" never occurs in y_true but is predicted once.
Y_TRUE = [0, 0, 0, 1, 1, 2, 2, 2]
Y_PRED = [0, 0, 2, 0, 3, 2, 2, 0]
CLASSES = ["a", "b", "c", "d"]


def test_classification_metrics_hand_case():
    m = classification_metrics(Y_TRUE, Y_PRED, CLASSES)
    # Right on items 0, 1, 5, 6.
    assert m["accuracy"] == pytest.approx(4 / 8)
    # a: 4 predicted (items 0, 1, 3, 7), 2 right, 3 true -> P 1/2, R 2/3, F1 2·(1/2)(2/3)/(1/2 + 2/3) = 4/7
    # b: never predicted -> P 0 (zero_division = 0), R 0/2, F1 0
    # c: 3 predicted (items 2, 5, 6), 2 right, 3 true -> P = R = F1 = 2/3
    # d: 1 predicted (item 4), 0 right, 0 true -> P 0, R 0 (0/0), F1 0
    expected = {
        "a": {"precision": 1 / 2, "recall": 2 / 3, "f1": 4 / 7, "support": 3},
        "b": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 2},
        "c": {"precision": 2 / 3, "recall": 2 / 3, "f1": 2 / 3, "support": 3},
        "d": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0},
    }
    assert list(m["per_class"]) == CLASSES
    for c in CLASSES:
        assert m["per_class"][c] == pytest.approx(expected[c]), c
    assert m["macro_f1"] == pytest.approx((4 / 7 + 0 + 2 / 3 + 0) / 4)      # 13/42
    assert m["confusion"] == [  # rows: true class, columns: predicted class
        [2, 0, 1, 0],
        [1, 0, 0, 1],
        [1, 0, 2, 0],
        [0, 0, 0, 0],
    ]
    correct = (np.asarray(Y_TRUE) == np.asarray(Y_PRED)).astype(float)
    assert m["accuracy_ci95"] == bootstrap_ci(correct, seed=0)
    lo, hi = m["accuracy_ci95"]
    assert lo <= m["accuracy"] <= hi


def test_classification_metrics_agree_with_sklearn():
    m = classification_metrics(Y_TRUE, Y_PRED, CLASSES, seed=2)
    labels = [0, 1, 2, 3]
    p, r, f, s = precision_recall_fscore_support(Y_TRUE, Y_PRED, labels=labels, zero_division=0)
    assert m["accuracy"] == pytest.approx(accuracy_score(Y_TRUE, Y_PRED))
    assert m["macro_f1"] == pytest.approx(f1_score(Y_TRUE, Y_PRED, labels=labels, average="macro", zero_division=0))
    for i, c in enumerate(CLASSES):
        assert m["per_class"][c] == pytest.approx(
            {"precision": p[i], "recall": r[i], "f1": f[i], "support": s[i]})
    assert m["confusion"] == confusion_matrix(Y_TRUE, Y_PRED, labels=labels).tolist()


def test_classification_metrics_perfect_predictions():
    y = [0, 1, 2, 2, 1, 0]
    m = classification_metrics(y, y, ["x", "y", "z"])
    assert m["accuracy"] == 1.0 and m["macro_f1"] == 1.0 and m["accuracy_ci95"] == [1.0, 1.0]
    assert all(v == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 2} for v in m["per_class"].values())
    assert m["confusion"] == [[2, 0, 0], [0, 2, 0], [0, 0, 2]]


def test_macro_f1_ignores_classes_absent_from_both_truth_and_predictions():
    y = [0, 1, 2, 0]
    m = classification_metrics(y, y, ["a", "b", "c", "d", "e"])   # d, e: not in this eval split at all
    assert m["macro_f1"] == pytest.approx(1.0)
